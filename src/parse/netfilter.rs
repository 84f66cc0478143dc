//! The `KEY=VALUE` fields of a netfilter LOG line (iptables-legacy, iptables-nft and nftables `log`
//! all write the same text), turned into a [`Packet`].
//!
//! The kernel writes the IP header fields, then `PROTO=`, then the transport header fields. Some keys
//! come twice (`LEN=` on UDP lines: IP then UDP length; `ID=` on ICMP echo lines: IP id then echo id),
//! so header fields are taken only before `PROTO=` and transport fields only after it, and the first
//! occurrence wins. ICMP errors carry a copy of the offending packet in `[...]`; everything inside
//! brackets is skipped, as is `INCOMPLETE [65535 bytes]`.
//!
//! A fragment (`FRAG:` with a non-zero offset) or a truncated packet (`INCOMPLETE`) has no transport
//! header in the line: it is still a drop, with [`Transport::None`], rather than a malformed line.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use super::NotDrop;
use crate::model::{Flags, Packet, Protocol, Transport};

/// Parses the fields from `IN=` to the end of the line. Unknown keys and words are ignored; a field
/// that must be there and is not gives [`NotDrop::MissingField`], a value that does not parse
/// [`NotDrop::BadField`].
pub fn parse_fields(fields: &str) -> Result<Packet, NotDrop> {
    let mut seen = Seen::default();
    let mut depth = 0usize;
    for token in tokens(fields) {
        let opens = token.bytes().take_while(|byte| *byte == b'[').count();
        if depth == 0 && opens == 0 {
            seen.token(token)?;
        }
        let closes = token.bytes().rev().take_while(|byte| *byte == b']').count();
        depth = (depth + opens).saturating_sub(closes);
    }
    seen.finish()
}

/// The non-empty space- or tab-separated tokens of `text`.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let end = memchr::memchr2(b' ', b'\t', rest.as_bytes()).unwrap_or(rest.len());
            let token = rest.get(..end)?;
            rest = rest.get(end + 1..).unwrap_or_default();
            if !token.is_empty() {
                return Some(token);
            }
            if rest.is_empty() {
                return None;
            }
        }
    })
}

/// The fields found so far, as text still (only the first occurrence is parsed).
#[derive(Default)]
struct Seen<'a> {
    in_interface: Option<&'a str>,
    out_interface: Option<&'a str>,
    mac: Option<&'a str>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    length: Option<u32>,
    ttl: Option<u8>,
    id: Option<u32>,
    protocol: Option<Protocol>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    flags: Flags,
    /// `FRAG:` or `INCOMPLETE`: the transport header is not in the line.
    no_transport_header: bool,
}

