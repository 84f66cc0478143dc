//! NFLOG decoding, on messages built the way the kernel sends them (netlink-packet-netfilter writes
//! the attributes, etherparse the packets): exact drops, and every malformed input counted, no panic.

mod datagrams;
mod packets;

use std::ffi::CString;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nflog::{PacketNla, ULogMessage};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};

use super::decode::{Decoded, Skip, decode_datagram};
use super::interfaces::InterfaceNames;
use crate::model::PacketDrop;

/// When the test "received" its datagrams.
fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap()
}

/// One NFULNL_MSG_PACKET message of `group`, as bytes.
fn packet_message(group: u16, attributes: Vec<PacketNla>) -> Vec<u8> {
    let mut message = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, group),
            ULogMessage::Packet(attributes),
        )),
    );
    message.finalize();
    let mut bytes = vec![0; message.header.length as usize];
    message.serialize(&mut bytes);
    bytes
}

/// The attributes the kernel sends for a packet received on loopback with a prefix.
fn loopback_attributes(prefix: &str, packet: Vec<u8>) -> Vec<PacketNla> {
    vec![
        PacketNla::Prefix(CString::new(prefix).unwrap()),
        PacketNla::IfIndexInDev(1),
        PacketNla::HwType(772),
        PacketNla::HwHeaderLen(14),
        PacketNla::HwHeader(vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]),
        PacketNla::Payload(packet),
    ]
}

/// Everything `decode_datagram` reported for `bytes`, in order.
fn decode_all(bytes: &[u8]) -> (u64, Vec<Result<Decoded, Skip>>) {
    let mut names = InterfaceNames::default();
    let mut results = Vec::new();
    let packets = decode_datagram(bytes, received(), Instant::now(), &mut names, |result| {
        results.push(result)
    });
    (packets, results)
}

/// The one drop of a one-message datagram, with whether its transport header was cut.
fn decode_one_full(attributes: Vec<PacketNla>) -> Result<Decoded, Skip> {
    let (packets, mut results) = decode_all(&packet_message(100, attributes));
    assert_eq!(packets, 1);
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// The one drop of a one-message datagram, whose headers are all there.
fn decode_one(attributes: Vec<PacketNla>) -> Result<PacketDrop, Skip> {
    decode_one_full(attributes).map(|decoded| {
        assert!(!decoded.incomplete, "{decoded:?}");
        decoded.drop
    })
}
