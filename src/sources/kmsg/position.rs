//! Where reading starts, and which records come next: the start decided from a checkpoint and this
//! boot's id, and the sequence numbers of records read, which tell records already handled (skipped) and
//! records the ring buffer overwrote before we read them (counted as lost).
//!
//! Pure: the caller reads the device and the boot id, and counts what this reports.

use crate::model::KmsgPosition;

/// Where to position a newly opened /dev/kmsg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// At the oldest record still in the buffer, skipping records up to and including this sequence
    /// number (a checkpoint of this boot, or the last record read before a reopen).
    After(u64),
    /// At the oldest record still in the buffer: a checkpoint of another boot. Everything in the buffer
    /// is of this boot and newer than the checkpoint; lines too old are dropped later by expiry.
    Beginning,
    /// At the end: no checkpoint, only records written from now on.
    End,
}

/// The start for the first open, given the checkpoint (if any) and this boot's id.
pub(crate) fn first_start(saved: Option<&KmsgPosition>, boot_id: &str) -> Start {
    match saved {
        Some(position) if position.boot_id == boot_id => Start::After(position.sequence),
        Some(_) => Start::Beginning,
        None => Start::End,
    }
}

/// What to do with a record of a given sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Handled before (at or before the start's sequence number): skip it.
    Skip,
    /// A new record; `lost` records before it were overwritten unread.
    Take { lost: u64 },
}

/// Follows sequence numbers across reads, overwrites and reopens.
#[derive(Debug, Default)]
pub(crate) struct Sequence {
    /// The last record read (taken or skipped), or the checkpointed one before the first read.
    last: Option<u64>,
    /// Set by a start after a known record, and by an overwrite: the next record tells how many records
    /// were lost in between.
    gap: Gap,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Gap {
    #[default]
    None,
    /// Opened after `last`: records before the first one read may have been overwritten.
    Opened,
    /// The kernel reported an overwrite: at least one record was lost.
    Overwritten,
}

impl Sequence {
    /// Positions the tracker for `start`.
    pub(crate) fn started(&mut self, start: Start) {
        match start {
            Start::After(sequence) => {
                self.last = Some(sequence);
                self.gap = Gap::Opened;
            }
            Start::Beginning | Start::End => {
                self.last = None;
                self.gap = Gap::None;
            }
        }
    }

    /// The start for a reopen: after the last record read, or `initial` when none was read yet.
    pub(crate) fn restart(&self, initial: Start) -> Start {
        match self.last {
            Some(sequence) => Start::After(sequence),
            None => initial,
        }
    }

    /// The reader reported that records were overwritten before we read them (EPIPE).
    pub(crate) fn overwritten(&mut self) {
        self.gap = Gap::Overwritten;
    }

    /// The next record read has `sequence`.
    pub(crate) fn admit(&mut self, sequence: u64) -> Admit {
        let gap = std::mem::take(&mut self.gap);
        let expected = self.last.map(|last| last.saturating_add(1));
        if expected.is_some_and(|expected| sequence < expected) {
            // Only after a start: the kernel hands out records in order.
            return Admit::Skip;
        }
        self.last = Some(sequence);
        let missing = expected.map_or(0, |expected| sequence - expected);
        let lost = match gap {
            // Records of a device come numbered one by one; a jump without an overwrite is not ours
            // to count (a record that was not a record, or an imitating file numbered loosely).
            Gap::None => 0,
            Gap::Opened => missing,
            // The kernel says something was lost even when we cannot tell how much.
            Gap::Overwritten => missing.max(1),
        };
        Admit::Take { lost }
    }
}
