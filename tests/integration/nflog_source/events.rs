//! From an NFLOG group to Events: the agent in the node's namespace, the fake API beside it, the two
//! ends of the veth pair playing two pods, the rule's prefix naming the policy as k3s's kube-router
//! does.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TOOLS, start_agent};
use crate::support::fake_api::{FakeApi, FakePod};
use crate::support::netns::{CLIENT_V4, CLIENT_V6, NetnsPair, SERVER_V4, SERVER_V6};
use crate::support::{kernel_lock, privileged, wait_until};

#[test]
fn nflog_drops_between_two_pods_become_an_event_on_each_over_ipv4_and_ipv6() {
    if !privileged("NFLOG to Kubernetes Events", TOOLS) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    for tool in ["iptables", "ip6tables"] {
        for target in [
            &[
                "-j",
                "NFLOG",
                "--nflog-group",
                "100",
                "--nflog-prefix",
                "DROP by policy db/deny-all",
            ][..],
            &["-j", "DROP"],
        ] {
            let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "9996"];
            rule.extend_from_slice(target);
            pair.in_server(tool, &rule);
        }
    }
    let api = FakeApi::start_in_netns(&pair.server);
    api.add_pod(
        FakePod::new("shop", "client-1")
            .uid("uid-client")
            .ip(CLIENT_V4)
            .ip(CLIENT_V6),
    );
    api.add_pod(
        FakePod::new("db", "server-1")
            .uid("uid-server")
            .node("node-2")
            .ip(SERVER_V4)
            .ip(SERVER_V6),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = api.url();
    let agent = start_agent(
        &pair,
        dir.path(),
        "100",
        &[
            ("EVENT_SINK", "kubernetes"),
            ("KUBE_API_SERVER", &url),
            ("NODE_NAME", "node-1"),
            // server-1 is another node's, and found by its IPv6 address too: the index of every
            // pod (node mode looks pods up by their first address only).
            ("POD_INDEX", "cluster"),
            ("DNS_LOOKUP", "false"),
        ],
    );
    wait_until("the pod index to sync", Duration::from_secs(20), || {
        agent.metric("kube_iptables_tailer_pod_index_synced") == 1.0
    });
    for _ in 0..3 {
        pair.send_udp(SERVER_V4, 9996);
    }
    for _ in 0..2 {
        pair.send_udp(SERVER_V6, 9996);
    }
    let events_on = |pod: &str| -> Vec<(Value, u64)> {
        let mut events: Vec<(Value, u64)> = api
            .events()
            .iter()
            .filter(|event| event["involvedObject"]["name"] == pod)
            .map(|event| {
                (
                    event["message"].clone(),
                    event["count"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        events.sort_by_key(|(message, _)| message.to_string());
        events
    };
    let total = |pod: &str| events_on(pod).iter().map(|(_, count)| count).sum::<u64>();
    wait_until("5 drops on each pod", Duration::from_secs(30), || {
        total("client-1") == 5 && total("server-1") == 5
    });
    assert_eq!(
        events_on("client-1"),
        vec![
            (
                json!(
                    "Packet dropped when sending traffic to db (198.18.0.2) on port 9996/UDP by NetworkPolicy db/deny-all"
                ),
                3
            ),
            (
                json!(
                    "Packet dropped when sending traffic to db (fd00::2) on port 9996/UDP by NetworkPolicy db/deny-all"
                ),
                2
            ),
        ]
    );
    assert_eq!(
        events_on("server-1"),
        vec![
            (
                json!(
                    "Packet dropped when receiving traffic from shop (198.18.0.1) on port 9996/UDP by NetworkPolicy db/deny-all"
                ),
                3
            ),
            (
                json!(
                    "Packet dropped when receiving traffic from shop (fd00::1) on port 9996/UDP by NetworkPolicy db/deny-all"
                ),
                2
            ),
        ]
    );
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"db\",src=\"shop\"}"),
        5.0
    );
    // k3s's kube-router names the policy in the prefix; it guards db's pods: their ingress.
    assert_eq!(
        agent.metric(
            "kube_iptables_tailer_policy_drops_total{direction=\"ingress\",namespace=\"db\",\
             policy=\"deny-all\"}"
        ),
        5.0
    );
}
