//! What the events stage keeps so that a replay is counted once: the marks of the drops waiting for
//! an Event's first write in this run ([`PendingMarks`]), and which Events this run has written
//! ([`Written`]), whose later writes need only how far they reach in each content.
//!
//! After a restart the source reads again from its checkpoint; drops an Event counted before the
//! crash come again, in the same order, with the same marks. The writer compares an Event's first
//! write with what the Event recorded (see `kubernetes/counted.rs`); once written, the Event's record
//! comes back with the outcome and later drops are compared here, as they come (a replay can reach
//! past the first write).

use std::collections::HashMap;

use crate::model::{Mark, WriteMarks};

/// Marks kept per waiting Event at most (16 bytes each): a replay that brings one Event more drops
/// than this counts the rest again.
const MAX_KEPT_MARKS: usize = 65_536;
/// Names remembered as written; past this the set starts afresh (a forgotten name's next write
/// carries its marks again, which costs memory, not correctness).
const MAX_WRITTEN_NAMES: usize = 200_000;

/// The marks of one waiting Event's drops.
#[derive(Debug, Default)]
pub struct PendingMarks {
    /// The highest offset per content, in the order the contents were read.
    through: Vec<Mark>,
    /// `None` once the Event was written in this run (every later drop is new).
    each: Option<Vec<Mark>>,
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

    /// `drops` more drops, read at `mark` (one line may stand for several: each has the mark).
    pub fn add(&mut self, mark: Option<Mark>, drops: u32) {
        let Some(mark) = mark else { return };
        raise(&mut self.through, mark);
        if let Some(each) = &mut self.each {
            // Counted, not looped: one line may stand for up to u32::MAX drops (Antrea's
            // `[N packets in D]`), which one at a time would stall the stage for seconds.
            let drops = drops as usize;
            let kept = drops.min(MAX_KEPT_MARKS.saturating_sub(each.len()));
            each.extend(std::iter::repeat_n(mark, kept));
            let unkept = u32::try_from(drops - kept).unwrap_or(u32::MAX);
            self.unkept = self.unkept.saturating_add(unkept);
        }
    }

    /// The marks of a write of every waiting drop; nothing stays.
    pub fn take(&mut self) -> WriteMarks {
        WriteMarks {
            through: std::mem::take(&mut self.through),
            each: self.each.take().unwrap_or_default(),
            unkept: std::mem::take(&mut self.unkept),
        }
    }
}

/// Raises `through`'s offset for `mark`'s content to `mark`'s, or adds the content at the end.
pub fn raise(through: &mut Vec<Mark>, mark: Mark) {
    match through
        .iter_mut()
        .find(|known| known.content == mark.content)
    {
        Some(known) => known.offset = known.offset.max(mark.offset),
        None => through.push(mark),
    }
}

/// The Events this run has written (accepted by the API), with how far each has counted per content.
#[derive(Debug, Default)]
pub struct Written {
    names: HashMap<String, Vec<Mark>>,
}

impl Written {
    pub fn insert(&mut self, name: &str, through: Vec<Mark>) {
        if self.names.len() >= MAX_WRITTEN_NAMES {
            self.names.clear();
        }
        self.names.insert(name.to_string(), through);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Whether the written Event `name` has counted the drop at `mark` already: a replay of an
    /// earlier run that reaches past the Event's first write of this run.
    pub fn counted(&self, name: &str, mark: Option<Mark>) -> bool {
        let (Some(through), Some(mark)) = (self.names.get(name), mark) else {
            return false;
        };
        through
            .iter()
            .any(|known| known.content == mark.content && mark.offset <= known.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(content: u64, offset: u64) -> Mark {
        Mark { content, offset }
    }

    #[test]
    fn a_first_write_carries_every_mark_and_a_later_one_only_how_far_it_reaches() {
        let mut first = PendingMarks::new(false);
        for m in [mark(1, 10), mark(1, 20), mark(2, 5)] {
            first.add(Some(m), 1);
        }
        let marks = first.take();
        assert_eq!(marks.each, [mark(1, 10), mark(1, 20), mark(2, 5)]);
        assert_eq!(marks.through, [mark(1, 20), mark(2, 5)]);
        assert_eq!(marks.unkept, 0);

        let mut later = PendingMarks::new(true);
        later.add(Some(mark(2, 40)), 1);
        let marks = later.take();
        assert!(marks.each.is_empty());
        assert_eq!(marks.through, [mark(2, 40)]);
    }

    #[test]
    fn marks_past_the_cap_are_counted_not_kept() {
        let mut pending = PendingMarks::new(false);
        for offset in 0..(MAX_KEPT_MARKS as u64 + 5) {
            pending.add(Some(mark(7, offset)), 1);
        }
        let marks = pending.take();
        assert_eq!(marks.each.len(), MAX_KEPT_MARKS);
        assert_eq!(marks.unkept, 5);
    }

    #[test]
    fn a_line_standing_for_u32_max_drops_keeps_the_cap_and_counts_the_rest() {
        let mut pending = PendingMarks::new(false);
        pending.add(Some(mark(7, 1)), 3);
        pending.add(Some(mark(7, 2)), u32::MAX);
        pending.add(Some(mark(7, 3)), u32::MAX);
        let marks = pending.take();
        assert_eq!(marks.each.len(), MAX_KEPT_MARKS);
        assert_eq!(
            marks.each[..4],
            [mark(7, 1), mark(7, 1), mark(7, 1), mark(7, 2)]
        );
        assert_eq!(marks.unkept, u32::MAX);
        assert_eq!(marks.through, [mark(7, 3)]);
    }
}
