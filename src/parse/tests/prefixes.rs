//! Which configured prefix marks a line as a drop: spaces, `IN=` glued on, order, whole tokens.

use super::*;

#[test]
fn prefix_with_spaces_matches_and_is_reported_as_configured() {
    let message = "my drop: IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=80 ";
    let time = utc("2026-11-25T21:05:35Z");
    for configured in ["my drop:", "my drop: "] {
        let drop = parser(&[configured])
            .parse_message(message, time)
            .expect("a drop");
        assert_eq!(drop.prefix, configured);
        assert_eq!(drop.packet.transport, Transport::Ports { src: 1, dst: 80 });
    }
    // Neither a token of the line nor followed by `IN=`.
    assert_eq!(
        parser(&["my drop"]).parse_message(message, time),
        Err(NotDrop::NoPrefix)
    );
}

#[test]
fn prefix_glued_to_in_matches() {
    let line = "2026-11-25T21:05:35Z vm kernel: DROPIN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=40 TTL=64 ID=7 PROTO=UDP SPT=53 DPT=5353 LEN=20 ";
    let drop = parser(&["DROP"])
        .parse_line(line, utc("2026-11-25T21:06:00Z"))
        .expect("a drop");
    assert_eq!(drop.prefix, "DROP");
    assert_eq!(drop.packet.in_interface, "eth0");
    assert_eq!(
        drop.packet.transport,
        Transport::Ports { src: 53, dst: 5353 }
    );
}

#[test]
fn first_configured_prefix_that_matches_is_recorded() {
    let time = utc("2026-11-25T21:05:35Z");
    let both = parser(&["calico-drop:", "KITCHK-UDP:", "KITCHK"]);
    assert_eq!(
        both.parse_message(UDP, time).expect("a drop").prefix,
        "KITCHK-UDP:"
    );
    let reversed = parser(&["KITCHK-ICMP:", "KITCHK-UDP:"]);
    assert_eq!(
        reversed
            .parse_message(ICMP_ECHO, time)
            .expect("a drop")
            .prefix,
        "KITCHK-ICMP:"
    );
    assert_eq!(
        reversed.parse_message(UDP, time).expect("a drop").prefix,
        "KITCHK-UDP:"
    );
}

#[test]
fn prefix_must_be_a_whole_token_or_lead_to_in() {
    let time = utc("2026-11-25T21:05:35Z");
    // `KITCHK` is in `KITCHK-UDP:`, but neither as a token nor followed by `IN=`.
    assert_eq!(
        parser(&["KITCHK"]).parse_message(UDP, time),
        Err(NotDrop::NoPrefix)
    );
    assert_eq!(
        parser(&["KITCHK:"]).parse_message(UDP, time),
        Err(NotDrop::NoPrefix)
    );
}

#[test]
fn prefix_inside_the_header_does_not_count() {
    // The host is named like the prefix: the drop is the message's, and the host name is kept.
    let line = format!("2026-11-25T21:05:35Z KITCHK: kernel: {TCP_V4}");
    let drop = kitchk()
        .parse_line(&line, utc("2026-11-25T21:06:00Z"))
        .expect("a drop");
    assert_eq!(drop.hostname.as_deref(), Some("KITCHK:"));
    assert_eq!(drop.packet.src, ip("127.0.0.1"));
    // Only in the header: no drop.
    let line = "2026-11-25T21:05:35Z KITCHK: kernel: eth0: link up";
    assert_eq!(
        kitchk().parse_line(line, utc("2026-11-25T21:06:00Z")),
        Err(NotDrop::MissingField("IN"))
    );
}
