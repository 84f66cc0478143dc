//! What Events say and on which pods: both directions, hostNetwork, IP reuse, IPv6, names, counts.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{
    append_drop, as_posted, cluster, events_on, k8s_time, start_agent, wait_for_count, wait_ready,
};
use crate::support::fake_api::{FakeApi, FakePod};
use crate::support::wait_until;

#[test]
fn a_drop_between_two_pods_gives_each_its_event_with_the_original_text() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);

    let sender = wait_for_count(&api, "frontend-1", 1);
    let receiver = wait_for_count(&api, "cart-1", 1);
    assert_eq!(sender.len(), 1);
    assert_eq!(receiver.len(), 1);
    // How far the Events counted: in the log's content (named by the checksum of its first line), to
    // the end of its one line.
    let log = std::fs::read(dir.path().join("kern.log")).unwrap();
    let counted_through = format!(
        "{:x}:{}",
        kube_iptables_tailer::checksum::checksum(&log),
        log.len()
    );
    let expected = |pod: &str, uid: &str, message: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": "shop", "annotations": {
                "kube-iptables-tailer/write-id": "(any)",
                "kube-iptables-tailer/counted-through": counted_through,
            }},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": pod, "uid": uid},
            "type": "Warning",
            "reason": "PacketDrop",
            "message": message,
            "source": {"component": "kube-iptables-tailer", "host": "node-1"},
            "reportingComponent": "kube-iptables-tailer",
            "reportingInstance": "node-1",
            "firstTimestamp": k8s_time(time),
            "lastTimestamp": k8s_time(time),
            "count": 1,
        })
    };
    assert_eq!(
        as_posted(&sender[0]),
        expected(
            "frontend-1",
            "uid-frontend",
            "Packet dropped when sending traffic to shop (10.0.2.9) on port 80/TCP"
        )
    );
    assert_eq!(
        as_posted(&receiver[0]),
        expected(
            "cart-1",
            "uid-cart",
            "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP"
        )
    );
    assert!(
        sender[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("frontend-1.")
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_events_created_total"),
        2.0
    );
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"shop\",src=\"shop\"}"),
        1.0
    );
}

#[test]
fn repeats_raise_one_events_count_to_the_number_of_drop_lines() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "UDP", 5432, 40);
    let events = wait_for_count(&api, "postgres-0", 40);
    assert_eq!(events.len(), 1, "one Event, raised: {events:#?}");
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "UDP", 5432, 60);
    let events = wait_for_count(&api, "postgres-0", 100);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["message"],
        "Packet dropped when receiving traffic from shop (10.0.1.5) on port 5432/UDP"
    );
    assert_eq!(wait_for_count(&api, "frontend-1", 100).len(), 1);
    assert_eq!(
        agent.metric("kube_iptables_tailer_events_dropped_total{reason=\"queue_full\"}"),
        0.0
    );
}

#[test]
fn host_network_ips_are_named_by_their_node_and_get_no_event() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    append_drop(
        dir.path(),
        Utc::now(),
        "192.0.2.10",
        "10.0.2.9",
        "TCP",
        8080,
        1,
    );
    let events = wait_for_count(&api, "cart-1", 1);
    assert_eq!(
        events[0]["message"],
        "Packet dropped when receiving traffic from node-1 (192.0.2.10) on port 8080/TCP"
    );
    assert!(events_on(&api, "kube-proxy-a").is_empty());
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"shop\",src=\"node\"}"),
        1.0
    );
}

