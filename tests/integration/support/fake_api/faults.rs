//! What a test scripts and what it reads back: fault rules ("the next N POSTs to events get 429",
//! "NetworkPolicies are forbidden") and the record of every request with the status it was answered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::store::status;

/// Who the fake says is refused in a 403: the agent's service account in its manifests.
pub const AGENT_USER: &str = "system:serviceaccount:kube-system:kube-iptables-tailer";

/// What a matching request gets instead of (or before) its normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status with a `Status` body and these extra headers (e.g. `Retry-After`).
    Status {
        code: u16,
        headers: Vec<(String, String)>,
    },
    /// The connection is closed after the request is read, without an answer.
    Drop,
    /// The request is carried out, then the connection is closed without the answer: the client
    /// cannot tell whether its write happened.
    LoseAnswer,
    /// The normal answer, after this long.
    Delay(Duration),
    /// 403 with the `Status` the RBAC authorizer gives for this request (its verb, resource, group and
    /// namespace or cluster scope), refusing [`AGENT_USER`]: a cluster whose ClusterRole lacks the grant.
    Forbidden,
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            headers: Vec::new(),
        }
    }

    /// `code` with `Retry-After: seconds` (the Status body's `details.retryAfterSeconds` too).
    pub fn retry_after(code: u16, seconds: u64) -> Fault {
        Fault::Status {
            code,
            headers: vec![("Retry-After".to_string(), seconds.to_string())],
        }
    }
}

/// A fault for the requests matching a method and a path prefix, a number of times or until a moment.
pub(super) struct Rule {
    /// `"*"` or empty: any method.
    pub method: String,
    pub path_prefix: String,
    pub times: Option<usize>,
    pub until: Option<Instant>,
    pub fault: Fault,
}

impl Rule {
    fn matches(&self, method: &str, path: &str, now: Instant) -> bool {
        (self.method.is_empty() || self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
            && self.times != Some(0)
            && self.until.is_none_or(|until| now < until)
    }
}

/// The fault for this request, using up one of the first matching rule's times; spent rules go.
pub(super) fn take_fault(rules: &mut Vec<Rule>, method: &str, path: &str) -> Option<Fault> {
    let now = Instant::now();
    rules.retain(|rule| rule.times != Some(0) && rule.until.is_none_or(|until| now < until));
    let rule = rules
        .iter_mut()
        .find(|rule| rule.matches(method, path, now))?;
    if let Some(times) = rule.times.as_mut() {
        *times -= 1;
    }
    Some(rule.fault.clone())
}

/// One request the fake received, in arrival order.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Without the query.
    pub path: String,
    /// Percent-decoded; a repeated key keeps its last value.
    pub query: BTreeMap<String, String>,
    /// Names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON; a body that is not JSON is kept as a JSON string; `None` when empty.
    pub body: Option<Value>,
    pub received: Instant,
    /// The status answered (200 for a watch, also one that ends with an ERROR event); `None` when the
    /// connection was dropped or the answer is still being prepared (a delay).
    pub status: Option<u16>,
    /// Bytes of body sent in answer so far: the JSON, or a watch's event lines.
    pub bytes: u64,
}

impl Recorded {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("content-type").map(String::as_str)
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    pub fn is_watch(&self) -> bool {
        self.query("watch")
            .is_some_and(|value| value == "true" || value == "1")
    }

    pub(super) fn body_from(bytes: &[u8]) -> Option<Value> {
        if bytes.is_empty() {
            return None;
        }
        Some(
            serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        )
    }
}

/// The 403 `Status` the API server answers when the authorizer denies `method` on `path`, worded as
/// k8s.io/apiserver words it (the request's attributes, then `NewForbidden`), so that a test of how the
/// agent reports a missing permission sees what a cluster sends.
pub(super) fn forbidden(method: &str, path: &str, query: &BTreeMap<String, String>) -> Value {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => ("", &[][..]),
    };
    let is_resource = !rest.is_empty();
    // `namespaces/{ns}/{resource}...` is inside a namespace; `namespaces/{ns}` alone is the namespace.
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (*namespace, rest),
        _ => ("", rest),
    };
    let resource = rest.first().copied().unwrap_or("");
    let name = rest.get(1).copied().unwrap_or("");
    let resource = match rest.get(2) {
        Some(subresource) => format!("{resource}/{subresource}"),
        None => resource.to_string(),
    };
    let watch = query
        .get("watch")
        .is_some_and(|value| value == "true" || value == "1");
    let verb = match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" if watch => "watch".to_string(),
        "GET" | "HEAD" if is_resource && name.is_empty() => "list".to_string(),
        "GET" | "HEAD" => "get".to_string(),
        "POST" => "create".to_string(),
        "PUT" => "update".to_string(),
        "PATCH" => "patch".to_string(),
        "DELETE" if is_resource && name.is_empty() => "deletecollection".to_string(),
        other => other.to_ascii_lowercase(),
    };
    let reason = if !is_resource {
        format!("User {AGENT_USER:?} cannot {verb} path {path:?}")
    } else if namespace.is_empty() {
        format!(
            "User {AGENT_USER:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
        )
    } else {
        format!(
            "User {AGENT_USER:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {namespace:?}"
        )
    };
    // The plural alone for the core group, `plural.group` for the others.
    let plural = rest.first().copied().unwrap_or("");
    let qualified = match (plural, group) {
        ("", _) => String::new(),
        (plural, "") => plural.to_string(),
        (plural, group) => format!("{plural}.{group}"),
    };
    let message = match (qualified.as_str(), name) {
        ("", _) => format!("forbidden: {reason}"),
        (qualified, "") => format!("{qualified} is forbidden: {reason}"),
        (qualified, name) => format!("{qualified} {name:?} is forbidden: {reason}"),
    };
    let mut body = status(403, &message).1;
    // StatusDetails, with Go's omitempty.
    let mut details = serde_json::Map::new();
    for (key, value) in [("name", name), ("group", group), ("kind", plural)] {
        if !value.is_empty() {
            details.insert(key.to_string(), json!(value));
        }
    }
    body["details"] = Value::Object(details);
    body
}
