//! The NFLOG source against the real kernel: rules in a network namespace the test makes send packets
//! to an NFLOG group, and the agent, started inside that namespace (as on a node's host network),
//! reports them: as exact records, as the same records a LOG rule's line gives, as Events at the fake
//! API, under kube-router's own rule shape, through an overflow, and not at all when ulogd2 holds the
//! group.

mod busy;
mod events;
mod kube_router;
mod overflow;
mod records;

use std::path::Path;

use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::netns::NetnsPair;

/// The commands these tests drive.
const TOOLS: &[&str] = &["ip", "bash", "iptables", "ip6tables", "nft", "ping"];

/// The agent in the pair's server namespace, reading NFLOG `groups`, printing records.
fn start_agent(pair: &NetnsPair, dir: &Path, groups: &str, extra: &[(&str, &str)]) -> Agent {
    let mut env = vec![
        ("LOG_SOURCE", "nflog"),
        ("NFLOG_GROUPS", groups),
        ("EVENT_SINK", "stdout"),
    ];
    env.extend_from_slice(extra);
    Agent::start_in_netns(&pair.server, dir, &env)
}

/// The fields of a record the test knows exactly: the source port (the kernel picks it) is checked
/// for being there beside a destination port and the MAC for its EtherType, the time for being
/// recent; then they are removed.
fn stable_fields(record: &Value, ether_type: &str) -> Value {
    let mut stable = record.clone();
    let object = stable.as_object_mut().unwrap();
    if record.get("dpt").is_some() {
        assert!(
            record["spt"].as_u64().is_some_and(|port| port > 0),
            "{record}"
        );
        object.remove("spt");
    }
    let mac = object.remove("mac").expect("a MAC on a received packet");
    assert!(
        mac.as_str().unwrap().ends_with(ether_type),
        "{record}: the MAC ends with the EtherType {ether_type}"
    );
    let time = object.remove("time").unwrap();
    let time = chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(
        age < chrono::Duration::seconds(60) && age > chrono::Duration::seconds(-5),
        "time {time}"
    );
    stable
}

/// Packets the NFLOG rule of `chain` whose listing contains `matching` logged, from the rule's own
/// counter in the server namespace.
fn logged_by_rule(pair: &NetnsPair, chain: &str, matching: &str) -> u64 {
    let rules = pair.in_server("iptables", &["-L", chain, "-v", "-x", "-n"]);
    rules
        .lines()
        .find(|line| line.contains("NFLOG") && line.contains(matching))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|packets| packets.parse().ok())
        .unwrap_or_else(|| panic!("no NFLOG rule with {matching} in {chain}: {rules}"))
}