#[test]
fn an_ip_handed_to_a_new_pod_belongs_to_the_live_one() {
    let api = FakeApi::start();
    cluster(&api);
    // The old owner of 10.0.9.9 finished; its successor runs with the same IP.
    api.add_pod(
        FakePod::new("jobs", "batch-old")
            .uid("uid-old")
            .ip("10.0.9.9")
            .phase("Succeeded"),
    );
    api.add_pod(
        FakePod::new("jobs", "batch-new")
            .uid("uid-new")
            .ip("10.0.9.9"),
    );
    let dir = tempfile::tempdir().unwrap();
    // Every pod in the index (its size tells when the watch's changes arrived).
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "cluster")]);
    wait_ready(&agent);
    assert_eq!(agent.metric("kube_iptables_tailer_pod_index_size"), 6.0);
    append_drop(
        dir.path(),
        Utc::now(),
        "10.0.1.5",
        "10.0.9.9",
        "TCP",
        443,
        1,
    );
    let events = wait_for_count(&api, "batch-new", 1);
    assert_eq!(events[0]["involvedObject"]["uid"], "uid-new");
    assert!(events_on(&api, "batch-old").is_empty());

    // Through the watch: the owner is deleted and the IP handed on; a pod with a fresh IP added last
    // tells when the agent has seen all three changes (the watch delivers them in order).
    api.delete_pod("jobs", "batch-new");
    api.add_pod(
        FakePod::new("web", "batch-next")
            .uid("uid-next")
            .ip("10.0.9.9"),
    );
    api.add_pod(
        FakePod::new("web", "marker")
            .uid("uid-marker")
            .ip("10.0.9.100"),
    );
    crate::support::wait_until(
        "the watch's changes in the index",
        std::time::Duration::from_secs(10),
        || agent.metric("kube_iptables_tailer_pod_index_size") == 7.0,
    );
    append_drop(
        dir.path(),
        Utc::now(),
        "10.0.1.5",
        "10.0.9.9",
        "TCP",
        443,
        1,
    );
    assert_eq!(
        wait_for_count(&api, "batch-next", 1)[0]["involvedObject"]["uid"],
        "uid-next"
    );
    assert_eq!(
        events_on(&api, "batch-new").len(),
        1,
        "the deleted pod gets nothing more"
    );
}

#[test]
fn ipv6_drops_and_external_peers_named_by_their_ip() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    append_drop(
        dir.path(),
        Utc::now(),
        "fd00:0000:0000:0000:0000:0000:0009:0001",
        "fd00:0000:0000:0000:0000:0000:0003:0007",
        "TCP",
        5432,
        1,
    );
    let events = wait_for_count(&api, "postgres-0", 1);
    assert_eq!(
        events[0]["message"],
        "Packet dropped when receiving traffic from fd00::9:1 on port 5432/TCP"
    );
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"db\",src=\"external\"}"),
        1.0
    );
}

#[test]
fn reverse_dns_names_an_external_peer_in_the_writes_after_the_name_arrived() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    // Only 127.0.0.1 is looked up: the machine's /etc/hosts answers it, no DNS server is asked.
    let agent = start_agent(dir.path(), &api, &[("DNS_LOOKUP", "true")]);
    wait_ready(&agent);
    let drop = || {
        append_drop(
            dir.path(),
            Utc::now(),
            "127.0.0.1",
            "10.0.2.9",
            "TCP",
            80,
            1,
        )
    };
    // The first drop queues the lookup and does not wait for it.
    drop();
    wait_until("the lookup of 127.0.0.1", Duration::from_secs(20), || {
        agent.metric("kube_iptables_tailer_dns_lookups_total{result=\"found\"}") == 1.0
    });
    drop();
    wait_until("the name in the Event", Duration::from_secs(20), || {
        events_on(&api, "cart-1").iter().any(|event| {
            event["count"] == 2
                && event["message"]
                    == "Packet dropped when receiving traffic from localhost (127.0.0.1) on port \
                        80/TCP"
        })
    });
    assert_eq!(events_on(&api, "cart-1").len(), 1);
}

#[test]
fn every_pod_identifier_names_the_peer_as_the_original_did() {
    for (identifier, label, expected) in [
        ("name", None, "frontend-1"),
        ("label", Some("app"), "frontend"),
        ("name_with_namespace", None, "shop/frontend-1"),
    ] {
        let api = FakeApi::start();
        cluster(&api);
        let dir = tempfile::tempdir().unwrap();
        let mut extra = vec![("POD_IDENTIFIER", identifier)];
        extra.extend(label.map(|label| ("POD_IDENTIFIER_LABEL", label)));
        let agent = start_agent(dir.path(), &api, &extra);
        wait_ready(&agent);
        append_drop(dir.path(), Utc::now(), "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
        let events = wait_for_count(&api, "cart-1", 1);
        assert_eq!(
            events[0]["message"],
            format!(
                "Packet dropped when receiving traffic from {expected} (10.0.1.5) on port 80/TCP"
            ),
            "POD_IDENTIFIER={identifier}"
        );
    }
}
