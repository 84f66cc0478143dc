//! One /dev/kmsg record, parsed: `prio,seq,usec,flags[,more];message\n`, then optional dictionary lines
//! that start with a space (` SUBSYSTEM=net`), which are metadata, not message, and are ignored.
//!
//! The kernel writes every byte below a space, from DEL up (so every byte of a non-ASCII UTF-8
//! character), and the backslash itself as `\xNN`; [`parse`] turns those back into bytes. Older kernels
//! (3.5–4.8) split a line printed in pieces into records flagged `c` (the first piece) and `+` (the
//! pieces after it); [`Assembler`] joins them into one message again.
//!
//! Pure functions: no I/O, no clock.

use std::borrow::Cow;

/// A record's header fields and its unescaped message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Syslog priority: facility × 8 + level. Every facility is accepted (userspace writes are `user`).
    pub priority: u32,
    pub sequence: u64,
    /// Microseconds since boot on the kernel's clock.
    pub usec: u64,
    pub fragment: Fragment,
    pub message: String,
}

/// The flags field: whether the record is a whole line or a piece of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// `-`: a whole line (every record of kernels since 4.9).
    Whole,
    /// `c`: the first piece of a line that later `+` records continue.
    First,
    /// `+`: a piece continuing the line before it.
    Continued,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("no ';' ends the record's header")]
    NoHeader,
    #[error("the record's {0} field is missing or not a decimal number")]
    BadNumber(&'static str),
    #[error("the record has no flags field")]
    NoFlags,
}

/// Parses one record as a read() of /dev/kmsg returns it (with or without its final `\n`).
pub(crate) fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
    // The record line ends at the first `\n`; dictionary lines (` KEY=value`) may follow it. Inside the
    // message a newline is escaped, so the first `\n` is always the record line's end.
    let line = match memchr::memchr(b'\n', bytes) {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    let semicolon = memchr::memchr(b';', line).ok_or(RecordError::NoHeader)?;
    let (header, message) = (&line[..semicolon], &line[semicolon + 1..]);
    let mut fields = header.split(|byte| *byte == b',');
    let priority = number(fields.next(), "priority")?;
    let sequence = number(fields.next(), "sequence")?;
    let usec = number(fields.next(), "timestamp")?;
    // Fields after the flags (`caller=T123` on some builds) are not used.
    let fragment = match fields.next().and_then(|flags| flags.first()) {
        None => return Err(RecordError::NoFlags),
        Some(b'c') => Fragment::First,
        Some(b'+') => Fragment::Continued,
        // `-`, and any flag a future kernel may add: a record is whole unless it says otherwise.
        Some(_) => Fragment::Whole,
    };
    Ok(Record {
        priority: u32::try_from(priority).map_err(|_| RecordError::BadNumber("priority"))?,
        sequence,
        usec,
        fragment,
        message: String::from_utf8_lossy(&unescape(message)).into_owned(),
    })
}

fn number(field: Option<&[u8]>, name: &'static str) -> Result<u64, RecordError> {
    let field = field.filter(|field| !field.is_empty() && field.iter().all(u8::is_ascii_digit));
    field
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok())
        .ok_or(RecordError::BadNumber(name))
}

/// Undoes the kernel's `\xNN` escapes. A backslash not followed by `x` and two hex digits is kept as it
/// is (the kernel never writes one, since it escapes backslashes too).
fn unescape(escaped: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', escaped).is_none() {
        return Cow::Borrowed(escaped);
    }
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(backslash) = memchr::memchr(b'\\', rest) {
        bytes.extend_from_slice(&rest[..backslash]);
        let after = &rest[backslash..];
        match after {
            [b'\\', b'x', high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                bytes.push((hex_value(*high) << 4) | hex_value(*low));
                rest = &after[4..];
            }
            _ => {
                bytes.push(b'\\');
                rest = &after[1..];
            }
        }
    }
    bytes.extend_from_slice(rest);
    Cow::Owned(bytes)
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A whole kernel line: one record, or the `c`/`+` pieces of one joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// The sequence number of its last record: the position just after it.
    pub sequence: u64,
    /// The time of its first record.
    pub usec: u64,
    pub text: String,
}

impl From<Record> for Message {
    fn from(record: Record) -> Message {
        Message {
            sequence: record.sequence,
            usec: record.usec,
            text: record.message,
        }
    }
}

/// Joins `c`/`+` fragments into messages. A line begun with `c` stays pending until a record that does
/// not continue it arrives, or until the reader calls [`Assembler::flush`] because nothing came for a
/// while (the rest may never come: the kernel prints it when the next line starts).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    pending: Option<Message>,
}

impl Assembler {
    /// Takes the next record; `emit` gets every message it completes, in order.
    pub(crate) fn push(&mut self, record: Record, mut emit: impl FnMut(Message)) {
        match record.fragment {
            Fragment::Whole => {
                if let Some(pending) = self.pending.take() {
                    emit(pending);
                }
                emit(record.into());
            }
            Fragment::First => {
                if let Some(pending) = self.pending.take() {
                    emit(pending);
                }
                self.pending = Some(record.into());
            }
            // A continuation whose start we never saw (read before our start, or overwritten) begins a
            // message of its own: it is the best we have of that line.
            Fragment::Continued => match &mut self.pending {
                Some(pending) => {
                    pending.text.push_str(&record.message);
                    pending.sequence = record.sequence;
                }
                None => self.pending = Some(record.into()),
            },
        }
    }

    /// The pending, incomplete message, handed on as it is.
    pub(crate) fn flush(&mut self) -> Option<Message> {
        self.pending.take()
    }
}
