//! Replays are never counted twice: after a crash the agent reads again from its checkpoint, which
//! follows the slowest Event of each batch; drops another Event already counted are not added again.

use std::time::Duration;

use chrono::Utc;

use super::{append_drop, cluster, events_on, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::{FakeApi, Fault};
use crate::support::wait_until;

#[test]
fn a_drop_one_event_counted_before_a_crash_is_not_counted_again_by_the_replay() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    // Writes to the receiving pod's namespace fail: its Events hold the checkpoint back, while the
    // sending pod's Event counts the drops.
    api.fault_for(
        "*",
        "/api/v1/namespaces/db/events",
        Duration::from_secs(3600),
        Fault::status(503),
    );
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 3);
    wait_for_count(&api, "frontend-1", 3);
    wait_until("the failing writes", Duration::from_secs(10), || {
        agent.metric("kube_iptables_tailer_api_errors_total{code=\"503\"}") >= 2.0
    });
    agent.kill9();
    api.clear_faults();

    // The restarted agent reads the three drops again: the receiving pod gets them once, the
    // sending pod's Event stays at three.
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    wait_for_count(&api, "postgres-0", 3);
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 2);
    wait_for_count(&api, "postgres-0", 5);
    let sender = wait_for_count(&api, "frontend-1", 5);
    assert_eq!(sender.len(), 1, "{sender:#?}");
    assert_eq!(events_on(&api, "frontend-1")[0]["count"], 5);
    assert_eq!(
        agent.metric("kube_iptables_tailer_events_replays_skipped_total"),
        3.0
    );
}

#[test]
fn an_event_another_writer_changed_meanwhile_is_raised_from_what_it_holds_not_overwritten() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 2);
    let event = wait_for_count(&api, "frontend-1", 2).remove(0);
    // Another writer (a killed predecessor's request carried out late) sets the count to 10.
    let namespace = event["metadata"]["namespace"].as_str().unwrap();
    let name = event["metadata"]["name"].as_str().unwrap();
    api.patch_event(namespace, name, &serde_json::json!({"count": 10}));

    // Our next write was read at the old version: refused (409), read again, raised from 10.
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 3);
    wait_for_count(&api, "frontend-1", 13);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events_on(&api, "frontend-1")[0]["count"], 13);
    assert_eq!(
        agent.metric("kube_iptables_tailer_api_errors_total{code=\"409\"}"),
        1.0
    );
}
