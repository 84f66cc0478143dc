//! The events stage's bookkeeping, without threads or clocks: which Event each drop counts toward, the
//! writes waiting to go out, the writes in flight, and which batch positions may be acknowledged.
//!
//! A drop counts toward one Event per pod end: the sender's (`Sending`, the peer is the destination) and
//! the receiver's (`Receiving`, the peer is the source); nodes and external hosts get none. Repeats of
//! the same (pod, direction, peer IP, port or ICMP type, protocol, and policy where the log names one)
//! within one time bucket are one Event.
//! Buckets are aligned to multiples of the repeat interval since the Unix epoch, and the Event name is a
//! stable checksum of all of that, so a retry or a restart that replays a drop raises the same Event.
//! Past `EVENTS_PER_POD` such Events of a pod, direction and bucket, the drops of further peers count
//! toward one roll-up Event (`storm.rs`).
//!
//! Acknowledgement: a batch is settled once every write holding any of its drops has an outcome (or its
//! drops were shed here). Batches arrive in order and every pending or in-flight write remembers the
//! first batch it holds a drop of, so the batches before the smallest such number are exactly the
//! settled prefix; its last position is the one to acknowledge.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::events::replay::{PendingMarks, Written};
use crate::events::rollup::RollUp;
use crate::events::storm::{Group, Route, StormBound};
use crate::model::{
    Batch, Direction, Endpoint, EventOutcome, EventWrite, Located, MAX_EVENT_COUNT, PodIdentifier,
    PodInfo, Position, WriteResult,
};
use side::{Side, named_by_its_ip, own_message};

/// The longest pod name prefix of an Event name, which leaves room for the checksum within the 253
/// characters a name may have.
const MAX_POD_NAME_CHARS: usize = 200;

pub struct Aggregator {
    node_name: String,
    identifier: PodIdentifier,
    interval_ms: i64,
    max_pending: usize,
    /// Writes not yet sent, by Event name.
    pending: HashMap<String, Pending>,
    /// The names in `pending`, oldest first (by the order they became pending).
    queue: BTreeMap<u64, String>,
    next_order: u64,
    in_flight: HashMap<u64, InFlight>,
    in_flight_names: HashSet<String>,
    next_ticket: u64,
    /// Positions of batches not yet acknowledged that may still be, by sequence number.
    batches: VecDeque<(u64, Option<Position>)>,
    next_batch: u64,
    first_unacked: u64,
    /// For every pending or in-flight write, the first batch it holds drops of (a multiset: count).
    open_batches: BTreeMap<u64, usize>,
    /// The Events this run has written: their later writes need no per-drop marks.
    written: Written,
    /// How many Events of their own a pod gets per direction and bucket.
    storm: StormBound,
    /// What happened since last taken.
    tallies: Tallies,
}

/// What the aggregator did, for the metrics: counted since the last [`Aggregator::take_tallies`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Drops not counted because their Event had counted them in an earlier run.
    pub replays_skipped: u64,
    /// Drops counted toward a roll-up Event rather than an Event of their own.
    pub rolled_up: u64,
    /// Saves of the storm bound's state that failed.
    pub state_save_failures: u64,
}

struct Pending {
    pod: Arc<PodInfo>,
    message: String,
    count: u64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    first_batch: u64,
    marks: PendingMarks,
    /// For a roll-up Event: its group, whose roll-up words the message when the write goes out
    /// (it changes with every new peer; wording it per drop would cost a scan dearly).
    rollup: Option<(Group, RollUpText)>,
    /// The peer is an external IP named by itself: its name may come from DNS later.
    unnamed_peer: bool,
}

/// What a roll-up's message needs besides the roll-up.
struct RollUpText {
    direction: Direction,
    isolating: Vec<String>,
}

impl RollUpText {
    fn message(&self, rollup: &RollUp, namespace: &str) -> String {
        rollup.message(self.direction, namespace, &self.isolating)
    }
}

struct InFlight {
    name: String,
    count: u32,
    first_batch: u64,
}

/// An in-flight write that got its outcome.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled {
    pub name: String,
    pub count: u32,
    pub result: WriteResult,
}

