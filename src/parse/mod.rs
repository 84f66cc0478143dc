//! Parsing: a pure function from one log line to a [`PacketDrop`], or the reason it is not one.
//!
//! No I/O, no clock, no configuration lookups: the caller passes the prefixes and layout once
//! ([`Parser::new`]) and, for timestamps without a year, the current time.

pub mod netfilter;
pub mod stage;
pub mod time;

use chrono::{DateTime, FixedOffset, Utc};
use memchr::memmem::Finder;

use crate::model::PacketDrop;
pub use time::{LayoutError, TimeLayout};
use time::{is_whitespace, skip_whitespace};

/// Why a line is not handed on as a drop. `reason()` is the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotDrop {
    #[error("no configured prefix in the line")]
    NoPrefix,
    #[error("the timestamp does not match the layout")]
    BadTimestamp,
    #[error("field {0}= is missing")]
    MissingField(&'static str),
    #[error("field {0}= has a bad value")]
    BadField(&'static str),
}

impl NotDrop {
    pub fn reason(self) -> &'static str {
        match self {
            NotDrop::NoPrefix => "not_a_drop",
            NotDrop::BadTimestamp => "bad_timestamp",
            NotDrop::MissingField(_) => "missing_field",
            NotDrop::BadField(_) => "bad_field",
        }
    }
}

/// The prefixes and time layout to parse with, fixed at start.
#[derive(Clone, Debug)]
pub struct Parser {
    prefixes: Vec<Prefix>,
    layout: TimeLayout,
    local_offset: FixedOffset,
    fields_start: Finder<'static>,
}

/// One configured prefix with its searcher, built once: most lines are not drops, and a SIMD substring
/// search is what rejects them.
#[derive(Clone, Debug)]
struct Prefix {
    /// As configured: what [`PacketDrop::prefix`] reports.
    configured: String,
    /// Searches for the configured prefix without surrounding whitespace (the kernel line has its own).
    /// `None` for a prefix that is only whitespace, which matches nothing.
    finder: Option<Finder<'static>>,
}

/// Where a prefix was found: which one, where it starts, and where its fields (`IN=`) start.
#[derive(Clone, Copy, Debug)]
struct Found {
    prefix: usize,
    start: usize,
    fields: Option<usize>,
}

impl Parser {
    /// `local_offset` is applied to timestamps that carry no zone (RFC 3164 `Jan _2 15:04:05`).
    pub fn new(prefixes: Vec<String>, layout: TimeLayout, local_offset: FixedOffset) -> Parser {
        let prefixes = prefixes
            .into_iter()
            .map(|configured| {
                let trimmed = configured.trim_matches(|c| c == ' ' || c == '\t');
                let finder = (!trimmed.is_empty()).then(|| Finder::new(trimmed).into_owned());
                Prefix { configured, finder }
            })
            .collect();
        Parser {
            prefixes,
            layout,
            local_offset,
            fields_start: Finder::new("IN=").into_owned(),
        }
    }

    /// Parses a syslog-style line: timestamp, host name, then the kernel message with a prefix.
    /// `now` only serves to infer the year of timestamps that do not carry one.
    ///
    /// The prefix is looked for first, so that a line that is no drop costs only that search. The host
    /// name is the token after the timestamp; when the prefix itself follows the timestamp directly,
    /// the line has no host name.
    pub fn parse_line(&self, line: &str, now: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        let first = self.find(line, 0).ok_or(NotDrop::NoPrefix)?;
        let (time, time_end) = self
            .layout
            .parse_at_start(line, self.local_offset, now)
            .ok_or(NotDrop::BadTimestamp)?;
        let bytes = line.as_bytes();
        let host_start = skip_whitespace(bytes, time_end);
        let host_end = token_end(bytes, host_start);
        // The first match is where the search would start over, unless it lies before `from`.
        let after = |from: usize| {
            if first.start >= from {
                Some(first)
            } else {
                self.find(line, from)
            }
        };
        let (found, hostname) = match after(host_end) {
            Some(found) if host_end > host_start => (found, line.get(host_start..host_end)),
            _ => (after(host_start).ok_or(NotDrop::NoPrefix)?, None),
        };
        self.drop_at(line, found, time, hostname.map(str::to_string))
    }

