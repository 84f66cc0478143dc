//! The kmsg source's side of batching (`sources/batcher.rs` does the rest): messages with their times,
//! each batch ending at the sequence number of its last record, in this boot.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;

use crate::checksum::checksum;
use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line, Mark, Position};
use crate::sources::batcher::Batcher;
use crate::stop::Stop;

pub(crate) struct Output {
    /// Each message ends at the sequence number of its last record.
    batcher: Batcher<u64>,
    /// This boot's id, for positions. Read at each open, so it is added when a batch is sent rather
    /// than fixed at construction.
    pub(crate) boot_id: String,
}

impl Output {
    pub(crate) fn new(
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        max_batch_lines: usize,
    ) -> Output {
        Output {
            batcher: Batcher::new(out, stop, metrics, max_batch_lines),
            boot_id: String::new(),
        }
    }

    /// Adds a message (its text, its time, the sequence number of its last record); false once stopped.
    pub(crate) fn add(&mut self, text: String, time: DateTime<Utc>, sequence: u64) -> bool {
        let line = Line {
            text,
            time: Some(time),
            // Sequence numbers only grow within a boot: the boot is the content.
            mark: Mark {
                content: checksum(self.boot_id.as_bytes()),
                offset: sequence,
            },
        };
        let boot_id = &self.boot_id;
        self.batcher
            .add(line, sequence, |&sequence| position(boot_id, sequence))
    }

    /// Sends the lines gathered so far; false once stopped (then nothing more is sent).
    pub(crate) fn flush(&mut self) -> bool {
        let boot_id = &self.boot_id;
        self.batcher.flush(|&sequence| position(boot_id, sequence))
    }
}

fn position(boot_id: &str, sequence: u64) -> Position {
    Position::Kmsg(KmsgPosition {
        boot_id: boot_id.to_string(),
        sequence,
    })
}
