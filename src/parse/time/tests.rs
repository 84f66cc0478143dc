//! The timestamp parsers on real syslog timestamps: RFC 3339 and RFC 3164 (`Auto`), Go layouts, and
//! layouts that are rejected.

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

fn offset(hours: i32) -> LocalZone {
    LocalZone::fixed(hours * 3600)
}

/// Parses the timestamp of `line` and returns it with the text after it.
fn parse<'a>(
    layout: &TimeLayout,
    line: &'a str,
    local: LocalZone,
    now: &str,
) -> Option<(DateTime<Utc>, &'a str)> {
    let (time, end) = layout.parse_at_start(line, &local, utc(now))?;
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
    let new_york = offset(-5);
    let (time, rest) = parse(&TimeLayout::Auto, "Nov  5 21:05:35 vm", new_york, NOW).expect("time");
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
    let time =
        parse(&layout, "25.11.2026 09:05:35,429037 PM vm", offset(0), NOW).map(|(time, _)| time);
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

/// New York: UTC−5 in winter, UTC−4 from the second Sunday of March (2026-03-08, 02:00 → 03:00) to
/// the first Sunday of November (2026-11-01, 02:00 → 01:00).
fn new_york() -> LocalZone {
    LocalZone::new(jiff::tz::TimeZone::get("America/New_York").expect("the zone database"))
}

#[test]
fn rfc3164_lines_get_the_offset_of_their_own_date_not_of_now() {
    let at = |line, now| parse(&TimeLayout::Auto, line, new_york(), now).map(|(time, _)| time);
    // Read in summer: a summer line is UTC−4, a winter line UTC−5.
    let summer = "2026-07-15T17:00:00Z";
    assert_eq!(
        at("Jul 15 12:00:00 vm", summer),
        Some(utc("2026-07-15T16:00:00Z"))
    );
    assert_eq!(
        at("Jan 15 12:00:00 vm", summer),
        Some(utc("2026-01-15T17:00:00Z"))
    );
    // Read in winter, the other way round (a July line read in January is last year's).
    let winter = "2027-01-20T17:00:00Z";
    assert_eq!(
        at("Jan 15 12:00:00 vm", winter),
        Some(utc("2027-01-15T17:00:00Z"))
    );
    assert_eq!(
        at("Jul 15 12:00:00 vm", winter),
        Some(utc("2026-07-15T16:00:00Z"))
    );
    // A Go layout without a zone, and one whose zone name is the local one, the same.
    let layout = go("2006-01-02 15:04:05");
    let go_at = |line| parse(&layout, line, new_york(), summer).map(|(time, _)| time);
    assert_eq!(
        go_at("2026-01-15 12:00:00 vm"),
        Some(utc("2026-01-15T17:00:00Z"))
    );
    assert_eq!(
        go_at("2026-07-15 12:00:00 vm"),
        Some(utc("2026-07-15T16:00:00Z"))
    );
}

#[test]
fn rfc3164_lines_around_the_spring_change_are_one_hour_apart_across_it() {
    let now = "2026-03-08T12:00:00Z";
    let at = |line| parse(&TimeLayout::Auto, line, new_york(), now).map(|(time, _)| time);
    assert_eq!(at("Mar  8 01:59:59 vm"), Some(utc("2026-03-08T06:59:59Z")));
    assert_eq!(at("Mar  8 03:00:00 vm"), Some(utc("2026-03-08T07:00:00Z")));
    // 02:30 was never on the clock: read with the offset before the change, as 03:30.
    assert_eq!(at("Mar  8 02:30:00 vm"), Some(utc("2026-03-08T07:30:00Z")));
    assert_eq!(at("Mar  8 12:00:00 vm"), Some(utc("2026-03-08T16:00:00Z")));
}

#[test]
fn rfc3164_lines_in_the_hour_the_autumn_change_repeats_are_not_read_an_hour_off() {
    let at = |line, now| parse(&TimeLayout::Auto, line, new_york(), now).map(|(time, _)| time);
    assert_eq!(
        at("Nov  1 00:30:00 vm", "2026-11-01T12:00:00Z"),
        Some(utc("2026-11-01T04:30:00Z"))
    );
    // 01:30 comes twice. Read at 01:45 the first time (EDT), the line is from 01:30 EDT: the
    // second 01:30 is still to come.
    assert_eq!(
        at("Nov  1 01:30:00 vm", "2026-11-01T05:45:00Z"),
        Some(utc("2026-11-01T05:30:00Z"))
    );
    // Read at 01:45 the second time (EST): the line written a quarter of an hour ago, not 75
    // minutes ago (which the default expiry of 10 minutes would drop).
    assert_eq!(
        at("Nov  1 01:30:00 vm", "2026-11-01T06:45:00Z"),
        Some(utc("2026-11-01T06:30:00Z"))
    );
    assert_eq!(
        at("Nov  1 02:30:00 vm", "2026-11-01T12:00:00Z"),
        Some(utc("2026-11-01T07:30:00Z"))
    );
}
