//! Record times (microseconds since boot) to wall time, with injected clocks and with the real ones.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::sources::kmsg::clock::Clocks;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_record_is_as_old_as_the_monotonic_clock_says() {
    let clocks = Clocks {
        // 2026-11-25T21:05:35.5Z, 1000.25 s after boot.
        realtime: Duration::new(1_795_640_735, 500_000_000),
        monotonic: Duration::new(1000, 250_000_000),
    };
    // Stamped 3.5 s after boot: 996.75 s before the reading.
    assert_eq!(clocks.wall_time(3_500_000), utc("2026-11-25T20:48:58.750Z"));
    // Stamped at the moment of reading, and a little after it (clocks of CPUs disagree).
    assert_eq!(
        clocks.wall_time(1_000_250_000),
        utc("2026-11-25T21:05:35.5Z")
    );
    assert_eq!(
        clocks.wall_time(1_000_250_001),
        utc("2026-11-25T21:05:35.500001Z")
    );
    // At boot.
    assert_eq!(clocks.wall_time(0), utc("2026-11-25T20:48:55.250Z"));
}

#[test]
fn absurd_clocks_give_the_read_time_not_a_panic() {
    let clocks = Clocks {
        realtime: Duration::from_secs(5),
        monotonic: Duration::from_secs(u64::MAX / 2),
    };
    assert_eq!(clocks.wall_time(0), utc("1970-01-01T00:00:05Z"));
    let _ = clocks.wall_time(u64::MAX);
}

#[test]
fn a_record_stamped_now_is_now() {
    let clocks = Clocks::now();
    let usec = clocks.monotonic.as_micros() as u64;
    let age = Utc::now().signed_duration_since(clocks.wall_time(usec));
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::seconds(1),
        "{age}"
    );
}
