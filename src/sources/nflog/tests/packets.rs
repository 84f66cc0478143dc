//! One packet message at a time: each protocol's fields, the prefix, interfaces, MAC and time, and
//! every way a packet can be cut short or not be IP.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
use netlink_packet_netfilter::nflog::{PacketNla, TimeStamp};

use super::{decode_one, decode_one_full, loopback_attributes, received};
use crate::model::{Flags, Packet, PacketDrop, Protocol, Transport};
use crate::sources::nflog::decode::Skip;

fn flags(words: &[&str]) -> Flags {
    let mut flags = Flags::default();
    for word in words {
        assert!(flags.insert(word));
    }
    flags
}

fn tcp_syn_v4() -> Vec<u8> {
    let builder = PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(51234, 80, 1000, 64240)
        .syn();
    let mut bytes = Vec::new();
    builder.write(&mut bytes, &[]).unwrap();
    bytes
}

#[test]
fn a_tcp_syn_over_ipv4_is_the_drop_a_log_line_would_give() {
    let drop = decode_one(loopback_attributes(
        "DROP by policy default/deny-web",
        tcp_syn_v4(),
    ))
    .unwrap();
    assert_eq!(
        drop,
        PacketDrop {
            time: received(),
            hostname: None,
            count: 1,
            verdict: None,
            prefix: "DROP by policy default/deny-web".to_string(),
            mark: None,
            // kube-router as k3s ships it names the policy in the prefix.
            policy: Some(crate::model::Policy::new(
                crate::model::PolicyKind::NetworkPolicy,
                "default",
                "deny-web",
            )),
            packet: Packet {
                in_interface: "lo".to_string(),
                out_interface: String::new(),
                mac: Some("00:00:00:00:00:00:00:00:00:00:00:00:08:00".to_string()),
                src: "198.18.0.1".parse().unwrap(),
                dst: "198.18.0.2".parse().unwrap(),
                length: Some(40),
                ttl: Some(64),
                id: Some(0),
                protocol: Protocol::Tcp,
                transport: Transport::Ports {
                    src: 51234,
                    dst: 80
                },
                flags: flags(&["DF", "SYN"]),
            },
        }
    );
}

#[test]
fn udp_over_ipv6_with_an_output_interface_and_no_mac() {
    let builder = PacketBuilder::ipv6(
        "fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        63,
    )
    .udp(40000, 53);
    let mut bytes = Vec::new();
    builder.write(&mut bytes, b"query").unwrap();
    let drop = decode_one(vec![
        PacketNla::Prefix(c"v6-drop: ".to_owned()),
        PacketNla::IfIndexOutDev(1),
        PacketNla::Payload(bytes),
    ])
    .unwrap();
    assert_eq!(drop.prefix, "v6-drop:", "trailing blanks are trimmed");
    let packet = drop.packet;
    assert_eq!(
        (packet.in_interface.as_str(), packet.out_interface.as_str()),
        ("", "lo")
    );
    assert_eq!(packet.mac, None);
    assert_eq!(packet.src, "fd00::1".parse::<IpAddr>().unwrap());
    assert_eq!(packet.dst, "fd00::2".parse::<IpAddr>().unwrap());
    assert_eq!(
        packet.length,
        Some(40 + 8 + 5),
        "LEN= counts the IPv6 header"
    );
    assert_eq!(packet.ttl, Some(63));
    assert_eq!(packet.id, None);
    assert_eq!(packet.protocol, Protocol::Udp);
    assert_eq!(
        packet.transport,
        Transport::Ports {
            src: 40000,
            dst: 53
        }
    );
    assert_eq!(packet.flags, Flags::default());
}

