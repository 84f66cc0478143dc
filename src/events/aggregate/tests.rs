//! The aggregator on its own: names, windows, counts, the order of writes, and acknowledgement.

use super::*;
use crate::checksum::checksum;
use crate::events::tests::{NODE, at, external, pod, position, tcp};
use crate::model::Located;

const WINDOW: Duration = Duration::from_secs(120);

fn aggregator(max_pending: usize) -> Aggregator {
    Aggregator::new(
        NODE.to_string(),
        PodIdentifier::Namespace,
        WINDOW,
        max_pending,
    )
}

/// The pod `web-1` (10.0.0.1) drops a packet to example.com port `dpt` at `seconds`.
fn web_to_example(dpt: u16, seconds: i64) -> Located {
    tcp(
        "10.0.0.1",
        Endpoint::Pod(pod("shop", "web-1", "uid-web")),
        "93.184.216.34",
        external("93.184.216.34", "example.com"),
        dpt,
        at(seconds),
    )
}

fn batch(items: Vec<Located>, offset: u64) -> Batch<Located> {
    Batch {
        items,
        end: Some(position(offset)),
    }
}

fn accepted(write: &EventWrite) -> EventOutcome {
    EventOutcome {
        ticket: write.ticket,
        result: WriteResult::Accepted { created: true },
        through: write.marks.through.clone(),
    }
}

#[test]
fn the_event_name_is_a_pinned_checksum_of_what_makes_drops_the_same_event() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(80, 30)], 1));
    let write = events.next_write().unwrap();
    // 2024-05-01T10:00:30Z floored to a multiple of 120 s since the epoch is 10:00:00Z.
    let key = b"node-1\0uid-web\0sending\x0093.184.216.34\x0080\0TCP\x001714557600000";
    assert_eq!(write.name, format!("web-1.{:016x}", checksum(key)));
    // Names are persisted in the cluster: they must not change between releases.
    assert_eq!(write.name, "web-1.abe0d9286bb0d3e8");
}

#[test]
fn repeats_in_one_aligned_window_are_one_event_and_the_next_window_another() {
    let mut events = aggregator(10);
    let drops = vec![
        web_to_example(80, 119),
        web_to_example(80, 0),
        web_to_example(80, 60),
        web_to_example(80, 120),
    ];
    assert_eq!(events.add_batch(batch(drops, 1)), 0);
    let first = events.next_write().unwrap();
    assert_eq!(
        (first.count, first.first_seen, first.last_seen),
        (3, at(0), at(119))
    );
    let second = events.next_write().unwrap();
    assert_eq!(
        (second.count, second.first_seen, second.last_seen),
        (1, at(120), at(120))
    );
    assert_ne!(first.name, second.name);
    assert_eq!(events.next_write(), None);
}

#[test]
fn both_pod_ends_of_a_drop_get_an_event_and_nodes_and_externals_none() {
    let mut events = aggregator(10);
    let web = Endpoint::Pod(pod("shop", "web-1", "uid-web"));
    let db = Endpoint::Pod(pod("data", "db-0", "uid-db"));
    let node = Endpoint::Node {
        ip: "192.168.0.2".parse().unwrap(),
        node: "node-2".to_string(),
    };
    let drops = vec![
        tcp("10.0.0.1", web, "10.0.0.2", db, 5432, at(0)),
        tcp(
            "192.168.0.2",
            node,
            "8.8.8.8",
            external("8.8.8.8", "8.8.8.8"),
            53,
            at(0),
        ),
    ];
    events.add_batch(batch(drops, 1));
    let sender = events.next_write().unwrap();
    let receiver = events.next_write().unwrap();
    assert_eq!(events.next_write(), None);
    assert!(sender.name.starts_with("web-1."), "{}", sender.name);
    assert_eq!(
        sender.message,
        "Packet dropped when sending traffic to data (10.0.0.2) on port 5432/TCP"
    );
    assert!(receiver.name.starts_with("db-0."), "{}", receiver.name);
    assert_eq!(
        receiver.message,
        "Packet dropped when receiving traffic from shop (10.0.0.1) on port 5432/TCP"
    );
}

#[test]
fn a_long_pod_name_is_cut_to_200_characters_without_a_trailing_dash() {
    let mut events = aggregator(10);
    let long = format!("{}-{}", "a".repeat(199), "b".repeat(40));
    let drop = tcp(
        "10.0.0.1",
        Endpoint::Pod(pod("shop", &long, "uid-long")),
        "8.8.8.8",
        external("8.8.8.8", "dns.google"),
        53,
        at(0),
    );
    events.add_batch(batch(vec![drop], 1));
    let name = events.next_write().unwrap().name;
    assert_eq!(name.len(), 199 + 1 + 16, "{name}");
    assert!(name.starts_with(&format!("{}.", "a".repeat(199))), "{name}");
}

