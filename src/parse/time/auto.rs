//! [`TimeLayout::Auto`](super::TimeLayout::Auto): RFC 3339 and RFC 3164 timestamps, the two formats
//! rsyslog writes, parsed by hand because every drop line pays for it.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

use super::{Cursor, LocalZone, is_whitespace, with_inferred_year};

pub(super) fn parse_auto(
    line: &str,
    start: usize,
    zone: &LocalZone,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, usize)> {
    let bytes = line.as_bytes();
    let mut cursor = Cursor { bytes, at: start };
    let first = *bytes.get(start)?;
    let time = if first.is_ascii_digit() {
        parse_rfc3339(&mut cursor)?
    } else {
        parse_rfc3164(&mut cursor, zone, now)?
    };
    match bytes.get(cursor.at) {
        None => Some((time, cursor.at)),
        Some(byte) if is_whitespace(*byte) => Some((time, cursor.at)),
        Some(_) => None,
    }
}

/// `2026-11-25T21:05:35.429037+00:00`, with 0 to 9 (or more, ignored) fraction digits and `Z`.
fn parse_rfc3339(cursor: &mut Cursor) -> Option<DateTime<Utc>> {
    let year = cursor.digits(4, 4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2, 2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2, 2)?;
    match cursor.next()? {
        b'T' | b't' => {}
        _ => return None,
    }
    let (hour, minute, second, nanos) = cursor.clock()?;
    let offset = match cursor.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = cursor.digits(2, 2)?;
            if cursor.peek() == Some(b':') {
                cursor.at += 1;
            }
            let minutes = cursor.digits(2, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 3600 + minutes * 60) as i32;
            if sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = clock_time(hour, minute, second, nanos)?;
    let offset = FixedOffset::east_opt(offset)?;
    let local = offset.from_local_datetime(&date.and_time(time)).single()?;
    Some(local.with_timezone(&Utc))
}

/// `Nov 25 21:05:35` or `Nov  5 21:05:35` (an optional fraction is accepted), in `zone`.
fn parse_rfc3164(
    cursor: &mut Cursor,
    zone: &LocalZone,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let name = cursor.bytes.get(cursor.at..cursor.at + 3)?;
    let month = month_number(name)?;
    cursor.at += 3;
    cursor.whitespace()?;
    let day = cursor.digits(1, 2)?;
    cursor.whitespace()?;
    let (hour, minute, second, nanos) = cursor.clock()?;
    let time = clock_time(hour, minute, second, nanos)?;
    with_inferred_year(now, zone, |year| {
        let local = NaiveDate::from_ymd_opt(year, month, day)?.and_time(time);
        // No zone is more than 26 hours from UTC, so a clock time more than 50 hours after `now`
        // is more than a day ahead in any zone, and refused: skip the zone's rules for it (next
        // year's candidate, every line but around New Year).
        if local.and_utc() > now + TimeDelta::hours(50) {
            return None;
        }
        zone.instant(local, now)
    })
}

fn clock_time(hour: u32, minute: u32, second: u32, nanos: u32) -> Option<NaiveTime> {
    if second == 60 {
        // A leap second, which chrono writes as the 59th second plus one.
        NaiveTime::from_hms_nano_opt(hour, minute, 59, 1_000_000_000 + nanos)
    } else {
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)
    }
}

fn month_number(name: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = [
        name.first()? | 0x20,
        name.get(1)? | 0x20,
        name.get(2)? | 0x20,
    ];
    MONTHS
        .iter()
        .position(|month| **month == lower)
        .map(|index| index as u32 + 1)
}
