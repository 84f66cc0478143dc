//! The IP packet an NFLOG message carries, decoded by etherparse into the fields a LOG line would have
//! printed: addresses, length, TTL or hop limit, IP id, protocol, ports or ICMP type and code, flags.
//!
//! The kernel copies only the first `NFLOG_COPY_RANGE` bytes, so the IP header's length is usually
//! more than what is here: etherparse's lax parser reads what there is. A packet whose IP header (or
//! IPv6 extension headers) is cut short is skipped; one whose transport header is cut short is a drop
//! without ports, as the LOG target prints it (`INCOMPLETE`).

use std::net::IpAddr;

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::{
    Icmpv4Slice, Icmpv6Slice, IpNumber, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice, UdpSlice,
};

use crate::model::{Flags, Protocol, Transport};

/// The network and transport fields of a logged packet; the interfaces and MAC come from the
/// message's attributes, not from the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpFields {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub length: u32,
    pub ttl: u8,
    pub id: Option<u32>,
    pub protocol: Protocol,
    pub transport: Transport,
    pub flags: Flags,
    /// The copy range cut the transport header: `transport` is `None` though the protocol has one.
    pub incomplete: bool,
}

/// Why a payload gave no drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPacket {
    /// Not IPv4 or IPv6 (an ARP packet from a bridge or netdev rule, garbage).
    NotIp,
    /// The IP header, or the transport header of a first fragment, is cut short.
    Truncated,
}

/// Decodes the packet bytes of an NFLOG message (they start at the network header).
pub fn decode(bytes: &[u8]) -> Result<IpFields, BadPacket> {
    let (ip, extensions_error) = LaxIpSlice::from_slice(bytes).map_err(|error| match error {
        LaxHeaderSliceError::Len(_) => BadPacket::Truncated,
        LaxHeaderSliceError::Content(_) => BadPacket::NotIp,
    })?;
    if extensions_error.is_some() {
        // IPv6 extension headers cut short or broken: the protocol is not known.
        return Err(BadPacket::Truncated);
    }
    let (mut fields, payload) = match &ip {
        LaxIpSlice::Ipv4(ipv4) => {
            let header = ipv4.header();
            let mut flags = Flags::default();
            if header.dont_fragment() {
                flags.insert("DF");
            }
            if header.more_fragments() {
                flags.insert("MF");
            }
            let fields = IpFields {
                src: IpAddr::V4(header.source_addr()),
                dst: IpAddr::V4(header.destination_addr()),
                length: u32::from(header.total_len()),
                ttl: header.ttl(),
                id: Some(u32::from(header.identification())),
                protocol: protocol(ipv4.payload().ip_number),
                transport: Transport::None,
                flags,
                incomplete: false,
            };
            (fields, ipv4.payload())
        }
        LaxIpSlice::Ipv6(ipv6) => {
            let header = ipv6.header();
            let fields = IpFields {
                src: IpAddr::V6(header.source_addr()),
                dst: IpAddr::V6(header.destination_addr()),
                // As the LOG target prints it: the payload length plus the 40-byte fixed header.
                length: u32::from(header.payload_length()) + 40,
                ttl: header.hop_limit(),
                id: None,
                protocol: protocol(ipv6.payload().ip_number),
                transport: Transport::None,
                flags: Flags::default(),
                incomplete: false,
            };
            (fields, ipv6.payload())
        }
    };
    if payload.fragmented && fragment_offset(&ip) != 0 {
        // Later fragments carry no transport header: the LOG target prints none either.
        return Ok(fields);
    }
    match transport(fields.protocol, payload.payload, &mut fields.flags) {
        Some(transport) => fields.transport = transport,
        // The copy range cut the transport header: the LOG target prints such a packet without
        // ports (`INCOMPLETE`), and so is this drop reported.
        None => fields.incomplete = true,
    }
    Ok(fields)
}