#[test]
fn repeats_while_a_write_is_in_flight_wait_for_its_outcome_then_go_together() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(80, 0)], 1));
    let first = events.next_write().unwrap();
    events.add_batch(batch(vec![web_to_example(80, 5), web_to_example(80, 7)], 2));
    assert!(!events.has_sendable());
    assert_eq!(events.next_write(), None);
    assert_eq!((events.pending_len(), events.in_flight_len()), (1, 1));
    let settled = events.settle(&accepted(&first)).unwrap();
    assert_eq!(
        (settled.name.as_str(), settled.count),
        (first.name.as_str(), 1)
    );
    let second = events.next_write().unwrap();
    assert_eq!(second.name, first.name);
    assert_ne!(second.ticket, first.ticket);
    assert_eq!(
        (second.count, second.first_seen, second.last_seen),
        (2, at(5), at(7))
    );
}

#[test]
fn writes_go_oldest_first_skipping_names_in_flight() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(1, 0)], 1));
    let one = events.next_write().unwrap();
    events.add_batch(batch(
        vec![
            web_to_example(1, 1),
            web_to_example(2, 1),
            web_to_example(3, 1),
        ],
        2,
    ));
    let two = events.next_write().unwrap();
    assert!(two.message.ends_with("port 2/TCP"), "{}", two.message);
    events.settle(&accepted(&one));
    let again = events.next_write().unwrap();
    assert!(again.message.ends_with("port 1/TCP"), "{}", again.message);
    let three = events.next_write().unwrap();
    assert!(three.message.ends_with("port 3/TCP"), "{}", three.message);
}

#[test]
fn a_batch_is_acknowledged_only_when_it_and_every_batch_before_are_settled() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(1, 0)], 10));
    events.add_batch(batch(vec![web_to_example(2, 0)], 20));
    events.add_batch(batch(Vec::new(), 30));
    let one = events.next_write().unwrap();
    let two = events.next_write().unwrap();
    assert_eq!(events.take_ack(), None);
    events.settle(&accepted(&two));
    assert_eq!(events.take_ack(), None);
    events.settle(&accepted(&one));
    assert_eq!(events.take_ack(), Some(position(30)));
    assert_eq!(events.take_ack(), None);
    assert_eq!(events.unacked_batches(), 0);
}

#[test]
fn a_write_holding_drops_of_several_batches_holds_back_all_of_them() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(1, 0)], 10));
    events.add_batch(batch(vec![web_to_example(2, 0)], 20));
    events.add_batch(batch(vec![web_to_example(1, 1)], 30));
    let one = events.next_write().unwrap();
    let two = events.next_write().unwrap();
    assert_eq!((one.count, two.count), (2, 1));
    events.settle(&accepted(&two));
    assert_eq!(events.take_ack(), None);
    events.settle(&accepted(&one));
    assert_eq!(events.take_ack(), Some(position(30)));
}

#[test]
fn new_events_beyond_max_pending_are_shed_and_settled_but_repeats_still_count() {
    let mut events = aggregator(2);
    let drops = vec![
        web_to_example(1, 0),
        web_to_example(2, 0),
        web_to_example(3, 0),
        web_to_example(1, 1),
        web_to_example(4, 0),
        web_to_example(4, 1),
    ];
    assert_eq!(events.add_batch(batch(drops, 10)), 3);
    assert_eq!(events.unsettled_drops(), 3);
    let one = events.next_write().unwrap();
    let two = events.next_write().unwrap();
    assert_eq!((one.count, two.count), (2, 1));
    assert_eq!(events.next_write(), None);
    events.settle(&accepted(&one));
    events.settle(&accepted(&two));
    assert!(events.is_settled());
    assert_eq!(events.take_ack(), Some(position(10)));
}

#[test]
fn a_count_beyond_the_apis_int32_goes_out_in_two_writes() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(80, 0)], 10));
    let total = i32::MAX as u64 + 5;
    events.pending.values_mut().for_each(|p| p.count = total);
    let first = events.next_write().unwrap();
    assert_eq!(first.count, i32::MAX as u32);
    assert_eq!(events.next_write(), None);
    events.settle(&accepted(&first));
    assert_eq!(events.take_ack(), None);
    let second = events.next_write().unwrap();
    assert_eq!((second.name, second.count), (first.name, 5));
    events.settle(&EventOutcome {
        ticket: second.ticket,
        result: WriteResult::Shed { reason: "rejected" },
        through: Vec::new(),
    });
    assert_eq!(events.take_ack(), Some(position(10)));
}

#[test]
fn lines_standing_for_u32_max_drops_each_are_written_in_int32_sized_writes() {
    // Antrea's `[N packets in D]` makes one line N drops; two of the largest N.
    let mut events = aggregator(10);
    let mut drop = web_to_example(80, 0);
    drop.drop.count = u32::MAX;
    events.add_batch(batch(vec![drop.clone(), drop], 10));
    let mut counts = Vec::new();
    while let Some(write) = events.next_write() {
        counts.push(write.count);
        events.settle(&accepted(&write));
    }
    let max = i32::MAX as u32;
    // 2 × (2^32 − 1) = 4 × (2^31 − 1) + 2.
    assert_eq!(counts, vec![max, max, max, max, 2]);
    assert_eq!(events.take_ack(), Some(position(10)));
}

