//! Tests of [`Parser`](super::Parser) on real kernel and syslog lines: the sample lines and helpers
//! they share, with a module per theme.

mod broken;
mod formats;
mod messages;
mod prefixes;
mod proptests;

use std::net::IpAddr;

use super::*;
use crate::model::{Flags, Packet, Protocol, Transport};

// Real kernel messages (from /dev/kmsg, without the `prio,seq,usec,flags;` header); each ends with
// the space the kernel leaves.
const TCP_V4: &str = "KITCHK: IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=62275 DF PROTO=TCP SPT=46062 DPT=9999 WINDOW=65495 RES=0x00 SYN URGP=0 ";
const TCP_V6: &str = "KITCHK: IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:86:dd SRC=0000:0000:0000:0000:0000:0000:0000:0001 DST=0000:0000:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=362346 PROTO=TCP SPT=48300 DPT=9999 WINDOW=65476 RES=0x00 SYN URGP=0 ";
const UDP: &str = "KITCHK-UDP: IN=kitchkvb OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=198.18.0.1 DST=198.18.0.2 LEN=31 TOS=0x00 PREC=0x00 TTL=64 ID=49464 DF PROTO=UDP SPT=39874 DPT=9998 LEN=11 ";
const ICMP_ECHO: &str = "KITCHK-ICMP: IN=kitchkvb OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=198.18.0.1 DST=198.18.0.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=59040 DF PROTO=ICMP TYPE=8 CODE=0 ID=4205 SEQ=1 ";
const OUTPUT: &str = "KITCHK-OUT: IN= OUT=kitchkva SRC=198.18.0.1 DST=198.18.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=56625 DF PROTO=TCP SPT=50468 DPT=9997 WINDOW=64240 RES=0x00 SYN URGP=0 UID=0 GID=0 ";
// An ICMP port-unreachable answering the rsyslog samples' UDP packet: the kernel appends the packet
// that caused it in brackets.
const ICMP_ERROR: &str = "KITCHK-ICMP: IN=kitchkva OUT= MAC=16:f8:da:93:4e:72:8a:e3:5a:9a:33:d3:08:00 SRC=198.18.0.2 DST=198.18.0.1 LEN=57 TOS=0x00 PREC=0xC0 TTL=64 ID=20711 PROTO=ICMP TYPE=3 CODE=3 [SRC=198.18.0.1 DST=198.18.0.2 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=43077 DF PROTO=UDP SPT=34393 DPT=9998 LEN=9 ] ";

const RSYSLOG_FILE_FORMAT: &str =
    include_str!("../../../tests/fixtures/parse/rsyslog-file-format.log");
const RSYSLOG_TRADITIONAL: &str =
    include_str!("../../../tests/fixtures/parse/rsyslog-traditional.log");
const RSYSLOG_TAILER: &str =
    include_str!("../../../tests/fixtures/parse/rsyslog-tailer-template.log");

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&Utc)
}

fn parser(prefixes: &[&str]) -> Parser {
    let prefixes = prefixes.iter().map(|prefix| prefix.to_string()).collect();
    Parser::new(prefixes, TimeLayout::Auto, LocalZone::utc())
}

fn kitchk() -> Parser {
    parser(&["KITCHK:", "KITCHK-UDP:", "KITCHK-ICMP:", "KITCHK-OUT:"])
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn flags(words: &[&str]) -> Flags {
    let mut flags = Flags::default();
    for word in words {
        assert!(flags.insert(word), "{word} is a flag");
    }
    flags
}

/// The packet of the rsyslog samples (UDP 198.18.0.1:34393 -> 198.18.0.2:9998, IP id 43077).
fn sample_udp_packet() -> Packet {
    Packet {
        in_interface: "kitchkvb".into(),
        out_interface: String::new(),
        mac: Some("8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00".into()),
        src: ip("198.18.0.1"),
        dst: ip("198.18.0.2"),
        length: Some(29),
        ttl: Some(64),
        id: Some(43077),
        protocol: Protocol::Udp,
        transport: Transport::Ports {
            src: 34393,
            dst: 9998,
        },
        flags: flags(&["DF"]),
    }
}

fn first_line(log: &str) -> &str {
    log.lines().next().expect("fixture has a line")
}
