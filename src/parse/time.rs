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
//! A timestamp without a zone is in the `local_offset` the caller gives.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems, parse_and_remainder};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

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

/// A Go reference layout translated into parsing steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoLayout {
    layout: String,
    steps: Vec<Step>,
    has_year: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Consecutive items chrono parses itself.
    Items(Vec<Item<'static>>),
    /// Fractional seconds after `.` or `,` (Go accepts either, whatever the layout says). Not `required`
    /// after a seconds element that the layout gives no fraction for: Go accepts one there too.
    Fraction { required: bool },
    /// A zone abbreviation (`MST`): chrono would skip it, but `UTC` must mean UTC.
    ZoneName,
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
        translate(layout).map(TimeLayout::Go)
    }

    /// Parses the timestamp at the start of `line` (after any whitespace). Returns the time and the
    /// byte index just after the timestamp, which is the end of the line or a whitespace character.
    pub fn parse_at_start(
        &self,
        line: &str,
        local_offset: FixedOffset,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, usize)> {
        let start = skip_whitespace(line.as_bytes(), 0);
        match self {
            TimeLayout::Auto => parse_auto(line, start, local_offset, now),
            TimeLayout::Go(layout) => layout.parse(line, start, local_offset, now),
        }
    }
}

impl GoLayout {
    /// The layout as configured.
    pub fn layout(&self) -> &str {
        &self.layout
    }

    fn parse(
        &self,
        line: &str,
        start: usize,
        local_offset: FixedOffset,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, usize)> {
        let mut rest = line.get(start..)?;
        let mut parsed = Parsed::new();
        for step in &self.steps {
            rest = match step {
                Step::Items(items) => parse_and_remainder(&mut parsed, rest, items.iter()).ok()?,
                Step::Fraction { required } => parse_fraction(&mut parsed, rest, *required)?,
                Step::ZoneName => parse_zone_name(&mut parsed, rest)?,
            };
        }
        if !rest.is_empty() && !rest.starts_with(is_whitespace_char) {
            return None;
        }
        let end = line.len() - rest.len();
        if parsed.offset().is_none() {
            parsed
                .set_offset(i64::from(local_offset.local_minus_utc()))
                .ok()?;
        }
        let offset = FixedOffset::east_opt(parsed.offset()?)?;
        let time = if self.has_year {
            parsed.to_datetime().ok()?.with_timezone(&Utc)
        } else {
            with_inferred_year(now, offset, |year| {
                let mut parsed = parsed.clone();
                parsed.set_year(i64::from(year)).ok()?;
                Some(parsed.to_datetime().ok()?.with_timezone(&Utc))
            })?
        };
        Some((time, end))
    }
}

/// The latest year that does not put the time more than a day after `now`: the year of `now` (in
/// `offset`), the year before for a December line read in January, or the year after for a January line
/// read just before midnight on December 31 by a clock that is a little behind. `make` builds the time
/// for a given year, or fails (Feb 29, a weekday that does not fit).
fn with_inferred_year(
    now: DateTime<Utc>,
    offset: FixedOffset,
    make: impl Fn(i32) -> Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let year = now.with_timezone(&offset).year();
    let latest = now + TimeDelta::days(1);
    [year + 1, year, year - 1]
        .into_iter()
        .find_map(|year| make(year).filter(|time| *time <= latest))
}

