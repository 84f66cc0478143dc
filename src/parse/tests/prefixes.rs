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

#[test]
fn the_policy_named_after_the_prefix_is_the_drops_policy() {
    // kube-router as k3s ships it, through ulogd2's syslog emulation (`IPTABLES_LOG_PREFIX=DROP by
    // policy`): the policy follows the configured prefix, before the fields.
    let line = "Dec  2 10:00:00 node-1 DROP by policy shop/deny-all IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.1.5 DST=10.0.2.9 LEN=60 TOS=00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=51234 DPT=80 SEQ=1 ACK=0 WINDOW=64240 SYN URGP=0 MARK=0 ";
    let drop = parser(&["DROP by policy"])
        .parse_line(line, utc("2026-12-02T10:00:30Z"))
        .expect("a drop");
    assert_eq!(drop.prefix, "DROP by policy");
    let policy = drop.policy.expect("the policy");
    assert_eq!(
        (
            policy.kind.name(),
            policy.namespace.as_str(),
            policy.name.as_str()
        ),
        ("NetworkPolicy", "shop", "deny-all")
    );
    assert_eq!(
        drop.packet.transport,
        Transport::Ports {
            src: 51234,
            dst: 80
        }
    );
    // A prefix that names none: no policy.
    let message = "calico-drop: IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TTL=64 ID=1 PROTO=TCP SPT=1 DPT=80 ";
    let drop = parser(&["calico-drop:"])
        .parse_message(message, utc("2026-12-02T10:00:30Z"))
        .expect("a drop");
    assert_eq!(drop.policy, None);
}
