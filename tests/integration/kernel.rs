//! End to end with the real kernel: a rule in a network namespace logs and drops a packet the test sends,
//! rsyslog writes the kernel's line to a file, logrotate rotates it, and the agent prints the drop.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::fake_api::{FakeApi, FakePod};
use crate::support::netns::{CLIENT_V4, CLIENT_V6, LogAllNetns, NetnsPair, SERVER_V4, SERVER_V6};
use crate::support::rsyslog::{Rotation, Rsyslog};
use crate::support::{kernel_lock, privileged, unique, wait_until};

const TOOLS: &[&str] = &["ip", "bash", "rsyslogd", "logrotate"];

/// The fields of a record that the test can know exactly (ports and MACs the kernel picks are checked
/// for shape, times for recency).
fn stable_fields(record: &Value) -> Value {
    let mut stable = record.clone();
    let object = stable.as_object_mut().unwrap();
    for volatile in ["time", "hostname", "spt", "mac"] {
        object.remove(volatile);
    }
    let time = chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(
        age < chrono::Duration::seconds(60) && age > chrono::Duration::seconds(-5),
        "time {time}"
    );
    assert!(
        record["hostname"]
            .as_str()
            .is_some_and(|host| !host.is_empty()),
        "{record}"
    );
    stable
}

fn start_agent(dir: &std::path::Path, log: &std::path::Path, prefix: &str) -> Agent {
    Agent::start(
        dir,
        &[
            ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
            ("IPTABLES_LOG_PREFIX", prefix),
            ("STATE_DIRECTORY", dir.join("state").to_str().unwrap()),
        ],
    )
}

#[test]
fn iptables_drop_reaches_stdout_through_rsyslog_and_both_logrotate_modes() {
    if !privileged("iptables end to end", &[TOOLS, &["iptables"]].concat()) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    let prefix = format!("{}:", unique("KITIPT"));
    let log_prefix = format!("{prefix} ");
    for target in [
        vec!["-j", "LOG", "--log-prefix", &log_prefix],
        vec!["-j", "DROP"],
    ] {
        let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "9998"];
        rule.extend(target);
        pair.in_server("iptables", &rule);
    }
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), &prefix);
    let agent = start_agent(dir.path(), &rsyslog.log, &prefix);

    let expected = json!({
        "prefix": prefix, "in": "kits0", "out": "", "src": CLIENT_V4, "dst": SERVER_V4,
        "proto": "UDP", "dpt": 9998, "len": 29, "ttl": 64, "flags": ["DF"],
    });
    for rotation in [
        None,
        Some(Rotation::Create),
        Some(Rotation::CopyTruncate),
        Some(Rotation::Create),
    ] {
        if let Some(rotation) = rotation {
            rsyslog.rotate(rotation);
        }
        for _ in 0..3 {
            pair.send_udp(SERVER_V4, 9998);
        }
        for record in agent.expect_records(3) {
            assert_eq!(stable_fields(&record), expected, "after {rotation:?}");
            assert!(
                record["mac"].as_str().unwrap().ends_with(":08:00"),
                "{record}"
            );
            assert!(record["spt"].as_u64().unwrap() > 0, "{record}");
        }
    }
    assert_eq!(
        agent.metric("kube_iptables_tailer_drops_parsed_total"),
        12.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_file_rotations_total{kind=\"rename\"}"),
        2.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_file_rotations_total{kind=\"truncate\"}"),
        1.0
    );
    let (status, took) = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn nftables_drops_over_ipv4_and_ipv6_reach_stdout() {
    if !privileged("nftables end to end", &[TOOLS, &["nft"]].concat()) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    let prefix = format!("{}:", unique("KITNFT"));
    let dir = tempfile::tempdir().unwrap();
    let ruleset = dir.path().join("rules.nft");
    std::fs::write(
        &ruleset,
        format!(
            "table inet kit {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
             tcp dport 9997 log prefix \"{prefix} \" reject with tcp reset\n    \
             udp dport 9998 log prefix \"{prefix} \" drop\n  }}\n}}\n"
        ),
    )
    .unwrap();
    pair.in_server("nft", &["-f", ruleset.to_str().unwrap()]);
    let rsyslog = Rsyslog::start(dir.path(), &prefix);
    let agent = start_agent(dir.path(), &rsyslog.log, &prefix);

    pair.connect_tcp(SERVER_V6, 9997);
    let records = agent.expect_records(1);
    assert_eq!(
        stable_fields(&records[0]),
        json!({
            "prefix": prefix, "in": "kits0", "out": "", "src": CLIENT_V6, "dst": SERVER_V6,
            "proto": "TCP", "dpt": 9997, "len": 80, "ttl": 64, "flags": ["SYN"],
        })
    );
    assert!(
        records[0]["mac"].as_str().unwrap().ends_with(":86:dd"),
        "{}",
        records[0]
    );

    pair.send_udp(SERVER_V4, 9998);
    let records = agent.expect_records(1);
    assert_eq!(
        stable_fields(&records[0]),
        json!({
            "prefix": prefix, "in": "kits0", "out": "", "src": CLIENT_V4, "dst": SERVER_V4,
            "proto": "UDP", "dpt": 9998, "len": 29, "ttl": 64, "flags": ["DF"],
        })
    );
    wait_until(
        "the checkpoint to cover both lines",
        Duration::from_secs(5),
        || agent.metric("kube_iptables_tailer_checkpoint_writes_total") >= 1.0,
    );
}

