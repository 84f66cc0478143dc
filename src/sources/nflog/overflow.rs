//! Exact overflow counts. When the receive buffer is full the kernel drops each further message for
//! the socket, adds it to the socket's drop count (the `Drops` column of /proc/net/netlink), and
//! reports ENOBUFS once per episode, until the queue has drained. So the count is read at the ENOBUFS
//! and again once the queue is empty (the episode's drops are all in by then), and each time only what
//! is new is added. Where /proc cannot be read, each ENOBUFS counts as one (a lower bound), and a later
//! exact reading does not count those again.

#[derive(Debug, Default)]
pub struct OverflowCount {
    /// The kernel's count as last read.
    baseline: u64,
    /// Drops counted as one per ENOBUFS since the last exact reading.
    guessed: u64,
    /// An episode began and its final count is still to be read.
    pending: bool,
}

impl OverflowCount {
    /// ENOBUFS: `total` is the kernel's count now, when readable. Returns the drops to add.
    pub fn reported(&mut self, total: Option<u64>) -> u64 {
        self.pending = true;
        match total {
            Some(total) => self.exact(total),
            None => {
                self.guessed += 1;
                1
            }
        }
    }

    /// The queue drained (or the socket is about to close): the episode's last reading. Returns the
    /// drops to add.
    pub fn drained(&mut self, total: Option<u64>) -> u64 {
        if !std::mem::take(&mut self.pending) {
            return 0;
        }
        total.map_or(0, |total| self.exact(total))
    }

    pub fn is_pending(&self) -> bool {
        self.pending
    }

    fn exact(&mut self, total: u64) -> u64 {
        let new = total.saturating_sub(self.baseline);
        self.baseline = self.baseline.max(total);
        let add = new.saturating_sub(self.guessed);
        self.guessed = self.guessed.saturating_sub(new);
        add
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_during_the_drain_are_counted_at_its_end() {
        let mut count = OverflowCount::default();
        assert_eq!(count.reported(Some(40)), 40);
        assert!(count.is_pending());
        // The kernel dropped 25 more while the queue was read down.
        assert_eq!(count.drained(Some(65)), 25);
        assert!(!count.is_pending());
        // Nothing pending: an empty queue later adds nothing, whatever is read.
        assert_eq!(count.drained(Some(65)), 0);
        assert_eq!(count.reported(Some(70)), 5);
        assert_eq!(count.drained(Some(70)), 0);
    }

    #[test]
    fn guesses_while_proc_is_unreadable_are_not_counted_again() {
        let mut count = OverflowCount::default();
        assert_eq!(count.reported(None), 1);
        assert_eq!(count.reported(None), 1);
        // Readable again: 10 drops in all, 2 of them already counted.
        assert_eq!(count.drained(Some(10)), 8);
        assert_eq!(count.reported(Some(12)), 2);
        let total = 1 + 1 + 8 + 2;
        assert_eq!(total, 12);
    }

    #[test]
    fn an_unreadable_final_count_adds_nothing_and_ends_the_episode() {
        let mut count = OverflowCount::default();
        assert_eq!(count.reported(Some(3)), 3);
        assert_eq!(count.drained(None), 0);
        assert!(!count.is_pending());
    }
}