/// The transport header of a first fragment or whole packet: ports or ICMP type and code (and TCP's
/// flags into `flags`); `None` when the copy range cut it short.
fn transport(protocol: Protocol, bytes: &[u8], flags: &mut Flags) -> Option<Transport> {
    Some(match protocol {
        Protocol::Tcp => match TcpSlice::from_slice(bytes) {
            Ok(tcp) => {
                for (set, word) in [
                    (tcp.cwr(), "CWR"),
                    (tcp.ece(), "ECE"),
                    (tcp.urg(), "URG"),
                    (tcp.ack(), "ACK"),
                    (tcp.psh(), "PSH"),
                    (tcp.rst(), "RST"),
                    (tcp.syn(), "SYN"),
                    (tcp.fin(), "FIN"),
                ] {
                    if set {
                        flags.insert(word);
                    }
                }
                Transport::Ports {
                    src: tcp.source_port(),
                    dst: tcp.destination_port(),
                }
            }
            Err(_) => tcp_base_header(bytes, flags)?,
        },
        Protocol::Udp => {
            let udp = UdpSlice::from_slice_lax(bytes).ok()?;
            Transport::Ports {
                src: udp.source_port(),
                dst: udp.destination_port(),
            }
        }
        Protocol::Icmp => {
            let icmp = Icmpv4Slice::from_slice(bytes).ok()?;
            Transport::Icmp {
                kind: icmp.type_u8(),
                code: icmp.code_u8(),
            }
        }
        Protocol::Icmpv6 => {
            let icmp = Icmpv6Slice::from_slice(bytes).ok()?;
            Transport::Icmp {
                kind: icmp.type_u8(),
                code: icmp.code_u8(),
            }
        }
        // etherparse does not decode UDP-Lite and SCTP; both begin with the source and destination
        // ports, 16 bits each (RFC 3828 §3.1, RFC 9260 §3.1), which is all the LOG target prints.
        Protocol::UdpLite | Protocol::Sctp => match bytes {
            [s1, s2, d1, d2, ..] => Transport::Ports {
                src: u16::from_be_bytes([*s1, *s2]),
                dst: u16::from_be_bytes([*d1, *d2]),
            },
            _ => return None,
        },
        Protocol::Number(_) => Transport::None,
    })
}

/// A TCP header whose options the copy range cut: etherparse wants the whole header, the LOG target
/// only its fixed 20 bytes (ports, then the flags in byte 13: RFC 9293 §3.1), and so reads this.
fn tcp_base_header(bytes: &[u8], flags: &mut Flags) -> Option<Transport> {
    let base: &[u8; 20] = bytes.get(..20)?.try_into().ok()?;
    const WORDS: [(u8, &str); 8] = [
        (0x80, "CWR"),
        (0x40, "ECE"),
        (0x20, "URG"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x04, "RST"),
        (0x02, "SYN"),
        (0x01, "FIN"),
    ];
    for (bit, word) in WORDS {
        if base[13] & bit != 0 {
            flags.insert(word);
        }
    }
    Some(Transport::Ports {
        src: u16::from_be_bytes([base[0], base[1]]),
        dst: u16::from_be_bytes([base[2], base[3]]),
    })
}

/// Where in the original datagram a fragment's payload belongs (0 for the first, and for a packet
/// that is no fragment).
fn fragment_offset(ip: &LaxIpSlice) -> u16 {
    match ip {
        LaxIpSlice::Ipv4(ipv4) => ipv4.header().fragments_offset().value(),
        LaxIpSlice::Ipv6(ipv6) => ipv6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|extension| match extension {
                Ipv6ExtensionSlice::Fragment(fragment) => Some(fragment.fragment_offset().value()),
                _ => None,
            })
            .unwrap_or(0),
    }
}

/// The LOG target's `PROTO=` for an IP protocol number.
fn protocol(number: IpNumber) -> Protocol {
    match number {
        IpNumber::TCP => Protocol::Tcp,
        IpNumber::UDP => Protocol::Udp,
        IpNumber::UDP_LITE => Protocol::UdpLite,
        IpNumber::ICMP => Protocol::Icmp,
        IpNumber::IPV6_ICMP => Protocol::Icmpv6,
        IpNumber::SCTP => Protocol::Sctp,
        IpNumber(other) => Protocol::Number(other),
    }
}
