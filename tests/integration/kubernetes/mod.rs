//! The agent against the fake API server: drops in a real log file become Events on the pods, exactly,
//! through API failures and restarts.

mod black_hole_dns;
mod cni_logs;
mod events;
mod failures;
mod isolation;
mod pod_index;
mod replays;
mod storms;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::fake_api::{FakeApi, FakePod};
use crate::support::wait_until;

/// A cluster of four pods on two nodes, and a hostNetwork pod on node-1 (whose IP is the node's).
pub fn cluster(api: &FakeApi) {
    for pod in [
        FakePod::new("shop", "frontend-1")
            .uid("uid-frontend")
            .ip("10.0.1.5")
            .label("app", "frontend"),
        FakePod::new("shop", "cart-1")
            .uid("uid-cart")
            .node("node-2")
            .ip("10.0.2.9")
            .label("app", "cart"),
        FakePod::new("db", "postgres-0")
            .uid("uid-postgres")
            .ip("10.0.3.7")
            .ip("fd00::3:7"),
        FakePod::new("kube-system", "kube-proxy-a")
            .uid("uid-proxy")
            .ip("192.0.2.10")
            .host_network(),
    ] {
        api.add_pod(pod);
    }
}

/// Starts the agent on `dir/kern.log` with the Kubernetes sink pointed at `api`.
pub fn start_agent(dir: &Path, api: &FakeApi, extra: &[(&str, &str)]) -> Agent {
    let log = dir.join("kern.log");
    // The log exists (empty) before the agent starts, as on a node: the agent starts at its end.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let state = dir.join("state");
    let url = api.url();
    let mut env = vec![
        ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
        ("STATE_DIRECTORY", state.to_str().unwrap()),
        ("EVENT_SINK", "kubernetes"),
        ("KUBE_API_SERVER", url.as_str()),
        ("NODE_NAME", "node-1"),
        // Reverse lookups of test addresses would ask the machine's DNS server: only loopback traffic.
        ("DNS_LOOKUP", "false"),
    ];
    env.extend_from_slice(extra);
    Agent::start(dir, &env)
}

pub fn wait_ready(agent: &Agent) {
    wait_until("/readyz to answer 200", Duration::from_secs(20), || {
        agent
            .get("/readyz")
            .is_some_and(|(status, _)| status == 200)
    });
}

/// Appends a TCP (or UDP) drop line in RSYSLOG_FileFormat, stamped `time`.
pub fn append_drop(
    dir: &Path,
    time: DateTime<Utc>,
    src: &str,
    dst: &str,
    proto: &str,
    dpt: u16,
    times: usize,
) {
    let stamp = time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let line = format!(
        "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={src} DST={dst} LEN=60 TOS=0x00 PREC=0x00 \
         TTL=63 ID=1 DF PROTO={proto} SPT=40000 DPT={dpt} WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kern.log"))
        .unwrap();
    file.write_all(line.repeat(times).as_bytes()).unwrap();
}

/// The Events on one pod, by involvedObject name.
pub fn events_on(api: &FakeApi, pod: &str) -> Vec<Value> {
    api.events()
        .into_iter()
        .filter(|event| event["involvedObject"]["name"] == pod)
        .collect()
}

/// Waits until the Events on `pod` add up to `count` drops; returns them.
pub fn wait_for_count(api: &FakeApi, pod: &str, count: u64) -> Vec<Value> {
    let total = || {
        events_on(api, pod)
            .iter()
            .map(|event| event["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    // Long enough for a write that backs off up to 30 s after an outage.
    wait_until(
        &format!("{count} drops counted on {pod}"),
        Duration::from_secs(90),
        || total() >= count,
    );
    assert_eq!(
        total(),
        count,
        "drops counted on {pod}: {:#?}",
        events_on(api, pod)
    );
    events_on(api, pod)
}

/// The fields of an Event the agent decides, without what the server adds; the write id (unique per
/// process and write) is checked for its shape and replaced by `(any)`.
pub fn as_posted(event: &Value) -> Value {
    let mut event = event.clone();
    let metadata = event["metadata"].as_object_mut().unwrap();
    metadata.retain(|key, _| key == "namespace" || key == "annotations");
    let id = &mut metadata["annotations"]["kube-iptables-tailer/write-id"];
    assert!(
        id.as_str().is_some_and(|id| id.contains('/')),
        "write id {id}"
    );
    *id = Value::from("(any)");
    event
}

/// Kubernetes timestamps: whole seconds, UTC.
pub fn k8s_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