    /// Parses a bare kernel message (journald `MESSAGE`, a kmsg record) whose time the source knows.
    pub fn parse_message(&self, message: &str, time: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        let found = self.find(message, 0).ok_or(NotDrop::NoPrefix)?;
        self.drop_at(message, found, time, None)
    }

    fn drop_at(
        &self,
        text: &str,
        found: Found,
        time: DateTime<Utc>,
        hostname: Option<String>,
    ) -> Result<PacketDrop, NotDrop> {
        let fields = found.fields.and_then(|start| text.get(start..));
        let packet = netfilter::parse_fields(fields.ok_or(NotDrop::MissingField("IN"))?)?;
        let prefix = self
            .prefixes
            .get(found.prefix)
            .map(|prefix| prefix.configured.clone());
        Ok(PacketDrop {
            time,
            hostname,
            prefix: prefix.unwrap_or_default(),
            packet,
        })
    }

    /// The first configured prefix (in configuration order) that `text[from..]` holds as a drop marker:
    /// either a whole whitespace-separated token, or directly followed (after optional whitespace) by
    /// the fields' `IN=`, which lets a prefix contain spaces or be glued to `IN=`.
    fn find(&self, text: &str, from: usize) -> Option<Found> {
        let bytes = text.as_bytes();
        let haystack = bytes.get(from..)?;
        for (index, prefix) in self.prefixes.iter().enumerate() {
            let Some(finder) = &prefix.finder else {
                continue;
            };
            for position in finder.find_iter(haystack) {
                let start = from + position;
                let end = start + finder.needle().len();
                let next = skip_whitespace(bytes, end);
                if bytes
                    .get(next..)
                    .is_some_and(|rest| rest.starts_with(b"IN="))
                {
                    return Some(Found {
                        prefix: index,
                        start,
                        fields: Some(next),
                    });
                }
                let token_start =
                    start == 0 || bytes.get(start - 1).is_some_and(|b| is_whitespace(*b));
                if token_start && token_end(bytes, end) == end {
                    return Some(Found {
                        prefix: index,
                        start,
                        fields: self.fields_after(bytes, end),
                    });
                }
            }
        }
        None
    }

    /// The first `IN=` at the start of a token after `from`.
    fn fields_after(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let haystack = bytes.get(from..)?;
        self.fields_start
            .find_iter(haystack)
            .map(|position| from + position)
            .find(|start| {
                let before = start.checked_sub(1).and_then(|before| bytes.get(before));
                before.is_some_and(|b| is_whitespace(*b))
            })
    }
}

