//! The reading loop of one bound socket: receive without blocking until the queue is empty, decode,
//! send the drops in batches, count overflows, then wait in poll(2) on the socket and the stop's wake
//! pipe. The stop is also looked at between receives, so a flood that never lets the queue empty
//! cannot hold a shutdown; once stopped, what is queued is still read, up to a bound.

use std::io::PipeReader;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::Sender;
use log::warn;

use super::decode::decode_datagram;
use super::interfaces::InterfaceNames;
use super::overflow::OverflowCount;
use super::socket::{NflogSocket, Received};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, PacketDrop};
use crate::sources::wait::wait_readable;
use crate::stop::Stop;

/// Datagrams still read after the stop, at most.
const MAX_READ_AFTER_STOP: usize = 10_000;
/// Overflow is logged at warn at most this often (a flood would otherwise flood the log too).
const OVERFLOW_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The reading state, kept across a re-bind.
pub(super) struct Reader {
    pub(super) max_batch: usize,
    pub(super) out: Sender<Batch<PacketDrop>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) names: InterfaceNames,
    pub(super) batch: Vec<PacketDrop>,
    pub(super) overflow: OverflowCount,
    pub(super) last_overflow_warning: Option<Instant>,
}

impl Reader {
    pub(super) fn new(
        max_batch: usize,
        out: Sender<Batch<PacketDrop>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reader {
            max_batch,
            out,
            metrics,
            names: InterfaceNames::default(),
            batch: Vec::new(),
            overflow: OverflowCount::default(),
            last_overflow_warning: None,
        }
    }

    /// Reads until stopped (Ok) or an error that needs a new socket.
    pub(super) fn follow(
        &mut self,
        socket: &mut NflogSocket,
        stop: &Stop,
        wake: &PipeReader,
    ) -> std::io::Result<()> {
        let mut left_after_stop: Option<usize> = None;
        loop {
            match left_after_stop.as_mut() {
                Some(0) => {
                    self.flush();
                    return Ok(());
                }
                Some(left) => *left -= 1,
                None if stop.is_stopped() => left_after_stop = Some(MAX_READ_AFTER_STOP),
                None => {}
            }
            match socket.receive()? {
                Received::Messages(bytes) => {
                    let (received, now) = (Utc::now(), Instant::now());
                    let (metrics, names, batch) = (&self.metrics, &mut self.names, &mut self.batch);
                    let packets =
                        decode_datagram(bytes, received, now, names, |decoded| match decoded {
                            Ok(decoded) => {
                                metrics.nflog_decoded.inc();
                                metrics.drops_parsed.inc();
                                if decoded.incomplete {
                                    metrics.nflog_incomplete.inc();
                                }
                                batch.push(decoded.drop);
                            }
                            Err(skip) => metrics
                                .nflog_skipped
                                .with_label_values(&[skip.reason()])
                                .inc(),
                        });
                    self.metrics.nflog_received.inc_by(packets);
                    if self.batch.len() >= self.max_batch && !self.flush() {
                        return Ok(());
                    }
                }
                Received::Overflow => self.overflowed(socket),
                Received::Empty => {
                    // Drained: what was read goes on now, and an overflow episode's count is final.
                    if !self.flush() {
                        return Ok(());
                    }
                    self.drained(socket);
                    if left_after_stop.is_some() {
                        return Ok(());
                    }
                    let fds = [socket.as_raw_fd(), wake.as_raw_fd()];
                    // POLLERR on the socket is a pending ENOBUFS: the next receive reports it.
                    let ready = wait_readable(&fds, None)?.unwrap_or_default();
                    if ready.get(1) == Some(&true) {
                        left_after_stop = Some(MAX_READ_AFTER_STOP);
                    }
                }
            }
        }
    }

    /// ENOBUFS: counts what the kernel dropped so far, warns now and then.
    fn overflowed(&mut self, socket: &NflogSocket) {
        let total = socket.kernel_drops();
        let added = self.overflow.reported(total);
        self.lost(added);
        let due = self
            .last_overflow_warning
            .is_none_or(|last| last.elapsed() >= OVERFLOW_WARN_INTERVAL);
        if due {
            self.last_overflow_warning = Some(Instant::now());
            warn!(
                "the NFLOG receive buffer ({} bytes) overflowed: the kernel dropped {} messages so far \
                 (source_lost_total{{reason=\"overflow\"}}); raise NFLOG_BUFFER_BYTES if this repeats",
                socket.receive_buffer_bytes(),
                total.map_or("some".to_string(), |total| total.to_string()),
            );
        }
    }

    /// A new socket: its kernel drop count starts from 0.
    pub(super) fn rebound(&mut self) {
        self.overflow = OverflowCount::default();
    }

    /// The queue is empty (or the socket about to close): an overflow episode's last count.
    pub(super) fn drained(&mut self, socket: &NflogSocket) {
        if self.overflow.is_pending() {
            let added = self.overflow.drained(socket.kernel_drops());
            self.lost(added);
        }
    }

    fn lost(&self, drops: u64) {
        self.metrics
            .source_lost
            .with_label_values(&["overflow"])
            .inc_by(drops);
    }

    /// Sends the drops read so far; false when the next stage is gone.
    pub(super) fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let items = std::mem::take(&mut self.batch);
        self.out.send(Batch { items, end: None }).is_ok()
    }

    pub(super) fn set_ready(&self, health: &Health, ready: bool, socket: &NflogSocket) {
        health.set_ready(ready);
        self.metrics.source_ready.set(i64::from(ready));
        self.metrics
            .nflog_receive_buffer_bytes
            .set(i64::try_from(socket.receive_buffer_bytes()).unwrap_or(i64::MAX));
    }
}
