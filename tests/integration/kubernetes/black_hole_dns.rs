//! A DNS server that never answers holds no drop up: the agent runs in a network namespace the test
//! made, whose resolv.conf (`ip netns exec` mounts `/etc/netns/NAME/resolv.conf` over the host's)
//! names 127.0.0.1, where a UDP socket takes the queries and answers none. Drops from 2,000
//! external addresses all reach their Events, named by their IPs, while the lookups hang. (That the
//! rate is the same as without lookups is `make bench`'s to measure.)

use std::io::Write;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::{cluster, wait_for_count};
use crate::support::agent::Agent;
use crate::support::fake_api::FakeApi;
use crate::support::netns::{NetnsPair, in_netns};
use crate::support::{privileged, wait_until};

/// `/etc/netns/NAME/resolv.conf` naming a server on the namespace's loopback; removed on drop.
struct NetnsResolvConf(PathBuf);

impl NetnsResolvConf {
    fn new(netns: &str) -> NetnsResolvConf {
        let directory = Path::new("/etc/netns").join(netns);
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        NetnsResolvConf(directory)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_dns_server_that_never_answers_holds_no_drop_up() {
    if !privileged("a black-holed DNS server", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let _resolv_conf = NetnsResolvConf::new(&pair.server);
    // Bound, never read: every query goes unanswered until the resolver gives up (~10 s).
    let _black_hole = in_netns(&pair.server, || UdpSocket::bind("127.0.0.1:53").unwrap());
    let api = FakeApi::start_in_netns(&pair.server);
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    std::fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let url = api.url();
    let agent = Agent::start_in_netns(
        &pair.server,
        dir.path(),
        &[
            ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
            ("STATE_DIRECTORY", state.to_str().unwrap()),
            ("EVENT_SINK", "kubernetes"),
            ("KUBE_API_SERVER", url.as_str()),
            ("NODE_NAME", "node-1"),
            ("DNS_LOOKUP", "true"),
        ],
    );
    wait_until(
        "the pod index to sync",
        std::time::Duration::from_secs(20),
        || agent.metric("kube_iptables_tailer_pod_index_synced") == 1.0,
    );

    let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let mut lines = String::new();
    for n in 0..2_000u32 {
        let source = Ipv4Addr::from(0xC613_0000 + n);
        lines.push_str(&format!(
            "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={source} DST=10.0.2.9 \
             LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 \
             RES=0x00 SYN URGP=0 \n"
        ));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let events = wait_for_count(&api, "cart-1", 2_000);
    // The first ten peers have Events of their own, named by their IPs (no name came, and none was
    // waited for); the rest roll up.
    let mut messages: Vec<&str> = events
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    messages.sort();
    let mut expected: Vec<String> = (0..10)
        .map(|n| format!("Packet dropped when receiving traffic from 198.19.0.{n} on port 80/TCP"))
        .collect();
    expected.push(
        "Packet dropped when receiving traffic from 1,990 other sources on port 80/TCP".to_string(),
    );
    expected.sort();
    assert_eq!(messages, expected);
    let lookups = |result: &str| {
        agent.metric(&format!(
            "kube_iptables_tailer_dns_lookups_total{{result=\"{result}\"}}"
        ))
    };
    // Every external peer of a pod is asked for: four workers hold a lookup each, 1,024 wait, the
    // rest found the queue full.
    assert!(
        lookups("busy") >= (2_000 - 4 - 1024) as f64,
        "{}",
        lookups("busy")
    );
}
