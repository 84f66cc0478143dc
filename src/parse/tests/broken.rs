//! Lines that are not drops, and the reason each gives (the metric label).

use super::*;

#[test]
fn line_without_prefix_is_not_a_drop() {
    let now = utc("2026-11-25T21:06:00Z");
    let parser = kitchk();
    assert_eq!(parser.parse_line("", now), Err(NotDrop::NoPrefix));
    assert_eq!(parser.parse_message("", now), Err(NotDrop::NoPrefix));
    let noise = include_str!("../../../tests/fixtures/parse/kern-noise.log");
    for line in noise.lines() {
        assert_eq!(
            parser.parse_line(line, now),
            Err(NotDrop::NoPrefix),
            "{line}"
        );
    }
}

#[test]
fn garbage_timestamp_is_a_bad_timestamp() {
    let now = utc("2026-11-25T21:06:00Z");
    for header in [
        "yesterday vm kernel:",
        "2026-13-25T21:05:35Z vm",
        "Nov 31 21:05:35 vm",
        "Nov 25 25:05:35 vm",
    ] {
        let line = format!("{header} {UDP}");
        assert_eq!(
            kitchk().parse_line(&line, now),
            Err(NotDrop::BadTimestamp),
            "{line}"
        );
    }
}

#[test]
fn prefix_without_fields_is_missing_in() {
    let now = utc("2026-11-25T21:06:00Z");
    let line = "2026-11-25T21:05:35Z vm kernel: KITCHK: table full";
    assert_eq!(
        kitchk().parse_line(line, now),
        Err(NotDrop::MissingField("IN"))
    );
}

#[test]
fn broken_fields_say_which_field() {
    let time = utc("2026-11-25T21:05:35Z");
    let cases = [
        (
            TCP_V4.replace("SRC=127.0.0.1 ", ""),
            NotDrop::MissingField("SRC"),
        ),
        (
            TCP_V4.replace("SRC=127.0.0.1", "XSRC=127.0.0.1"),
            NotDrop::MissingField("SRC"),
        ),
        (
            TCP_V4.replace("SRC=127.0.0.1", "SRC=999.1.1.1"),
            NotDrop::BadField("SRC"),
        ),
        (
            TCP_V4.replace("DPT=9999", "DPT=70000"),
            NotDrop::BadField("DPT"),
        ),
        (
            TCP_V4.replace("PROTO=TCP ", ""),
            NotDrop::MissingField("PROTO"),
        ),
        (TCP_V4.replace("OUT= ", ""), NotDrop::MissingField("OUT")),
    ];
    for (message, expected) in cases {
        assert_eq!(
            kitchk().parse_message(&message, time),
            Err(expected),
            "{message}"
        );
    }
}

#[test]
fn truncated_lines_are_not_drops_and_say_why() {
    let time = utc("2026-11-25T21:05:35Z");
    let cut = |marker: &str| &TCP_V4[..TCP_V4.find(marker).expect("marker") + marker.len()];
    assert_eq!(
        kitchk().parse_message(cut("SRC=127.0"), time),
        Err(NotDrop::BadField("SRC"))
    );
    assert_eq!(
        kitchk().parse_message(cut("SPT=46062"), time),
        Err(NotDrop::MissingField("DPT"))
    );
    assert_eq!(
        kitchk().parse_message(cut("DST=127.0.0.1"), time),
        Err(NotDrop::MissingField("PROTO"))
    );
    assert_eq!(
        kitchk().parse_message(cut("KITCHK: IN"), time),
        Err(NotDrop::MissingField("IN"))
    );
}

#[test]
fn not_drop_reasons_are_snake_case_labels() {
    let reasons = [
        NotDrop::NoPrefix,
        NotDrop::BadTimestamp,
        NotDrop::MissingField("SRC"),
        NotDrop::BadField("SRC"),
    ]
    .map(NotDrop::reason);
    assert_eq!(
        reasons,
        ["not_a_drop", "bad_timestamp", "missing_field", "bad_field"]
    );
}
