//! The API failing: down at start, answering 500s for a while, throttling with Retry-After, and the
//! agent restarting: every drop is still counted once, on one Event per pod and peer.

use std::time::Duration;

use chrono::Utc;

use super::{append_drop, cluster, events_on, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::{FakeApi, Fault};
use crate::support::wait_until;

#[test]
fn drops_seen_while_the_api_is_down_at_start_are_posted_once_it_is_up() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    append_drop(dir.path(), Utc::now(), "10.0.1.5", "10.0.2.9", "TCP", 80, 5);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = agent.get("/readyz").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: waiting for pod_index\n")
    );
    assert!(api.events().is_empty());

    api.set_down(false);
    wait_ready(&agent);
    assert_eq!(wait_for_count(&api, "cart-1", 5).len(), 1);
    assert_eq!(wait_for_count(&api, "frontend-1", 5).len(), 1);
}

#[test]
fn thirty_seconds_of_500s_lose_no_drop() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    api.fault_for(
        "*",
        "/api/v1/namespaces/",
        Duration::from_secs(30),
        Fault::status(500),
    );
    let time = Utc::now();
    for round in 0..10 {
        append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 10);
        append_drop(
            dir.path(),
            time,
            "10.0.3.7",
            "10.0.2.9",
            "UDP",
            53 + round,
            1,
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until(
        "the failures to be answered",
        Duration::from_secs(10),
        || agent.metric("kube_iptables_tailer_api_errors_total{code=\"500\"}") >= 3.0,
    );
    assert!(
        api.events().is_empty(),
        "no Event can be written during the outage"
    );
    // After the outage: all 100 drops on the frontend→cart Event, and ten one-drop Events from postgres.
    let started = std::time::Instant::now();
    let cart = wait_for_count(&api, "cart-1", 110);
    assert!(started.elapsed() < Duration::from_secs(90));
    assert_eq!(cart.len(), 11, "{cart:#?}");
    assert_eq!(wait_for_count(&api, "frontend-1", 100).len(), 1);
    assert_eq!(wait_for_count(&api, "postgres-0", 10).len(), 10);
    assert_eq!(
        agent.metric("kube_iptables_tailer_events_dropped_total{reason=\"gave_up\"}"),
        0.0
    );
}

#[test]
fn throttling_is_honoured_and_counts_stay_exact() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    api.fault(
        "POST",
        "/api/v1/namespaces/shop/events",
        2,
        Fault::retry_after(429, 1),
    );
    append_drop(dir.path(), Utc::now(), "10.0.3.7", "10.0.2.9", "TCP", 80, 3);
    assert_eq!(wait_for_count(&api, "cart-1", 3).len(), 1);
    // The Event is stored before its answer is recorded as sent.
    let answered = || {
        (api.requests_to("POST", "/api/v1/namespaces/shop/events")
            .iter())
        .all(|request| request.status.is_some())
    };
    wait_until("every POST answered", Duration::from_secs(10), answered);
    let posts = api.requests_to("POST", "/api/v1/namespaces/shop/events");
    let statuses: Vec<Option<u16>> = posts.iter().map(|request| request.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(429), Some(201)]);
    // Retry-After: 1 is waited for, each time.
    for pair in posts.windows(2) {
        let waited = pair[1].received.duration_since(pair[0].received);
        assert!(
            waited >= Duration::from_millis(950),
            "retried after {waited:?}"
        );
    }
    assert_eq!(
        agent.metric("kube_iptables_tailer_api_errors_total{code=\"429\"}"),
        2.0
    );
}

#[test]
fn a_restart_raises_the_same_events_instead_of_duplicating_them() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let time = Utc::now();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 4);
    wait_for_count(&api, "cart-1", 4);
    let (status, _) = agent.terminate();
    assert!(status.success());

    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 3);
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let cart = wait_for_count(&api, "cart-1", 7);
    assert_eq!(
        cart.len(),
        1,
        "the restart raised the same Event: {cart:#?}"
    );
    assert_eq!(wait_for_count(&api, "frontend-1", 7).len(), 1);
    // The restarted agent learnt of the Event from a 409 and read its count before raising it.
    let conflicts = api
        .requests_to("POST", "/api/v1/namespaces/shop/events")
        .iter()
        .filter(|request| request.status == Some(409))
        .count();
    assert_eq!(conflicts, 2);
    assert_eq!(events_on(&api, "cart-1")[0]["count"], 7);
    drop(agent);
}

