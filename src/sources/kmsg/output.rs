//! Batching and sending: messages gathered into batches of at most `max_batch_lines`, each with the
//! position of its last record, sent without waiting past a stop.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crossbeam_channel::{Sender, select};

use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line, Position};
use crate::stop::Stop;

pub(crate) struct Output {
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    max_batch_lines: usize,
    /// This boot's id, for positions.
    pub(crate) boot_id: String,
    lines: Vec<Line>,
    /// The sequence number of the last record in `lines`.
    last_sequence: u64,
    /// The newest time in `lines`.
    newest: Option<DateTime<Utc>>,
    stopped: bool,
}

impl Output {
    pub(crate) fn new(
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        max_batch_lines: usize,
    ) -> Output {
        Output {
            out,
            stop,
            metrics,
            max_batch_lines: max_batch_lines.max(1),
            boot_id: String::new(),
            lines: Vec::new(),
            last_sequence: 0,
            newest: None,
            stopped: false,
        }
    }

    /// Adds a message (its text, its time, the sequence number of its last record); false once stopped.
    pub(crate) fn add(&mut self, text: String, time: DateTime<Utc>, sequence: u64) -> bool {
        if self.stopped {
            return false;
        }
        self.lines.push(Line {
            text,
            time: Some(time),
        });
        self.last_sequence = sequence;
        self.newest = Some(self.newest.map_or(time, |newest| newest.max(time)));
        if self.lines.len() >= self.max_batch_lines {
            return self.flush();
        }
        true
    }

    /// Sends the lines gathered so far; false once stopped (then nothing more is sent).
    pub(crate) fn flush(&mut self) -> bool {
        if self.stopped || self.stop.is_stopped() {
            self.stopped = true;
            return false;
        }
        if self.lines.is_empty() {
            return true;
        }
        let batch = Batch {
            items: std::mem::take(&mut self.lines),
            end: Position::Kmsg(KmsgPosition {
                boot_id: self.boot_id.clone(),
                sequence: self.last_sequence,
            }),
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
                        let lag = Utc::now().signed_duration_since(newest);
                        self.metrics.source_lag_seconds.set(lag.as_seconds_f64());
                    }
                }
                Err(_) => self.stopped = true,
            },
            recv(self.stop.receiver()) -> _ => self.stopped = true,
        }
        !self.stopped
    }
}
