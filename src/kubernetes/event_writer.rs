//! The Event writer: creates each Event, or raises the count of one that exists, retrying what can
//! succeed and reporting every write's outcome to the events stage.
//!
//! Counts are absolute on the wire: the writer remembers the count the server holds for each Event it
//! wrote, and a write of `n` more drops PATCHes `count: known + n`. A retried PATCH therefore sets the
//! same value again instead of adding twice. An Event that exists before we wrote it (a restart: its
//! name is deterministic) answers our create with 409; we read its count and patch from there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use kube::Client;
use kube::api::{GetParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use serde_json::{Value, json};

use super::KubeSettings;
use super::backoff::{Backoff, parse_retry_after};
use crate::metrics::Metrics;
use crate::model::{EventOutcome, EventWrite, WriteResult};

/// Counts remembered for Events not written for this long are forgotten (a later write then learns
/// the count again from a 409 and a GET).
const FORGET_COUNTS_AFTER: Duration = Duration::from_secs(3600);
/// The annotation that carries the id of the write that created an Event.
const WRITE_ID_ANNOTATION: &str = "kube-iptables-tailer/write-id";
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The count the server holds for each Event name we wrote, and when we last wrote it.
type KnownCounts = Arc<Mutex<HashMap<String, (u32, Instant)>>>;

pub async fn write_events(
    client: Client,
    settings: KubeSettings,
    writes: Receiver<EventWrite>,
    outcomes: Sender<EventOutcome>,
    metrics: Arc<Metrics>,
) {
    let settings = Arc::new(settings);
    let known: KnownCounts = Arc::default();
    let instance: Arc<str> = format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
    .into();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // The channel is crossbeam's: wait for it on the blocking pool, a short while at a time.
        let receiver = writes.clone();
        let next =
            tokio::task::spawn_blocking(move || receiver.recv_timeout(Duration::from_millis(100)))
                .await;
        match next {
            Ok(Ok(write)) => {
                let writer = Writer {
                    instance: instance.clone(),
                    client: client.clone(),
                    settings: settings.clone(),
                    known: known.clone(),
                    metrics: metrics.clone(),
                };
                let outcomes = outcomes.clone();
                tasks.spawn(async move {
                    let ticket = write.ticket;
                    if let Some(result) = writer.write(write).await {
                        // The events stage may be gone at shutdown; then nobody needs the outcome.
                        let _ = outcomes.send(EventOutcome { ticket, result });
                    }
                });
            }
            Ok(Err(RecvTimeoutError::Timeout)) => {}
            Ok(Err(RecvTimeoutError::Disconnected)) | Err(_) => break,
        }
        while tasks.try_join_next().is_some() {}
        forget_old_counts(&known);
    }
    // The events stage has ended: writes still retrying have nobody to report to.
    tasks.shutdown().await;
}

fn forget_old_counts(known: &KnownCounts) {
    let mut known = known
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if known.len() > 1024 {
        known.retain(|_, (_, written)| written.elapsed() < FORGET_COUNTS_AFTER);
    }
}

struct Writer {
    /// This process among all that ever wrote: its PID and start time.
    instance: Arc<str>,
    client: Client,
    settings: Arc<KubeSettings>,
    known: KnownCounts,
    metrics: Arc<Metrics>,
}

/// What one request came to.
enum Answer {
    Done(Value),
    /// 409 on create, 404 on patch: the other path is right.
    Conflict,
    Retry(Option<Duration>),
    Reject,
}

impl Writer {
    /// Writes until accepted, rejected, given up, or stopped (`None`: no outcome to report).
    async fn write(&self, write: EventWrite) -> Option<WriteResult> {
        let started = Instant::now();
        let mut backoff = Backoff::new(FIRST_RETRY, MAX_RETRY);
        let mut known = self.known_count(&write.name);
        loop {
            let answer = match known {
                None => self.create(&write).await,
                Some(count) => self.patch(&write, count + write.count).await,
            };
            match answer {
                Answer::Done(_) => {
                    let total = known.unwrap_or(0) + write.count;
                    self.remember(&write.name, total);
                    if known.is_none() {
                        self.metrics.events_created.inc();
                    } else {
                        self.metrics.events_patched.inc();
                    }
                    return Some(WriteResult::Accepted {
                        created: known.is_none(),
                    });
                }
                // It exists: written by this very write, whose answer was lost (then it carries our
                // write id and is done), or before a restart (then it is raised from the count it
                // has). If it cannot be read now, the write retries.
                Answer::Conflict if known.is_none() => match self.get_existing(&write).await {
                    Some((count, id)) if id.as_deref() == Some(self.write_id(&write).as_str()) => {
                        self.remember(&write.name, count);
                        self.metrics.events_created.inc();
                        return Some(WriteResult::Accepted { created: true });
                    }
                    Some((count, _)) => {
                        known = Some(count);
                        continue;
                    }
                    None => {}
                },
                // Our Event is gone (Events expire after an hour): create it anew.
                Answer::Conflict => {
                    known = None;
                    continue;
                }
                Answer::Reject => return Some(WriteResult::Shed { reason: "rejected" }),
                Answer::Retry(_) => {}
            }
            if started.elapsed() > self.settings.give_up_after {
                log::warn!(
                    "giving up on Event {} after {:?}",
                    write.name,
                    started.elapsed()
                );
                return Some(WriteResult::Shed { reason: "gave_up" });
            }
            let retry_after = match answer {
                Answer::Retry(retry_after) => retry_after,
                _ => None,
            };
            // At shutdown this task is aborted once the events stage stops waiting for it.
            tokio::time::sleep(backoff.next_delay(retry_after)).await;
        }
    }