/// The index of the first whitespace byte at or after `from` (or the end).
fn token_end(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|byte| is_whitespace(*byte))
        .unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use chrono::TimeZone;
    use proptest::prelude::*;

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
        include_str!("../../tests/fixtures/parse/rsyslog-file-format.log");
    const RSYSLOG_TRADITIONAL: &str =
        include_str!("../../tests/fixtures/parse/rsyslog-traditional.log");
    const RSYSLOG_TAILER: &str =
        include_str!("../../tests/fixtures/parse/rsyslog-tailer-template.log");

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn parser(prefixes: &[&str]) -> Parser {
        let prefixes = prefixes.iter().map(|prefix| prefix.to_string()).collect();
        Parser::new(
            prefixes,
            TimeLayout::Auto,
            FixedOffset::east_opt(0).expect("UTC"),
        )
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

    #[test]
    fn ipv4_tcp_line_with_mac_gives_every_field() {
        let time = utc("2026-11-25T21:05:35Z");
        let drop = kitchk().parse_message(TCP_V4, time).expect("a drop");
        let expected = PacketDrop {
            time,
            hostname: None,
            prefix: "KITCHK:".into(),
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
                prefix: "KITCHK:".into(),
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
            prefix: "KITCHK-UDP:".into(),
            packet: sample_udp_packet(),
        };
        assert_eq!(drops[0], expected);
        assert_eq!(drops[2].time, utc("2026-11-25T21:05:35.431483Z"));
        assert_eq!(drops[2].packet.id, Some(43079));
    }

    #[test]
    fn rsyslog_traditional_line_gets_the_year_and_the_local_offset() {
        let prefixes = vec!["KITCHK-UDP:".to_string()];
        let berlin = FixedOffset::east_opt(3600).expect("offset");
        let parser = Parser::new(prefixes, TimeLayout::Auto, berlin);
        let drop = parser
            .parse_line(first_line(RSYSLOG_TRADITIONAL), utc("2026-11-25T20:06:00Z"))
            .expect("a drop");
        let expected = PacketDrop {
            time: utc("2026-11-25T20:05:35Z"),
            hostname: Some("vm".into()),
            prefix: "KITCHK-UDP:".into(),
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
            prefix: "KITCHK-UDP:".into(),
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
            prefix: "calico-drop".into(),
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

    #[test]
    fn line_without_prefix_is_not_a_drop() {
        let now = utc("2026-11-25T21:06:00Z");
        let parser = kitchk();
        assert_eq!(parser.parse_line("", now), Err(NotDrop::NoPrefix));
        assert_eq!(parser.parse_message("", now), Err(NotDrop::NoPrefix));
        let noise = include_str!("../../tests/fixtures/parse/kern-noise.log");
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
        let parser = Parser::new(
            vec!["KITCHK:".into()],
            layout,
            FixedOffset::east_opt(7200).expect("offset"),
        );
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

    fn fuzz_parsers() -> [Parser; 2] {
        let prefixes = vec![
            "KITCHK:".to_string(),
            "my drop: ".to_string(),
            "D".to_string(),
        ];
        let offset = FixedOffset::west_opt(5 * 3600).expect("offset");
        let go = TimeLayout::from_go("Jan _2 2006 03:04:05.000 PM MST").expect("layout");
        [
            Parser::new(prefixes.clone(), TimeLayout::Auto, offset),
            Parser::new(prefixes, go, offset),
        ]
    }

    fn exercise(line: &str) {
        let now = utc("2027-01-01T00:00:10Z");
        for parser in fuzz_parsers() {
            let _ = parser.parse_line(line, now);
            let _ = parser.parse_message(line, now);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(line in any::<String>()) {
            exercise(&line);
        }

        #[test]
        fn drop_like_text_never_panics(
            line in "(Nov  5 2026 |2026-11-25T21:05:35(\\.[0-9]{0,12})?(Z|[+-][0-9:]{0,6}) |Dec 31 )?[a-z ]{0,3}(KITCHK: |my drop: |D)?((IN|OUT|MAC|SRC|DST|LEN|TTL|HOPLIMIT|ID|PROTO|SPT|DPT|TYPE|CODE|FRAG:)=?[0-9a-fA-F.:\\[\\]]{0,8} ?){0,30}"
        ) {
            exercise(&line);
        }

        #[test]
        fn truncated_real_lines_never_panic(which in 0usize..6, cut in any::<prop::sample::Index>()) {
            let line = format!("Dec 31 23:59:59 vm kernel: [1.5] {}", [TCP_V4, TCP_V6, UDP, ICMP_ECHO, OUTPUT, ICMP_ERROR][which]);
            let boundaries: Vec<usize> = (0..=line.len()).filter(|at| line.is_char_boundary(*at)).collect();
            exercise(&line[..boundaries[cut.index(boundaries.len())]]);
        }

        #[test]
        fn real_lines_with_inserted_bytes_never_panic(
            which in 0usize..6,
            insertions in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let line = format!("2026-11-25T21:05:35.429037+00:00 vm kernel: {}", [TCP_V4, TCP_V6, UDP, ICMP_ECHO, OUTPUT, ICMP_ERROR][which]);
            let mut bytes = line.into_bytes();
            for (at, byte) in insertions {
                bytes.insert(at.index(bytes.len() + 1), byte);
            }
            exercise(&String::from_utf8_lossy(&bytes));
        }
    }
}