impl Aggregator {
    pub fn new(
        node_name: String,
        identifier: PodIdentifier,
        repeat_interval: Duration,
        max_pending: usize,
    ) -> Aggregator {
        Aggregator {
            node_name,
            identifier,
            interval_ms: i64::try_from(repeat_interval.as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            max_pending,
            pending: HashMap::new(),
            queue: BTreeMap::new(),
            next_order: 0,
            in_flight: HashMap::new(),
            in_flight_names: HashSet::new(),
            next_ticket: 1,
            batches: VecDeque::new(),
            next_batch: 0,
            first_unacked: 0,
            open_batches: BTreeMap::new(),
            written: Written::default(),
            storm: StormBound::unbounded(),
            tallies: Tallies::default(),
        }
    }

    /// Bounds the Events of their own a pod gets per direction and bucket (unbounded without).
    pub fn with_storm_bound(mut self, storm: StormBound) -> Aggregator {
        self.storm = storm;
        self
    }

    /// Counts every pod end of every drop in `batch`. Returns the drops shed because `max_pending`
    /// Events were already waiting (they count as settled).
    pub fn add_batch(&mut self, batch: Batch<Located>) -> u64 {
        let seq = self.next_batch;
        self.next_batch += 1;
        let mut shed = 0;
        for located in &batch.items {
            let packet = &located.drop.packet;
            if let Endpoint::Pod(pod) = &located.src {
                let side = Side::new(Direction::Sending, pod, &located.dst, packet.dst, located);
                shed += self.add(side, seq);
            }
            if let Endpoint::Pod(pod) = &located.dst {
                let side = Side::new(Direction::Receiving, pod, &located.src, packet.src, located);
                shed += self.add(side, seq);
            }
        }
        // Only the newest batch's position and those just before a batch that opened a write can be
        // the end of the settled prefix; dropping the rest keeps this queue as short as the writes.
        if !self.open_batches.contains_key(&seq)
            && self.batches.back().is_some_and(|(last, _)| last + 1 == seq)
        {
            self.batches.pop_back();
        }
        self.batches.push_back((seq, batch.end));
        shed
    }

    fn add(&mut self, side: Side, seq: u64) -> u64 {
        let time = side.located.drop.time;
        let mark = side.located.drop.mark;
        // A line may stand for several drops (Antrea's `[N packets in D]`): N drops at one mark.
        let drops = side.located.drop.count.max(1);
        let own = self.event_name(&side);
        let group = Group {
            pod_uid: side.pod.uid.clone(),
            direction: side.direction,
            bucket_start_ms: self.bucket_start(&side),
        };
        let route = self.storm.route(&group, &own);
        self.tallies.state_save_failures += self.storm.take_save_failures();
        let name = match route {
            Route::Own => own,
            Route::RollUp => {
                let packet = &side.located.drop.packet;
                let policy = side.located.drop.policy.as_ref();
                self.storm.rollup(&group).add(
                    side.peer_ip,
                    packet.protocol,
                    packet.transport,
                    policy,
                );
                self.rollup_name(&side, &group)
            }
        };
        if self.written.counted(&name, mark) {
            log::trace!("Event {name}: the drops at {mark:?} were counted before a restart");
            self.tallies.replays_skipped += u64::from(drops);
            return 0;
        }
        if route == Route::RollUp {
            self.tallies.rolled_up += u64::from(drops);
        }
        let unnamed_peer = route == Route::Own && named_by_its_ip(side.peer);
        if let Some(pending) = self.pending.get_mut(&name) {
            pending.count = pending.count.saturating_add(u64::from(drops));
            pending.first_seen = pending.first_seen.min(time);
            pending.last_seen = pending.last_seen.max(time);
            pending.marks.add(mark, drops);
            // The peer's name arrived from DNS since the write was started: the write carries it.
            if pending.unnamed_peer && !unnamed_peer {
                pending.message = own_message(&side, self.identifier);
                pending.unnamed_peer = false;
            }
            return 0;
        }
        if self.pending.len() >= self.max_pending {
            return u64::from(drops);
        }
        let rollup = (route == Route::RollUp).then(|| {
            let text = RollUpText {
                direction: side.direction,
                isolating: side.isolating().clone(),
            };
            (group, text)
        });
        let message = match &rollup {
            Some((group, text)) => text.message(self.storm.rollup(group), &side.pod.namespace),
            None => own_message(&side, self.identifier),
        };
        let order = self.next_order;
        self.next_order += 1;
        self.queue.insert(order, name.clone());
        let mut marks = PendingMarks::new(self.written.contains(&name));
        marks.add(mark, drops);
        self.pending.insert(
            name,
            Pending {
                pod: side.pod.clone(),
                message,
                count: u64::from(drops),
                first_seen: time,
                last_seen: time,
                first_batch: seq,
                marks,
                rollup,
                unnamed_peer,
            },
        );
        self.open(seq);
        0
    }

    /// Whether a pending write may go out now: its name has no write in flight.
    pub fn has_sendable(&self) -> bool {
        self.next_sendable().is_some()
    }

    fn next_sendable(&self) -> Option<(u64, &String)> {
        // Skips at most one entry per write in flight.
        self.queue
            .iter()
            .find(|(_, name)| !self.in_flight_names.contains(*name))
            .map(|(order, name)| (*order, name))
    }

    /// The oldest sendable pending write, now in flight under a new ticket.
    pub fn next_write(&mut self) -> Option<EventWrite> {
        let (order, name) = self
            .next_sendable()
            .map(|(order, name)| (order, name.clone()))?;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let pending = self.pending.get_mut(&name)?;
        // A group forgotten meanwhile (a write that waited out a long outage) keeps its message.
        if let Some((group, text)) = &pending.rollup {
            if let Some(rollup) = self.storm.known_rollup(group) {
                pending.message = text.message(rollup, &pending.pod.namespace);
            }
        }
        // The API counts in int32: a larger count goes out in several writes, each raising the Event.
        let count = u32::try_from(pending.count)
            .unwrap_or(MAX_EVENT_COUNT)
            .min(MAX_EVENT_COUNT);
        let first_batch = pending.first_batch;
        let write = if u64::from(count) < pending.count {
            // More than one write can carry: the rest waits, still pending, for this one's outcome.
            pending.count -= u64::from(count);
            let write = pending.take_write(ticket, &name, count);
            self.open(first_batch);
            write
        } else {
            let mut pending = self.pending.remove(&name)?;
            self.queue.remove(&order);
            pending.take_write(ticket, &name, count)
        };
        self.in_flight_names.insert(name.clone());
        self.in_flight.insert(
            ticket,
            InFlight {
                name,
                count,
                first_batch,
            },
        );
        Some(write)
    }

    /// Takes the outcome of an in-flight write; `None` for a ticket that is not in flight.
    pub fn settle(&mut self, outcome: &EventOutcome) -> Option<Settled> {
        let flight = self.in_flight.remove(&outcome.ticket)?;
        self.in_flight_names.remove(&flight.name);
        if let WriteResult::Accepted { .. } = outcome.result {
            self.written.insert(&flight.name, outcome.through.clone());
        }
        self.close(flight.first_batch);
        Some(Settled {
            name: flight.name,
            count: flight.count,
            result: outcome.result,
        })
    }

    /// What happened since the last call.
    pub fn take_tallies(&mut self) -> Tallies {
        std::mem::take(&mut self.tallies)
    }

    /// The position to acknowledge, when the settled prefix of batches grew since the last call.
    pub fn take_ack(&mut self) -> Option<Position> {
        let frontier = self
            .open_batches
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_batch);
        let (mut settled, mut last) = (false, None);
        while self.batches.front().is_some_and(|(seq, _)| *seq < frontier) {
            settled = true;
            if let Some((_, Some(end))) = self.batches.pop_front() {
                last = Some(end);
            }
        }
        if settled {
            self.first_unacked = frontier;
        }
        last
    }