#[test]
fn icmp_and_icmpv6_echo_requests_give_type_and_code() {
    let mut v4 = Vec::new();
    PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut v4, &[0; 56])
        .unwrap();
    let drop = decode_one(loopback_attributes("icmp", v4)).unwrap();
    assert_eq!(drop.packet.protocol, Protocol::Icmp);
    assert_eq!(drop.packet.transport, Transport::Icmp { kind: 8, code: 0 });
    assert_eq!(drop.packet.length, Some(84));

    let mut v6 = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut v6, &[0; 8])
        .unwrap();
    let drop = decode_one(loopback_attributes("icmp6", v6)).unwrap();
    assert_eq!(drop.packet.protocol, Protocol::Icmpv6);
    assert_eq!(
        drop.packet.transport,
        Transport::Icmp { kind: 128, code: 0 }
    );
}

#[test]
fn sctp_and_udplite_ports_come_from_their_first_four_bytes() {
    for (number, protocol) in [
        (IpNumber::SCTP, Protocol::Sctp),
        (IpNumber::UDP_LITE, Protocol::UdpLite),
    ] {
        let mut bytes = Vec::new();
        PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
            .write(&mut bytes, number, &[0x0b, 0xb8, 0x00, 0x50, 0, 0, 0, 0])
            .unwrap();
        let drop = decode_one(loopback_attributes("x", bytes)).unwrap();
        assert_eq!(drop.packet.protocol, protocol);
        assert_eq!(
            drop.packet.transport,
            Transport::Ports { src: 3000, dst: 80 }
        );
    }
}

#[test]
fn another_protocol_is_its_number_without_ports() {
    let mut bytes = Vec::new();
    PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .write(&mut bytes, IpNumber(47), &[0; 8])
        .unwrap();
    let drop = decode_one(loopback_attributes("gre", bytes)).unwrap();
    assert_eq!(drop.packet.protocol, Protocol::Number(47));
    assert_eq!(drop.packet.transport, Transport::None);
}

#[test]
fn a_copy_range_shorter_than_the_packet_still_decodes_its_headers() {
    let mut bytes = Vec::new();
    PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(1, 2, 3, 4)
        .ack(9)
        .write(&mut bytes, &[7; 1400])
        .unwrap();
    bytes.truncate(128);
    let drop = decode_one(loopback_attributes("x", bytes)).unwrap();
    assert_eq!(
        drop.packet.length,
        Some(20 + 20 + 1400),
        "the IP header's length"
    );
    assert_eq!(drop.packet.transport, Transport::Ports { src: 1, dst: 2 });
    assert!(drop.packet.flags.contains("ACK"));
}

#[test]
fn the_kernels_timestamp_is_the_drops_time_when_sent() {
    let seconds = 1_764_669_600u64; // 2025-12-02T10:00:00Z
    let mut wire = seconds.to_be_bytes().to_vec();
    wire.extend_from_slice(&250_000u64.to_be_bytes());
    let mut attributes = loopback_attributes("x", tcp_syn_v4());
    attributes.push(PacketNla::Timestamp(TimeStamp::parse(&wire).unwrap()));
    let drop = decode_one(attributes).unwrap();
    assert_eq!(drop.time.to_rfc3339(), "2025-12-02T10:00:00.250+00:00");
}

#[test]
fn a_later_fragment_has_no_ports_and_a_first_fragment_has_them() {
    let first = fragment(0, true);
    let drop = decode_one(loopback_attributes("x", first)).unwrap();
    assert_eq!(
        drop.packet.transport,
        Transport::Ports { src: 5000, dst: 53 }
    );
    assert!(drop.packet.flags.contains("MF"));

    let later = fragment(185, false);
    let drop = decode_one(loopback_attributes("x", later)).unwrap();
    assert_eq!(drop.packet.protocol, Protocol::Udp);
    assert_eq!(drop.packet.transport, Transport::None);
}

