//! Whole syslog lines as rsyslog, Ubuntu, ulogd2 and Go layouts write them: time, host name and drop.

use chrono::TimeZone;

use super::*;

#[test]
fn rsyslog_file_format_line_gives_time_and_host() {
    let parser = parser(&["KITCHK-UDP:"]);
    let now = utc("2026-11-25T21:06:00Z");
    let drops: Vec<PacketDrop> = RSYSLOG_FILE_FORMAT
        .lines()
        .map(|line| parser.parse_line(line, now).expect("a drop"))
        .collect();
    assert_eq!(drops.len(), 3);
    let expected = PacketDrop {
        time: utc("2026-11-25T21:05:35.429037Z"),
        hostname: Some("vm".into()),
        count: 1,
        verdict: None,
        prefix: "KITCHK-UDP:".into(),
        mark: None,
        policy: None,
        packet: sample_udp_packet(),
    };
    assert_eq!(drops[0], expected);
    assert_eq!(drops[2].time, utc("2026-11-25T21:05:35.431483Z"));
    assert_eq!(drops[2].packet.id, Some(43079));
}

#[test]
fn rsyslog_traditional_line_gets_the_year_and_the_local_offset() {
    let prefixes = vec!["KITCHK-UDP:".to_string()];
    let berlin = LocalZone::fixed(3600);
    let parser = Parser::new(prefixes, TimeLayout::Auto, berlin);
    let drop = parser
        .parse_line(first_line(RSYSLOG_TRADITIONAL), utc("2026-11-25T20:06:00Z"))
        .expect("a drop");
    let expected = PacketDrop {
        time: utc("2026-11-25T20:05:35Z"),
        hostname: Some("vm".into()),
        count: 1,
        verdict: None,
        prefix: "KITCHK-UDP:".into(),
        mark: None,
        policy: None,
        packet: sample_udp_packet(),
    };
    assert_eq!(drop, expected);
}

#[test]
fn rsyslog_tailer_template_line_has_no_kernel_tag() {
    let drop = parser(&["KITCHK-UDP:"])
        .parse_line(first_line(RSYSLOG_TAILER), utc("2026-11-25T21:06:00Z"))
        .expect("a drop");
    let expected = PacketDrop {
        time: utc("2026-11-25T21:05:35.429037Z"),
        hostname: Some("vm".into()),
        count: 1,
        verdict: None,
        prefix: "KITCHK-UDP:".into(),
        mark: None,
        policy: None,
        packet: sample_udp_packet(),
    };
    assert_eq!(drop, expected);
}

#[test]
fn ubuntu_line_with_bracketed_uptime_parses() {
    let line = format!("Nov 25 21:05:35 node-7 kernel: [12345.678901] {TCP_V4}");
    let drop = kitchk()
        .parse_line(&line, utc("2026-11-26T00:00:00Z"))
        .expect("a drop");
    assert_eq!(drop.time, utc("2026-11-25T21:05:35Z"));
    assert_eq!(drop.hostname.as_deref(), Some("node-7"));
    assert_eq!(drop.prefix, "KITCHK:");
    assert_eq!(
        drop.packet.transport,
        Transport::Ports {
            src: 46062,
            dst: 9999
        }
    );
}

#[test]
fn ulogd2_logemu_line_parses() {
    // ulogd2's LOGEMU writes "%.15s %s %s": time, host name, then its printpkt text, which starts
    // with the NFLOG prefix and a space.
    let line = "Nov  5 21:05:35 node-7 calico-drop IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.0.1 DST=10.0.1.2 LEN=60 TOS=00 PREC=0x00 TTL=63 ID=1234 DF PROTO=TCP SPT=40000 DPT=8080 SEQ=1431955616 ACK=0 WINDOW=64240 SYN URGP=0 MARK=0 ";
    let drop = parser(&["calico-drop"])
        .parse_line(line, utc("2026-11-06T00:00:00Z"))
        .expect("a drop");
    let expected = PacketDrop {
        time: utc("2026-11-05T21:05:35Z"),
        hostname: Some("node-7".into()),
        count: 1,
        verdict: None,
        prefix: "calico-drop".into(),
        mark: None,
        policy: None,
        packet: Packet {
            in_interface: "eth0".into(),
            out_interface: String::new(),
            mac: Some("8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00".into()),
            src: ip("10.0.0.1"),
            dst: ip("10.0.1.2"),
            length: Some(60),
            ttl: Some(63),
            id: Some(1234),
            protocol: Protocol::Tcp,
            transport: Transport::Ports {
                src: 40000,
                dst: 8080,
            },
            flags: flags(&["DF", "SYN"]),
        },
    };
    assert_eq!(drop, expected);
}

#[test]
fn line_without_host_name_keeps_the_drop() {
    let line = format!("2026-11-25T21:05:35Z {TCP_V4}");
    let drop = kitchk()
        .parse_line(&line, utc("2026-11-25T21:06:00Z"))
        .expect("a drop");
    assert_eq!(drop.hostname, None);
    assert_eq!(drop.time, utc("2026-11-25T21:05:35Z"));
}

#[test]
fn go_layout_line_parses_with_host() {
    let layout = TimeLayout::from_go("2006/01/02 15:04:05 MST").expect("layout");
    let parser = Parser::new(vec!["KITCHK:".into()], layout, LocalZone::fixed(7200));
    let line = format!("2026/11/25 21:05:35 UTC vm kernel: {TCP_V4}");
    let drop = parser
        .parse_line(&line, utc("2026-11-25T21:06:00Z"))
        .expect("a drop");
    assert_eq!(
        drop.time,
        Utc.with_ymd_and_hms(2026, 11, 25, 21, 5, 35)
            .single()
            .expect("time")
    );
    assert_eq!(drop.hostname.as_deref(), Some("vm"));
}
