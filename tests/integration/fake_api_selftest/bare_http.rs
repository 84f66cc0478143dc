//! Lists, Events, faults and outages over a bare HTTP/1.1 connection.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{EVENTS, Http, event, five_pods, names};
use crate::support::fake_api::{FakeApi, FakePod, Fault};

#[test]
fn lists_pods_in_pages_on_one_keep_alive_connection() {
    let api = FakeApi::start();
    five_pods(&api);
    let version = api.resource_version().to_string();
    let mut http = Http::connect(&api);

    let first = http.request("GET", "/api/v1/pods?limit=2", None);
    assert_eq!(first.code, 200);
    assert_eq!(first.body["kind"], "PodList");
    assert_eq!(first.body["metadata"]["resourceVersion"], version);
    assert_eq!(first.body["metadata"]["remainingItemCount"], 3);
    assert_eq!(names(&first.body["items"]), ["web-0", "web-1"]);
    let token = first.body["metadata"]["continue"].as_str().unwrap();

    // A change between pages does not show: the pages are one snapshot.
    api.add_pod(FakePod::new("shop", "web-5"));
    let second = http.request(
        "GET",
        &format!("/api/v1/pods?limit=2&continue={token}"),
        None,
    );
    assert_eq!(names(&second.body["items"]), ["web-2", "web-3"]);
    assert_eq!(second.body["metadata"]["resourceVersion"], version);
    assert_eq!(second.body["metadata"]["remainingItemCount"], 1);
    let token = second.body["metadata"]["continue"].as_str().unwrap();

    let third = http.request(
        "GET",
        &format!("/api/v1/pods?limit=2&continue={token}"),
        None,
    );
    assert_eq!(names(&third.body["items"]), ["web-4"]);
    assert_eq!(third.body["metadata"].get("continue"), None);
    assert_eq!(third.body["metadata"].get("remainingItemCount"), None);

    let pod = &first.body["items"][0];
    assert_eq!(pod["status"]["podIP"], "10.1.0.0");
    assert_eq!(pod["status"]["podIPs"], json!([{"ip": "10.1.0.0"}]));
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["status"]["phase"], "Running");

    let recorded = api.requests_to("GET", "/api/v1/pods");
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].query("limit"), Some("2"));
    assert!(recorded.iter().all(|request| request.status == Some(200)));
}

#[test]
fn creates_events_refuses_a_second_create_and_merges_patches() {
    let api = FakeApi::start();
    let mut http = Http::connect(&api);

    let created = http.request("POST", EVENTS, Some(&event("web-0.1")));
    assert_eq!(created.code, 201);
    let metadata = &created.body["metadata"];
    assert_eq!(metadata["name"], "web-0.1");
    assert!(metadata["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    assert!(metadata["creationTimestamp"].as_str().is_some());
    assert_eq!(
        metadata["resourceVersion"],
        api.resource_version().to_string()
    );
    assert_eq!(api.event("shop", "web-0.1"), Some(created.body.clone()));

    let again = http.request("POST", EVENTS, Some(&event("web-0.1")));
    assert_eq!(again.code, 409);
    assert_eq!(again.body["kind"], "Status");
    assert_eq!(again.body["reason"], "AlreadyExists");
    assert_eq!(again.body["code"], 409);

    let target = format!("{EVENTS}/web-0.1");
    let patch = json!({"count": 2, "lastTimestamp": "2025-01-01T00:00:05Z"});
    http.send(
        "PATCH",
        &target,
        "application/merge-patch+json",
        Some(&patch),
    );
    let patched = http.answer().unwrap();
    assert_eq!(patched.code, 200);
    assert_eq!(patched.body["count"], 2);
    assert_eq!(patched.body["lastTimestamp"], "2025-01-01T00:00:05Z");
    assert_eq!(patched.body["message"], event("web-0.1")["message"]);
    assert_eq!(patched.body["metadata"]["uid"], metadata["uid"]);
    assert_ne!(
        patched.body["metadata"]["resourceVersion"],
        metadata["resourceVersion"]
    );

    http.send(
        "PATCH",
        &target,
        "application/strategic-merge-patch+json",
        Some(&json!({"count": 3})),
    );
    assert_eq!(http.answer().unwrap().body["count"], 3);
    http.send(
        "PATCH",
        &target,
        "application/json-patch+json",
        Some(&json!([])),
    );
    assert_eq!(http.answer().unwrap().code, 415);
    let stale = json!({"metadata": {"resourceVersion": "1"}, "count": 9});
    http.send(
        "PATCH",
        &target,
        "application/merge-patch+json",
        Some(&stale),
    );
    assert_eq!(http.answer().unwrap().body["reason"], "Conflict");

    let got = http.request("GET", &target, None);
    assert_eq!((got.code, got.body["count"].clone()), (200, json!(3)));
    assert_eq!(api.events(), vec![got.body]);
    let missing = http.request("GET", &format!("{EVENTS}/nothing"), None);
    assert_eq!(
        (missing.code, missing.body["reason"].clone()),
        (404, json!("NotFound"))
    );
    http.send(
        "PATCH",
        &format!("{EVENTS}/nothing"),
        "application/merge-patch+json",
        Some(&patch),
    );
    assert_eq!(http.answer().unwrap().code, 404);
    let unknown = http.request("GET", "/apis/apps/v1/deployments", None);
    assert_eq!(
        (unknown.code, unknown.body["kind"].clone()),
        (404, json!("Status"))
    );
    let version = http.request("GET", "/version", None);
    assert_eq!(
        (version.code, version.body["major"].clone()),
        (200, json!("1"))
    );

    let posts = api.requests_to("POST", "/api/v1/namespaces/");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].content_type(), Some("application/json"));
    assert_eq!(posts[0].body, Some(event("web-0.1")));
    assert_eq!((posts[0].status, posts[1].status), (Some(201), Some(409)));
}

