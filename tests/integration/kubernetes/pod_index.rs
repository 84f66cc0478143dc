//! The pod index against the fake API: every pod, listed once and watched; a watch the server ends is
//! resumed (bookmarks) without a list, and only an expired version (410) lists again.

use std::time::Duration;

use super::{cluster, start_agent, wait_ready};
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
