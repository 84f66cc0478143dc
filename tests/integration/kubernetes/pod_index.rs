//! The pod index's two modes against the fake API. Cluster: every pod, listed once and watched; a
//! watch the server ends is resumed (bookmarks) without a list, and only an expired version (410)
//! lists again. Node: this node's pods are watched, the others looked up by IP when a drop names
//! them, with the Events of cluster mode.

use std::time::Duration;

use chrono::Utc;

use super::{append_drop, cluster, events_on, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::{ExpiredAnswer, FakeApi, FakePod, Recorded};
use crate::support::wait_until;

/// The pod lists the agent asked for (not watches), by their field selector.
fn pod_lists(api: &FakeApi) -> Vec<Recorded> {
    (api.requests_to("GET", "/api/v1/pods").into_iter())
        .filter(|request| !request.is_watch())
        .collect()
}

fn pod_watches(api: &FakeApi) -> usize {
    (api.requests_to("GET", "/api/v1/pods").iter())
        .filter(|request| request.is_watch())
        .count()
}

/// The on-demand lookups among them: `status.podIP=IP`.
fn lookups(api: &FakeApi) -> Vec<String> {
    (pod_lists(api).iter())
        .filter_map(|request| {
            request
                .query("fieldSelector")?
                .strip_prefix("status.podIP=")
        })
        .map(String::from)
        .collect()
}

fn messages(api: &FakeApi, pod: &str) -> Vec<String> {
    let mut messages: Vec<String> = (events_on(api, pod).iter())
        .map(|event| event["message"].as_str().unwrap_or_default().to_string())
        .collect();
    messages.sort();
    messages
}

#[test]
fn a_watch_the_server_ends_is_resumed_without_listing_again() {
    let api = FakeApi::start();
    api.set_bookmarks(Some(Duration::from_millis(100)));
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "cluster")]);
    wait_ready(&agent);
    for n in 0..3 {
        api.add_pod(
            FakePod::new("late", &format!("pod-{n}"))
                .node("node-3")
                .ip(&format!("10.0.8.{n}")),
        );
        // Let a bookmark carry the version on, then end the watch as the API server does at its timeout.
        std::thread::sleep(Duration::from_millis(300));
        api.close_watches();
        wait_until("the watch to be resumed", Duration::from_secs(10), || {
            pod_watches(&api) == n + 2
        });
    }
    wait_until("every pod in the index", Duration::from_secs(10), || {
        agent.metric("kube_iptables_tailer_pod_index_size") == 8.0
    });
    assert_eq!(pod_lists(&api).len(), 1, "one list, at start");
    assert_eq!(
        pod_watches(&api),
        4,
        "the first watch and three resumed ones"
    );
    let resumed = api.requests_to("GET", "/api/v1/pods");
    assert!(
        (resumed.iter().filter(|request| request.is_watch()))
            .all(|request| request.query("allowWatchBookmarks") == Some("true")),
        "every watch asks for bookmarks"
    );
}

#[test]
fn a_watch_refused_with_410_lists_again() {
    let api = FakeApi::start();
    // The API server may answer a watch from a compacted version with a plain 410, not an event.
    api.set_expired_answer(ExpiredAnswer::HttpStatus);
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "cluster")]);
    wait_ready(&agent);
    api.expire_history();
    api.close_watches();
    wait_until("a second list", Duration::from_secs(20), || {
        pod_lists(&api).len() == 2
    });
    api.add_pod(FakePod::new("late", "newcomer").ip("10.0.7.7"));
    wait_until("the newcomer in the index", Duration::from_secs(10), || {
        agent.metric("kube_iptables_tailer_pod_index_size") == 6.0
    });
    assert_eq!(
        agent.metric("kube_iptables_tailer_watch_restarts_total{reason=\"expired\"}"),
        1.0
    );
}

