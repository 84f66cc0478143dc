//! Bare kernel messages (journald `MESSAGE`, kmsg records): every field of each kind of packet.

use super::*;

#[test]
fn ipv4_tcp_line_with_mac_gives_every_field() {
    let time = utc("2026-11-25T21:05:35Z");
    let drop = kitchk().parse_message(TCP_V4, time).expect("a drop");
    let expected = PacketDrop {
        time,
        hostname: None,
        count: 1,
        verdict: None,
        prefix: "KITCHK:".into(),
        mark: None,
        policy: None,
        packet: Packet {
            in_interface: "lo".into(),
            out_interface: String::new(),
            mac: Some("00:00:00:00:00:00:00:00:00:00:00:00:08:00".into()),
            src: ip("127.0.0.1"),
            dst: ip("127.0.0.1"),
            length: Some(60),
            ttl: Some(64),
            id: Some(62275),
            protocol: Protocol::Tcp,
            transport: Transport::Ports {
                src: 46062,
                dst: 9999,
            },
            flags: flags(&["DF", "SYN"]),
        },
    };
    assert_eq!(drop, expected);
}

#[test]
fn ipv6_tcp_line_reads_expanded_addresses_and_hoplimit() {
    let time = utc("2026-11-25T21:05:35Z");
    let drop = kitchk().parse_message(TCP_V6, time).expect("a drop");
    assert_eq!(drop.packet.dst.to_string(), "::1");
    let expected = Packet {
        in_interface: "lo".into(),
        out_interface: String::new(),
        mac: Some("00:00:00:00:00:00:00:00:00:00:00:00:86:dd".into()),
        src: ip("::1"),
        dst: ip("::1"),
        length: Some(80),
        ttl: Some(64),
        id: None,
        protocol: Protocol::Tcp,
        transport: Transport::Ports {
            src: 48300,
            dst: 9999,
        },
        flags: flags(&["SYN"]),
    };
    assert_eq!(
        drop,
        PacketDrop {
            time,
            hostname: None,
            count: 1,
            verdict: None,
            prefix: "KITCHK:".into(),
            mark: None,
            policy: None,
            packet: expected
        }
    );
}

#[test]
fn udp_line_takes_the_first_len_as_ip_length() {
    let drop = kitchk()
        .parse_message(UDP, utc("2026-11-25T21:05:35Z"))
        .expect("a drop");
    let expected = Packet {
        in_interface: "kitchkvb".into(),
        out_interface: String::new(),
        mac: Some("8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00".into()),
        src: ip("198.18.0.1"),
        dst: ip("198.18.0.2"),
        length: Some(31),
        ttl: Some(64),
        id: Some(49464),
        protocol: Protocol::Udp,
        transport: Transport::Ports {
            src: 39874,
            dst: 9998,
        },
        flags: flags(&["DF"]),
    };
    assert_eq!(drop.prefix, "KITCHK-UDP:");
    assert_eq!(drop.packet, expected);
}

#[test]
fn icmp_echo_line_takes_the_first_id_as_ip_id() {
    let drop = kitchk()
        .parse_message(ICMP_ECHO, utc("2026-11-25T21:05:35Z"))
        .expect("a drop");
    let expected = Packet {
        in_interface: "kitchkvb".into(),
        out_interface: String::new(),
        mac: Some("8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00".into()),
        src: ip("198.18.0.1"),
        dst: ip("198.18.0.2"),
        length: Some(84),
        ttl: Some(64),
        id: Some(59040),
        protocol: Protocol::Icmp,
        transport: Transport::Icmp { kind: 8, code: 0 },
        flags: flags(&["DF"]),
    };
    assert_eq!(drop.prefix, "KITCHK-ICMP:");
    assert_eq!(drop.packet, expected);
}

#[test]
fn output_chain_line_has_no_mac_and_ignores_uid_gid() {
    let drop = kitchk()
        .parse_message(OUTPUT, utc("2026-11-25T21:05:35Z"))
        .expect("a drop");
    let expected = Packet {
        in_interface: String::new(),
        out_interface: "kitchkva".into(),
        mac: None,
        src: ip("198.18.0.1"),
        dst: ip("198.18.0.2"),
        length: Some(60),
        ttl: Some(64),
        id: Some(56625),
        protocol: Protocol::Tcp,
        transport: Transport::Ports {
            src: 50468,
            dst: 9997,
        },
        flags: flags(&["DF", "SYN"]),
    };
    assert_eq!(drop.prefix, "KITCHK-OUT:");
    assert_eq!(drop.packet, expected);
}

#[test]
fn icmp_error_keeps_the_outer_packet_and_skips_the_bracketed_one() {
    let drop = kitchk()
        .parse_message(ICMP_ERROR, utc("2026-11-25T21:05:35Z"))
        .expect("a drop");
    let expected = Packet {
        in_interface: "kitchkva".into(),
        out_interface: String::new(),
        mac: Some("16:f8:da:93:4e:72:8a:e3:5a:9a:33:d3:08:00".into()),
        src: ip("198.18.0.2"),
        dst: ip("198.18.0.1"),
        length: Some(57),
        ttl: Some(64),
        id: Some(20711),
        protocol: Protocol::Icmp,
        transport: Transport::Icmp { kind: 3, code: 3 },
        flags: Flags::default(),
    };
    assert_eq!(drop.packet, expected);
}

#[test]
fn numeric_protocol_has_no_transport() {
    let message = "KITCHK: IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.0.1 DST=10.0.0.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 DF PROTO=47 ";
    let packet = kitchk()
        .parse_message(message, utc("2026-11-25T21:05:35Z"))
        .expect("a drop")
        .packet;
    assert_eq!(packet.protocol, Protocol::Number(47));
    assert_eq!(packet.transport, Transport::None);
    assert_eq!(packet.id, Some(0));
}

#[test]
fn sctp_line_has_ports() {
    let message = "KITCHK: IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=100 TOS=0x02 PREC=0x00 TTL=64 ID=0 DF PROTO=SCTP SPT=36412 DPT=38412 ";
    let packet = kitchk()
        .parse_message(message, utc("2026-11-25T21:05:35Z"))
        .expect("a drop")
        .packet;
    assert_eq!(packet.protocol, Protocol::Sctp);
    assert_eq!(
        packet.transport,
        Transport::Ports {
            src: 36412,
            dst: 38412
        }
    );
    assert_eq!(packet.mac, None);
}
