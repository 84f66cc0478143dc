//! Batching and sending, the same for every source: lines gathered into batches of at most
//! `max_batch_lines`, each ending at the position just after its last line, sent without waiting past
//! a stop.
//!
//! A source marks where each line ends in its own cheap terms (`E`: a file's identity and offset, a
//! journal cursor, a kmsg sequence number); that marker becomes a [`Position`] only when a batch is
//! sent, so a line costs no path or boot id clone. The source gives the conversion at `add` and
//! `flush` because part of it may change while reading (kmsg learns its boot id at each open).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crossbeam_channel::{Sender, select};

use crate::metrics::Metrics;
use crate::model::{Batch, Line, Position};
use crate::stop::Stop;

/// Gathers lines into batches and sends them: a full batch at once, the rest at `flush`.
pub(super) struct Batcher<E> {
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    max_batch_lines: usize,
    lines: Vec<Line>,
    /// Where the last line in `lines` ends (or a position to hand on without lines, see `mark`).
    end: Option<E>,
    /// Where the last batch sent ends.
    sent: Option<E>,
    /// The newest time in `lines`, for the lag metric.
    newest: Option<DateTime<Utc>>,
    stopped: bool,
}

impl<E> Batcher<E> {
    pub(super) fn new(
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        max_batch_lines: usize,
    ) -> Batcher<E> {
        let max_batch_lines = max_batch_lines.max(1);
        Batcher {
            out,
            stop,
            metrics,
            max_batch_lines,
            lines: Vec::new(),
            end: None,
            sent: None,
            newest: None,
            stopped: false,
        }
    }

    /// Adds a line that ends at `end`, sending the batch when it is full (`position` names its end);
    /// false once stopped (then nothing more is sent).
    pub(super) fn add(
        &mut self,
        line: Line,
        end: E,
        position: impl FnOnce(&E) -> Position,
    ) -> bool {
        if self.stopped {
            return false;
        }
        // `None` orders before any time, so a line without one leaves the newest as it was.
        self.newest = self.newest.max(line.time);
        self.lines.push(line);
        self.end = Some(end);
        if self.lines.len() >= self.max_batch_lines {
            return self.flush(position);
        }
        true
    }

    /// Hands on a position without lines at the next `flush`, unless lines are waiting (their end is
    /// further on and goes first).
    pub(super) fn mark(&mut self, end: E) {
        if self.lines.is_empty() {
            self.end = Some(end);
        }
    }

    /// Where the last batch sent ends, if one was.
    pub(super) fn last_sent(&self) -> Option<&E> {
        self.sent.as_ref()
    }

    /// Sends the lines gathered so far, ending at `position(end)`; false once stopped (then nothing
    /// more is sent).
    pub(super) fn flush(&mut self, position: impl FnOnce(&E) -> Position) -> bool {
        if self.stopped || self.stop.is_stopped() {
            self.stopped = true;
            return false;
        }
        let Some(end) = self.end.take() else {
            return true;
        };
        let batch = Batch {
            // A batch grows as lines come: most hold a few lines, and reserving a full batch for
            // each would cost tens of kilobytes per send.
            items: std::mem::take(&mut self.lines),
            end: Some(position(&end)),
        };
        let count = batch.items.len() as u64;
        let newest = self.newest.take();
        // A full channel blocks us, but not past a stop: lines not sent are not acknowledged, so a
        // checkpoint never covers them.
        select! {
            send(self.out, batch) -> sent => match sent {
                Ok(()) => {
                    self.metrics.lines_read.inc_by(count);
                    if let Some(newest) = newest {
                        let lag = Utc::now().signed_duration_since(newest).as_seconds_f64();
                        // A clock that is behind the source's makes no negative lag.
                        self.metrics.source_lag_seconds.set(lag.max(0.0));
                    }
                    self.sent = Some(end);
                }
                Err(_) => self.stopped = true,
            },
            recv(self.stop.receiver()) -> _ => self.stopped = true,
        }
        !self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KmsgPosition;
    use crossbeam_channel::bounded;

    fn position(&sequence: &u64) -> Position {
        Position::Kmsg(KmsgPosition {
            boot_id: "boot-a".to_string(),
            sequence,
        })
    }

    fn line(text: &str, time: Option<DateTime<Utc>>) -> Line {
        Line {
            text: text.to_string(),
            time,
            mark: crate::model::Mark::default(),
        }
    }

    #[test]
    fn a_mark_without_lines_is_sent_as_an_empty_batch_but_never_moves_waiting_lines_end() {
        let (sender, receiver) = bounded(10);
        let (_trigger, stop) = crate::stop::new();
        let mut batcher = Batcher::new(sender, stop, Arc::new(Metrics::new()), 10);
        batcher.mark(5);
        assert!(batcher.flush(position));
        let marked = receiver.try_recv().unwrap();
        assert!(marked.items.is_empty());
        assert_eq!(marked.end, Some(position(&5)));

        assert!(batcher.add(line("x", None), 7, position));
        batcher.mark(3);
        assert!(batcher.flush(position));
        let sent = receiver.try_recv().unwrap();
        assert_eq!(sent.items, [line("x", None)]);
        assert_eq!(sent.end, Some(position(&7)));
        assert_eq!(batcher.last_sent(), Some(&7));
    }

    #[test]
    fn the_lag_is_from_the_newest_line_and_never_negative() {
        let (sender, _receiver) = bounded(10);
        let (_trigger, stop) = crate::stop::new();
        let metrics = Arc::new(Metrics::new());
        let mut batcher = Batcher::new(sender, stop, metrics.clone(), 10);
        let now = Utc::now();
        assert!(batcher.add(
            line("newest", Some(now - chrono::Duration::seconds(10))),
            1,
            position
        ));
        assert!(batcher.add(
            line("older", Some(now - chrono::Duration::hours(1))),
            2,
            position
        ));
        assert!(batcher.add(line("no time", None), 3, position));
        assert!(batcher.flush(position));
        assert!((10.0..20.0).contains(&metrics.source_lag_seconds.get()));

        assert!(batcher.add(
            line("future", Some(now + chrono::Duration::hours(1))),
            4,
            position
        ));
        assert!(batcher.flush(position));
        assert_eq!(metrics.source_lag_seconds.get(), 0.0);
    }
}