/// The two namespaces as two pods (`shop/client-1` sends, `db/server-1` receives), and the agent
/// posting Events for the drops rsyslog writes to its log.
struct EventsOnPods {
    api: FakeApi,
    agent: Agent,
    _rsyslog: Rsyslog,
}

impl EventsOnPods {
    fn start(dir: &std::path::Path, prefix: &str) -> EventsOnPods {
        let api = FakeApi::start();
        api.add_pod(
            FakePod::new("shop", "client-1")
                .uid("uid-client")
                .ip(CLIENT_V4),
        );
        api.add_pod(
            FakePod::new("db", "server-1")
                .uid("uid-server")
                .node("node-2")
                .ip(SERVER_V4),
        );
        let rsyslog = Rsyslog::start(dir, prefix);
        let url = api.url();
        let agent = Agent::start(
            dir,
            &[
                ("IPTABLES_LOG_PATH", rsyslog.log.to_str().unwrap()),
                ("IPTABLES_LOG_PREFIX", prefix),
                ("STATE_DIRECTORY", dir.join("state").to_str().unwrap()),
                ("EVENT_SINK", "kubernetes"),
                ("KUBE_API_SERVER", &url),
                ("NODE_NAME", "node-1"),
                ("DNS_LOOKUP", "false"),
            ],
        );
        wait_until("the pod index to sync", Duration::from_secs(20), || {
            agent.metric("kube_iptables_tailer_pod_index_synced") == 1.0
        });
        EventsOnPods {
            api,
            agent,
            _rsyslog: rsyslog,
        }
    }

    fn count_on(&self, pod: &str) -> u64 {
        self.api
            .events()
            .iter()
            .filter(|event| event["involvedObject"]["name"] == pod)
            .map(|event| event["count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Waits for `count` drops on each pod; returns the messages of the Events on each.
    fn messages(&self, count: u64) -> (Vec<Value>, Vec<Value>) {
        wait_until(
            &format!("{count} drops on each pod"),
            Duration::from_secs(30),
            || self.count_on("client-1") == count && self.count_on("server-1") == count,
        );
        let message_on = |pod: &str| -> Vec<Value> {
            self.api
                .events()
                .iter()
                .filter(|event| event["involvedObject"]["name"] == pod)
                .map(|event| event["message"].clone())
                .collect()
        };
        (message_on("client-1"), message_on("server-1"))
    }
}

#[test]
fn a_kernel_drop_between_two_pods_becomes_an_event_on_each() {
    if !privileged(
        "kernel drop to Kubernetes Events",
        &[TOOLS, &["iptables"]].concat(),
    ) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    let prefix = format!("{}:", unique("KITEVT"));
    let log_prefix = format!("{prefix} ");
    for target in [
        vec!["-j", "LOG", "--log-prefix", &log_prefix],
        vec!["-j", "DROP"],
    ] {
        let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "9996"];
        rule.extend(target);
        pair.in_server("iptables", &rule);
    }
    let dir = tempfile::tempdir().unwrap();
    let pods = EventsOnPods::start(dir.path(), &prefix);
    for _ in 0..3 {
        pair.send_udp(SERVER_V4, 9996);
    }
    let (sent, received) = pods.messages(3);
    assert_eq!(
        sent,
        vec![json!(
            "Packet dropped when sending traffic to db (198.18.0.2) on port 9996/UDP"
        )]
    );
    assert_eq!(
        received,
        vec![json!(
            "Packet dropped when receiving traffic from shop (198.18.0.1) on port 9996/UDP"
        )]
    );
    assert_eq!(
        pods.agent
            .metric("packet_drops_count{dst=\"db\",src=\"shop\"}"),
        3.0
    );
}

/// Calico's iptables dataplane with Felix's `logPrefix: "PREFIX %k %p"`: the rule Felix renders for
/// a `Log` action before the `Deny` of Kubernetes NetworkPolicy `db/deny` (iptables allows 29
/// characters of prefix).
#[test]
fn a_calico_log_prefix_naming_the_policy_puts_it_in_the_events() {
    if !privileged(
        "Calico policy prefix to Kubernetes Events",
        &[TOOLS, &["iptables"]].concat(),
    ) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    let prefix = unique("KITCAL");
    let log_prefix = format!("{prefix} knp db/deny: ");
    for target in [
        vec!["-j", "LOG", "--log-prefix", &log_prefix, "--log-level", "5"],
        vec!["-j", "DROP"],
    ] {
        let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "9995"];
        rule.extend(target);
        pair.in_server("iptables", &rule);
    }
    let dir = tempfile::tempdir().unwrap();
    let pods = EventsOnPods::start(dir.path(), &prefix);
    pair.send_udp(SERVER_V4, 9995);
    let (sent, received) = pods.messages(1);
    assert_eq!(
        sent,
        vec![json!(
            "Packet dropped when sending traffic to db (198.18.0.2) on port 9995/UDP by \
             NetworkPolicy db/deny"
        )]
    );
    assert_eq!(
        received,
        vec![json!(
            "Packet dropped when receiving traffic from shop (198.18.0.1) on port 9995/UDP by \
             NetworkPolicy db/deny"
        )]
    );
    assert_eq!(
        pods.agent.metric(
            "kube_iptables_tailer_policy_drops_total{direction=\"ingress\",namespace=\"db\",\
             policy=\"deny\"}"
        ),
        1.0
    );
}