/// A UDP fragment at `offset` (in 8-byte units) whose payload starts with a UDP header 5000 → 53.
fn fragment(offset: u16, more: bool) -> Vec<u8> {
    let payload = [
        0x13, 0x88, 0x00, 0x35, 0x05, 0xdc, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let mut header = Ipv4Header::new(
        payload.len() as u16,
        64,
        IpNumber::UDP,
        [198, 18, 0, 1],
        [198, 18, 0, 2],
    )
    .unwrap();
    header.more_fragments = more;
    header.dont_fragment = false;
    header.fragment_offset = etherparse::IpFragOffset::try_new(offset).unwrap();
    let mut bytes = header.to_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

#[test]
fn a_cut_ip_header_is_truncated_and_garbage_is_not_ip() {
    let whole = tcp_syn_v4();
    let cases: [(Vec<u8>, Skip); 4] = [
        (whole[..10].to_vec(), Skip::Truncated),
        (Vec::new(), Skip::Truncated),
        (vec![0x00; 40], Skip::NotIp),
        (vec![0x75; 40], Skip::NotIp),
    ];
    for (bytes, skip) in cases {
        let length = bytes.len();
        assert_eq!(
            decode_one(loopback_attributes("x", bytes)),
            Err(skip),
            "{length} bytes"
        );
    }
}

#[test]
fn a_cut_transport_header_is_a_drop_without_ports_as_the_log_target_prints_it() {
    let whole = tcp_syn_v4();
    let decoded = decode_one_full(loopback_attributes("x", whole[..30].to_vec())).unwrap();
    assert!(decoded.incomplete);
    assert_eq!(decoded.drop.packet.protocol, Protocol::Tcp);
    assert_eq!(decoded.drop.packet.transport, Transport::None);
    assert_eq!(decoded.drop.packet.flags, flags(&["DF"]));
}

#[test]
fn a_tcp_header_cut_in_its_options_still_gives_ports_and_flags() {
    let mut bytes = Vec::new();
    let mut header = etherparse::TcpHeader::new(40000, 443, 1, 64240);
    header.syn = true;
    header.ece = true;
    header
        .set_options(&[
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::WindowScale(7),
            etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
        ])
        .unwrap();
    PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp_header(header)
        .write(&mut bytes, &[])
        .unwrap();
    // The IP header and the TCP header's fixed 20 bytes, not all of its 16 bytes of options.
    bytes.truncate(20 + 20 + 6);
    let drop = decode_one(loopback_attributes("x", bytes)).unwrap();
    assert_eq!(
        drop.packet.transport,
        Transport::Ports {
            src: 40000,
            dst: 443
        }
    );
    assert_eq!(drop.packet.flags, flags(&["DF", "ECE", "SYN"]));
}

#[test]
fn ipv6_fragments_the_first_with_ports_a_later_without() {
    for (offset, expected) in [
        (0, Transport::Ports { src: 5000, dst: 53 }),
        (185, Transport::None),
    ] {
        let mut fragment = etherparse::Ipv6FragmentHeader::new(
            IpNumber::UDP,
            etherparse::IpFragOffset::try_new(offset).unwrap(),
            true,
            7,
        )
        .to_bytes()
        .to_vec();
        fragment.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0x05, 0xdc, 0, 0]);
        let mut bytes = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .write(&mut bytes, IpNumber::IPV6_FRAGMENTATION_HEADER, &fragment)
            .unwrap();
        let drop = decode_one(loopback_attributes("x", bytes)).unwrap();
        assert_eq!(drop.packet.protocol, Protocol::Udp, "offset {offset}");
        assert_eq!(drop.packet.transport, expected, "offset {offset}");
    }
}

#[test]
fn ipv6_extension_headers_cut_short_are_truncated() {
    let header = etherparse::Ipv6Header {
        payload_length: 16,
        next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
        hop_limit: 64,
        source: [0xfd; 16],
        destination: [0xfe; 16],
        ..Default::default()
    };
    let mut bytes = header.to_bytes().to_vec();
    // A hop-by-hop header of 8 bytes (then UDP), of which the copy range kept 4.
    bytes.extend_from_slice(&[17, 0, 1, 4]);
    assert_eq!(
        decode_one_full(loopback_attributes("x", bytes)),
        Err(Skip::Truncated)
    );
}

#[test]
fn a_message_without_packet_bytes_is_skipped() {
    assert_eq!(
        decode_one(vec![PacketNla::IfIndexInDev(1)]),
        Err(Skip::NoPayload)
    );
}
