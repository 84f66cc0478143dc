//! Watches over a bare HTTP/1.1 connection: chunked events, the end of a watch, 410 Expired, bookmarks.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Http;
use crate::support::fake_api::{ExpiredAnswer, FakeApi, FakePod};

#[test]
fn streams_watch_events_and_answers_410_for_expired_versions() {
    let api = FakeApi::start();
    let before = api.resource_version();
    api.add_pod(FakePod::new("shop", "web-0").ip("10.1.0.1"));
    api.add_pod(
        FakePod::new("kube-system", "proxy")
            .host_network()
            .ip("192.168.0.7"),
    );
    let mut http = Http::connect(&api);

    http.send(
        "GET",
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
        "",
        None,
    );
    let (code, headers) = http.head().unwrap();
    assert_eq!(
        (code, headers["transfer-encoding"].as_str()),
        (200, "chunked")
    );
    let kinds_names = |event: Value| {
        let name = event["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        (event["type"].as_str().unwrap().to_string(), name)
    };
    assert_eq!(
        kinds_names(http.watch_event().unwrap()),
        ("ADDED".into(), "web-0".into())
    );
    assert_eq!(
        kinds_names(http.watch_event().unwrap()),
        ("ADDED".into(), "proxy".into())
    );
    crate::support::wait_until("the watch", Duration::from_secs(2), || {
        api.open_watches() == 1
    });

    api.update_pod(FakePod::new("shop", "web-0").ip("10.1.0.1").deleting());
    let modified = http.watch_event().unwrap();
    assert_eq!(modified["type"], "MODIFIED");
    assert!(modified["object"]["metadata"]["deletionTimestamp"].is_string());
    let deleted = api.delete_pod("shop", "web-0");
    let event = http.watch_event().unwrap();
    assert_eq!(
        (event["type"].as_str(), &event["object"]),
        (Some("DELETED"), &deleted)
    );
    assert_eq!(
        deleted["metadata"]["resourceVersion"],
        api.resource_version().to_string()
    );
    api.close_watches();
    assert_eq!(http.watch_event(), None);
    assert_eq!(api.open_watches(), 0);

    // "0": the current objects first, as ADDED.
    http.send("GET", "/api/v1/pods?watch=1&resourceVersion=0", "", None);
    http.head().unwrap();
    assert_eq!(
        kinds_names(http.watch_event().unwrap()),
        ("ADDED".into(), "proxy".into())
    );
    api.close_watches();
    assert_eq!(http.watch_event(), None);

    api.expire_history();
    let current = api.resource_version();
    http.send(
        "GET",
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
        "",
        None,
    );
    assert_eq!(http.head().unwrap().0, 200);
    let error = http.watch_event().unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert_eq!(error["object"]["status"], "Failure");
    assert_eq!(http.watch_event(), None, "the stream ends after the error");

    api.set_expired_answer(ExpiredAnswer::HttpStatus);
    let gone = http.request(
        "GET",
        &format!("/api/v1/pods?watch=true&resourceVersion={before}"),
        None,
    );
    assert_eq!(
        (gone.code, gone.body["reason"].clone()),
        (410, json!("Expired"))
    );
    let list = http.request("GET", "/api/v1/pods", None);
    assert_eq!(
        list.body["metadata"]["resourceVersion"],
        current.to_string()
    );
    assert!(api.requests().iter().filter(|r| r.is_watch()).count() == 4);
}

#[test]
fn sends_bookmarks_and_ends_a_watch_at_its_timeout() {
    let api = FakeApi::start();
    api.set_bookmarks(Some(Duration::from_millis(200)));
    let mut http = Http::connect(&api);
    let rv = api.resource_version();
    let started = Instant::now();
    let target = format!(
        "/api/v1/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}"
    );
    http.send("GET", &target, "", None);
    http.head().unwrap();
    let mut bookmarks = 0;
    while let Some(event) = http.watch_event() {
        assert_eq!(event["type"], "BOOKMARK");
        assert_eq!(
            event["object"]["metadata"]["resourceVersion"],
            rv.to_string()
        );
        bookmarks += 1;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!((3..=5).contains(&bookmarks), "{bookmarks} bookmarks");
}
