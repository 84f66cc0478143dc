//! From a request to an answer: the handful of API paths the agent uses (pods list/watch/get,
//! NetworkPolicies list/watch/get and the writes their discovery names, Events create/get/patch),
//! discovery, and 404/405 `Status` answers for everything else.

use std::time::Duration;

use serde_json::{Value, json};

use super::ExpiredAnswer;
use super::http::Request;
use super::resource::Resource;
use super::selector::FieldSelector;
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
    /// The kind it streams; changes to any other are not its business.
    pub resource: Resource,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    /// `fieldSelector`: only changes to objects it selects are sent.
    pub selector: FieldSelector,
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
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [networking_group()]}),
        ),
        ("GET", ["apis", "networking.k8s.io"]) => json(200, networking_group()),
        ("GET", ["apis", "networking.k8s.io", "v1"]) => json(200, networking_v1_resources()),
        ("GET", ["api", "v1"]) => json(200, core_v1_resources()),
        ("GET", ["api", "v1", "pods"]) => {
            list_or_watch(store, expired, Resource::Pod, None, request)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            list_or_watch(store, expired, Resource::Pod, Some(ns), request)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            get(store, Resource::Pod, ns, name)
        }
        // The long group prefix is taken off once, so that their match stays readable.
        (_, ["apis", "networking.k8s.io", "v1", rest @ ..]) if !rest.is_empty() => {
            network_policies(store, expired, method, rest, request)
        }
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
            | ["apis", "networking.k8s.io"]
            | ["apis", "networking.k8s.io", "v1"]
    )
}

/// Under `/apis/networking.k8s.io/v1/`: NetworkPolicies listed, watched, read and written.
fn network_policies(
    store: &mut Store,
    expired: ExpiredAnswer,
    method: &str,
    rest: &[&str],
    request: &Request,
) -> Answer {
    let policies = Resource::NetworkPolicy;
    match (method, rest) {
        ("GET", ["networkpolicies"]) => list_or_watch(store, expired, policies, None, request),
        ("GET", ["namespaces", ns, "networkpolicies"]) => {
            list_or_watch(store, expired, policies, Some(ns), request)
        }
        ("GET", ["namespaces", ns, "networkpolicies", name]) => get(store, policies, ns, name),
        ("POST", ["namespaces", ns, "networkpolicies"]) => match body(request) {
            Ok(policy) => answer(create_network_policy(store, ns, policy), 201),
            Err(refused) => refusal(refused),
        },
        ("PUT", ["namespaces", ns, "networkpolicies", name]) => match body(request) {
            Ok(policy) => answer(replace_network_policy(store, ns, name, policy), 200),
            Err(refused) => refusal(refused),
        },
        ("DELETE", ["namespaces", ns, "networkpolicies", name]) => {
            match store.object(policies, ns, name) {
                // Without finalizers the object goes at once, and the answer is its last state.
                Some(_) => json(200, store.delete_network_policy(ns, name)),
                None => not_found(policies, name),
            }
        }
        (
            _,
            ["networkpolicies"]
            | ["namespaces", _, "networkpolicies"]
            | ["namespaces", _, "networkpolicies", _],
        ) => refusal(status(
            405,
            &format!("the server does not allow this method on the requested resource: {method}"),
        )),
        _ => refusal(status(
            404,
            "the server could not find the requested resource",
        )),
    }
}

/// The API server's 404 for a named object: `networkpolicies.networking.k8s.io "x" not found`.
fn not_found(resource: Resource, name: &str) -> Answer {
    refusal(status(
        404,
        &format!("{} \"{name}\" not found", resource.qualified()),
    ))
}

fn get(store: &Store, resource: Resource, namespace: &str, name: &str) -> Answer {
    match store.object(resource, namespace, name) {
        Some(object) => json(200, object),
        None => not_found(resource, name),
    }
}