#[test]
fn an_unknown_ticket_settles_nothing() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(80, 0)], 10));
    let write = events.next_write().unwrap();
    let unknown = EventOutcome {
        ticket: write.ticket + 100,
        result: WriteResult::Accepted { created: false },
        through: Vec::new(),
    };
    assert_eq!(events.settle(&unknown), None);
    assert_eq!(events.take_ack(), None);
    assert_eq!(events.unsettled_drops(), 1);
}

#[test]
fn batches_behind_a_slow_write_keep_only_the_positions_that_can_be_acknowledged() {
    let mut events = aggregator(10);
    events.add_batch(batch(vec![web_to_example(1, 0)], 10));
    let slow = events.next_write().unwrap();
    for offset in 2..1000 {
        events.add_batch(batch(vec![web_to_example(1, 1)], offset * 10));
    }
    assert_eq!(events.unacked_batches(), 999);
    assert_eq!(events.batches.len(), 2);
    events.settle(&accepted(&slow));
    assert_eq!(events.take_ack(), Some(position(10)));
    let repeats = events.next_write().unwrap();
    assert_eq!(repeats.count, 998);
    events.settle(&accepted(&repeats));
    assert_eq!(events.take_ack(), Some(position(9990)));
    assert_eq!(events.unacked_batches(), 0);
}

#[test]
fn batches_without_a_position_settle_without_an_ack() {
    // NFLOG's batches: nothing to checkpoint, but they must not stay unacknowledged either.
    let mut events = aggregator(10);
    for dpt in [80, 81] {
        events.add_batch(Batch {
            items: vec![web_to_example(dpt, 30)],
            end: None,
        });
    }
    assert_eq!(events.unacked_batches(), 2);
    while let Some(write) = events.next_write() {
        events.settle(&accepted(&write));
    }
    assert_eq!(events.take_ack(), None);
    assert_eq!(events.unacked_batches(), 0);
    assert!(events.is_settled());
}

#[test]
fn a_named_policy_is_in_the_text_and_makes_its_own_event() {
    use crate::model::{Policy, PolicyKind};
    let by = |name: &str| {
        let mut drop = web_to_example(80, 30);
        drop.drop.policy = Some(Policy::new(PolicyKind::NetworkPolicy, "shop", name));
        drop
    };
    let mut events = aggregator(10);
    events.add_batch(batch(
        vec![
            by("deny-egress"),
            by("deny-egress"),
            by("lockdown"),
            web_to_example(80, 31),
        ],
        1,
    ));
    let mut writes: Vec<EventWrite> = std::iter::from_fn(|| events.next_write()).collect();
    writes.sort_by(|a, b| a.message.cmp(&b.message));
    let texts: Vec<(&str, u32)> = writes
        .iter()
        .map(|write| (write.message.as_str(), write.count))
        .collect();
    assert_eq!(
        texts,
        [
            (
                "Packet dropped when sending traffic to example.com (93.184.216.34) on port 80/TCP",
                1
            ),
            (
                "Packet dropped when sending traffic to example.com (93.184.216.34) on port 80/TCP \
                 by NetworkPolicy shop/deny-egress",
                2
            ),
            (
                "Packet dropped when sending traffic to example.com (93.184.216.34) on port 80/TCP \
                 by NetworkPolicy shop/lockdown",
                1
            ),
        ]
    );
    // Without a policy, the name of earlier versions.
    assert_eq!(writes[0].name, "web-1.abe0d9286bb0d3e8");
    assert_ne!(writes[1].name, writes[2].name);
}

#[test]
fn a_peer_name_that_arrives_while_a_write_waits_goes_out_with_it() {
    let mut events = aggregator(10);
    let unnamed = tcp(
        "10.0.0.1",
        Endpoint::Pod(pod("shop", "web-1", "uid-web")),
        "93.184.216.34",
        external("93.184.216.34", "93.184.216.34"),
        80,
        at(0),
    );
    let mut named = unnamed.clone();
    named.dst = external("93.184.216.34", "example.com");
    events.add_batch(batch(vec![unnamed.clone()], 1));
    events.add_batch(batch(vec![named.clone()], 2));
    let write = events.next_write().unwrap();
    assert_eq!(write.count, 2);
    assert_eq!(
        write.message,
        "Packet dropped when sending traffic to example.com (93.184.216.34) on port 80/TCP"
    );
    events.settle(&accepted(&write)).unwrap();
    // Once named, a drop that still carries the IP (read before the name came) does not undo it.
    events.add_batch(batch(vec![named, unnamed], 3));
    let later = events.next_write().unwrap();
    assert_eq!(later.name, write.name);
    assert_eq!(later.message, write.message);
}