fn parse_auto(
    line: &str,
    start: usize,
    local_offset: FixedOffset,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, usize)> {
    let bytes = line.as_bytes();
    let mut cursor = Cursor { bytes, at: start };
    let first = *bytes.get(start)?;
    let time = if first.is_ascii_digit() {
        parse_rfc3339(&mut cursor)?
    } else {
        parse_rfc3164(&mut cursor, local_offset, now)?
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

/// `Nov 25 21:05:35` or `Nov  5 21:05:35` (an optional fraction is accepted), in `local_offset`.
fn parse_rfc3164(
    cursor: &mut Cursor,
    local_offset: FixedOffset,
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
    with_inferred_year(now, local_offset, |year| {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let local = local_offset
            .from_local_datetime(&date.and_time(time))
            .single()?;
        Some(local.with_timezone(&Utc))
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

fn parse_fraction<'a>(parsed: &mut Parsed, rest: &'a str, required: bool) -> Option<&'a str> {
    let bytes = rest.as_bytes();
    let has_fraction = matches!(bytes.first(), Some(b'.' | b','))
        && bytes.get(1).is_some_and(|byte| byte.is_ascii_digit());
    if !has_fraction {
        return if required { None } else { Some(rest) };
    }
    let mut cursor = Cursor { bytes, at: 1 };
    let nanos = cursor.fraction()?;
    parsed.set_nanosecond(i64::from(nanos)).ok()?;
    rest.get(cursor.at..)
}

/// A zone abbreviation (`UTC`, `CET`, `PST`) or a numeric one (`+07`, `-0330`). `UTC`, `GMT` and
/// numeric ones set the offset; any other name is taken to be the local zone's (syslog writes the local
/// one), so the offset is left for the caller's `local_offset`.
fn parse_zone_name<'a>(parsed: &mut Parsed, rest: &'a str) -> Option<&'a str> {
    let bytes = rest.as_bytes();
    if let Some(sign @ (b'+' | b'-')) = bytes.first() {
        let mut cursor = Cursor { bytes, at: 1 };
        let hours = cursor.digits(2, 2)?;
        let minutes = cursor.digits(2, 2).unwrap_or(0);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let seconds = i64::from(hours * 3600 + minutes * 60);
        parsed
            .set_offset(if *sign == b'-' { -seconds } else { seconds })
            .ok()?;
        return rest.get(cursor.at..);
    }
    let length = bytes
        .iter()
        .take_while(|byte| byte.is_ascii_alphabetic())
        .count();
    if !(3..=5).contains(&length) {
        return None;
    }
    let (name, after) = rest.split_at_checked(length)?;
    if name == "UTC" || name == "GMT" {
        parsed.set_offset(0).ok()?;
    }
    Some(after)
}

/// One Go reference-time element, as Go's `nextStdChunk` recognizes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    LongYear,
    Year,
    LongMonth,
    Month,
    NumMonth,
    Day,
    YearDay,
    LongWeekday,
    Weekday,
    Hour,
    Hour12,
    Minute,
    Second,
    UpperPm,
    LowerPm,
    ZoneName,
    /// `-0700`, `-07:00`, `-07`, and with `Z` allowed for UTC: `Z0700`, `Z07:00`, `Z07`.
    Offset {
        colon: bool,
        short: bool,
        zulu: bool,
    },
    Fraction {
        required: bool,
    },
    /// An element chrono cannot parse (offsets with seconds).
    Unsupported(&'static str),
}

/// Finds the first element in `layout`: the byte index where it starts, its length, and what it is.
fn next_element(layout: &str) -> Option<(usize, usize, Element)> {
    let bytes = layout.as_bytes();
    let lower_at = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_lowercase);
    for at in 0..bytes.len() {
        let rest = &bytes[at..];
        let found = match rest[0] {
            b'J' if rest.starts_with(b"January") => Some((7, Element::LongMonth)),
            b'J' if rest.starts_with(b"Jan") && !lower_at(at + 3) => Some((3, Element::Month)),
            b'M' if rest.starts_with(b"Monday") => Some((6, Element::LongWeekday)),
            b'M' if rest.starts_with(b"Mon") && !lower_at(at + 3) => Some((3, Element::Weekday)),
            b'M' if rest.starts_with(b"MST") => Some((3, Element::ZoneName)),
            b'0' => match rest.get(1) {
                Some(b'1') => Some((2, Element::NumMonth)),
                Some(b'2') => Some((2, Element::Day)),
                Some(b'3') => Some((2, Element::Hour12)),
                Some(b'4') => Some((2, Element::Minute)),
                Some(b'5') => Some((2, Element::Second)),
                Some(b'6') => Some((2, Element::Year)),
                Some(b'0') if rest.get(2) == Some(&b'2') => Some((3, Element::YearDay)),
                _ => None,
            },
            b'1' if rest.starts_with(b"15") => Some((2, Element::Hour)),
            b'1' => Some((1, Element::NumMonth)),
            b'2' if rest.starts_with(b"2006") => Some((4, Element::LongYear)),
            b'2' => Some((1, Element::Day)),
            // `_2006` is a literal `_` and a year; `_2` a space-padded day, `__2` a padded year day.
            b'_' if rest.starts_with(b"_2006") => return Some((at + 1, 4, Element::LongYear)),
            b'_' if rest.starts_with(b"_2") => Some((2, Element::Day)),
            b'_' if rest.starts_with(b"__2") => Some((3, Element::YearDay)),
            b'3' => Some((1, Element::Hour12)),
            b'4' => Some((1, Element::Minute)),
            b'5' => Some((1, Element::Second)),
            b'P' if rest.starts_with(b"PM") => Some((2, Element::UpperPm)),
            b'p' if rest.starts_with(b"pm") => Some((2, Element::LowerPm)),
            b'-' | b'Z' => offset_element(rest),
            b'.' | b',' => fraction_element(rest),
            _ => None,
        };
        if let Some((length, element)) = found {
            return Some((at, length, element));
        }
    }
    None
}

