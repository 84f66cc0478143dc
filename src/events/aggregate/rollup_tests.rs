//! The aggregator with the storm bound: a scan writes `EVENTS_PER_POD` + 1 Events on a pod whose
//! counts add up to its drops, and a restart routes replays as the run before did.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use super::*;
use crate::events::tests::{NODE, at, external, pod, tcp};

const WINDOW: Duration = Duration::from_secs(120);
const KEEP: Duration = Duration::from_secs(720);

fn bounded(limit: usize, store: Option<&Path>) -> Aggregator {
    Aggregator::new(NODE.to_string(), PodIdentifier::Namespace, WINDOW, 100_000)
        .with_storm_bound(StormBound::new(limit, KEEP, store.map(Path::to_path_buf)))
}

/// Drop `n` of a scan: from 198.18.x.y (a different address for every `n` below 65,536) to the
/// pod `web-1` on `port`, at `seconds`.
fn scan(n: u32, port: u16, seconds: i64) -> Located {
    let source = Ipv4Addr::from(0xC612_0000 + n).to_string();
    tcp(
        &source,
        external(&source, &source),
        "10.0.0.1",
        Endpoint::Pod(pod("shop", "web-1", "uid-web")),
        port,
        at(seconds),
    )
}

/// Every write the aggregator has, each accepted at once: Event name → (count, last message).
fn write_all(events: &mut Aggregator) -> BTreeMap<String, (u32, String)> {
    let mut written: BTreeMap<String, (u32, String)> = BTreeMap::new();
    while let Some(write) = events.next_write() {
        let outcome = EventOutcome {
            ticket: write.ticket,
            result: WriteResult::Accepted { created: true },
            through: Vec::new(),
        };
        let entry = written.entry(write.name.clone()).or_default();
        entry.0 += write.count;
        entry.1 = write.message.clone();
        events.settle(&outcome).unwrap();
    }
    written
}

#[test]
fn a_scan_writes_the_bound_plus_one_events_whose_counts_add_up() {
    let mut events = bounded(20, None);
    let drops: Vec<Located> = (0..3000).map(|n| scan(n, 22, (n % 100).into())).collect();
    assert_eq!(
        events.add_batch(Batch {
            items: drops,
            end: None
        }),
        0
    );
    let written = write_all(&mut events);
    assert_eq!(written.len(), 21);
    assert_eq!(written.values().map(|(count, _)| count).sum::<u32>(), 3000);
    let rollups: Vec<_> = written
        .values()
        .filter(|(_, message)| message.contains("other sources"))
        .collect();
    assert_eq!(
        rollups,
        [&(
            2980,
            "Packet dropped when receiving traffic from 2,980 other sources on port 22/TCP"
                .to_string()
        )]
    );
    assert_eq!(
        events.take_tallies(),
        Tallies {
            rolled_up: 2980,
            ..Tallies::default()
        }
    );
}

#[test]
fn a_peer_with_an_event_of_its_own_keeps_it_and_a_new_window_starts_afresh() {
    let mut events = bounded(2, None);
    let drops = vec![
        scan(1, 22, 0),
        scan(2, 22, 0),
        scan(3, 22, 1),
        scan(1, 22, 2),
        scan(4, 443, 3),
        // The next window.
        scan(3, 22, 120),
    ];
    events.add_batch(Batch {
        items: drops,
        end: None,
    });
    let written = write_all(&mut events);
    let counts: Vec<u32> = written.values().map(|(count, _)| *count).collect();
    assert_eq!(written.len(), 4, "{written:#?}");
    assert_eq!(counts.iter().sum::<u32>(), 6);
    let messages: BTreeSet<&str> = written.values().map(|(_, m)| m.as_str()).collect();
    assert!(
        messages.contains(
            "Packet dropped when receiving traffic from 2 other sources on 2 ports/protocols"
        ),
        "{messages:#?}"
    );
    assert!(
        messages.contains("Packet dropped when receiving traffic from 198.18.0.3 on port 22/TCP")
    );
    let own_of_one = &written
        .iter()
        .find(|(_, (_, m))| m.contains("from 198.18.0.1 "))
        .unwrap()
        .1;
    assert_eq!(own_of_one.0, 2);
}

#[test]
fn after_a_restart_a_replay_is_routed_to_the_events_that_counted_it() {
    let directory = tempfile::tempdir().unwrap();
    let store = directory.path().join("events-per-pod.json");
    let drops =
        |from: u32, to: u32| -> Vec<Located> { (from..to).map(|n| scan(n, 22, 0)).collect() };

    let mut first = bounded(5, Some(&store));
    first.add_batch(Batch {
        items: drops(0, 50),
        end: None,
    });
    let before = write_all(&mut first);
    assert_eq!(before.len(), 6);

    // The restarted run replays from a checkpoint after the first peers' drops: without what was
    // saved, peers 10.. would get Events of their own, counting again what the roll-up counted.
    let mut replay = bounded(5, Some(&store));
    replay.add_batch(Batch {
        items: drops(3, 60),
        end: None,
    });
    let after = write_all(&mut replay);
    let names_before: BTreeSet<_> = before.keys().collect();
    let names_after: BTreeSet<_> = after.keys().collect();
    // Peers 3 and 4 still have their own Events; everything else went to the same roll-up.
    assert_eq!(names_after.len(), 3);
    assert!(names_after.is_subset(&names_before), "{names_after:?}");
}
