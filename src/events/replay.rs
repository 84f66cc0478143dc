//! What the events stage keeps so that a replay is counted once: the marks of the drops waiting for
//! an Event's first write in this run ([`PendingMarks`]), and which Events this run has written
//! ([`Written`]), whose later writes need only their last mark.
//!
//! After a restart the source reads again from its checkpoint; drops an Event counted before the
//! crash come again, in the same order, with the same marks. The writer compares them with the mark
//! the Event recorded (see `kubernetes/event_writer.rs`): those at or below it are not added.

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::WriteMarks;

/// Marks kept per waiting Event at most (16 bytes each): a replay that brings one Event more drops
/// than this counts the rest again.
const MAX_KEPT_MARKS: usize = 65_536;
/// Names remembered as written; past this the set starts afresh (a forgotten name's next write
/// carries its marks again, which costs memory, not correctness).
const MAX_WRITTEN_NAMES: usize = 200_000;

/// The marks of one waiting Event's drops.
#[derive(Debug, Default)]
pub struct PendingMarks {
    stream: Option<Arc<str>>,
    last: Option<u128>,
    /// `None` once the Event was written in this run (every later drop is new).
    each: Option<Vec<u128>>,
    unkept: u32,
}

impl PendingMarks {
    /// For an Event this run has (`written`) or has not yet written.
    pub fn new(written: bool) -> PendingMarks {
        PendingMarks {
            each: (!written).then(Vec::new),
            ..PendingMarks::default()
        }
    }

    /// One more drop, read at `mark` of `stream`.
    pub fn add(&mut self, stream: Option<&Arc<str>>, mark: Option<u128>) {
        if let Some(stream) = stream {
            self.stream = Some(stream.clone());
        }
        let Some(mark) = mark else { return };
        self.last = Some(self.last.map_or(mark, |last| last.max(mark)));
        if let Some(each) = &mut self.each {
            if each.len() < MAX_KEPT_MARKS {
                each.push(mark);
            } else {
                self.unkept = self.unkept.saturating_add(1);
            }
        }
    }

    /// The marks of a write of every waiting drop; nothing stays.
    pub fn take(&mut self) -> WriteMarks {
        let marks = WriteMarks {
            stream: self.stream.clone(),
            last: self.last,
            each: self.each.take().unwrap_or_default(),
            unkept: self.unkept,
        };
        self.last = None;
        self.unkept = 0;
        marks
    }
}

/// The Events this run has written (accepted by the API).
#[derive(Debug, Default)]
pub struct Written {
    names: HashSet<String>,
}

impl Written {
    pub fn insert(&mut self, name: &str) {
        if self.names.len() >= MAX_WRITTEN_NAMES {
            self.names.clear();
        }
        self.names.insert(name.to_string());
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_write_carries_every_mark_and_a_later_one_only_the_last() {
        let stream: Arc<str> = "file:/var/log/kern.log".into();
        let mut first = PendingMarks::new(false);
        for mark in [10, 20, 30] {
            first.add(Some(&stream), Some(mark));
        }
        let marks = first.take();
        assert_eq!(marks.each, [10, 20, 30]);
        assert_eq!((marks.last, marks.unkept), (Some(30), 0));
        assert_eq!(marks.stream.as_deref(), Some("file:/var/log/kern.log"));

        let mut later = PendingMarks::new(true);
        later.add(Some(&stream), Some(40));
        let marks = later.take();
        assert!(marks.each.is_empty());
        assert_eq!(marks.last, Some(40));
    }

    #[test]
    fn marks_past_the_cap_are_counted_not_kept() {
        let mut pending = PendingMarks::new(false);
        for mark in 0..(MAX_KEPT_MARKS as u128 + 5) {
            pending.add(None, Some(mark));
        }
        let marks = pending.take();
        assert_eq!(marks.each.len(), MAX_KEPT_MARKS);
        assert_eq!(marks.unkept, 5);
    }
}
