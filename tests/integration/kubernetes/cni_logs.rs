//! The CNIs' own drop logs, end to end: an Antrea `np.log` and an OVN ACL audit log, written line by
//! line and rotated the way their writers rotate them, become Events that name the policy, with
//! exact counts (Antrea's `[N packets in D]` adds N).

use std::fs;
use std::io::Write;
use std::path::Path;

use chrono::Utc;

use super::{cluster, events_on, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::FakeApi;

fn append(path: &Path, lines: &[String]) {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// The Events on `pod` as (message, count), sorted.
fn messages(api: &FakeApi, pod: &str) -> Vec<(String, u64)> {
    let mut messages: Vec<(String, u64)> = events_on(api, pod)
        .iter()
        .map(|event| {
            (
                event["message"].as_str().unwrap().to_string(),
                event["count"].as_u64().unwrap(),
            )
        })
        .collect();
    messages.sort();
    messages
}

/// The fake cluster, and an agent ready on the empty CNI log `name` (with `extra` settings); the
/// directory holds the log, and the agent's stderr.
struct OnCniLog {
    api: FakeApi,
    dir: tempfile::TempDir,
    log: std::path::PathBuf,
    agent: crate::support::agent::Agent,
}

fn on_cni_log(name: &str, extra: &[(&str, &str)]) -> OnCniLog {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(name);
    fs::write(&log, "").unwrap();
    let mut env = vec![("IPTABLES_LOG_PATH", log.to_str().unwrap())];
    env.extend_from_slice(extra);
    let agent = start_agent(dir.path(), &api, &env);
    wait_ready(&agent);
    OnCniLog {
        api,
        dir,
        log,
        agent,
    }
}

/// An Antrea audit line stamped now (the agent's zone is the test's: both UTC here), from the
/// `cluster()`'s frontend (10.0.1.5) to its cart pod (10.0.2.9).
fn antrea(policy: &str, rule: &str, disposition: &str, tail: &str) -> String {
    let stamp = Utc::now().format("%Y/%m/%d %H:%M:%S%.6f");
    format!(
        "{stamp} AntreaPolicyIngressRule {policy} {rule} Ingress {disposition} 14900 shop/cart-1 \
         10.0.1.5 40000 10.0.2.9 80 TCP 60 <nil>{tail}"
    )
}

#[test]
fn antrea_audit_lines_become_events_naming_the_policy_through_a_lumberjack_rotation() {
    let OnCniLog {
        api,
        dir,
        log,
        agent,
    } = on_cni_log("np.log", &[]);

    let reject = "AntreaNetworkPolicy:shop/reject-web";
    append(
        &log,
        &[
            antrea(
                reject,
                "RejectWeb",
                "Reject",
                " [3 packets in 1.000855539s]",
            ),
            // Allowed: no drop.
            antrea("K8sNetworkPolicy:shop/allow-web", "<nil>", "Allow", ""),
            // Kubernetes' default isolation: a drop, no policy named.
            antrea("K8sNetworkPolicy", "<nil>", "Drop", ""),
        ],
    );
    wait_for_count(&api, "cart-1", 4);
    // Antrea's lumberjack renames the full file to STEM-TIME.EXT and starts a new one; a line is
    // written to the old file just before (read from it), and to the new one after.
    append(&log, &[antrea(reject, "RejectWeb", "Reject", "")]);
    fs::rename(&log, dir.path().join("np-2026-12-02T10-00-00.000.log")).unwrap();
    append(
        &log,
        &[antrea(
            reject,
            "RejectWeb",
            "Reject",
            " [2 packets in 1.2s]",
        )],
    );

    wait_for_count(&api, "cart-1", 7);
    let by_policy = "by AntreaNetworkPolicy shop/reject-web";
    assert_eq!(
        messages(&api, "cart-1"),
        [
            (
                "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP"
                    .to_string(),
                1
            ),
            (
                format!(
                    "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP \
                     {by_policy}"
                ),
                6
            ),
        ]
    );
    wait_for_count(&api, "frontend-1", 7);
    assert_eq!(
        agent.metric(
            "kube_iptables_tailer_policy_drops_total{direction=\"ingress\",namespace=\"shop\",\
             policy=\"reject-web\"}"
        ),
        6.0
    );
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"shop\",src=\"shop\"}"),
        7.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_lines_skipped_total{reason=\"not_a_drop\"}"),
        1.0
    );
}

/// An OVN ACL audit line stamped now.
fn ovn(name: &str, verdict: &str, flow: &str) -> String {
    let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        "{stamp}|00004|acl_log(ovn_pinctrl0)|INFO|name=\"{name}\", verdict={verdict}, \
         severity=alert, direction=to-lport: {flow}"
    )
}