#[test]
fn node_mode_watches_this_nodes_pods_and_looks_up_a_remote_peer_once() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "node")]);
    wait_ready(&agent);
    // frontend-1, postgres-0 (two IPs) and kube-proxy-a are node-1's; cart-1 is node-2's.
    assert_eq!(agent.metric("kube_iptables_tailer_pod_index_size"), 4.0);
    let node_lists = pod_lists(&api);
    assert_eq!(node_lists.len(), 1);
    assert_eq!(
        node_lists[0].query("fieldSelector"),
        Some("spec.nodeName=node-1")
    );
    // Served from the API server's watch cache.
    assert_eq!(node_lists[0].query("resourceVersion"), Some("0"));

    // Local to remote, then remote to local: the remote pod is looked up once.
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 2);
    wait_for_count(&api, "frontend-1", 2);
    append_drop(dir.path(), time, "10.0.2.9", "10.0.3.7", "TCP", 5432, 3);
    wait_for_count(&api, "postgres-0", 3);
    wait_for_count(&api, "cart-1", 5);
    assert_eq!(
        messages(&api, "frontend-1"),
        ["Packet dropped when sending traffic to shop (10.0.2.9) on port 80/TCP"]
    );
    assert_eq!(
        messages(&api, "cart-1"),
        [
            "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP",
            "Packet dropped when sending traffic to db (10.0.3.7) on port 5432/TCP",
        ]
    );
    assert_eq!(
        messages(&api, "postgres-0"),
        ["Packet dropped when receiving traffic from shop (10.0.2.9) on port 5432/TCP"]
    );
    assert_eq!(lookups(&api), ["10.0.2.9"]);
    let lookup = &pod_lists(&api)[1];
    assert_eq!(lookup.query("resourceVersion"), Some("0"));
    assert_eq!(
        agent.metric("kube_iptables_tailer_remote_pod_lookups_total{result=\"pod\"}"),
        1.0
    );
    // The remote pod is not kept in the index.
    assert_eq!(agent.metric("kube_iptables_tailer_pod_index_size"), 4.0);
}

#[test]
fn node_mode_finds_a_remote_pod_created_after_the_agent_started() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "node")]);
    wait_ready(&agent);
    api.add_pod(
        FakePod::new("late", "newcomer")
            .uid("uid-late")
            .node("node-3")
            .ip("10.0.7.7"),
    );
    append_drop(dir.path(), Utc::now(), "10.0.1.5", "10.0.7.7", "UDP", 53, 2);
    wait_for_count(&api, "newcomer", 2);
    assert_eq!(
        messages(&api, "frontend-1"),
        ["Packet dropped when sending traffic to late (10.0.7.7) on port 53/UDP"]
    );
    // The node's own watch never saw it.
    assert_eq!(agent.metric("kube_iptables_tailer_pod_index_size"), 4.0);
}

#[test]
fn node_mode_names_the_new_owner_of_a_reused_remote_ip_after_the_ttl() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(
        dir.path(),
        &api,
        &[
            ("POD_INDEX", "node"),
            ("POD_LOOKUP_TTL_SECONDS", "1"),
            ("POD_IDENTIFIER", "name"),
        ],
    );
    wait_ready(&agent);
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    wait_for_count(&api, "cart-1", 1);
    // cart-1 goes; its IP goes to cart-2 on another node.
    api.delete_pod("shop", "cart-1");
    api.add_pod(
        FakePod::new("shop", "cart-2")
            .uid("uid-cart-2")
            .node("node-3")
            .ip("10.0.2.9"),
    );
    std::thread::sleep(Duration::from_millis(1200));
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    wait_for_count(&api, "cart-2", 1);
    // frontend-1's Event is the peer IP's: its count goes on, its text now names the new owner.
    wait_for_count(&api, "frontend-1", 2);
    assert_eq!(
        messages(&api, "frontend-1"),
        ["Packet dropped when sending traffic to cart-2 (10.0.2.9) on port 80/TCP"]
    );
    assert_eq!(
        messages(&api, "cart-2"),
        ["Packet dropped when receiving traffic from frontend-1 (10.0.1.5) on port 80/TCP"]
    );
    wait_for_count(&api, "cart-1", 1);
    assert_eq!(lookups(&api), ["10.0.2.9", "10.0.2.9"]);
}

#[test]
fn node_mode_names_an_ip_that_is_no_pod_by_itself_and_asks_once() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "node")]);
    wait_ready(&agent);
    append_drop(
        dir.path(),
        Utc::now(),
        "203.0.113.9",
        "10.0.1.5",
        "TCP",
        22,
        3,
    );
    append_drop(
        dir.path(),
        Utc::now(),
        "203.0.113.9",
        "10.0.1.5",
        "TCP",
        22,
        2,
    );
    wait_for_count(&api, "frontend-1", 5);
    assert_eq!(
        messages(&api, "frontend-1"),
        ["Packet dropped when receiving traffic from 203.0.113.9 on port 22/TCP"]
    );
    assert_eq!(lookups(&api), ["203.0.113.9"]);
    assert_eq!(
        agent.metric("kube_iptables_tailer_remote_pod_lookups_total{result=\"none\"}"),
        1.0
    );
}
