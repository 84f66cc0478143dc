//! `PACKET_DROP_CHANNEL_BUFFER_SIZE`: how many parsed drops may wait between the parser and the sink.
//!
//! The original agent's variable sized a Go channel of single drops, and old deployments carry values
//! chosen for that (10,000 is common). Here drops travel in batches, so the queue is shaped from the
//! number: as few batches as keep each at most [`MAX_BATCH_LINES`] lines, and the lines split evenly
//! among them. Sources put no more than `batch_lines` lines in a batch, and a batch of lines becomes at
//! most as many drops, so the queue never holds more drops than the variable says.

use std::num::NonZeroUsize;

/// The most lines a source puts in one batch: large enough that a burst costs few channel sends, small
/// enough that a batch is a few hundred KiB at most.
pub const MAX_BATCH_LINES: usize = 1024;

/// The shape of the parsed-drop queue: `batches` batches of at most `batch_lines` drops each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropQueue {
    pub batches: NonZeroUsize,
    pub batch_lines: NonZeroUsize,
}

impl DropQueue {
    /// A queue that holds at most `drops` drops, and at least `drops` minus `batches - 1`.
    pub fn holding(drops: NonZeroUsize) -> DropQueue {
        let batches = drops.get().div_ceil(MAX_BATCH_LINES);
        let batch_lines = drops.get() / batches;
        DropQueue {
            batches: NonZeroUsize::new(batches).expect("at least one drop: at least one batch"),
            batch_lines: NonZeroUsize::new(batch_lines).expect("batches <= drops"),
        }
    }

    /// The most drops the queue can hold.
    pub fn drops(&self) -> usize {
        self.batches.get() * self.batch_lines.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(drops: usize) -> DropQueue {
        DropQueue::holding(NonZeroUsize::new(drops).unwrap())
    }

    fn shape(batches: usize, batch_lines: usize) -> DropQueue {
        DropQueue {
            batches: NonZeroUsize::new(batches).unwrap(),
            batch_lines: NonZeroUsize::new(batch_lines).unwrap(),
        }
    }

    #[test]
    fn the_size_is_a_number_of_drops_as_in_the_original() {
        // The original's default, and a value migrated deployments carry.
        assert_eq!(queue(100), shape(1, 100));
        assert_eq!(queue(10_000), shape(10, 1000));
        assert_eq!(queue(10_000).drops(), 10_000);
        assert_eq!(queue(1), shape(1, 1));
        assert_eq!(queue(1024), shape(1, 1024));
        assert_eq!(queue(1025), shape(2, 512));
        assert_eq!(queue(1 << 20), shape(1024, 1024));
    }

    #[test]
    fn the_queue_never_holds_more_drops_than_the_size_nor_batches_over_the_maximum() {
        for drops in (1..5000).chain([65_535, 100_000, 999_999, 1 << 20]) {
            let queue = queue(drops);
            assert!(queue.drops() <= drops, "{drops}: {queue:?}");
            assert!(
                queue.drops() + queue.batches.get() > drops,
                "{drops}: {queue:?}"
            );
            assert!(
                queue.batch_lines.get() <= MAX_BATCH_LINES,
                "{drops}: {queue:?}"
            );
        }
    }
}
