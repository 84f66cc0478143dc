//! The journal source's side of batching (`sources/batcher.rs` does the rest): entries as the reader
//! gives them, each batch ending at the cursor of its last entry, and the cursor last sent, which the
//! source reports when it stops.

use std::sync::Arc;

use crossbeam_channel::Sender;

use super::reader::Entry;
use crate::metrics::Metrics;
use crate::model::{Batch, JournalPosition, Line, Position};
use crate::sources::batcher::Batcher;
use crate::stop::Stop;

/// Gathers entries into batches and sends them: a full batch at once, the rest at `flush`.
pub(super) struct Output {
    /// Each entry ends at its cursor.
    batcher: Batcher<String>,
}

impl Output {
    pub(super) fn new(
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        max_batch_lines: usize,
    ) -> Output {
        Output {
            batcher: Batcher::new(out, stop, metrics, max_batch_lines),
        }
    }

    /// Adds an entry, sending the batch when it is full; false once stopped (then nothing more is sent).
    pub(super) fn add(&mut self, entry: Entry) -> bool {
        self.batcher
            .add(entry.line, entry.cursor, |cursor| position(cursor))
    }

    /// Hands on a place without an entry (where reading starts), unless entries are waiting.
    pub(super) fn mark(&mut self, cursor: &str) {
        self.batcher.mark(cursor.to_string());
    }

    /// The cursor of the last entry sent, if any was.
    pub(super) fn last_sent(&self) -> Option<&str> {
        self.batcher.last_sent().map(String::as_str)
    }

    /// Sends the entries gathered so far; false once stopped (then nothing more is sent).
    pub(super) fn flush(&mut self) -> bool {
        self.batcher.flush(|cursor| position(cursor))
    }
}

fn position(cursor: &str) -> Position {
    Position::Journald(JournalPosition {
        cursor: cursor.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use crossbeam_channel::bounded;

    fn entry(number: u32) -> Entry {
        Entry {
            line: Line {
                text: format!("line {number}"),
                time: DateTime::from_timestamp(1_700_000_000 + i64::from(number), 0),
                mark: crate::model::Mark {
                    content: 1,
                    offset: u64::from(number),
                },
            },
            cursor: format!("s=abc;i={number}"),
        }
    }

    fn texts(batch: &Batch<Line>) -> Vec<&str> {
        batch.items.iter().map(|line| line.text.as_str()).collect()
    }

    fn cursor(batch: &Batch<Line>) -> &str {
        match &batch.end {
            Some(Position::Journald(position)) => &position.cursor,
            other => panic!("not a journal position: {other:?}"),
        }
    }

    #[test]
    fn full_batches_go_at_once_and_the_rest_at_flush_each_ending_at_its_last_cursor() {
        let (sender, receiver) = bounded(10);
        let (_trigger, stop) = crate::stop::new();
        let metrics = Arc::new(Metrics::new());
        let mut output = Output::new(sender, stop, metrics.clone(), 2);
        for number in 1..=3 {
            assert!(output.add(entry(number)));
        }
        let first = receiver.try_recv().unwrap();
        assert_eq!(texts(&first), ["line 1", "line 2"]);
        assert_eq!(cursor(&first), "s=abc;i=2");
        assert!(receiver.try_recv().is_err());
        assert_eq!(output.last_sent(), Some("s=abc;i=2"));

        assert!(output.flush());
        let rest = receiver.try_recv().unwrap();
        assert_eq!(texts(&rest), ["line 3"]);
        assert_eq!(cursor(&rest), "s=abc;i=3");
        assert_eq!(output.last_sent(), Some("s=abc;i=3"));
        assert_eq!(metrics.lines_read.get(), 3);
        // Lag from the 2023 entry time to now: years, in seconds.
        assert!(metrics.source_lag_seconds.get() > 1e7);

        assert!(output.flush(), "an empty flush sends nothing and is fine");
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn a_stop_while_the_channel_is_full_ends_sending_without_counting() {
        let (sender, receiver) = bounded(1);
        let (trigger, stop) = crate::stop::new();
        let metrics = Arc::new(Metrics::new());
        let mut output = Output::new(sender, stop, metrics.clone(), 1);
        assert!(output.add(entry(1)));
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            trigger.trigger();
        });
        assert!(
            !output.add(entry(2)),
            "blocked on the full channel until the stop"
        );
        stopper.join().unwrap();
        assert!(!output.add(entry(3)));
        assert_eq!(metrics.lines_read.get(), 1);
        assert_eq!(output.last_sent(), Some("s=abc;i=1"));
        assert_eq!(receiver.len(), 1);
    }
}
