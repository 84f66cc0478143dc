//! Parsing: a pure function from one log line to a [`PacketDrop`], or the reason it is not one.
//!
//! No I/O, no clock, no configuration lookups: the caller passes the prefixes, layout and local zone
//! once ([`Parser::new`]) and, for timestamps without a year or a zone, the current time.

pub mod antrea;
pub mod aws;
pub mod netfilter;
pub mod ovn;
pub mod policy;
pub mod stage;
pub mod time;

use chrono::{DateTime, Utc};
use memchr::memmem::Finder;

use crate::model::PacketDrop;
pub use time::{LayoutError, LocalZone, TimeLayout};
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
    #[error("the line reports a packet that was allowed")]
    NotDropped,
}

impl NotDrop {
    pub fn reason(self) -> &'static str {
        match self {
            NotDrop::NoPrefix | NotDrop::NotDropped => "not_a_drop",
            NotDrop::BadTimestamp => "bad_timestamp",
            NotDrop::MissingField(_) => "missing_field",
            NotDrop::BadField(_) => "bad_field",
        }
    }
}

/// Which line formats a parser reads (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Each line as what it looks like: a netfilter LOG line with a configured prefix, an OVN ACL
    /// log line, an Antrea audit line, or an AWS network policy agent flow record (in that order:
    /// most lines are syslog's).
    #[default]
    Auto,
    /// Netfilter LOG lines only (the original agent's behaviour).
    Netfilter,
    /// Antrea's `np.log` only (`parse/antrea.rs`).
    Antrea,
    /// OVN's ACL audit log only (`parse/ovn.rs`).
    Ovn,
    /// The AWS VPC CNI network policy agent's flow records only (`parse/aws.rs`).
    Aws,
}

impl LogFormat {
    pub fn from_name(name: &str) -> Option<LogFormat> {
        match name {
            "auto" => Some(LogFormat::Auto),
            "netfilter" => Some(LogFormat::Netfilter),
            "antrea" => Some(LogFormat::Antrea),
            "ovn" => Some(LogFormat::Ovn),
            "aws" => Some(LogFormat::Aws),
            _ => None,
        }
    }
}

/// The prefixes, time layout and formats to parse with, fixed at start.
#[derive(Clone, Debug)]
pub struct Parser {
    prefixes: Vec<Prefix>,
    layout: TimeLayout,
    zone: LocalZone,
    fields_start: Finder<'static>,
    format: LogFormat,
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
    /// `zone` is the zone of timestamps that carry none (RFC 3164 `Jan _2 15:04:05`).
    pub fn new(prefixes: Vec<String>, layout: TimeLayout, zone: LocalZone) -> Parser {
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
            zone,
            fields_start: Finder::new("IN=").into_owned(),
            format: LogFormat::Auto,
        }
    }

    /// The same parser, reading `format` lines.
    pub fn with_format(self, format: LogFormat) -> Parser {
        Parser { format, ..self }
    }

    /// Parses a line of a log file in the configured format (see [`LogFormat`]). `now` only serves
    /// to infer the year of timestamps that do not carry one.
    pub fn parse_line(&self, line: &str, now: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        match self.format {
            LogFormat::Netfilter => self.parse_netfilter_line(line, now),
            LogFormat::Antrea => antrea::parse(line, &self.zone, now),
            LogFormat::Ovn => ovn::parse(line, None),
            LogFormat::Aws => aws::parse(line),
            LogFormat::Auto => match self.parse_netfilter_line(line, now) {
                Err(NotDrop::NoPrefix) if ovn::looks_like(line) => ovn::parse(line, None),
                Err(NotDrop::NoPrefix) if antrea::looks_like(line) => {
                    antrea::parse(line, &self.zone, now)
                }
                Err(NotDrop::NoPrefix) if aws::looks_like(line) => aws::parse(line),
                parsed => parsed,
            },
        }
    }

    /// Parses a syslog-style line: timestamp, host name, then the kernel message with a prefix.
    ///
    /// The prefix is looked for first, so that a line that is no drop costs only that search. The host
    /// name is the token after the timestamp; when the prefix itself follows the timestamp directly,
    /// the line has no host name.
    fn parse_netfilter_line(&self, line: &str, now: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        let first = self.find(line, 0).ok_or(NotDrop::NoPrefix)?;
        let (time, time_end) = self
            .layout
            .parse_at_start(line, &self.zone, now)
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

    /// Parses a bare message (journald `MESSAGE`, a kmsg record) whose time the source knows: a
    /// kernel LOG message, or (journald) ovn-controller's ACL log line.
    pub fn parse_message(&self, message: &str, time: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        match self.format {
            LogFormat::Ovn => ovn::parse(message, Some(time)),
            // The source's time for the message stands in for the clock.
            LogFormat::Antrea => antrea::parse(message, &self.zone, time),
            LogFormat::Aws => aws::parse(message),
            LogFormat::Netfilter | LogFormat::Auto => match self.find(message, 0) {
                Some(found) => self.drop_at(message, found, time, None),
                None if self.format == LogFormat::Auto && ovn::looks_like(message) => {
                    ovn::parse(message, Some(time))
                }
                None => Err(NotDrop::NoPrefix),
            },
        }
    }

    fn drop_at(
        &self,
        text: &str,
        found: Found,
        time: DateTime<Utc>,
        hostname: Option<String>,
    ) -> Result<PacketDrop, NotDrop> {
        let fields_start = found.fields.ok_or(NotDrop::MissingField("IN"))?;
        let fields = text
            .get(fields_start..)
            .ok_or(NotDrop::MissingField("IN"))?;
        let packet = netfilter::parse_fields(fields)?;
        // The prefix as logged: the configured one and what follows it up to the fields.
        let logged = text.get(found.start..fields_start).unwrap_or_default();
        let prefix = self
            .prefixes
            .get(found.prefix)
            .map(|prefix| prefix.configured.clone());
        Ok(PacketDrop {
            time,
            hostname,
            count: 1,
            verdict: None,
            prefix: prefix.unwrap_or_default(),
            packet,
            // The parser sees text only; the parse stage adds the line's mark.
            mark: None,
            policy: policy::from_prefix(logged),
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
mod tests;
