//! kube-router's own rule shape (k3s's network policy): a policy chain whose last rules log a packet
//! no policy accepted (not carrying the accept mark) to NFLOG group 100 with a `limit` of 10 a minute
//! (burst 10), reject it, and clear the mark. The agent sees exactly what that rule lets through.

use super::{TOOLS, logged_by_rule, stable_fields, start_agent};
use crate::support::netns::{CLIENT_V4, NetnsPair, SERVER_V4};
use crate::support::{kernel_lock, privileged, run};

use serde_json::json;

#[test]
fn kube_routers_rate_limited_nflog_rule_is_reported_and_marked_packets_are_not() {
    if !privileged("kube-router's NFLOG rule", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    let chain = "KUBE-NWPLCY-KITTEST";
    pair.in_server("iptables", &["-N", chain]);
    // Traffic from the veth (the "pods"), not the agent's own metrics connections on loopback.
    pair.in_server("iptables", &["-A", "INPUT", "-i", "kits0", "-j", chain]);
    // As kube-router writes them (network_policy_controller: the pod firewall's last three rules).
    pair.in_server(
        "iptables",
        &[
            "-A",
            chain,
            "-m",
            "comment",
            "--comment",
            "rule to log dropped traffic POD name:web-1 namespace:default",
            "-m",
            "mark",
            "!",
            "--mark",
            "0x10000/0x10000",
            "-j",
            "NFLOG",
            "--nflog-group",
            "100",
            "--nflog-prefix",
            "DROP by policy default/deny-web",
            "-m",
            "limit",
            "--limit",
            "10/minute",
            "--limit-burst",
            "10",
        ],
    );
    pair.in_server(
        "iptables",
        &[
            "-A",
            chain,
            "-m",
            "comment",
            "--comment",
            "rule to REJECT traffic destined for POD name:web-1 namespace:default",
            "-m",
            "mark",
            "!",
            "--mark",
            "0x10000/0x10000",
            "-j",
            "REJECT",
        ],
    );
    pair.in_server(
        "iptables",
        &["-A", chain, "-j", "MARK", "--set-mark", "0/0x10000"],
    );
    // A policy that accepts port 9994 marks its packets first, as kube-router's accept rules do.
    pair.in_server(
        "iptables",
        &[
            "-t",
            "mangle",
            "-A",
            "PREROUTING",
            "-p",
            "udp",
            "--dport",
            "9994",
            "-j",
            "MARK",
            "--set-mark",
            "0x10000/0x10000",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&pair, dir.path(), "100", &[]);

    // Accepted by a policy: not logged.
    pair.send_udp(SERVER_V4, 9994);
    // Twelve denied datagrams within a moment (UDP: a rejected TCP SYN would be sent again): the
    // limit logs the first ten, and one more only every 6 s after.
    let datagrams =
        format!("for i in $(seq 12); do echo -n x > /dev/udp/{SERVER_V4}/9993; done; true");
    run(
        "ip",
        &["netns", "exec", &pair.client, "bash", "-c", &datagrams],
    );
    let records = agent.expect_records(10);
    for record in &records {
        assert_eq!(
            stable_fields(record, ":08:00"),
            json!({"prefix": "DROP by policy default/deny-web", "hostname": null, "in": "kits0",
                   "out": "", "src": CLIENT_V4, "dst": SERVER_V4, "proto": "UDP", "dpt": 9993,
                   "len": 29, "ttl": 64, "flags": ["DF"],
                   "policy": {"kind": "NetworkPolicy", "namespace": "default", "name": "deny-web"}})
        );
    }
    // The rule's own counter: the kernel logged exactly what the agent reported.
    assert_eq!(logged_by_rule(&pair, chain, "nflog-group 100"), 10);
}
