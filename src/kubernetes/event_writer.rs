//! The Event writer: creates each Event, or raises the count of one that exists, retrying what can
//! succeed and reporting every write's outcome to the events stage.
//!
//! Counts are absolute on the wire: the writer remembers the count the server holds for each Event it
//! wrote, and a write of `n` more drops PATCHes `count: known + n`, conditional on the Event's
//! `resourceVersion` being the one we know. A retried PATCH therefore sets the same value again
//! instead of adding twice, and a late request of a killed predecessor (sent before the kill,
//! carried out after our read) cannot set an older count over ours: whichever comes second gets
//! 409. A 409 means: read the Event and go on from what it holds — unless it carries this write's id
//! (our own change, whose answer was lost), then the write is done. An Event that exists before we
//! wrote it (a restart: its name is deterministic) answers our create with 409 the same way.
//!
//! Replays: every write also records in the Event how far into each content of the source it has
//! counted (the `counted-through` annotation, `kubernetes/counted.rs`). A restarted agent reads again
//! from its checkpoint, which may be behind what some Events counted; the first write of an Event in
//! this run carries each drop's mark, and drops at or below what the Event recorded are not added
//! again (`events_replays_skipped_total`). This costs no request: the record comes with the GET that
//! a restart's 409 already needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use crossbeam_channel::Sender;
use kube::Client;
use kube::api::{GetParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use serde_json::{Value, json};

use super::KubeSettings;
use super::backoff::{Backoff, parse_retry_after};
use super::counted::{
    Stored, parse_through, raised, stored_count, through_after, through_text, uncounted,
};
use super::write_channel::WriteReceiver;
use super::write_tasks::WriteTasks;
use crate::metrics::Metrics;
use crate::model::{EventOutcome, EventWrite, MAX_EVENT_COUNT, Mark, WriteResult};

/// Counts remembered for Events not written for this long are forgotten (a later write then learns
/// the count again from a 409 and a GET).
const FORGET_COUNTS_AFTER: Duration = Duration::from_secs(3600);
/// The annotation that carries the id of the write that created an Event.
const WRITE_ID_ANNOTATION: &str = "kube-iptables-tailer/write-id";
/// The annotation that says how far into each content of its source an Event has counted.
const COUNTED_THROUGH_ANNOTATION: &str = "kube-iptables-tailer/counted-through";
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What the server holds for each Event name we wrote, and when we last wrote it.
type KnownCounts = Arc<Mutex<HashMap<String, (Stored, Instant)>>>;

pub async fn write_events(
    client: Client,
    settings: KubeSettings,
    mut writes: WriteReceiver,
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
    let mut tasks = WriteTasks::default();
    loop {
        // Woken by a write or by a write's task ending, never by a timer.
        let write = tokio::select! {
            write = writes.recv() => write,
            Some(panicked) = tasks.next_ended() => {
                forget(&known, &panicked.name);
                let _ = outcomes.send(panicked.outcome);
                continue;
            }
        };
        match write {
            Some(write) => {
                let writer = Writer {
                    instance: instance.clone(),
                    client: client.clone(),
                    settings: settings.clone(),
                    known: known.clone(),
                    metrics: metrics.clone(),
                };
                let outcomes = outcomes.clone();
                let (ticket, name) = (write.ticket, write.name.clone());
                tasks.spawn(ticket, &name, async move {
                    if let Some(result) = writer.write(&write).await {
                        let through = match result {
                            WriteResult::Accepted { .. } => writer
                                .known(&write.name)
                                .map(|stored| stored.through)
                                .unwrap_or_default(),
                            WriteResult::Shed { .. } => Vec::new(),
                        };
                        // The events stage may be gone at shutdown; then nobody needs the outcome.
                        let _ = outcomes.send(EventOutcome {
                            ticket,
                            result,
                            through,
                        });
                    }
                });
            }
            // The events stage has ended.
            None => break,
        }
        for panicked in tasks.reap() {
            forget(&known, &panicked.name);
            let _ = outcomes.send(panicked.outcome);
        }
        forget_old_counts(&known);
    }
    // The events stage has ended: writes still retrying have nobody to report to.
    tasks.shutdown().await;
}

/// What a panicked write knew of its Event may be half updated: the next write learns it again (a
/// 409 and a GET).
fn forget(known: &KnownCounts, name: &str) {
    known
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(name);
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
    /// 409: the Event exists (create) or changed since we read it (patch).
    Conflict,
    /// 404: the Event is gone (Events expire after an hour).
    Missing,
    Retry(Option<Duration>),
    Reject,
}

impl Writer {
    /// Writes until accepted, rejected, given up, or stopped (`None`: no outcome to report).
    async fn write(&self, write: &EventWrite) -> Option<WriteResult> {
        let started = Instant::now();
        let mut backoff = Backoff::new(FIRST_RETRY, MAX_RETRY);
        let mut known = self.known(&write.name);
        loop {
            let (answer, added) = match &known {
                None => (self.create(write).await, write.count),
                Some(stored) => {
                    let added = uncounted(write, &stored.through);
                    log::debug!(
                        "Event {}: {} of {} drops not counted before (it holds {} through {:?})",
                        write.name,
                        added,
                        write.count,
                        stored.count,
                        stored.through
                    );
                    if added == 0 {
                        // Every drop was counted before a restart: nothing to write, but what the
                        // Event holds is known now (the events stage compares later drops with it).
                        self.remember(&write.name, stored.clone());
                        self.replayed(write.count);
                        return Some(WriteResult::Accepted { created: false });
                    }
                    let through = through_after(write, &stored.through);
                    let count = raised(stored.count, added);
                    let lost = added - count.saturating_sub(stored.count);
                    if lost > 0 {
                        log::warn!(
                            "Event {} holds the most the API can count ({MAX_EVENT_COUNT}): {lost} \
                             of {added} drops are not added to it",
                            write.name,
                        );
                    }
                    let answer = self.patch(write, count, &through, stored).await;
                    (answer, added)
                }
            };
            match answer {
                Answer::Done(event) => {
                    let stored = known.as_ref();
                    let total = raised(stored.map_or(0, |stored| stored.count), added);
                    let through = through_after(write, stored.map_or(&[], |s| &s.through));
                    let version = resource_version(&event);
                    self.remember(
                        &write.name,
                        Stored {
                            count: total,
                            through,
                            version,
                        },
                    );
                    self.replayed(write.count.saturating_sub(added));
                    return Some(self.accepted(known.is_none()));
                }
                // It exists (create), or changed since we read it (patch): changed by this very write,
                // whose answer was lost (then it carries our write id and is done), or by another
                // process — before a restart, or a killed predecessor's late request — (then it is
                // raised from what it holds, without the drops it counted already). If it cannot be
                // read now, the write retries.
                Answer::Conflict => match self.get_existing(write).await {
                    Some((stored, id)) if id.as_deref() == Some(self.write_id(write).as_str()) => {
                        self.remember(&write.name, stored);
                        return Some(self.accepted(known.is_none()));
                    }
                    Some((stored, _)) => {
                        known = Some(stored);
                        continue;
                    }
                    None => {}
                },
                // Our Event is gone (Events expire after an hour): create it anew.
                Answer::Missing if known.is_some() => {
                    known = None;
                    continue;
                }
                Answer::Missing => {
                    log::warn!(
                        "the API answered 404 to creating Event {} in namespace {}",
                        write.name,
                        write.pod.namespace
                    );
                    return Some(WriteResult::Shed { reason: "rejected" });
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

    /// A write the API accepted: by creating the Event, or by raising one that existed.
    fn accepted(&self, created: bool) -> WriteResult {
        if created {
            self.metrics.events_created.inc();
        } else {
            self.metrics.events_patched.inc();
        }
        WriteResult::Accepted { created }
    }

    fn replayed(&self, drops: u32) {
        self.metrics.events_replays_skipped.inc_by(u64::from(drops));
    }

    fn known(&self, name: &str) -> Option<Stored> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .map(|(stored, _)| stored.clone())
    }

    fn remember(&self, name: &str, stored: Stored) {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string(), (stored, Instant::now()));
    }

    /// Names this write uniquely (this process, this ticket), so that a create whose answer was lost
    /// can be recognised as ours on the retry's 409.
    fn write_id(&self, write: &EventWrite) -> String {
        format!("{}/{}", self.instance, write.ticket)
    }

    async fn create(&self, write: &EventWrite) -> Answer {
        let through = through_after(write, &[]);
        let body = event_body(write, &self.settings, &self.write_id(write), &through);
        let request = kube::core::Request::new(events_path(&write.pod.namespace)).create(
            &PostParams::default(),
            serde_json::to_vec(&body).expect("JSON"),
        );
        self.send(request).await
    }

    /// Sets the Event's count and record, if it is still the version `stored` was read at.
    async fn patch(
        &self,
        write: &EventWrite,
        count: u32,
        through: &[Mark],
        stored: &Stored,
    ) -> Answer {
        let mut annotations = json!({WRITE_ID_ANNOTATION: self.write_id(write)});
        if !through.is_empty() {
            annotations[COUNTED_THROUGH_ANNOTATION] = json!(through_text(through));
        }
        let mut metadata = json!({"annotations": annotations});
        if let Some(version) = &stored.version {
            metadata["resourceVersion"] = json!(version);
        }
        let patch = json!({
            "metadata": metadata,
            "count": count,
            "lastTimestamp": timestamp(write.last_seen),
            "message": write.message,
        });
        let request = kube::core::Request::new(events_path(&write.pod.namespace)).patch(
            &write.name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        );
        self.send(request).await
    }

    /// What an existing Event holds and the id of the write that created it, or `None` when it
    /// cannot be read now.
    async fn get_existing(&self, write: &EventWrite) -> Option<(Stored, Option<String>)> {
        let request = kube::core::Request::new(events_path(&write.pod.namespace))
            .get(&write.name, &GetParams::default());
        match self.send(request).await {
            Answer::Done(event) => {
                let count = stored_count(&event);
                let annotations = &event["metadata"]["annotations"];
                let id = annotations[WRITE_ID_ANNOTATION].as_str();
                let through = annotations[COUNTED_THROUGH_ANNOTATION]
                    .as_str()
                    .map(parse_through)
                    .unwrap_or_default();
                let version = resource_version(&event);
                let stored = Stored {
                    count,
                    through,
                    version,
                };
                Some((stored, id.map(str::to_string)))
            }
            _ => None,
        }
    }

    /// Sends a request and sorts its answer.
    async fn send(
        &self,
        request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
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
            409 => Answer::Conflict,
            404 => Answer::Missing,
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

/// The `resourceVersion` of an Event the server answered with.
fn resource_version(event: &Value) -> Option<String> {
    event["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
}

fn events_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/events")
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A core/v1 Event as the original agent posted it (through client-go's recorder).
fn event_body(
    write: &EventWrite,
    settings: &KubeSettings,
    write_id: &str,
    through: &[Mark],
) -> Value {
    let pod = &write.pod;
    let mut annotations = json!({WRITE_ID_ANNOTATION: write_id});
    if !through.is_empty() {
        annotations[COUNTED_THROUGH_ANNOTATION] = json!(through_text(through));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": write.name,
            "namespace": pod.namespace,
            "annotations": annotations,
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
        "count": write.count.min(MAX_EVENT_COUNT),
    })
}
