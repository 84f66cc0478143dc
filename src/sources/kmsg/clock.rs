//! From a record's time (microseconds since boot on the kernel's clock) to wall time.
//!
//! The kernel stamps records with its monotonic clock, which does not move when the wall clock is set.
//! A record's wall time is worked out when it is read: `now_realtime − (now_monotonic − usec)`, that is
//! the record's age subtracted from the wall time now. A wall clock set between the record and the read
//! therefore moves the record's time with it, which is what a reader of "now minus age" expects.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The two clocks, read at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clocks {
    /// `CLOCK_REALTIME`: since the Unix epoch.
    pub realtime: Duration,
    /// `CLOCK_MONOTONIC`: since boot (the clock /dev/kmsg stamps records with).
    pub monotonic: Duration,
}

impl Clocks {
    /// Reads both clocks now.
    pub(crate) fn now() -> Clocks {
        Clocks {
            realtime: clock_gettime(libc::CLOCK_REALTIME),
            monotonic: clock_gettime(libc::CLOCK_MONOTONIC),
        }
    }

    /// The wall time of a record stamped `usec` microseconds after boot.
    pub(crate) fn wall_time(self, usec: u64) -> DateTime<Utc> {
        // Signed: a record can be stamped a little after our monotonic reading when clocks of different
        // CPUs disagree, and a fake clock in a test can be anything.
        let nanos = self.realtime.as_nanos() as i128 - self.monotonic.as_nanos() as i128
            + i128::from(usec) * 1000;
        let seconds = nanos.div_euclid(1_000_000_000);
        let subsecond = nanos.rem_euclid(1_000_000_000) as u32;
        i64::try_from(seconds)
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, subsecond))
            // Only absurd clocks get here; the read time is then the best we know.
            .unwrap_or_else(|| DateTime::UNIX_EPOCH + self.realtime)
    }
}

fn clock_gettime(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to; both clocks exist on every Linux.
    let result = unsafe { libc::clock_gettime(clock, &mut now) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
