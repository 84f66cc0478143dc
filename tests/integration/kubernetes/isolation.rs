//! NetworkPolicy attribution against the fake API: where the log names no policy, each pod's Event
//! names the NetworkPolicies that isolate it in the drop's direction, as they are when the drop is
//! counted (policies added and removed while running); a cluster that does not let the agent list
//! NetworkPolicies gets the original text.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::{append_drop, cluster, events_on, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::FakeApi;
use crate::support::wait_until;

fn network_policy(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    })
}

fn deny_all(namespace: &str, name: &str, direction: &str) -> Value {
    network_policy(
        namespace,
        name,
        json!({"podSelector": {}, "policyTypes": [direction]}),
    )
}

/// The messages of the Events on `pod`, sorted.
fn messages(api: &FakeApi, pod: &str) -> Vec<String> {
    let mut messages: Vec<String> = events_on(api, pod)
        .iter()
        .map(|event| event["message"].as_str().unwrap().to_string())
        .collect();
    messages.sort();
    messages
}

#[test]
fn events_name_the_network_policies_that_isolate_each_pod_as_they_change() {
    let api = FakeApi::start();
    cluster(&api);
    api.add_network_policy(deny_all("shop", "default-deny", "Ingress"));
    api.add_network_policy(network_policy(
        "shop",
        "cart-only",
        json!({
            "podSelector": {"matchLabels": {"app": "cart"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"port": 8080}]}]
        }),
    ));
    api.add_network_policy(deny_all("db", "deny-egress", "Egress"));
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    wait_until(
        "the NetworkPolicy index to sync",
        Duration::from_secs(20),
        || agent.metric("kube_iptables_tailer_network_policies_synced") == 1.0,
    );
    assert_eq!(agent.metric("kube_iptables_tailer_network_policies"), 3.0);

    let now = Utc::now();
    // frontend (shop) → cart (shop): cart is isolated for ingress by two policies; nothing
    // isolates frontend's egress.
    append_drop(dir.path(), now, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    // postgres (db) → frontend: postgres isolated for egress, frontend for ingress.
    append_drop(dir.path(), now, "10.0.3.7", "10.0.1.5", "TCP", 443, 1);
    // frontend → postgres: no policy of db isolates ingress: the original text.
    append_drop(dir.path(), now, "10.0.1.5", "10.0.3.7", "TCP", 5432, 1);
    wait_for_count(&api, "cart-1", 1);
    wait_for_count(&api, "frontend-1", 3);
    wait_for_count(&api, "postgres-0", 2);
    assert_eq!(
        messages(&api, "cart-1"),
        [
            "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP; isolated \
             by NetworkPolicies shop/cart-only, shop/default-deny"
        ]
    );
    assert_eq!(
        messages(&api, "frontend-1"),
        [
            "Packet dropped when receiving traffic from db (10.0.3.7) on port 443/TCP; isolated \
             by NetworkPolicy shop/default-deny",
            "Packet dropped when sending traffic to db (10.0.3.7) on port 5432/TCP",
            "Packet dropped when sending traffic to shop (10.0.2.9) on port 80/TCP",
        ]
    );
    assert_eq!(
        messages(&api, "postgres-0"),
        [
            "Packet dropped when receiving traffic from shop (10.0.1.5) on port 5432/TCP",
            "Packet dropped when sending traffic to shop (10.0.1.5) on port 443/TCP; isolated by \
             NetworkPolicy db/deny-egress",
        ]
    );

    // While running: one policy goes, one comes (a new port: a new Event, with today's text).
    api.delete_network_policy("shop", "cart-only");
    wait_until(
        "the watch to see the deletion",
        Duration::from_secs(20),
        || agent.metric("kube_iptables_tailer_network_policies") == 2.0,
    );
    api.add_network_policy(deny_all("shop", "deny-egress", "Egress"));
    wait_until(
        "the watch to see the new policy",
        Duration::from_secs(20),
        || agent.metric("kube_iptables_tailer_network_policies") == 3.0,
    );
    let after = Utc::now();
    append_drop(dir.path(), after, "10.0.1.5", "10.0.2.9", "TCP", 81, 1);
    wait_for_count(&api, "cart-1", 2);
    let cart = messages(&api, "cart-1");
    assert_eq!(
        cart[1],
        "Packet dropped when receiving traffic from shop (10.0.1.5) on port 81/TCP; isolated by \
         NetworkPolicy shop/default-deny"
    );
    let frontend = messages(&api, "frontend-1");
    assert!(
        frontend.contains(
            &"Packet dropped when sending traffic to shop (10.0.2.9) on port 81/TCP; isolated by \
              NetworkPolicy shop/deny-egress"
                .to_string()
        ),
        "{frontend:#?}"
    );
}

#[test]
fn without_permission_to_list_network_policies_events_keep_the_original_text() {
    let api = FakeApi::start();
    cluster(&api);
    api.add_network_policy(deny_all("shop", "default-deny", "Ingress"));
    api.forbid_network_policies();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    append_drop(dir.path(), Utc::now(), "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    wait_for_count(&api, "cart-1", 1);
    assert_eq!(
        messages(&api, "cart-1"),
        ["Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP"]
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_network_policies_synced"),
        0.0
    );
    let stderr = std::fs::read_to_string(dir.path().join("agent.stderr")).unwrap();
    let warnings = stderr
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("NetworkPolicy watch"))
        .count();
    assert_eq!(warnings, 1, "{stderr}");
}
