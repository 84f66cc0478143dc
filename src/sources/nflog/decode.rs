//! NFLOG messages to drops: each `NFULNL_MSG_PACKET` in a datagram becomes the same [`PacketDrop`] the
//! parser makes of a LOG line. The prefix is `NFULA_PREFIX`; the time `NFULA_TIMESTAMP` when the kernel
//! sent one (only for packets that were timestamped), else when the datagram was received; the
//! interfaces are named from their indexes; `MAC=` is the hardware header, as the LOG target prints it;
//! the rest comes from the packet bytes ([`packet`](super::packet)).

use std::time::Instant;

use chrono::{DateTime, Utc};
use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload, Nla};
use netlink_packet_netfilter::nflog::{PacketNla, ULogMessage};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};

use super::interfaces::InterfaceNames;
use super::packet::{self, BadPacket};
use super::socket::align;
use crate::model::{Packet, PacketDrop};

/// Why a message gave no drop; the `reason` label of `nflog_messages_skipped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The netlink message or one of its attributes does not decode.
    Malformed,
    /// A packet message without packet bytes (a copy range of 0, or metadata-only mode).
    NoPayload,
    /// The packet is not IPv4 or IPv6.
    NotIp,
    /// The IP or transport header is cut short.
    Truncated,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::NoPayload => "no_payload",
            Skip::NotIp => "not_ip",
            Skip::Truncated => "truncated",
        }
    }
}

/// A packet message's drop, and whether the copy range cut its transport header (no ports then).
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub drop: PacketDrop,
    pub incomplete: bool,
}

/// Decodes every packet message of one datagram, in order, calling `each` with its drop or why it gave
/// none. Other messages (acknowledgements, the end of a batch) are passed over. Returns the number of
/// packet messages seen.
pub fn decode_datagram(
    bytes: &[u8],
    received: DateTime<Utc>,
    now: Instant,
    names: &mut InterfaceNames,
    mut each: impl FnMut(Result<Decoded, Skip>),
) -> u64 {
    let mut packets = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let Ok(header) = NetlinkBuffer::new_checked(rest) else {
            // A header that does not fit: nothing after it can be found either.
            packets += 1;
            each(Err(Skip::Malformed));
            break;
        };
        let length = header.length() as usize;
        let message = &rest[..length];
        rest = rest.get(align(length)..).unwrap_or_default();
        match NetlinkMessage::<NetfilterMessage>::deserialize(message) {
            Ok(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(message),
                ..
            }) => {
                if let NetfilterMessageInner::ULog(ULogMessage::Packet(attributes)) = message.inner
                {
                    packets += 1;
                    each(decode_packet(&attributes, received, now, names));
                }
            }
            Ok(_) => {}
            Err(_) => {
                packets += 1;
                each(Err(Skip::Malformed));
            }
        }
    }
    packets
}

/// One packet message's attributes to a drop.
pub fn decode_packet(
    attributes: &[PacketNla],
    received: DateTime<Utc>,
    now: Instant,
    names: &mut InterfaceNames,
) -> Result<Decoded, Skip> {
    let mut payload = None;
    let mut prefix = String::new();
    let mut time = received;
    let (mut in_index, mut out_index, mut mac) = (None, None, None);
    for attribute in attributes {
        match attribute {
            PacketNla::Payload(bytes) => payload = Some(bytes.as_slice()),
            PacketNla::Prefix(text) => {
                prefix = text.to_string_lossy().trim_end().to_string();
            }
            PacketNla::Timestamp(stamp) => {
                if let Some(stamp) = timestamp(stamp) {
                    time = stamp;
                }
            }
            PacketNla::IfIndexInDev(index) => in_index = Some(*index),
            PacketNla::IfIndexOutDev(index) => out_index = Some(*index),
            PacketNla::HwHeader(header) if !header.is_empty() => mac = Some(colon_hex(header)),
            _ => {}
        }
    }
    let fields = packet::decode(payload.ok_or(Skip::NoPayload)?).map_err(|bad| match bad {
        BadPacket::NotIp => Skip::NotIp,
        BadPacket::Truncated => Skip::Truncated,
    })?;
    let mut name = |index: Option<u32>| {
        index
            .map(|index| names.name(index, now).to_string())
            .unwrap_or_default()
    };
    let drop = PacketDrop {
        time,
        hostname: None,
        policy: crate::parse::policy::from_prefix(&prefix),
        count: 1,
        verdict: None,
        prefix,
        packet: Packet {
            in_interface: name(in_index),
            out_interface: name(out_index),
            mac,
            src: fields.src,
            dst: fields.dst,
            length: Some(fields.length),
            ttl: Some(fields.ttl),
            id: fields.id,
            protocol: fields.protocol,
            transport: fields.transport,
            flags: fields.flags,
        },
        mark: None,
    };
    Ok(Decoded {
        drop,
        incomplete: fields.incomplete,
    })
}

/// `NFULA_TIMESTAMP`: seconds and microseconds, big-endian. The crate keeps the fields private; its
/// wire form is public.
fn timestamp(stamp: &impl Nla) -> Option<DateTime<Utc>> {
    let mut bytes = [0u8; 16];
    if stamp.value_len() != bytes.len() {
        return None;
    }
    stamp.emit_value(&mut bytes);
    let seconds = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let micros = u64::from_be_bytes(bytes[8..].try_into().ok()?);
    DateTime::from_timestamp(
        i64::try_from(seconds).ok()?,
        u32::try_from(micros.checked_mul(1000)?).ok()?,
    )
}

/// `8a:e3:5a:...`, as the LOG target writes `MAC=`.
fn colon_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02x}");
    }
    text
}
