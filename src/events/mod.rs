//! The events stage: turns located drops into Event writes for the kube thread, aggregating repeats,
//! rate-limited, and acknowledges a batch's position once every drop in it has been accepted by the API
//! (or shed and counted).
//!
//! The kube thread answers every [`EventWrite`] with an [`EventOutcome`]. At most one write per Event
//! name is in flight (the kube thread adds each write's count to the Event's, in order), at most
//! `max_in_flight` in all, and a write goes out only with a rate-limit token; while a write waits, later
//! repeats of its drop join it, so a slow API or a low qps delays Events but keeps their counts exact.
//! Only a new Event beyond `max_pending` waiting ones is shed, and counted.
//!
//! Wiring: `writes` and `outcomes` should each hold at least `max_in_flight` messages; then neither
//! this thread nor the kube thread ever blocks sending to the other.

pub mod aggregate;
pub mod message;
pub mod ratelimit;
pub mod replay;
pub mod rollup;
pub mod storm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select};

use crate::metrics::Metrics;
use crate::model::{
    Batch, EventOutcome, EventWrite, Located, PodIdentifier, Position, WriteResult,
};
use crate::stop::Stop;

use aggregate::Aggregator;
use ratelimit::TokenBucket;
use storm::StormBound;

/// A warning about shed Events is logged at most this often.
const SHED_WARNING_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct EventSettings {
    /// How a pod peer is named in the text.
    pub identifier: PodIdentifier,
    /// Repeats of a drop within one aligned window of this length are one Event.
    pub repeat_interval: Duration,
    /// Event writes per second, and how many may go at once after a quiet time.
    pub qps: f64,
    pub burst: u32,
    /// This node, part of every Event name: each node reports its own drops.
    pub node_name: String,
    /// Distinct Events waiting to be written; drops for a new Event beyond this are shed.
    pub max_pending: usize,
    /// Writes sent to the kube thread and not yet answered (at least one is allowed).
    pub max_in_flight: usize,
    /// How long to wait for outstanding writes once the input has ended.
    pub shutdown_grace: Duration,
    /// Events of their own a pod gets per direction and repeat interval; the drops of further peers
    /// count toward one roll-up Event (`storm.rs`). `None`: no bound.
    pub events_per_pod: Option<usize>,
    /// Where the storm bound keeps the groups that filled up, so that a restart routes replays as
    /// before; `None` without a state directory.
    pub storm_state: Option<PathBuf>,
    /// How long drops stay current (older ones are expired before they get here): how long the
    /// storm bound remembers a bucket after it.
    pub expiration: Duration,
}

