//! [`TimeLayout::Go`](super::TimeLayout::Go): a Go reference layout (`Jan _2 2006 15:04:05.000`),
//! translated once into chrono parsing items, and the parsing of a line by walking them.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems, parse_and_remainder};
use chrono::{DateTime, Utc};

use super::{Cursor, LayoutError, LocalZone, is_whitespace_char, with_inferred_year};

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

impl GoLayout {
    /// The layout as configured.
    pub fn layout(&self) -> &str {
        &self.layout
    }

    pub(super) fn parse(
        &self,
        line: &str,
        start: usize,
        zone: &LocalZone,
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
        // With a zone in the line, that; without, the local zone's offset on the line's own date.
        let instant = |parsed: &Parsed| match parsed.offset() {
            Some(_) => Some(parsed.to_datetime().ok()?.with_timezone(&Utc)),
            None => zone.instant(parsed.to_naive_datetime_with_offset(0).ok()?, now),
        };
        let time = if self.has_year {
            instant(&parsed)?
        } else {
            with_inferred_year(now, zone, |year| {
                let mut parsed = parsed.clone();
                parsed.set_year(i64::from(year)).ok()?;
                instant(&parsed)
            })?
        };
        Some((time, end))
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
/// one), so the offset is left for the caller's [`LocalZone`].
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

pub(super) fn translate(layout: &str) -> Result<GoLayout, LayoutError> {
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
