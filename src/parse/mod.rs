//! Parsing: a pure function from one log line to a [`PacketDrop`], or the reason it is not one.
//!
//! No I/O, no clock, no configuration lookups: the caller passes the prefixes and layout once
//! ([`Parser::new`]) and, for timestamps without a year, the current time.

pub mod netfilter;
pub mod stage;
pub mod time;

use chrono::{DateTime, FixedOffset, Utc};

use crate::model::PacketDrop;
pub use time::{LayoutError, TimeLayout};

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
pub struct Parser {
    _private: (),
}

impl Parser {
    /// `local_offset` is applied to timestamps that carry no zone (RFC 3164 `Jan _2 15:04:05`).
    pub fn new(_prefixes: Vec<String>, _layout: TimeLayout, _local_offset: FixedOffset) -> Parser {
        todo!("parser")
    }

    /// Parses a syslog-style line: timestamp, host name, then the kernel message with a prefix.
    /// `now` only serves to infer the year of timestamps that do not carry one.
    pub fn parse_line(&self, _line: &str, _now: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        todo!("parser")
    }

    /// Parses a bare kernel message (journald `MESSAGE`, a kmsg record) whose time the source knows.
    pub fn parse_message(&self, _message: &str, _time: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
        todo!("parser")
    }
}