/// Thread body. Returns when `input` is disconnected and every write is settled, or `shutdown_grace`
/// after `input` is disconnected (the unsettled batches are then not acknowledged, so a restart replays
/// them), or when the kube thread is gone.
pub fn run(
    settings: EventSettings,
    input: Receiver<Batch<Located>>,
    writes: impl WriteSink,
    outcomes: Receiver<EventOutcome>,
    acks: Option<Sender<Position>>,
    stop: Stop,
    metrics: Arc<Metrics>,
) {
    let mut aggregator = Aggregator::new(
        settings.node_name.clone(),
        settings.identifier,
        settings.repeat_interval,
        settings.max_pending,
    )
    .with_storm_bound(match settings.events_per_pod {
        // A bucket's groups are kept while its drops may still come: its own length, then expiry.
        Some(limit) => StormBound::new(
            limit,
            settings.repeat_interval + settings.expiration,
            settings.storm_state.clone(),
        ),
        None => StormBound::unbounded(),
    });
    let max_in_flight = settings.max_in_flight.max(1);
    let mut bucket = TokenBucket::new(settings.qps, settings.burst, Instant::now());
    let mut shed_warning = ShedWarning::default();
    let mut input = input;
    let mut stopping = stop.receiver().clone();
    let mut input_ended = false;
    // Set once the input has ended: the time to give up on unsettled writes.
    let mut deadline: Option<Instant> = None;
    loop {
        // Sending a write below moves it from pending to in flight: this sum stays as it is.
        let outstanding = aggregator.pending_len() + aggregator.in_flight_len();
        metrics
            .events_pending
            .set(i64::try_from(outstanding).unwrap_or(i64::MAX));
        // Acknowledge before sending: once the next write is seen, any ack its cause allowed was sent.
        if let Some(position) = aggregator.take_ack() {
            if let Some(acks) = &acks {
                // The checkpoint writer only goes away at shutdown.
                let _ = acks.send(position);
            }
        }
        if input_ended && aggregator.is_settled() {
            return;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            log::warn!(
                "gave up after the shutdown grace of {:?}: {} drops in {} Event writes unsettled; \
                 {} batches not acknowledged, a restart reads them again",
                settings.shutdown_grace,
                aggregator.unsettled_drops(),
                aggregator.pending_len() + aggregator.in_flight_len(),
                aggregator.unacked_batches()
            );
            return;
        }
        let now = Instant::now();
        let mut wake = None;
        while aggregator.in_flight_len() < max_in_flight && aggregator.has_sendable() {
            if let Err(wait) = bucket.take(now) {
                wake = now.checked_add(wait);
                break;
            }
            let Some(write) = aggregator.next_write() else {
                break;
            };
            if !writes.send(write) {
                log_kube_gone(&aggregator);
                return;
            }
        }
        let timer = match [wake, deadline].into_iter().flatten().min() {
            Some(at) => crossbeam_channel::at(at),
            None => never(),
        };
        select! {
            recv(input) -> batch => match batch {
                Ok(batch) => {
                    let shed = aggregator.add_batch(batch);
                    let tallies = aggregator.take_tallies();
                    metrics.events_replays_skipped.inc_by(tallies.replays_skipped);
                    metrics.events_rolled_up.inc_by(tallies.rolled_up);
                    metrics.checkpoint_failures.inc_by(tallies.state_save_failures);
                    if shed > 0 {
                        metrics.events_dropped.with_label_values(&["queue_full"]).inc_by(shed);
                        shed_warning.shed(shed, settings.max_pending, Instant::now());
                    }
                }
                Err(_) => {
                    input = never();
                    input_ended = true;
                    // A grace too long to represent waits for every outcome.
                    deadline = Instant::now().checked_add(settings.shutdown_grace);
                }
            },
            recv(outcomes) -> outcome => match outcome {
                Ok(outcome) => settle(&mut aggregator, &outcome, &metrics),
                Err(_) => {
                    log_kube_gone(&aggregator);
                    return;
                }
            },
            recv(stopping) -> _ => {
                // Keep going: the input ends once the stages before have drained.
                stopping = never();
                log::info!(
                    "stopping: {} Event writes pending, {} in flight",
                    aggregator.pending_len(),
                    aggregator.in_flight_len()
                );
            },
            recv(timer) -> _ => {},
        }
    }
}

/// Where the stage sends its writes: the kube thread's channel, which its runtime awaits without a
/// timer (`kubernetes::WriteSender`), or a test's.
pub trait WriteSink {
    /// Sends `write`, waiting while the channel is full; false once its receiver is gone.
    fn send(&self, write: EventWrite) -> bool;
}

impl WriteSink for Sender<EventWrite> {
    fn send(&self, write: EventWrite) -> bool {
        Sender::send(self, write).is_ok()
    }
}

fn log_kube_gone(aggregator: &Aggregator) {
    log::error!(
        "the kube thread is gone: {} drops in {} batches not acknowledged",
        aggregator.unsettled_drops(),
        aggregator.unacked_batches()
    );
}

fn settle(aggregator: &mut Aggregator, outcome: &EventOutcome, metrics: &Metrics) {
    let Some(settled) = aggregator.settle(outcome) else {
        log::debug!("outcome for unknown Event write ticket {}", outcome.ticket);
        return;
    };
    if let WriteResult::Shed { reason } = settled.result {
        metrics
            .events_dropped
            .with_label_values(&[reason])
            .inc_by(u64::from(settled.count));
        log::warn!(
            "gave up on Event {} ({reason}): {} drops not reported",
            settled.name,
            settled.count
        );
    }
}

/// Logs shed drops at most once per [`SHED_WARNING_INTERVAL`], with how many were shed since.
#[derive(Default)]
struct ShedWarning {
    last: Option<Instant>,
    unreported: u64,
}

impl ShedWarning {
    fn shed(&mut self, drops: u64, max_pending: usize, now: Instant) {
        self.unreported += drops;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < SHED_WARNING_INTERVAL)
        {
            return;
        }
        log::warn!(
            "{max_pending} Events are waiting to be written: shed {} drops for new Events \
             (kube_iptables_tailer_events_dropped_total{{reason=\"queue_full\"}})",
            self.unreported
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

#[cfg(test)]
mod tests;