fn offset_element(rest: &[u8]) -> Option<(usize, Element)> {
    let zulu = rest.first() == Some(&b'Z');
    let digits = rest.get(1..)?;
    let offset = |length, colon, short| Some((length, Element::Offset { colon, short, zulu }));
    if digits.starts_with(b"070000") {
        Some((
            7,
            Element::Unsupported(if zulu { "Z070000" } else { "-070000" }),
        ))
    } else if digits.starts_with(b"07:00:00") {
        Some((
            9,
            Element::Unsupported(if zulu { "Z07:00:00" } else { "-07:00:00" }),
        ))
    } else if digits.starts_with(b"0700") {
        offset(5, false, false)
    } else if digits.starts_with(b"07:00") {
        offset(6, true, false)
    } else if digits.starts_with(b"07") {
        offset(3, false, true)
    } else {
        None
    }
}

/// `.000`, `,000`, `.999`, `,999` with 1 to 9 digits, not followed by another digit.
fn fraction_element(rest: &[u8]) -> Option<(usize, Element)> {
    let digit = *rest
        .get(1)
        .filter(|digit| **digit == b'0' || **digit == b'9')?;
    let count = rest[1..].iter().take_while(|byte| **byte == digit).count();
    if rest.get(1 + count).is_some_and(u8::is_ascii_digit) || count > 9 {
        return None;
    }
    Some((
        1 + count,
        Element::Fraction {
            required: digit == b'0',
        },
    ))
}

/// What a layout has, to reject one that cannot give a point in time.
#[derive(Default)]
struct Seen {
    any: bool,
    year: bool,
    month: bool,
    day: bool,
    year_day: bool,
    hour: bool,
    hour12: bool,
    pm: bool,
    minute: bool,
}

fn translate(layout: &str) -> Result<GoLayout, LayoutError> {
    let mut steps = Vec::new();
    let mut seen = Seen::default();
    let mut rest = layout;
    // After a seconds element, Go accepts a fraction even where the layout has none.
    let mut after_seconds = false;
    while let Some((start, length, element)) = next_element(rest) {
        let (literal, after) = rest.split_at(start);
        if after_seconds && !(literal.is_empty() && matches!(element, Element::Fraction { .. })) {
            steps.push(Step::Fraction { required: false });
        }
        push_literal(&mut steps, literal);
        after_seconds = element == Element::Second;
        seen.any = true;
        push_element(&mut steps, &mut seen, element)?;
        rest = after.get(length..).unwrap_or_default();
    }
    if after_seconds {
        steps.push(Step::Fraction { required: false });
    }
    push_literal(&mut steps, rest);
    check_complete(&seen)?;
    Ok(GoLayout {
        layout: layout.to_string(),
        steps,
        has_year: seen.year,
    })
}