#[test]
fn answers_a_429_rule_once_with_retry_after_then_normally() {
    let api = FakeApi::start();
    api.fault("POST", "/api/v1/namespaces/", 1, Fault::retry_after(429, 1));
    let mut http = Http::connect(&api);

    let version = http.request("GET", "/version", None);
    assert_eq!(version.code, 200, "the rule is for POSTs only");
    let limited = http.request("POST", EVENTS, Some(&event("web-0.1")));
    assert_eq!(limited.code, 429);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.body["reason"], "TooManyRequests");
    assert_eq!(limited.body["details"]["retryAfterSeconds"], 1);
    assert_eq!(api.event("shop", "web-0.1"), None);
    let created = http.request("POST", EVENTS, Some(&event("web-0.1")));
    assert_eq!(created.code, 201);

    let statuses: Vec<Option<u16>> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(429), Some(201)]);
}

#[test]
fn drops_the_connection_for_a_drop_rule() {
    let api = FakeApi::start();
    api.fault("*", "/version", 1, Fault::Drop);
    let mut http = Http::connect(&api);
    http.send("GET", "/version", "application/json", None);
    assert!(http.head().is_none(), "no answer, the connection closed");

    let mut http = Http::connect(&api);
    assert_eq!(http.request("GET", "/version", None).code, 200);
    let statuses: Vec<Option<u16>> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [None, Some(200)]);
}

#[test]
fn delays_answers_and_fails_for_a_while() {
    let api = FakeApi::start();
    let mut http = Http::connect(&api);
    api.fault(
        "GET",
        "/version",
        1,
        Fault::Delay(Duration::from_millis(300)),
    );
    let started = Instant::now();
    assert_eq!(http.request("GET", "/version", None).code, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    api.fail_for(Duration::from_millis(300), 500);
    let failed = http.request("GET", "/api/v1/pods", None);
    assert_eq!(
        (failed.code, failed.body["reason"].clone()),
        (500, json!("InternalError"))
    );
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(http.request("GET", "/api/v1/pods", None).code, 200);

    api.fault("GET", "/", 5, Fault::status(504));
    api.clear_faults();
    assert_eq!(http.request("GET", "/api/v1/pods", None).code, 200);
}

#[test]
fn down_answers_503_and_refusing_closes_connections() {
    let api = FakeApi::start();
    let mut http = Http::connect(&api);
    api.set_down(true);
    let down = http.request("GET", "/api/v1/pods", None);
    assert_eq!(
        (down.code, down.body["reason"].clone()),
        (503, json!("ServiceUnavailable"))
    );
    api.set_down(false);
    assert_eq!(http.request("GET", "/api/v1/pods", None).code, 200);

    api.set_refusing(true);
    http.send("GET", "/version", "application/json", None);
    assert!(http.head().is_none(), "the open connection was closed");
    let mut refused = Http::connect(&api);
    refused.send("GET", "/version", "application/json", None);
    assert!(
        refused.head().is_none(),
        "a new connection is closed at once"
    );
    api.set_refusing(false);
    assert_eq!(
        Http::connect(&api).request("GET", "/version", None).code,
        200
    );
}

#[test]
fn stops_listening_and_closes_connections_when_dropped() {
    let api = FakeApi::start();
    let address = api.address();
    let mut http = Http::connect(&api);
    assert_eq!(http.request("GET", "/version", None).code, 200);
    drop(api);
    http.send("GET", "/version", "application/json", None);
    assert!(http.head().is_none(), "the open connection was closed");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "nothing listens"
    );
}