    /// Names waiting to be written, and writes in flight.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// No write is pending or in flight.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty()
    }

    /// Drops in pending and in-flight writes.
    pub fn unsettled_drops(&self) -> u64 {
        let pending: u64 = self.pending.values().map(|pending| pending.count).sum();
        let in_flight: u64 = self.in_flight.values().map(|f| u64::from(f.count)).sum();
        pending + in_flight
    }

    /// Batches received but not acknowledged.
    pub fn unacked_batches(&self) -> u64 {
        self.next_batch - self.first_unacked
    }

    fn open(&mut self, batch: u64) {
        *self.open_batches.entry(batch).or_default() += 1;
    }

    fn close(&mut self, batch: u64) {
        if let Some(count) = self.open_batches.get_mut(&batch) {
            *count -= 1;
            if *count == 0 {
                self.open_batches.remove(&batch);
            }
        }
    }
}

impl Pending {
    fn take_write(&mut self, ticket: u64, name: &str, count: u32) -> EventWrite {
        EventWrite {
            ticket,
            name: name.to_string(),
            pod: self.pod.clone(),
            message: self.message.clone(),
            count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            marks: self.marks.take(),
        }
    }
}

mod side;

#[cfg(test)]
mod rollup_tests;
#[cfg(test)]
mod tests;