fn check_complete(seen: &Seen) -> Result<(), LayoutError> {
    let problem = if !seen.any {
        "it has no element of Go's reference time Mon Jan 2 15:04:05 MST 2006 \
         (write it like \"Jan _2 15:04:05\" or \"2006-01-02T15:04:05Z07:00\")"
    } else if !(seen.year_day || seen.month && seen.day) {
        "it has no month and day (Jan or 01, and 02 or _2)"
    } else if !(seen.hour || seen.hour12) || !seen.minute {
        "it has no hour and minute (15 and 04)"
    } else if seen.hour12 && !seen.pm {
        "it has a 12-hour clock (03) without PM"
    } else {
        return Ok(());
    };
    Err(LayoutError(problem.to_string()))
}

fn push_element(
    steps: &mut Vec<Step>,
    seen: &mut Seen,
    element: Element,
) -> Result<(), LayoutError> {
    let numeric = |numeric| Item::Numeric(numeric, Pad::None);
    let item = match element {
        Element::LongYear => {
            seen.year = true;
            numeric(Numeric::Year)
        }
        Element::Year => {
            seen.year = true;
            numeric(Numeric::YearMod100)
        }
        Element::LongMonth => {
            seen.month = true;
            Item::Fixed(Fixed::LongMonthName)
        }
        Element::Month => {
            seen.month = true;
            Item::Fixed(Fixed::ShortMonthName)
        }
        Element::NumMonth => {
            seen.month = true;
            numeric(Numeric::Month)
        }
        Element::Day => {
            seen.day = true;
            numeric(Numeric::Day)
        }
        Element::YearDay => {
            seen.year_day = true;
            numeric(Numeric::Ordinal)
        }
        Element::LongWeekday => Item::Fixed(Fixed::LongWeekdayName),
        Element::Weekday => Item::Fixed(Fixed::ShortWeekdayName),
        Element::Hour => {
            seen.hour = true;
            numeric(Numeric::Hour)
        }
        Element::Hour12 => {
            seen.hour12 = true;
            numeric(Numeric::Hour12)
        }
        Element::Minute => {
            seen.minute = true;
            numeric(Numeric::Minute)
        }
        Element::Second => numeric(Numeric::Second),
        Element::UpperPm | Element::LowerPm => {
            seen.pm = true;
            Item::Fixed(if element == Element::UpperPm {
                Fixed::UpperAmPm
            } else {
                Fixed::LowerAmPm
            })
        }
        Element::ZoneName => {
            steps.push(Step::ZoneName);
            return Ok(());
        }
        Element::Offset { short: true, .. } => permissive_offset(),
        Element::Offset {
            colon: true,
            zulu: true,
            ..
        } => Item::Fixed(Fixed::TimezoneOffsetColonZ),
        Element::Offset {
            colon: true,
            zulu: false,
            ..
        } => Item::Fixed(Fixed::TimezoneOffsetColon),
        Element::Offset { zulu: true, .. } => Item::Fixed(Fixed::TimezoneOffsetZ),
        Element::Offset { .. } => Item::Fixed(Fixed::TimezoneOffset),
        Element::Fraction { required } => {
            steps.push(Step::Fraction { required });
            return Ok(());
        }
        Element::Unsupported(token) => {
            return Err(LayoutError(format!(
                "zone offsets with seconds ({token}) are not supported"
            )));
        }
    };
    push_item(steps, item);
    Ok(())
}

/// chrono's parse-only `%#z`: `+07`, `+0700` or `+07:00` (and `Z`). Its item has no public name.
fn permissive_offset() -> Item<'static> {
    StrftimeItems::new("%#z")
        .next()
        .unwrap_or(Item::Fixed(Fixed::TimezoneOffsetZ))
}