/// `POST .../namespaces/{ns}/networkpolicies`: 201, 400 for another namespace in the body, 422
/// without a name, 409 when it exists.
fn create_network_policy(
    store: &mut Store,
    namespace: &str,
    mut policy: Value,
) -> Result<Value, Refusal> {
    if !policy.is_object() {
        return Err(status(400, "the body is not a JSON object"));
    }
    match policy["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && ns != namespace => {
            return Err(status(
                400,
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => policy["metadata"]["namespace"] = json!(namespace),
    }
    let Some(name) = policy["metadata"]["name"]
        .as_str()
        .filter(|name| !name.is_empty())
    else {
        return Err(status(
            422,
            "NetworkPolicy is invalid: metadata.name: Required value",
        ));
    };
    if store
        .object(Resource::NetworkPolicy, namespace, name)
        .is_some()
    {
        let qualified = Resource::NetworkPolicy.qualified();
        return Err(status(
            409,
            &format!("{qualified} \"{name}\" already exists"),
        ));
    }
    // The server gives the uid, whatever the request says.
    if let Some(metadata) = policy["metadata"].as_object_mut() {
        metadata.remove("uid");
    }
    Ok(store.put_network_policy(policy))
}

/// `PUT .../namespaces/{ns}/networkpolicies/{name}`: 200, 404, 400 for another name in the body, or
/// 409 when the body names a resourceVersion that is no longer the stored one.
fn replace_network_policy(
    store: &mut Store,
    namespace: &str,
    name: &str,
    mut policy: Value,
) -> Result<Value, Refusal> {
    if !policy.is_object() {
        return Err(status(400, "the body is not a JSON object"));
    }
    let Some(stored) = store.object(Resource::NetworkPolicy, namespace, name) else {
        return Err(status(
            404,
            &format!(
                "{} \"{name}\" not found",
                Resource::NetworkPolicy.qualified()
            ),
        ));
    };
    if policy["metadata"]["name"]
        .as_str()
        .is_some_and(|given| given != name)
    {
        return Err(status(
            400,
            "the name of the object does not match the name on the URL",
        ));
    }
    let wanted = policy["metadata"]["resourceVersion"].as_str();
    if wanted.is_some_and(|wanted| Some(wanted) != stored["metadata"]["resourceVersion"].as_str()) {
        return Err(status(
            409,
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                Resource::NetworkPolicy.qualified()
            ),
        ));
    }
    policy["metadata"]["namespace"] = json!(namespace);
    policy["metadata"]["name"] = json!(name);
    // The uid is the stored one: an update never changes it.
    policy["metadata"]["uid"] = stored["metadata"]["uid"].clone();
    Ok(store.put_network_policy(policy))
}

fn body(request: &Request) -> Result<Value, Refusal> {
    serde_json::from_slice(&request.body)
        .map_err(|error| status(400, &format!("the body is not JSON: {error}")))
}

/// A list of `resource` (paged by `limit`/`continue`) or, with `watch=true`, a watch of it.
fn list_or_watch(
    store: &mut Store,
    expired: ExpiredAnswer,
    resource: Resource,
    namespace: Option<&str>,
    request: &Request,
) -> Answer {
    let query = &request.query;
    let flag = |name: &str| {
        query
            .get(name)
            .is_some_and(|value| value == "true" || value == "1")
    };
    let selector =
        match FieldSelector::parse(resource, query.get("fieldSelector").map(String::as_str)) {
            Ok(selector) => selector,
            Err(refused) => return refusal(refused),
        };
    if !flag("watch") {
        let limit = match query.get("limit").map(|limit| limit.parse::<usize>()) {
            None => None,
            Some(Ok(limit)) => Some(limit),
            Some(Err(_)) => return refusal(status(400, "limit: Invalid value")),
        };
        let token = query.get("continue").filter(|token| !token.is_empty());
        return answer(
            store.list(
                resource,
                namespace,
                &selector,
                limit,
                token.map(String::as_str),
            ),
            200,
        );
    }

    let timeout = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse().ok())
        .map(Duration::from_secs);
    let mut watch = Watch {
        resource,
        namespace: namespace.map(String::from),
        selector: selector.clone(),
        first: Vec::new(),
        cursor: store.resource_version(),
        end_now: false,
        timeout,
        bookmarks: flag("allowWatchBookmarks"),
    };
    match query.get("resourceVersion").map(String::as_str) {
        // "Any version": the API starts with the current objects as ADDED events.
        None | Some("" | "0") => {
            watch.first = (store.objects_in(resource, namespace, &selector).into_iter())
                .map(|object| json!({"type": "ADDED", "object": object}))
                .collect();
            if flag("sendInitialEvents") {
                watch.first.push(bookmark(
                    resource,
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

/// A BOOKMARK watch event at `resource_version`: an object of the watched kind with only a version.
pub fn bookmark(resource: Resource, resource_version: u64, annotations: Value) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if annotations.as_object().is_some_and(|map| !map.is_empty()) {
        metadata["annotations"] = annotations;
    }
    let object = json!({
        "kind": resource.kind(),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
    });
    json!({"type": "BOOKMARK", "object": object})
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

/// The `networking.k8s.io` APIGroup, as `/apis` lists it and `/apis/networking.k8s.io` answers.
fn networking_group() -> Value {
    let v1 = json!({"groupVersion": "networking.k8s.io/v1", "version": "v1"});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "networking.k8s.io",
        "versions": [v1],
        "preferredVersion": v1,
    })
}

fn networking_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "networking.k8s.io/v1",
        "resources": [
            {
                "name": "networkpolicies", "singularName": "networkpolicy", "namespaced": true,
                "kind": "NetworkPolicy",
                "verbs": ["create", "delete", "get", "list", "update", "watch"],
                "shortNames": ["netpol"],
            },
        ],
    })
}
