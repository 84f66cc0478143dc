//! From a request to an answer: the handful of API paths the agent uses (pods list/watch, Events
//! create/get/patch), discovery, and 404/405 `Status` answers for everything else.

use std::time::Duration;

use serde_json::{Value, json};

use super::ExpiredAnswer;
use super::http::Request;
use super::store::{Refusal, Store, status};

/// What the connection loop sends back.
pub enum Answer {
    Json {
        code: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// A chunked stream of watch events.
    Watch(Watch),
}

/// A watch about to stream.
pub struct Watch {
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    /// Events to send at once, before any change after `cursor`.
    pub first: Vec<Value>,
    /// The version after which changes are sent.
    pub cursor: u64,
    /// Close after `first` (the 410 ERROR event).
    pub end_now: bool,
    /// `timeoutSeconds`; the fake has no timeout of its own.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
}

fn json(code: u16, body: Value) -> Answer {
    Answer::Json {
        code,
        headers: Vec::new(),
        body,
    }
}

fn refusal((code, body): Refusal) -> Answer {
    json(code, body)
}

fn answer(result: Result<Value, Refusal>, code: u16) -> Answer {
    match result {
        Ok(body) => json(code, body),
        Err(refused) => refusal(refused),
    }
}

pub fn route(store: &mut Store, expired: ExpiredAnswer, request: &Request) -> Answer {
    let segments: Vec<&str> = request
        .path
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let method = request.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["version"]) => json(200, version()),
        ("GET", ["api"]) => json(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        ("GET", ["apis"]) => json(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        ("GET", ["api", "v1"]) => json(200, core_v1_resources()),
        ("GET", ["api", "v1", "pods"]) => pods(store, expired, None, request),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => pods(store, expired, Some(ns), request),
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => match store.pod(ns, name) {
            Some(pod) => json(200, pod),
            None => refusal(status(404, &format!("pods \"{name}\" not found"))),
        },
        ("GET", ["api", "v1", "namespaces", ns, "events"]) => json(200, store.list_events(ns)),
        ("POST", ["api", "v1", "namespaces", ns, "events"]) => match body(request) {
            Ok(body) => answer(store.create_event(ns, body), 201),
            Err(refused) => refusal(refused),
        },
        ("GET", ["api", "v1", "namespaces", ns, "events", name]) => match store.event(ns, name) {
            Some(event) => json(200, event),
            None => refusal(status(404, &format!("events \"{name}\" not found"))),
        },
        ("PATCH", ["api", "v1", "namespaces", ns, "events", name]) => {
            let content_type = request
                .headers
                .get("content-type")
                .map(String::as_str)
                .unwrap_or("");
            // Strategic merge patch on an Event has no list to merge by key: a merge patch does the same.
            if !content_type.contains("merge-patch+json") {
                return refusal(status(
                    415,
                    &format!("the body of the request was in an unknown format: {content_type}"),
                ));
            }
            match body(request) {
                Ok(patch) => answer(store.change_event(ns, name, &patch, false), 200),
                Err(refused) => refusal(refused),
            }
        }
        ("PUT", ["api", "v1", "namespaces", ns, "events", name]) => match body(request) {
            Ok(object) => answer(store.change_event(ns, name, &object, true), 200),
            Err(refused) => refusal(refused),
        },
        _ if known_path(&segments) => refusal(status(
            405,
            &format!("the server does not allow this method on the requested resource: {method}"),
        )),
        _ => refusal(status(
            404,
            "the server could not find the requested resource",
        )),
    }
}

fn known_path(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["version" | "api" | "apis"]
            | ["api", "v1"]
            | ["api", "v1", "pods"]
            | ["api", "v1", "namespaces", _, "pods" | "events"]
            | ["api", "v1", "namespaces", _, "pods" | "events", _]
    )
}

fn body(request: &Request) -> Result<Value, Refusal> {
    serde_json::from_slice(&request.body)
        .map_err(|error| status(400, &format!("the body is not JSON: {error}")))
}

/// A list (paged by `limit`/`continue`) or, with `watch=true`, a watch.
fn pods(
    store: &mut Store,
    expired: ExpiredAnswer,
    namespace: Option<&str>,
    request: &Request,
) -> Answer {
    let query = &request.query;
    let flag = |name: &str| {
        query
            .get(name)
            .is_some_and(|value| value == "true" || value == "1")
    };
    if !flag("watch") {
        let limit = match query.get("limit").map(|limit| limit.parse::<usize>()) {
            None => None,
            Some(Ok(limit)) => Some(limit),
            Some(Err(_)) => return refusal(status(400, "limit: Invalid value")),
        };
        let token = query.get("continue").filter(|token| !token.is_empty());
        return answer(
            store.list_pods(namespace, limit, token.map(String::as_str)),
            200,
        );
    }

    let timeout = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse().ok())
        .map(Duration::from_secs);
    let mut watch = Watch {
        namespace: namespace.map(String::from),
        first: Vec::new(),
        cursor: store.resource_version(),
        end_now: false,
        timeout,
        bookmarks: flag("allowWatchBookmarks"),
    };
    match query.get("resourceVersion").map(String::as_str) {
        // "Any version": the API starts with the current objects as ADDED events.
        None | Some("" | "0") => {
            watch.first = (store.pods_in(namespace).into_iter())
                .map(|pod| json!({"type": "ADDED", "object": pod}))
                .collect();
            if flag("sendInitialEvents") {
                watch.first.push(bookmark(
                    watch.cursor,
                    json!({"k8s.io/initial-events-end": "true"}),
                ));
            }
        }
        Some(text) => {
            let Ok(from) = text.parse::<u64>() else {
                return refusal(status(
                    400,
                    &format!("resourceVersion: Invalid value: {text:?}"),
                ));
            };
            if store.is_expired(from) {
                let message = format!(
                    "too old resource version: {from} ({})",
                    store.resource_version()
                );
                let (code, body) = status(410, &message);
                return match expired {
                    ExpiredAnswer::HttpStatus => json(code, body),
                    ExpiredAnswer::ErrorEvent => {
                        watch.first = vec![json!({"type": "ERROR", "object": body})];
                        watch.end_now = true;
                        Answer::Watch(watch)
                    }
                };
            }
            watch.cursor = from;
        }
    }
    Answer::Watch(watch)
}

/// A BOOKMARK watch event at `resource_version`.
pub fn bookmark(resource_version: u64, annotations: Value) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if annotations.as_object().is_some_and(|map| !map.is_empty()) {
        metadata["annotations"] = annotations;
    }
    json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": metadata}})
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn core_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                "verbs": ["get", "list", "watch"], "shortNames": ["po"],
            },
            {
                "name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
                "verbs": ["create", "get", "list", "patch", "update"], "shortNames": ["ev"],
            },
        ],
    })
}
