//! Event storms against the fake API: a scan from 100,000 addresses writes at most `EVENTS_PER_POD`
//! + 1 Events on the scanned pod, whose counts add up to the drops exactly.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{cluster, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::{FakeApi, FakePod};

/// A TCP drop line from `src` to `dst` port `dpt`, in RSYSLOG_FileFormat.
fn drop_line(time: DateTime<Utc>, src: &str, dst: &str, dpt: u16) -> String {
    let stamp = time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    format!(
        "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={src} DST={dst} LEN=60 TOS=0x00 \
         PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    )
}

fn append(dir: &Path, lines: &[String]) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("kern.log"))
        .unwrap();
    file.write_all(lines.concat().as_bytes()).unwrap();
}

/// Address `n` of 198.18.0.0/15 (131,072 of them).
fn scanner(n: u32) -> String {
    Ipv4Addr::from(0xC612_0000 + n).to_string()
}

fn messages(events: &[Value]) -> Vec<String> {
    let mut messages: Vec<String> = events
        .iter()
        .map(|event| event["message"].as_str().unwrap().to_string())
        .collect();
    messages.sort();
    messages
}

#[test]
fn a_scan_from_100000_addresses_writes_the_bound_plus_one_events_that_add_up() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("EVENTS_PER_POD", "10")]);
    wait_ready(&agent);

    // One time for all: one repeat interval, so one bound.
    let now = Utc::now();
    let lines: Vec<String> = (0..100_000)
        .map(|n| drop_line(now, &scanner(n), "10.0.2.9", 22))
        .collect();
    append(dir.path(), &lines);
    let events = wait_for_count(&api, "cart-1", 100_000);
    assert_eq!(events.len(), 11, "{:#?}", messages(&events));
    let rollup: Vec<&Value> = events
        .iter()
        .filter(|event| event["message"].as_str().unwrap().contains("other sources"))
        .collect();
    assert_eq!(rollup.len(), 1);
    assert_eq!(
        rollup[0]["message"],
        "Packet dropped when receiving traffic from more than 10,000 other sources on port 22/TCP"
    );
    assert_eq!(rollup[0]["count"], 99_990);
    assert_eq!(
        agent.metric("kube_iptables_tailer_events_rolled_up_total"),
        99_990.0
    );
}

#[test]
fn pods_and_external_peers_mixed_past_the_bound_still_add_up_and_each_sender_gets_its_event() {
    let api = FakeApi::start();
    cluster(&api);
    // 30 client pods on this node.
    for n in 0..30 {
        api.add_pod(
            FakePod::new("shop", &format!("client-{n}"))
                .uid(&format!("uid-client-{n}"))
                .ip(&format!("10.0.5.{}", n + 1)),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("EVENTS_PER_POD", "5")]);
    wait_ready(&agent);

    let now = Utc::now();
    let mut lines = Vec::new();
    for round in 0..10 {
        for n in 0..30 {
            lines.push(drop_line(
                now,
                &format!("10.0.5.{}", n + 1),
                "10.0.2.9",
                8080,
            ));
        }
        for n in 0..100 {
            lines.push(drop_line(now, &scanner(round * 100 + n), "10.0.2.9", 8080));
        }
    }
    append(dir.path(), &lines);
    let events = wait_for_count(&api, "cart-1", 10 * 130);
    assert_eq!(events.len(), 6, "{:#?}", messages(&events));
    // The first five peers (client pods, the first drops) have Events of their own.
    let rollup = events
        .iter()
        .find(|event| event["message"].as_str().unwrap().contains("other sources"))
        .unwrap();
    assert_eq!(
        rollup["message"],
        "Packet dropped when receiving traffic from 1,025 other sources on port 8080/TCP"
    );
    assert_eq!(rollup["count"], 10 * 130 - 5 * 10);
    // Each client is a sender with one peer: an Event of its own, never rolled up.
    for n in 0..30 {
        let sent = wait_for_count(&api, &format!("client-{n}"), 10);
        assert_eq!(
            messages(&sent),
            ["Packet dropped when sending traffic to shop (10.0.2.9) on port 8080/TCP"]
        );
    }
}
