//! The zone of timestamps that carry none (RFC 3164 `Dec  2 16:20:06`, Antrea's `2026/12/02
//! 16:20:06`, a Go layout without `-07:00`): the host's, with its rules, so that each line gets the
//! offset in force on its own date — a line from before a daylight saving change read after it is
//! still right. A value loaded once at start (from `TZ` or `/etc/localtime`, in `config/`); reading
//! a line with it does no I/O.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

/// The host's time zone, as its rules (or a fixed offset).
#[derive(Clone, Debug)]
pub struct LocalZone(TimeZone);

impl LocalZone {
    pub fn new(zone: TimeZone) -> LocalZone {
        LocalZone(zone)
    }

    pub fn utc() -> LocalZone {
        LocalZone(TimeZone::UTC)
    }

    /// A zone `seconds` east of UTC all year (for tests and benchmarks).
    pub fn fixed(seconds: i32) -> LocalZone {
        let offset = Offset::from_seconds(seconds).expect("an offset within ±25 hours");
        LocalZone(TimeZone::fixed(offset))
    }

    /// The instant a wall-clock time of this zone stands for. `now` settles the hour a clock set back
    /// shows twice: the later of the two, unless that is still to come (then the earlier). Syslog
    /// lines are read just after they are written, so in the repeated hour a line written now must
    /// not come out an hour old (and be dropped as expired), and one from before the change not an
    /// hour ahead. A time the clock skipped (set forward) is read with the offset before the change,
    /// as most software does (one hour later than the skipped hour says).
    pub fn instant(&self, local: NaiveDateTime, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A leap second (chrono's second 59 with a nanosecond past 1e9) has its minute's offset.
        let nanos = local.nanosecond().min(999_999_999);
        let civil = jiff::civil::DateTime::new(
            i16::try_from(local.year()).ok()?,
            local.month() as i8,
            local.day() as i8,
            local.hour() as i8,
            local.minute() as i8,
            local.second() as i8,
            nanos as i32,
        )
        .ok()?;
        let at = |offset: Offset| {
            local
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset.seconds())))
                .map(|utc| utc.and_utc())
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => at(offset),
            AmbiguousOffset::Gap { before, .. } => at(before),
            AmbiguousOffset::Fold { before, after } => {
                let later = at(after)?;
                if later <= now {
                    Some(later)
                } else {
                    at(before)
                }
            }
        }
    }

    /// The year it is now on this zone's wall clock.
    pub fn year_at(&self, now: DateTime<Utc>) -> i32 {
        let offset = jiff::Timestamp::from_second(now.timestamp())
            .map(|timestamp| self.0.to_offset(timestamp).seconds())
            .unwrap_or(0);
        (now + TimeDelta::seconds(i64::from(offset))).year()
    }
}