    fn known_count(&self, name: &str) -> Option<u32> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .map(|(count, _)| *count)
    }

    fn remember(&self, name: &str, count: u32) {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string(), (count, Instant::now()));
    }

    /// Names this write uniquely (this process, this ticket), so that a create whose answer was lost
    /// can be recognised as ours on the retry's 409.
    fn write_id(&self, write: &EventWrite) -> String {
        format!("{}/{}", self.instance, write.ticket)
    }

    async fn create(&self, write: &EventWrite) -> Answer {
        let body = event_body(write, &self.settings, &self.write_id(write));
        let request = kube::core::Request::new(events_path(&write.pod.namespace)).create(
            &PostParams::default(),
            serde_json::to_vec(&body).expect("JSON"),
        );
        self.send(request, 409).await
    }

    async fn patch(&self, write: &EventWrite, count: u32) -> Answer {
        let patch = json!({
            "count": count,
            "lastTimestamp": timestamp(write.last_seen),
            "message": write.message,
        });
        let request = kube::core::Request::new(events_path(&write.pod.namespace)).patch(
            &write.name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        );
        self.send(request, 404).await
    }

    /// The count and write id of an existing Event, or `None` when it cannot be read now.
    async fn get_existing(&self, write: &EventWrite) -> Option<(u32, Option<String>)> {
        let request = kube::core::Request::new(events_path(&write.pod.namespace))
            .get(&write.name, &GetParams::default());
        match self.send(request, 404).await {
            Answer::Done(event) => {
                let count = event["count"].as_u64().unwrap_or(1) as u32;
                let id = event["metadata"]["annotations"][WRITE_ID_ANNOTATION].as_str();
                Some((count, id.map(str::to_string)))
            }
            _ => None,
        }
    }

    /// Sends a request and sorts its answer; `conflict` is the status that means "take the other path".
    async fn send(
        &self,
        request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
        conflict: u16,
    ) -> Answer {
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                log::error!("cannot build an API request: {error}");
                return Answer::Reject;
            }
        };
        let response = match self.client.send(request.map(Body::from)).await {
            Ok(response) => response,
            Err(error) => {
                self.metrics
                    .api_errors
                    .with_label_values(&["network"])
                    .inc();
                log::debug!("API request failed: {error}");
                return Answer::Retry(None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()),
        );
        let body = match response.into_body().collect_bytes().await {
            Ok(body) => body,
            Err(error) => {
                self.metrics
                    .api_errors
                    .with_label_values(&["network"])
                    .inc();
                log::debug!("reading an API answer failed: {error}");
                return Answer::Retry(None);
            }
        };
        if (200..300).contains(&status) {
            return Answer::Done(serde_json::from_slice(&body).unwrap_or(Value::Null));
        }
        self.metrics
            .api_errors
            .with_label_values(&[&status.to_string()])
            .inc();
        match status {
            _ if status == conflict => Answer::Conflict,
            429 | 500..=599 => Answer::Retry(retry_after),
            _ => {
                log::warn!(
                    "the API rejected an Event write ({status}): {}",
                    String::from_utf8_lossy(&body)
                );
                Answer::Reject
            }
        }
    }
}

fn events_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/events")
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A core/v1 Event as the original agent posted it (through client-go's recorder).
fn event_body(write: &EventWrite, settings: &KubeSettings, write_id: &str) -> Value {
    let pod = &write.pod;
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": write.name,
            "namespace": pod.namespace,
            "annotations": {WRITE_ID_ANNOTATION: write_id},
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": pod.namespace,
            "name": pod.name,
            "uid": pod.uid,
        },
        "type": "Warning",
        "reason": settings.reason,
        "message": write.message,
        "source": {"component": settings.component, "host": settings.node_name},
        "reportingComponent": settings.component,
        "reportingInstance": settings.node_name,
        "firstTimestamp": timestamp(write.first_seen),
        "lastTimestamp": timestamp(write.last_seen),
        "count": write.count,
    })
}