/// Literal layout text: runs of whitespace match any whitespace, everything else must match exactly.
fn push_literal(steps: &mut Vec<Step>, literal: &str) {
    let mut rest = literal;
    while !rest.is_empty() {
        let space = rest.starts_with(is_whitespace_char);
        let length = rest
            .find(|c: char| is_whitespace_char(c) != space)
            .unwrap_or(rest.len());
        let (run, after) = rest.split_at(length);
        push_item(
            steps,
            if space {
                Item::Space("")
            } else {
                Item::OwnedLiteral(run.into())
            },
        );
        rest = after;
    }
}

fn push_item(steps: &mut Vec<Step>, item: Item<'static>) {
    match steps.last_mut() {
        Some(Step::Items(items)) => items.push(item),
        _ => steps.push(Step::Items(vec![item])),
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
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn offset(hours: i32) -> FixedOffset {
        FixedOffset::east_opt(hours * 3600).expect("offset")
    }

    /// Parses the timestamp of `line` and returns it with the text after it.
    fn parse<'a>(
        layout: &TimeLayout,
        line: &'a str,
        local: FixedOffset,
        now: &str,
    ) -> Option<(DateTime<Utc>, &'a str)> {
        let (time, end) = layout.parse_at_start(line, local, utc(now))?;
        Some((time, &line[end..]))
    }

    fn auto(line: &str, now: &str) -> Option<DateTime<Utc>> {
        parse(&TimeLayout::Auto, line, offset(0), now).map(|(time, _)| time)
    }

    fn go(layout: &str) -> TimeLayout {
        TimeLayout::from_go(layout).expect("a valid layout")
    }

    const NOW: &str = "2026-11-26T00:00:00Z";

    #[test]
    fn rfc3339_with_any_fraction_and_zone() {
        let cases = [
            ("2026-11-25T21:05:35+00:00 vm", "2026-11-25T21:05:35Z"),
            (
                "2026-11-25T21:05:35.429+00:00 vm",
                "2026-11-25T21:05:35.429Z",
            ),
            (
                "2026-11-25T21:05:35.429037+00:00 vm",
                "2026-11-25T21:05:35.429037Z",
            ),
            (
                "2026-11-25T21:05:35.429037123+00:00 vm",
                "2026-11-25T21:05:35.429037123Z",
            ),
            (
                "2026-11-25T21:05:35.4290371239Z vm",
                "2026-11-25T21:05:35.429037123Z",
            ),
            ("2026-11-25T21:05:35Z vm", "2026-11-25T21:05:35Z"),
            ("2026-11-25T16:05:35.5-05:00 vm", "2026-11-25T21:05:35.5Z"),
            ("2026-11-25T22:05:35+0100", "2026-11-25T21:05:35Z"),
        ];
        for (line, expected) in cases {
            assert_eq!(auto(line, NOW), Some(utc(expected)), "{line}");
        }
        let (_, rest) = parse(
            &TimeLayout::Auto,
            "2026-11-25T21:05:35Z vm kernel:",
            offset(0),
            NOW,
        )
        .expect("time");
        assert_eq!(rest, " vm kernel:");
    }

    #[test]
    fn rfc3339_that_is_not_valid_is_rejected() {
        for line in [
            "2026-11-25T21:05:35 vm",
            "2026-11-25T21:05:35.Z vm",
            "2026-11-25 21:05:35Z vm",
            "2026-02-30T21:05:35Z vm",
            "2026-11-25T21:05:35+24:00 vm",
            "2026-11-25T21:05:35Zvm",
            "2026-11-25T21:05",
        ] {
            assert_eq!(auto(line, NOW), None, "{line}");
        }
    }

    #[test]
    fn rfc3164_gets_the_year_of_now_and_the_local_offset() {
        assert_eq!(
            auto("Nov 25 21:05:35 vm", NOW),
            Some(utc("2026-11-25T21:05:35Z"))
        );
        assert_eq!(
            auto("Nov  5 21:05:35 vm", NOW),
            Some(utc("2026-11-05T21:05:35Z"))
        );
        let new_york = FixedOffset::west_opt(5 * 3600).expect("offset");
        let (time, rest) =
            parse(&TimeLayout::Auto, "Nov  5 21:05:35 vm", new_york, NOW).expect("time");
        assert_eq!(time, utc("2026-11-06T02:05:35Z"));
        assert_eq!(rest, " vm");
    }

    #[test]
    fn rfc3164_from_december_read_on_new_year_is_last_year() {
        assert_eq!(
            auto("Dec 31 23:59:58 vm", "2027-01-01T00:00:05Z"),
            Some(utc("2026-12-31T23:59:58Z"))
        );
        // Up to a day ahead of `now` (a clock a little off) stays in this year.
        assert_eq!(
            auto("Jan  1 00:00:10 vm", "2026-12-31T23:59:00Z"),
            Some(utc("2027-01-01T00:00:10Z"))
        );
        assert_eq!(
            auto("Jan  1 00:00:10 vm", "2027-01-01T00:00:05Z"),
            Some(utc("2027-01-01T00:00:10Z"))
        );
    }

    #[test]
    fn rfc3164_feb_29_falls_back_to_the_leap_year() {
        assert_eq!(
            auto("Feb 29 12:00:00 vm", "2029-01-10T00:00:00Z"),
            Some(utc("2028-02-29T12:00:00Z"))
        );
    }

    #[test]
    fn rfc3164_that_is_not_valid_is_rejected() {
        for line in [
            "Nox 25 21:05:35 vm",
            "Nov 25 21:05 vm",
            "Nov25 21:05:35 vm",
            "Nov 32 21:05:35 vm",
            "N",
        ] {
            assert_eq!(auto(line, NOW), None, "{line}");
        }
    }

    #[test]
    fn original_default_and_rsyslog_layouts_are_auto() {
        assert_eq!(
            TimeLayout::from_go(ORIGINAL_DEFAULT_LAYOUT),
            Ok(TimeLayout::Auto)
        );
        assert_eq!(TimeLayout::from_go("Jan _2 15:04:05"), Ok(TimeLayout::Auto));
        assert_eq!(
            TimeLayout::from_go("2006-01-02T15:04:05Z07:00"),
            Ok(TimeLayout::Auto)
        );
    }

    #[test]
    fn go_layout_with_year_and_milliseconds() {
        let layout = go("Jan _2 2006 15:04:05.000");
        let (time, rest) = parse(
            &layout,
            "Nov  5 2025 21:05:35.123 vm kernel:",
            offset(1),
            NOW,
        )
        .expect("time");
        assert_eq!(time, utc("2025-11-05T20:05:35.123Z"));
        assert_eq!(rest, " vm kernel:");
        assert_eq!(
            parse(&layout, "Nov 5 2025 21:05:35 vm", offset(1), NOW),
            None,
            "the fraction is required"
        );
    }

    #[test]
    fn go_layout_with_zone_name() {
        let layout = go("2006/01/02 15:04:05 MST");
        let at = |line| parse(&layout, line, offset(2), NOW).map(|(time, _)| time);
        assert_eq!(
            at("2026/11/25 21:05:35 UTC vm"),
            Some(utc("2026-11-25T21:05:35Z"))
        );
        assert_eq!(
            at("2026/11/25 21:05:35 GMT vm"),
            Some(utc("2026-11-25T21:05:35Z"))
        );
        // Another name is taken as the local zone's, as syslog writes it.
        assert_eq!(
            at("2026/11/25 21:05:35 EET vm"),
            Some(utc("2026-11-25T19:05:35Z"))
        );
        assert_eq!(
            at("2026/11/25 21:05:35 +03 vm"),
            Some(utc("2026-11-25T18:05:35Z"))
        );
        assert_eq!(
            at("2026/11/25 21:05:35.25 UTC vm"),
            Some(utc("2026-11-25T21:05:35.25Z"))
        );
        assert_eq!(at("2026/11/25 21:05:35 vm"), None);
        assert_eq!(
            at("2026-11-25 21:05:35 UTC vm"),
            None,
            "literals must match"
        );
    }

    #[test]
    fn go_layout_with_numeric_offsets() {
        let cases = [
            ("2006-01-02 15:04:05 -0700", "2026-11-25 16:05:35 -0500"),
            ("2006-01-02 15:04:05 -07:00", "2026-11-25 16:05:35 -05:00"),
            ("2006-01-02 15:04:05 -07", "2026-11-25 16:05:35 -05"),
            ("2006-01-02T15:04:05Z07:00", "2026-11-25T21:05:35Z"),
            ("2006-01-02T15:04:05Z0700", "2026-11-25T21:05:35Z"),
            ("2006-01-02T15:04:05,000Z07", "2026-11-25T21:05:35,000Z"),
        ];
        for (layout, line) in cases {
            let time = parse(&go(layout), line, offset(9), NOW).map(|(time, _)| time);
            assert_eq!(time, Some(utc("2026-11-25T21:05:35Z")), "{layout}");
        }
    }

    #[test]
    fn go_layout_without_year_infers_it() {
        let layout = go("Mon Jan _2 15:04:05");
        let at = |line, now| parse(&layout, line, offset(0), now).map(|(time, _)| time);
        assert_eq!(
            at("Wed Nov 25 21:05:35 vm", NOW),
            Some(utc("2026-11-25T21:05:35Z"))
        );
        assert_eq!(
            at("Thu Dec 31 23:59:58 vm", "2027-01-01T00:00:05Z"),
            Some(utc("2026-12-31T23:59:58Z"))
        );
        assert_eq!(
            at("Mon Nov 25 21:05:35 vm", NOW),
            None,
            "Nov 25 is a Wednesday in 2026 and 2025 a Tuesday"
        );
    }

    #[test]
    fn go_layout_with_twelve_hour_clock_and_comma_fraction() {
        let layout = go("02.01.2006 03:04:05,000000 PM");
        let time = parse(&layout, "25.11.2026 09:05:35,429037 PM vm", offset(0), NOW)
            .map(|(time, _)| time);
        assert_eq!(time, Some(utc("2026-11-25T21:05:35.429037Z")));
        let long = go("Monday, January 2, 2006 3:04pm");
        let time = parse(
            &long,
            "Wednesday, November 25, 2026 9:05pm vm",
            offset(0),
            NOW,
        )
        .map(|(t, _)| t);
        assert_eq!(time, Some(utc("2026-11-25T21:05:00Z")));
    }

    #[test]
    fn go_layout_timestamp_must_end_at_whitespace() {
        let layout = go("2006-01-02 15:04:05");
        assert_eq!(
            parse(&layout, "2026-11-25 21:05:35vm", offset(0), NOW),
            None
        );
        assert!(parse(&layout, "2026-11-25 21:05:35", offset(0), NOW).is_some());
        assert_eq!(parse(&layout, "", offset(0), NOW), None);
    }

    #[test]
    fn layout_without_time_elements_is_an_error() {
        let error = TimeLayout::from_go("hello").expect_err("no element");
        assert!(error.to_string().contains("Go's reference time"), "{error}");
        assert!(TimeLayout::from_go("").is_err());
    }

    #[test]
    fn incomplete_or_unsupported_layouts_are_errors() {
        let message = |layout| TimeLayout::from_go(layout).expect_err(layout).to_string();
        assert_eq!(
            message("15:04:05"),
            "it has no month and day (Jan or 01, and 02 or _2)"
        );
        assert_eq!(
            message("2006-01-02"),
            "it has no hour and minute (15 and 04)"
        );
        assert_eq!(
            message("Jan _2 03:04:05"),
            "it has a 12-hour clock (03) without PM"
        );
        assert_eq!(
            message("2006-01-02T15:04:05-07:00:00"),
            "zone offsets with seconds (-07:00:00) are not supported"
        );
    }
}
