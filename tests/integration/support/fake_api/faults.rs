//! What a test scripts and what it reads back: fault rules ("the next N POSTs to events get 429") and
//! the record of every request with the status it was answered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

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