#[test]
fn an_expired_watch_is_followed_by_a_relist_that_finds_new_pods() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    // Every pod in the index (its size tells when the newcomer arrived).
    let agent = start_agent(dir.path(), &api, &[("POD_INDEX", "cluster")]);
    wait_ready(&agent);
    // The history the agent's watch would resume from is gone: its next watch gets 410 Expired.
    api.expire_history();
    api.close_watches();
    wait_until(
        "the watch to be expired and restarted",
        Duration::from_secs(20),
        || agent.metric("kube_iptables_tailer_watch_restarts_total{reason=\"expired\"}") >= 1.0,
    );
    let lists = || {
        api.requests_to("GET", "/api/v1/pods")
            .iter()
            .filter(|r| !r.is_watch())
            .count()
    };
    // The restart is counted before its list reaches the server.
    wait_until("the relist", Duration::from_secs(20), || lists() >= 2);
    assert_eq!(lists(), 2, "one list at start, one after the expiry");
    api.add_pod(
        crate::support::fake_api::FakePod::new("late", "newcomer")
            .uid("uid-late")
            .ip("10.0.7.7"),
    );
    wait_until("the newcomer in the index", Duration::from_secs(10), || {
        agent.metric("kube_iptables_tailer_pod_index_size") == 6.0
    });
    append_drop(dir.path(), Utc::now(), "10.0.1.5", "10.0.7.7", "TCP", 80, 2);
    assert_eq!(wait_for_count(&api, "newcomer", 2).len(), 1);
}

#[test]
fn dropped_connections_and_slow_answers_are_retried_without_double_counting() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    api.fault("POST", "/api/v1/namespaces/shop/events", 2, Fault::Drop);
    // The create happens but its answer is lost: the retry's 409 must be recognised as our own write.
    api.fault("POST", "/api/v1/namespaces/db/events", 1, Fault::LoseAnswer);
    api.fault(
        "PATCH",
        "/api/v1/namespaces/db/events",
        1,
        Fault::Delay(Duration::from_millis(1500)),
    );
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 6);
    assert_eq!(wait_for_count(&api, "frontend-1", 6).len(), 1);
    assert_eq!(wait_for_count(&api, "postgres-0", 6).len(), 1);
    assert_eq!(
        agent.metric("kube_iptables_tailer_api_errors_total{code=\"network\"}"),
        3.0
    );
    // A slow PATCH: the next drops wait for it (one write per Event at a time) and are then added.
    append_drop(dir.path(), time, "10.0.1.5", "10.0.3.7", "TCP", 5432, 4);
    assert_eq!(wait_for_count(&api, "postgres-0", 10).len(), 1);
    let (status, took) = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn drops_not_yet_accepted_by_the_api_are_replayed_after_kill_9() {
    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let time = Utc::now();
    append_drop(dir.path(), time, "10.0.3.7", "10.0.2.9", "TCP", 80, 2);
    wait_for_count(&api, "cart-1", 2);
    wait_for_count(&api, "postgres-0", 2);
    let log_size = std::fs::metadata(dir.path().join("kern.log"))
        .unwrap()
        .len();
    wait_until(
        "the checkpoint after the accepted drops",
        Duration::from_secs(10),
        || {
            std::fs::read(dir.path().join("state/file.checkpoint.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some_and(|checkpoint| checkpoint["offset"] == log_size)
        },
    );
    // The API fails every Event write from now on: the next drops are read but never accepted.
    api.fault_for(
        "*",
        "/api/v1/namespaces/",
        Duration::from_secs(3600),
        Fault::status(503),
    );
    append_drop(dir.path(), time, "10.0.3.7", "10.0.2.9", "TCP", 80, 5);
    wait_until("the failing writes", Duration::from_secs(10), || {
        agent.metric("kube_iptables_tailer_api_errors_total{code=\"503\"}") >= 2.0
    });
    agent.kill9();
    api.clear_faults();

    // The checkpoint covers only the two accepted drops: the restarted agent reads the five again.
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    let cart = wait_for_count(&api, "cart-1", 7);
    assert_eq!(cart.len(), 1, "{cart:#?}");
    assert_eq!(wait_for_count(&api, "postgres-0", 7).len(), 1);
}
