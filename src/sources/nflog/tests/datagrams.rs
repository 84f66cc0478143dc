//! Whole datagrams: several messages in one, messages that are not packets, broken framing, and
//! arbitrary bytes (never a panic, every packet message accounted for).

use etherparse::PacketBuilder;
use proptest::prelude::*;

use super::{decode_all, loopback_attributes, packet_message};
use crate::model::Transport;
use crate::sources::nflog::decode::Skip;
use crate::sources::nflog::packet;

fn udp(port: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    PacketBuilder::ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(4000, port)
        .write(&mut bytes, b"x")
        .unwrap();
    bytes
}

/// Messages padded to 4 bytes, back to back, as the kernel batches them.
fn datagram(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for message in messages {
        bytes.extend_from_slice(message);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
    }
    bytes
}

#[test]
fn every_message_of_a_batched_datagram_is_decoded_in_order() {
    // A prefix of odd length makes the first message's length not a multiple of 4.
    let bytes = datagram(&[
        packet_message(100, loopback_attributes("odd", udp(1))),
        packet_message(100, loopback_attributes("even", udp(2))),
        packet_message(7, loopback_attributes("last", udp(3))),
    ]);
    let (packets, results) = decode_all(&bytes);
    assert_eq!(packets, 3);
    let ports: Vec<Transport> = results
        .into_iter()
        .map(|result| result.unwrap().drop.packet.transport)
        .collect();
    assert_eq!(
        ports,
        [1, 2, 3].map(|dst| Transport::Ports { src: 4000, dst })
    );
}

#[test]
fn an_acknowledgement_is_no_packet() {
    // NLMSG_ERROR with code 0: the kernel's answer to a configuration request.
    let mut ack = vec![0u8; 36];
    ack[..4].copy_from_slice(&36u32.to_ne_bytes());
    ack[4..6].copy_from_slice(&2u16.to_ne_bytes());
    let (packets, results) = decode_all(&ack);
    assert_eq!((packets, results.len()), (0, 0));
}

#[test]
fn a_length_past_the_datagram_is_malformed_and_ends_it() {
    let mut bytes = packet_message(100, loopback_attributes("x", udp(1)));
    let declared = bytes.len() as u32 + 100;
    bytes[..4].copy_from_slice(&declared.to_ne_bytes());
    let (packets, results) = decode_all(&bytes);
    assert_eq!(packets, 1);
    assert_eq!(
        results.into_iter().map(|r| r.err()).collect::<Vec<_>>(),
        [Some(Skip::Malformed)]
    );
}

#[test]
fn a_broken_attribute_makes_its_message_malformed_but_not_the_next() {
    let mut broken = packet_message(100, loopback_attributes("x", udp(1)));
    // The first attribute (after the 16-byte netlink and 4-byte netfilter headers) claims a length
    // longer than the message.
    broken[20..22].copy_from_slice(&0x7fffu16.to_ne_bytes());
    let bytes = datagram(&[
        broken,
        packet_message(100, loopback_attributes("y", udp(2))),
    ]);
    let (packets, results) = decode_all(&bytes);
    assert_eq!(packets, 2);
    assert_eq!(results[0], Err(Skip::Malformed));
    assert_eq!(
        results[1].as_ref().unwrap().drop.packet.transport,
        Transport::Ports { src: 4000, dst: 2 }
    );
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (packets, results) = decode_all(&bytes);
        prop_assert_eq!(packets as usize, results.len());
    }

    #[test]
    fn a_valid_message_around_arbitrary_packet_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        version in prop_oneof![Just(0x45u8), Just(0x60u8), any::<u8>()],
    ) {
        let mut packet = bytes;
        if let Some(first) = packet.first_mut() {
            *first = version;
        }
        let (packets, results) = decode_all(&packet_message(100, loopback_attributes("x", packet)));
        prop_assert_eq!((packets, results.len()), (1, 1));
    }

    #[test]
    fn arbitrary_packet_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = packet::decode(&bytes);
    }

    #[test]
    fn any_cut_of_a_real_packet_never_panics(cut in 0usize..60) {
        let mut bytes = udp(9);
        bytes.truncate(cut);
        let _ = packet::decode(&bytes);
    }
}