const TCP_8080: &str = "tcp,vlan_tci=0x0000,dl_src=0a:58:0a:81:02:01,dl_dst=0a:58:0a:81:02:23,\
    nw_src=10.0.1.5,nw_dst=10.0.2.9,nw_tos=0,nw_ecn=0,nw_ttl=62,nw_frag=no,tp_src=58496,\
    tp_dst=8080,tcp_flags=syn";

#[test]
fn ovn_acl_audit_lines_become_events_naming_the_policy_through_a_copytruncate() {
    let OnCniLog {
        api,
        dir,
        log,
        agent,
    } = on_cni_log("acl-audit-log.log", &[("LOG_FORMAT", "ovn")]);

    append(
        &log,
        &[
            // The namespace's default deny: a drop, the policies of `shop` isolate the pod.
            ovn("NP:shop:Ingress", "drop", TCP_8080),
            ovn("NP:shop:allow-web:Ingress:0", "allow", TCP_8080),
            ovn("ANP:tenant-isolation:Ingress:2", "drop", TCP_8080),
        ],
    );
    wait_for_count(&api, "cart-1", 2);
    // logrotate's copytruncate (OVN's packaged logrotate), then more lines.
    fs::copy(&log, dir.path().join("acl-audit-log.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(
        &log,
        &[
            ovn("ANP:tenant-isolation:Ingress:2", "reject", TCP_8080),
            ovn("NP:shop:Ingress", "drop", TCP_8080),
        ],
    );

    wait_for_count(&api, "cart-1", 4);
    let text = "Packet dropped when receiving traffic from shop (10.0.1.5) on port 8080/TCP";
    assert_eq!(
        messages(&api, "cart-1"),
        [
            (text.to_string(), 2),
            (format!("{text} by AdminNetworkPolicy tenant-isolation"), 2),
        ]
    );
    assert_eq!(
        agent.metric(
            "kube_iptables_tailer_policy_drops_total{direction=\"ingress\",namespace=\"\",\
             policy=\"tenant-isolation\"}"
        ),
        2.0
    );
}

/// An AWS network policy agent flow record stamped now (the IPv4 text generation).
fn aws(verdict: &str, dst_port: u16) -> String {
    let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    format!(
        "{{\"level\":\"info\",\"ts\":\"{stamp}\",\"msg\":\"Flow Info: Src IP: 10.0.1.5 Src Port: \
         40000 Dest IP: 10.0.2.9 Dest Port: {dst_port} Proto TCP Verdict {verdict} Direction \
         ingress, Tier NETWORK_POLICY\"}}"
    )
}

#[test]
fn aws_network_policy_agent_deny_records_become_events() {
    // The directory and the agent live to the end of the test.
    let OnCniLog {
        api,
        dir: _dir,
        log,
        agent: _agent,
    } = on_cni_log("network-policy-agent.log", &[]);
    append(
        &log,
        &[
            "{\"level\":\"info\",\"ts\":\"2026-12-02T10:00:00.000Z\",\"msg\":\"Pod attached\"}"
                .to_string(),
            aws("ACCEPT", 80),
            aws("DENY", 80),
            aws("DENY", 80),
        ],
    );
    wait_for_count(&api, "cart-1", 2);
    assert_eq!(
        messages(&api, "cart-1"),
        [(
            "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP".to_string(),
            2
        )]
    );
}

/// Without a cluster the record on stdout carries what Antrea's line says: the policy with its rule
/// and direction, the verdict, and how many packets the line stands for.
#[test]
fn an_antrea_line_on_stdout_carries_policy_rule_direction_verdict_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("np.log");
    fs::write(&log, "").unwrap();
    let agent = crate::support::agent::Agent::start(
        dir.path(),
        &[("IPTABLES_LOG_PATH", log.to_str().unwrap())],
    );
    crate::kubernetes::wait_ready(&agent);
    append(
        &log,
        &[antrea(
            "AntreaNetworkPolicy:shop/reject-web",
            "RejectWeb",
            "Reject",
            " [3 packets in 1.000855539s]",
        )],
    );
    let records = agent.expect_records(1);
    let record = &records[0];
    assert_eq!(
        (
            &record["prefix"],
            &record["src"],
            &record["dst"],
            &record["proto"],
            &record["dpt"],
            &record["count"],
            &record["verdict"],
        ),
        (
            &serde_json::json!("AntreaPolicyIngressRule"),
            &serde_json::json!("10.0.1.5"),
            &serde_json::json!("10.0.2.9"),
            &serde_json::json!("TCP"),
            &serde_json::json!(80),
            &serde_json::json!(3),
            &serde_json::json!("reject"),
        )
    );
    assert_eq!(
        record["policy"],
        serde_json::json!({"kind": "AntreaNetworkPolicy", "namespace": "shop",
                           "name": "reject-web", "rule": "RejectWeb", "direction": "ingress"})
    );
    assert_eq!(agent.metric("kube_iptables_tailer_drops_parsed_total"), 3.0);
}