impl<'a> Seen<'a> {
    fn token(&mut self, token: &'a str) -> Result<(), NotDrop> {
        let Some(equals) = memchr::memchr(b'=', token.as_bytes()) else {
            if token.starts_with("FRAG:") || token == "INCOMPLETE" {
                self.no_transport_header = true;
            } else {
                self.flags.insert(token);
            }
            return Ok(());
        };
        let (key, value) = (&token.as_bytes()[..equals], &token[equals + 1..]);
        let header = self.protocol.is_none();
        match key {
            b"IN" => first(&mut self.in_interface, || Ok(value))?,
            b"OUT" => first(&mut self.out_interface, || Ok(value))?,
            b"MAC" => first(&mut self.mac, || Ok(value))?,
            b"SRC" => first(&mut self.src, || ip("SRC", value))?,
            b"DST" => first(&mut self.dst, || ip("DST", value))?,
            b"LEN" if header => first(&mut self.length, || number("LEN", value))?,
            b"TTL" if header => first(&mut self.ttl, || number("TTL", value))?,
            b"HOPLIMIT" if header => first(&mut self.ttl, || number("HOPLIMIT", value))?,
            b"ID" if header => first(&mut self.id, || number("ID", value))?,
            b"PROTO" => first(&mut self.protocol, || protocol(value))?,
            b"SPT" if !header => first(&mut self.src_port, || number("SPT", value))?,
            b"DPT" if !header => first(&mut self.dst_port, || number("DPT", value))?,
            b"TYPE" if !header => first(&mut self.icmp_type, || number("TYPE", value))?,
            b"CODE" if !header => first(&mut self.icmp_code, || number("CODE", value))?,
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Packet, NotDrop> {
        let protocol = self.protocol.ok_or(NotDrop::MissingField("PROTO"))?;
        let transport = match protocol {
            Protocol::Tcp | Protocol::Udp | Protocol::UdpLite | Protocol::Sctp => {
                match (self.src_port, self.dst_port) {
                    (Some(src), Some(dst)) => Transport::Ports { src, dst },
                    _ if self.no_transport_header => Transport::None,
                    (_, None) => return Err(NotDrop::MissingField("DPT")),
                    (None, _) => return Err(NotDrop::MissingField("SPT")),
                }
            }
            Protocol::Icmp | Protocol::Icmpv6 => match (self.icmp_type, self.icmp_code) {
                (Some(kind), Some(code)) => Transport::Icmp { kind, code },
                _ if self.no_transport_header => Transport::None,
                (None, _) => return Err(NotDrop::MissingField("TYPE")),
                (_, None) => return Err(NotDrop::MissingField("CODE")),
            },
            Protocol::Number(_) => Transport::None,
        };
        Ok(Packet {
            in_interface: self
                .in_interface
                .ok_or(NotDrop::MissingField("IN"))?
                .to_string(),
            out_interface: self
                .out_interface
                .ok_or(NotDrop::MissingField("OUT"))?
                .to_string(),
            // `MAC=` with nothing after it: the interface has no link-layer header (a tunnel).
            mac: self.mac.filter(|mac| !mac.is_empty()).map(str::to_string),
            src: self.src.ok_or(NotDrop::MissingField("SRC"))?,
            dst: self.dst.ok_or(NotDrop::MissingField("DST"))?,
            length: self.length,
            ttl: self.ttl,
            id: self.id,
            protocol,
            transport,
            flags: self.flags,
        })
    }
}

/// Keeps the first value of a key: later ones are neither parsed nor checked.
fn first<T>(
    slot: &mut Option<T>,
    parse: impl FnOnce() -> Result<T, NotDrop>,
) -> Result<(), NotDrop> {
    if slot.is_none() {
        *slot = Some(parse()?);
    }
    Ok(())
}

fn ip(key: &'static str, value: &str) -> Result<IpAddr, NotDrop> {
    if let Some(address) = expanded_ipv6(value) {
        return Ok(IpAddr::V6(address));
    }
    value.parse().map_err(|_| NotDrop::BadField(key))
}

/// The kernel's IPv6 form, eight groups of four hex digits, read directly: it is several times faster
/// than the general parser, which handles `::` and embedded IPv4.
fn expanded_ipv6(value: &str) -> Option<Ipv6Addr> {
    if value.len() != 39 {
        return None;
    }
    let mut groups = [0u16; 8];
    let mut parts = value.split(':');
    for group in &mut groups {
        let part = parts.next()?;
        if part.len() != 4 {
            return None;
        }
        for byte in part.bytes() {
            *group = (*group << 4) | char::from(byte).to_digit(16)? as u16;
        }
    }
    Some(Ipv6Addr::from(groups))
}

/// A decimal number as the kernel writes it: digits only (no sign, no spaces), in range for `T`.
fn number<T: FromStr>(key: &'static str, value: &str) -> Result<T, NotDrop> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(NotDrop::BadField(key));
    }
    value.parse().map_err(|_| NotDrop::BadField(key))
}

fn protocol(value: &str) -> Result<Protocol, NotDrop> {
    Ok(match value {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "UDPLITE" => Protocol::UdpLite,
        "ICMP" => Protocol::Icmp,
        "ICMPv6" => Protocol::Icmpv6,
        "SCTP" => Protocol::Sctp,
        // IPsec headers the kernel names instead of numbering; their SPI is not a port.
        "ESP" => Protocol::Number(50),
        "AH" => Protocol::Number(51),
        _ => Protocol::Number(number("PROTO", value)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Result<Packet, NotDrop> {
        parse_fields(text)
    }

    const BASE: &str =
        "IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=5 ";

    #[test]
    fn keys_match_exactly() {
        let packet = fields(&format!(
            "{BASE}XSRC=1.2.3.4 SRCX=1.2.3.5 PROTO=TCP SPT=1 DPT=2 XDPT=3 "
        ))
        .expect("a packet");
        assert_eq!(packet.src, "10.0.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(packet.transport, Transport::Ports { src: 1, dst: 2 });
        let only_xsrc = "IN=eth0 OUT= XSRC=1.2.3.4 DST=10.0.0.2 PROTO=TCP SPT=1 DPT=2 ";
        assert_eq!(fields(only_xsrc), Err(NotDrop::MissingField("SRC")));
    }

    #[test]
    fn header_fields_come_before_proto_and_transport_fields_after() {
        // ICMPv6 echo: the only `ID=` is the echo id, which is not an IP id.
        let echo = "IN=lo OUT= SRC=::1 DST=::1 LEN=104 TC=0 HOPLIMIT=64 FLOWLBL=1 PROTO=ICMPv6 TYPE=128 CODE=0 ID=7 SEQ=1 ";
        let packet = fields(echo).expect("a packet");
        assert_eq!(packet.id, None);
        assert_eq!(packet.ttl, Some(64));
        assert_eq!(packet.protocol, Protocol::Icmpv6);
        assert_eq!(packet.transport, Transport::Icmp { kind: 128, code: 0 });
        // Ports before PROTO= are not the transport header's.
        let early_ports = "IN=lo OUT= SRC=::1 DST=::1 SPT=1 DPT=2 PROTO=TCP ";
        assert_eq!(fields(early_ports), Err(NotDrop::MissingField("DPT")));
    }

    #[test]
    fn repeated_keys_keep_the_first_value_even_if_a_later_one_is_bad() {
        let packet =
            fields(&format!("{BASE}PROTO=UDP SPT=1 DPT=2 LEN=40 SRC=nonsense ")).expect("a packet");
        assert_eq!(packet.length, Some(60));
        assert_eq!(packet.src, "10.0.0.1".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn bracketed_tokens_are_skipped_however_nested() {
        let text = format!(
            "{BASE}PROTO=ICMP TYPE=3 CODE=4 [SRC=10.0.0.2 DST=10.0.0.1 LEN=1500 TTL=1 ID=9 DF PROTO=TCP INCOMPLETE [8 bytes] ] MTU=1400 "
        );
        let packet = fields(&text).expect("a packet");
        assert_eq!(packet.transport, Transport::Icmp { kind: 3, code: 4 });
        assert_eq!(packet.flags, Flags::default());
        assert_eq!(packet.length, Some(60));
    }

    #[test]
    fn fragments_and_truncated_packets_have_no_transport() {
        let fragment = fields(&format!("{BASE}MF FRAG:185 PROTO=UDP ")).expect("a packet");
        assert_eq!(fragment.transport, Transport::None);
        assert!(fragment.flags.contains("MF"));
        let incomplete =
            fields(&format!("{BASE}PROTO=TCP INCOMPLETE [12 bytes] ")).expect("a packet");
        assert_eq!(incomplete.transport, Transport::None);
        let icmp = fields(&format!("{BASE}PROTO=ICMP INCOMPLETE [2 bytes] ")).expect("a packet");
        assert_eq!(icmp.transport, Transport::None);
    }

    #[test]
    fn required_transport_fields_are_named_when_missing() {
        assert_eq!(
            fields(&format!("{BASE}PROTO=TCP ")),
            Err(NotDrop::MissingField("DPT"))
        );
        assert_eq!(
            fields(&format!("{BASE}PROTO=UDP DPT=53 ")),
            Err(NotDrop::MissingField("SPT"))
        );
        assert_eq!(
            fields(&format!("{BASE}PROTO=ICMP CODE=0 ")),
            Err(NotDrop::MissingField("TYPE"))
        );
        assert_eq!(
            fields(&format!("{BASE}PROTO=ICMP TYPE=8 ")),
            Err(NotDrop::MissingField("CODE"))
        );
        assert_eq!(
            fields("IN=eth0 OUT= SRC=10.0.0.1 PROTO=47 "),
            Err(NotDrop::MissingField("DST"))
        );
    }

    #[test]
    fn values_must_be_plain_numbers_in_range() {
        let cases = [
            ("DPT=70000", "DPT"),
            ("DPT=+80", "DPT"),
            ("DPT=", "DPT"),
            ("DPT=8o", "DPT"),
            ("SPT=-1", "SPT"),
        ];
        for (bad, key) in cases {
            let text = format!("{BASE}PROTO=TCP SPT=1 DPT=2 ").replacen(
                &format!("{}=", key),
                &format!("{bad} X{key}="),
                1,
            );
            assert_eq!(fields(&text), Err(NotDrop::BadField(key)), "{text}");
        }
        let bad_ttl = BASE.replace("TTL=64", "TTL=256");
        assert_eq!(
            fields(&format!("{bad_ttl}PROTO=47 ")),
            Err(NotDrop::BadField("TTL"))
        );
        assert_eq!(
            fields(&format!("{BASE}PROTO=300 ")),
            Err(NotDrop::BadField("PROTO"))
        );
        assert_eq!(
            fields(&format!("{BASE}PROTO=tcp ")),
            Err(NotDrop::BadField("PROTO"))
        );
        let bad_dst = BASE.replace("DST=10.0.0.2", "DST=10.0.0");
        assert_eq!(
            fields(&format!("{bad_dst}PROTO=47 ")),
            Err(NotDrop::BadField("DST"))
        );
    }

    #[test]
    fn protocols_by_name_and_number() {
        let protocol = |name: &str| {
            fields(&format!("{BASE}PROTO={name} SPT=1 DPT=2 TYPE=0 CODE=0 ")).map(|p| p.protocol)
        };
        assert_eq!(protocol("UDPLITE"), Ok(Protocol::UdpLite));
        assert_eq!(protocol("SCTP"), Ok(Protocol::Sctp));
        assert_eq!(protocol("ESP"), Ok(Protocol::Number(50)));
        assert_eq!(protocol("AH"), Ok(Protocol::Number(51)));
        assert_eq!(protocol("132"), Ok(Protocol::Number(132)));
    }

    #[test]
    fn ipv6_addresses_in_any_form() {
        let expanded = "2001:0db8:0000:0000:0000:ff00:0042:8329";
        let address = |text: &str| ip("SRC", text).map(|address| address.to_string());
        assert_eq!(address(expanded), Ok("2001:db8::ff00:42:8329".to_string()));
        assert_eq!(
            address("2001:DB8::FF00:42:8329"),
            Ok("2001:db8::ff00:42:8329".to_string())
        );
        assert_eq!(
            address("0000:0000:0000:0000:0000:ffff:0a00:0001"),
            Ok("::ffff:10.0.0.1".to_string())
        );
        assert_eq!(
            address("2001:0db8:0000:0000:0000:ff00:0042:832g"),
            Err(NotDrop::BadField("SRC"))
        );
        assert_eq!(
            address("2001:0db8:0000:0000:0000:ff00:00428329:"),
            Err(NotDrop::BadField("SRC"))
        );
        assert_eq!(
            address("+001:0db8:0000:0000:0000:ff00:0042:8329"),
            Err(NotDrop::BadField("SRC"))
        );
    }

    #[test]
    fn empty_mac_means_no_link_layer_header() {
        let packet =
            fields("IN=tun0 OUT= MAC= SRC=10.0.0.1 DST=10.0.0.2 PROTO=47 ").expect("a packet");
        assert_eq!(packet.mac, None);
    }

    #[test]
    fn flags_are_the_known_bare_words() {
        let packet = fields(&format!(
            "{BASE}CE DF PROTO=TCP SPT=1 DPT=2 WINDOW=1 RES=0x00 ACK PSH FIN OPT (020405B4) URGP=0 "
        ))
        .expect("a packet");
        assert_eq!(packet.flags.names(), vec!["CE", "DF", "ACK", "PSH", "FIN"]);
    }
}
