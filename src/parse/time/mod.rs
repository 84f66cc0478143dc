//! Syslog timestamps: RFC 3339, RFC 3164, or a Go reference layout as the original agent took.
//!
//! The two formats rsyslog writes (RFC 3339 and RFC 3164) are parsed by hand in [`TimeLayout::Auto`],
//! because every drop line pays for it. Any other layout is given as the original agent took it, a Go
//! reference-time layout (`Jan _2 2006 15:04:05.000`), and is translated once, in
//! [`TimeLayout::from_go`], into chrono parsing items; a line is then parsed by walking those items.
//!
//! A timestamp without a year (RFC 3164, or a layout without `2006`/`06`) gets the year of `now`, unless
//! that puts it more than a day after `now`: then it is from last year (a December line read in January).
//! (A January 1st line read up to a day early, on December 31st, is from next year.)
//! A timestamp without a zone is in the [`LocalZone`] the caller gives, with the offset its rules give
//! for that timestamp's own date.
//!
//! `auto` holds the hand-written RFC 3339 / RFC 3164 parsers, `go` the translation of a Go layout
//! and the parsing with it; this module chooses between them and holds what both use.

mod auto;
mod go;
mod zone;

use chrono::{DateTime, TimeDelta, Utc};

pub use go::GoLayout;
pub use zone::LocalZone;

/// The original agent's default `PACKET_DROP_LOG_TIME_LAYOUT`.
pub const ORIGINAL_DEFAULT_LAYOUT: &str = "2006-01-02T15:04:05.000000-07:00";

/// Go layouts that [`TimeLayout::Auto`] parses at least as well as Go would: the original default,
/// `time.RFC3339`, `time.RFC3339Nano` and the `time.Stamp` family (what rsyslog writes).
const AUTO_LAYOUTS: [&str; 7] = [
    ORIGINAL_DEFAULT_LAYOUT,
    "2006-01-02T15:04:05Z07:00",
    "2006-01-02T15:04:05.999999999Z07:00",
    "Jan _2 15:04:05",
    "Jan _2 15:04:05.000",
    "Jan _2 15:04:05.000000",
    "Jan _2 15:04:05.000000000",
];

/// A time layout that cannot be used; the message says why, for a person fixing the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

/// How the timestamp at the start of a syslog line is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeLayout {
    /// RFC 3339 with any fraction and `Z` or an offset, or RFC 3164 `Jan _2 15:04:05`.
    Auto,
    /// Any other Go reference layout, translated once by [`TimeLayout::from_go`].
    Go(GoLayout),
}

impl TimeLayout {
    /// Translates a Go reference layout (`2006-01-02T15:04:05.000000-07:00`, `Jan _2 15:04:05`, ...).
    /// Layouts that [`TimeLayout::Auto`] covers, such as [`ORIGINAL_DEFAULT_LAYOUT`], become `Auto`.
    ///
    /// Parsing is a little more lenient than Go's: numbers need not be zero-padded, and a fraction
    /// may have any number of digits.
    pub fn from_go(layout: &str) -> Result<TimeLayout, LayoutError> {
        let layout = layout.trim();
        if AUTO_LAYOUTS.contains(&layout) {
            return Ok(TimeLayout::Auto);
        }
        go::translate(layout).map(TimeLayout::Go)
    }

    /// Parses the timestamp at the start of `line` (after any whitespace). Returns the time and the
    /// byte index just after the timestamp, which is the end of the line or a whitespace character.
    pub fn parse_at_start(
        &self,
        line: &str,
        zone: &LocalZone,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, usize)> {
        let start = skip_whitespace(line.as_bytes(), 0);
        match self {
            TimeLayout::Auto => auto::parse_auto(line, start, zone, now),
            TimeLayout::Go(layout) => layout.parse(line, start, zone, now),
        }
    }
}

/// The latest year that does not put the time more than a day after `now`: the year of `now` (in
/// `zone`), the year before for a December line read in January, or the year after for a January line
/// read just before midnight on December 31 by a clock that is a little behind. `make` builds the time
/// for a given year, or fails (Feb 29, a weekday that does not fit).
fn with_inferred_year(
    now: DateTime<Utc>,
    zone: &LocalZone,
    make: impl Fn(i32) -> Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let year = zone.year_at(now);
    let latest = now + TimeDelta::days(1);
    [year + 1, year, year - 1]
        .into_iter()
        .find_map(|year| make(year).filter(|time| *time <= latest))
}

/// A position in a line, moved forward by the hand-written parsers. Every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    /// At least `min` and at most `max` decimal digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let mut value = 0u32;
        let mut count = 0;
        while count < max {
            match self.peek() {
                Some(byte @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(byte - b'0');
                    self.at += 1;
                    count += 1;
                }
                _ => break,
            }
        }
        (count >= min).then_some(value)
    }

    /// One or more spaces or tabs.
    fn whitespace(&mut self) -> Option<()> {
        let after = skip_whitespace(self.bytes, self.at);
        (after > self.at).then(|| self.at = after)
    }

    /// `15:04:05` with an optional `.` or `,` fraction: (hour, minute, second, nanoseconds).
    fn clock(&mut self) -> Option<(u32, u32, u32, u32)> {
        let hour = self.digits(2, 2)?;
        self.expect(b':')?;
        let minute = self.digits(2, 2)?;
        self.expect(b':')?;
        let second = self.digits(2, 2)?;
        let mut nanos = 0;
        if matches!(self.peek(), Some(b'.' | b',')) {
            self.at += 1;
            nanos = self.fraction()?;
        }
        Some((hour, minute, second, nanos))
    }

    /// One or more digits as a fraction of a second; digits past the ninth are skipped.
    fn fraction(&mut self) -> Option<u32> {
        let mut nanos = 0u32;
        let mut count = 0;
        while let Some(byte @ b'0'..=b'9') = self.peek() {
            if count < 9 {
                nanos = nanos * 10 + u32::from(byte - b'0');
            }
            count += 1;
            self.at += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
        Some(nanos)
    }
}

pub(super) fn is_whitespace(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn is_whitespace_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(super) fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|byte| is_whitespace(*byte)) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests;
