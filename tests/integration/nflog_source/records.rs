//! iptables `-j NFLOG` and nft `log group` rules: TCP, UDP, ICMP and IPv6 packets become exact
//! records, and each record is the one the same packet's LOG line gives (read by a second agent from
//! /dev/kmsg).

use std::time::Duration;

use serde_json::{Value, json};

use super::{TOOLS, stable_fields, start_agent};
use crate::support::agent::Agent;
use crate::support::netns::{CLIENT_V4, CLIENT_V6, LogAllNetns, NetnsPair, SERVER_V4, SERVER_V6};
use crate::support::{kernel_lock, privileged, unique};

const GROUP: &str = "7";

#[test]
fn iptables_nflog_drops_over_tcp_udp_icmp_and_ipv6_are_the_records_their_log_lines_give() {
    if !privileged("NFLOG from iptables", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    // Each packet is logged twice, to NFLOG and by a LOG rule to the kernel log, then dropped (TCP
    // rejected with a reset, so that a connect ends at once).
    let prefix = format!("{}:", unique("KITNFL"));
    let log_prefix = format!("{prefix} ");
    let nflog = [
        "-j",
        "NFLOG",
        "--nflog-group",
        GROUP,
        "--nflog-prefix",
        &prefix,
    ];
    let log = ["-j", "LOG", "--log-prefix", &log_prefix];
    for (tool, matches, verdict) in [
        (
            "iptables",
            &["-p", "udp", "--dport", "9990"][..],
            &["-j", "DROP"][..],
        ),
        (
            "iptables",
            &["-p", "tcp", "--dport", "9991"],
            &["-j", "REJECT", "--reject-with", "tcp-reset"],
        ),
        (
            "iptables",
            &["-p", "icmp", "--icmp-type", "echo-request"],
            &["-j", "DROP"],
        ),
        (
            "ip6tables",
            &["-p", "tcp", "--dport", "9991"],
            &["-j", "REJECT", "--reject-with", "tcp-reset"],
        ),
    ] {
        for target in [&log[..], &nflog[..], verdict] {
            let mut rule = vec!["-A", "INPUT"];
            rule.extend_from_slice(matches);
            rule.extend_from_slice(target);
            pair.in_server(tool, &rule);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&pair, dir.path(), GROUP, &[]);
    let kmsg_dir = tempfile::tempdir().unwrap();
    let kmsg_agent = Agent::start(
        kmsg_dir.path(),
        &[
            ("LOG_SOURCE", "kmsg"),
            ("KMSG_PATH", "/dev/kmsg"),
            ("IPTABLES_LOG_PREFIX", &prefix),
        ],
    );

    let cases: [(&dyn Fn(), Value, &str); 4] = [
        (
            &|| pair.send_udp(SERVER_V4, 9990),
            json!({"proto": "UDP", "src": CLIENT_V4, "dst": SERVER_V4, "dpt": 9990, "len": 29,
                   "flags": ["DF"]}),
            ":08:00",
        ),
        (
            &|| pair.connect_tcp(SERVER_V4, 9991),
            json!({"proto": "TCP", "src": CLIENT_V4, "dst": SERVER_V4, "dpt": 9991, "len": 60,
                   "flags": ["DF", "SYN"]}),
            ":08:00",
        ),
        (
            &|| pair.ping(SERVER_V4),
            json!({"proto": "ICMP", "src": CLIENT_V4, "dst": SERVER_V4, "icmp_type": 8,
                   "icmp_code": 0, "len": 84, "flags": ["DF"]}),
            ":08:00",
        ),
        (
            &|| pair.connect_tcp(SERVER_V6, 9991),
            json!({"proto": "TCP", "src": CLIENT_V6, "dst": SERVER_V6, "dpt": 9991, "len": 80,
                   "flags": ["SYN"]}),
            ":86:dd",
        ),
    ];
    for (send, fields, ether_type) in cases {
        send();
        let record = agent.expect_records(1).remove(0);
        let mut expected = json!({
            "prefix": prefix, "in": "kits0", "out": "", "ttl": 64, "hostname": null,
        });
        expected
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        assert_eq!(stable_fields(&record, ether_type), expected);

        // The LOG line of the same packet, parsed: the same record but for the time (the kmsg
        // record's own) and the host name (none on either).
        let logged = kmsg_agent.expect_records(1).remove(0);
        let without_time = |record: &Value| {
            let mut record = record.clone();
            record.as_object_mut().unwrap().remove("time");
            record
        };
        assert_eq!(without_time(&record), without_time(&logged));
    }
    assert_eq!(
        agent.metric("kube_iptables_tailer_nflog_messages_received_total"),
        4.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_nflog_messages_decoded_total"),
        4.0
    );
    assert_eq!(agent.metric("kube_iptables_tailer_drops_parsed_total"), 4.0);
    assert_eq!(agent.metric("kube_iptables_tailer_source_ready"), 1.0);
    let (status, took) = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn nft_log_group_drops_over_ipv4_and_ipv6_are_printed_exactly() {
    if !privileged("NFLOG from nftables", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let ruleset = dir.path().join("rules.nft");
    std::fs::write(
        &ruleset,
        "table inet kit {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    \
         udp dport 9990 log group 7 prefix \"nft-drop\" drop\n    \
         tcp dport 9991 log group 7 prefix \"nft-reject\" reject with tcp reset\n    \
         udp dport 9992 log group 8 prefix \"other group\" drop\n  }\n}\n",
    )
    .unwrap();
    pair.in_server("nft", &["-f", ruleset.to_str().unwrap()]);
    let agent = start_agent(&pair, dir.path(), GROUP, &[]);

    // One at a time: a first IPv6 packet waits for neighbour discovery, and could come after the next.
    pair.send_udp(SERVER_V6, 9990);
    let udp = agent.expect_records(1).remove(0);
    pair.send_udp(SERVER_V4, 9992);
    pair.connect_tcp(SERVER_V4, 9991);
    let tcp = agent.expect_records(1).remove(0);
    assert_eq!(
        stable_fields(&udp, ":86:dd"),
        json!({"prefix": "nft-drop", "hostname": null, "in": "kits0", "out": "", "src": CLIENT_V6,
               "dst": SERVER_V6, "proto": "UDP", "dpt": 9990, "len": 49, "ttl": 64, "flags": []})
    );
    assert_eq!(
        stable_fields(&tcp, ":08:00"),
        json!({"prefix": "nft-reject", "hostname": null, "in": "kits0", "out": "", "src": CLIENT_V4,
               "dst": SERVER_V4, "proto": "TCP", "dpt": 9991, "len": 60, "ttl": 64,
               "flags": ["DF", "SYN"]})
    );
}

#[test]
fn a_copy_range_that_cuts_the_transport_header_reports_the_drop_without_ports() {
    if !privileged("NFLOG copy range", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    for tool in ["iptables", "ip6tables"] {
        for target in [
            &["-j", "NFLOG", "--nflog-group", GROUP][..],
            &["-j", "REJECT", "--reject-with", "tcp-reset"],
        ] {
            let mut rule = vec!["-A", "INPUT", "-p", "tcp", "--dport", "9991"];
            rule.extend_from_slice(target);
            pair.in_server(tool, &rule);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // 40 bytes: after an IPv4 header, the TCP header's fixed 20 bytes but not a SYN's options; after
    // an IPv6 header, nothing of TCP.
    let agent = start_agent(&pair, dir.path(), GROUP, &[("NFLOG_COPY_RANGE", "40")]);
    pair.connect_tcp(SERVER_V4, 9991);
    let v4 = agent.expect_records(1).remove(0);
    assert_eq!(
        stable_fields(&v4, ":08:00"),
        json!({"prefix": "", "hostname": null, "in": "kits0", "out": "", "src": CLIENT_V4,
               "dst": SERVER_V4, "proto": "TCP", "dpt": 9991, "len": 60, "ttl": 64,
               "flags": ["DF", "SYN"]})
    );
    pair.connect_tcp(SERVER_V6, 9991);
    let v6 = agent.expect_records(1).remove(0);
    assert_eq!(
        stable_fields(&v6, ":86:dd"),
        json!({"prefix": "", "hostname": null, "in": "kits0", "out": "", "src": CLIENT_V6,
               "dst": SERVER_V6, "proto": "TCP", "len": 80, "ttl": 64, "flags": []})
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_nflog_messages_incomplete_total"),
        1.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_nflog_messages_decoded_total"),
        2.0
    );
}
