//! The stage thread with real channels; the test plays the kube thread, answering writes when it says.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use super::{NODE, at, external, pod, position, tcp};
use crate::checksum::checksum;
use crate::events::{EventSettings, run};
use crate::metrics::Metrics;
use crate::model::{
    Batch, Endpoint, EventOutcome, EventWrite, Located, PodIdentifier, Position, WriteResult,
};
use crate::stop::{self, StopTrigger};

/// Long enough for a loaded machine; every wait that reaches it is a failure.
const PATIENCE: Duration = Duration::from_secs(10);

fn settings() -> EventSettings {
    EventSettings {
        identifier: PodIdentifier::Namespace,
        repeat_interval: Duration::from_secs(120),
        qps: 1000.0,
        burst: 1000,
        node_name: NODE.to_string(),
        max_pending: 100,
        max_in_flight: 8,
        shutdown_grace: PATIENCE,
        events_per_pod: None,
        storm_state: None,
        expiration: Duration::from_secs(600),
    }
}

struct Stage {
    input: Option<Sender<Batch<Located>>>,
    writes: Receiver<EventWrite>,
    outcomes: Sender<EventOutcome>,
    acks: Receiver<Position>,
    metrics: Arc<Metrics>,
    done: Receiver<()>,
    thread: JoinHandle<()>,
    trigger: StopTrigger,
}

impl Stage {
    fn start(settings: EventSettings) -> Stage {
        let (input_tx, input_rx) = bounded(16);
        let (writes_tx, writes_rx) = bounded(settings.max_in_flight);
        let (outcomes_tx, outcomes_rx) = bounded(settings.max_in_flight);
        let (acks_tx, acks_rx) = bounded(16);
        let (done_tx, done_rx) = bounded(1);
        let (trigger, stop) = stop::new();
        let metrics = Arc::new(Metrics::new());
        let stage_metrics = metrics.clone();
        let thread = std::thread::spawn(move || {
            run(
                settings,
                input_rx,
                writes_tx,
                outcomes_rx,
                Some(acks_tx),
                stop,
                stage_metrics,
            );
            let _ = done_tx.send(());
        });
        Stage {
            input: Some(input_tx),
            writes: writes_rx,
            outcomes: outcomes_tx,
            acks: acks_rx,
            metrics,
            done: done_rx,
            thread,
            trigger,
        }
    }

    fn send(&self, items: Vec<Located>, offset: u64) {
        let input = self.input.as_ref().expect("input still open");
        input
            .send(Batch {
                items,
                end: Some(position(offset)),
            })
            .unwrap();
    }

    fn write(&self) -> EventWrite {
        self.writes
            .recv_timeout(PATIENCE)
            .expect("an Event write within the patience")
    }

    fn answer(&self, write: &EventWrite, result: WriteResult) {
        let ticket = write.ticket;
        let through = write.marks.through.clone();
        self.outcomes
            .send(EventOutcome {
                ticket,
                result,
                through,
            })
            .unwrap();
    }

    fn accept(&self, write: &EventWrite) {
        self.answer(write, WriteResult::Accepted { created: true });
    }

    fn ack(&self) -> Position {
        self.acks.recv_timeout(PATIENCE).expect("an ack")
    }

    fn assert_no_ack(&self) {
        assert_eq!(self.acks.try_recv(), Err(TryRecvError::Empty));
    }

    fn assert_no_write(&self) {
        assert_eq!(self.writes.try_recv(), Err(TryRecvError::Empty));
    }

    fn dropped(&self, reason: &str) -> u64 {
        self.metrics
            .events_dropped
            .with_label_values(&[reason])
            .get()
    }

    /// Ends the input and waits for the stage to return; the acks it sent after the last one read.
    fn finish(mut self) -> Vec<Position> {
        self.input.take();
        self.done
            .recv_timeout(PATIENCE)
            .expect("the stage returns once its input ends");
        self.thread.join().unwrap();
        self.acks.try_iter().collect()
    }
}

fn web() -> Endpoint {
    Endpoint::Pod(pod("shop", "web-1", "uid-web"))
}

fn web_to_example(dpt: u16, seconds: i64) -> Located {
    tcp(
        "10.0.0.1",
        web(),
        "93.184.216.34",
        external("93.184.216.34", "example.com"),
        dpt,
        at(seconds),
    )
}

/// The Event name, computed independently of the stage.
fn expected_name(pod: &str, key: &str) -> String {
    format!("{pod}.{:016x}", checksum(key.as_bytes()))
}

#[test]
fn a_pod_to_pod_drop_raises_an_event_on_the_sender_and_on_the_receiver() {
    let stage = Stage::start(settings());
    let db = Endpoint::Pod(pod("data", "db-0", "uid-db"));
    stage.send(
        vec![tcp("10.0.0.1", web(), "10.0.0.2", db, 5432, at(30))],
        100,
    );
    let mut writes = vec![stage.write(), stage.write()];
    writes.sort_by(|a, b| a.name.cmp(&b.name));
    let bucket = "1714557600000";
    let (receiver, sender) = (&writes[0], &writes[1]);
    assert_eq!(
        sender.name,
        expected_name(
            "web-1",
            &format!("node-1\0uid-web\0sending\010.0.0.2\05432\0TCP\0{bucket}")
        )
    );
    assert_eq!(
        sender.message,
        "Packet dropped when sending traffic to data (10.0.0.2) on port 5432/TCP"
    );
    assert_eq!(sender.pod.uid, "uid-web");
    assert_eq!(
        receiver.name,
        expected_name(
            "db-0",
            &format!("node-1\0uid-db\0receiving\010.0.0.1\05432\0TCP\0{bucket}")
        )
    );
    assert_eq!(
        receiver.message,
        "Packet dropped when receiving traffic from shop (10.0.0.1) on port 5432/TCP"
    );
    assert_eq!(receiver.pod.uid, "uid-db");
    for write in &writes {
        assert_eq!(
            (write.count, write.first_seen, write.last_seen),
            (1, at(30), at(30))
        );
    }
    stage.accept(sender);
    stage.accept(receiver);
    assert_eq!(stage.ack(), position(100));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn a_pod_to_external_drop_raises_one_event() {
    let stage = Stage::start(settings());
    stage.send(vec![web_to_example(443, 0)], 100);
    let write = stage.write();
    assert_eq!(
        write.message,
        "Packet dropped when sending traffic to example.com (93.184.216.34) on port 443/TCP"
    );
    stage.accept(&write);
    assert_eq!(stage.ack(), position(100));
    stage.assert_no_write();
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn repeats_while_the_first_write_is_in_flight_go_out_together_next() {
    let stage = Stage::start(settings());
    stage.send(vec![web_to_example(80, 0)], 100);
    let first = stage.write();
    assert_eq!(first.count, 1);
    let repeats: Vec<Located> = (1..1000).map(|i| web_to_example(80, i % 100)).collect();
    stage.send(repeats, 200);
    stage.accept(&first);
    let second = stage.write();
    assert_eq!(second.name, first.name);
    assert_eq!(
        (second.count, second.first_seen, second.last_seen),
        (999, at(0), at(99))
    );
    assert_eq!(first.count + second.count, 1000);
    // The repeats came in batch 2: batch 1 was settled by the first outcome.
    assert_eq!(stage.ack(), position(100));
    stage.assert_no_ack();
    stage.accept(&second);
    assert_eq!(stage.ack(), position(200));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn rate_limited_writes_all_arrive_with_exact_counts() {
    let started = Instant::now();
    let stage = Stage::start(EventSettings {
        qps: 5.0,
        burst: 1,
        ..settings()
    });
    let drops: Vec<Located> = (1..=20)
        .flat_map(|port| [web_to_example(port, 0), web_to_example(port, 1)])
        .collect();
    stage.send(drops, 100);
    let mut ports = Vec::new();
    for _ in 0..20 {
        let write = stage.write();
        assert_eq!(write.count, 2, "{}", write.message);
        ports.push(write.message.rsplit(' ').next().unwrap().to_string());
        stage.accept(&write);
    }
    // Oldest first; at most qps 5 after the first token, so 19 intervals of 200 ms at least.
    let expected: Vec<String> = (1..=20).map(|port| format!("{port}/TCP")).collect();
    assert_eq!(ports, expected);
    assert!(started.elapsed() >= Duration::from_millis(3800));
    assert_eq!(stage.ack(), position(100));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn an_earlier_unsettled_batch_holds_back_the_ack_of_a_later_settled_one() {
    let stage = Stage::start(EventSettings {
        max_in_flight: 2,
        ..settings()
    });
    stage.send(vec![web_to_example(1, 0)], 100);
    let one = stage.write();
    stage.send(vec![web_to_example(2, 0)], 200);
    let two = stage.write();
    stage.send(vec![web_to_example(3, 0)], 300);
    stage.assert_no_write();
    stage.accept(&two);
    // The freed slot lets batch 3's write out, after the stage handled the outcome and its acks.
    let three = stage.write();
    stage.assert_no_ack();
    stage.accept(&one);
    assert_eq!(stage.ack(), position(200));
    stage.assert_no_ack();
    stage.accept(&three);
    assert_eq!(stage.ack(), position(300));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn a_shed_outcome_is_counted_and_its_batch_still_acknowledged() {
    let stage = Stage::start(settings());
    stage.send(vec![web_to_example(80, 0), web_to_example(80, 1)], 100);
    let write = stage.write();
    stage.answer(&write, WriteResult::Shed { reason: "rejected" });
    assert_eq!(stage.ack(), position(100));
    assert_eq!(stage.dropped("rejected"), 2);
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn a_write_whose_writer_panicked_frees_its_event_for_the_next_drops_and_is_acknowledged() {
    let stage = Stage::start(settings());
    stage.send(vec![web_to_example(80, 0), web_to_example(80, 1)], 100);
    let first = stage.write();
    // While it is in flight, more drops of the same Event wait for it.
    stage.send(vec![web_to_example(80, 2)], 200);
    stage.assert_no_write();
    // The kube thread's answer for a task that panicked.
    stage.answer(
        &first,
        WriteResult::Shed {
            reason: "writer_panicked",
        },
    );
    assert_eq!(stage.ack(), position(100));
    assert_eq!(stage.dropped("writer_panicked"), 2);
    let second = stage.write();
    assert_eq!(second.name, first.name);
    assert_eq!(second.count, 1);
    stage.accept(&second);
    assert_eq!(stage.ack(), position(200));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn new_events_beyond_max_pending_are_shed_as_queue_full_and_acknowledged() {
    let stage = Stage::start(EventSettings {
        max_pending: 2,
        max_in_flight: 1,
        ..settings()
    });
    let drops = vec![
        web_to_example(1, 0),
        web_to_example(2, 0),
        web_to_example(3, 0),
        web_to_example(4, 0),
        web_to_example(4, 1),
        web_to_example(2, 1),
    ];
    stage.send(drops, 100);
    let one = stage.write();
    stage.assert_no_write();
    assert_eq!(stage.dropped("queue_full"), 3);
    assert_eq!(stage.metrics.events_pending.get(), 2);
    stage.accept(&one);
    let two = stage.write();
    assert_eq!((one.count, two.count), (1, 2));
    assert!(two.message.ends_with("port 2/TCP"), "{}", two.message);
    stage.assert_no_ack();
    stage.accept(&two);
    assert_eq!(stage.ack(), position(100));
    assert_eq!(stage.metrics.events_pending.get(), 0);
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn batches_without_pod_drops_are_acknowledged_in_order() {
    let stage = Stage::start(settings());
    let node = Endpoint::Node {
        ip: super::ip("192.168.0.2"),
        node: "node-2".to_string(),
    };
    let no_pod = || {
        tcp(
            "192.168.0.2",
            node.clone(),
            "8.8.8.8",
            external("8.8.8.8", "dns.google"),
            53,
            at(0),
        )
    };
    stage.send(vec![no_pod()], 100);
    assert_eq!(stage.ack(), position(100));
    stage.send(vec![web_to_example(80, 0)], 200);
    let write = stage.write();
    stage.send(vec![no_pod()], 300);
    stage.send(Vec::new(), 400);
    // A write after those batches proves the stage has handled them.
    stage.send(vec![web_to_example(81, 0)], 500);
    let later = stage.write();
    stage.assert_no_ack();
    stage.accept(&write);
    assert_eq!(stage.ack(), position(400));
    stage.accept(&later);
    assert_eq!(stage.ack(), position(500));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}

#[test]
fn at_shutdown_an_unanswered_write_is_given_up_after_the_grace_and_not_acknowledged() {
    let grace = Duration::from_millis(300);
    let stage = Stage::start(EventSettings {
        shutdown_grace: grace,
        ..settings()
    });
    stage.send(vec![web_to_example(80, 0)], 100);
    let _unanswered = stage.write();
    let ended = Instant::now();
    let acks = stage.finish();
    assert!(ended.elapsed() >= grace, "{:?}", ended.elapsed());
    assert_eq!(acks, Vec::<Position>::new());
}

#[test]
fn the_stop_signal_does_not_cut_the_drain_short() {
    let stage = Stage::start(settings());
    stage.send(vec![web_to_example(80, 0)], 100);
    let write = stage.write();
    stage.trigger.trigger();
    stage.send(vec![web_to_example(80, 1)], 200);
    stage.accept(&write);
    assert_eq!(stage.ack(), position(100));
    let repeat = stage.write();
    assert_eq!(
        (repeat.name.as_str(), repeat.count),
        (write.name.as_str(), 1)
    );
    stage.accept(&repeat);
    assert_eq!(stage.ack(), position(200));
    assert_eq!(stage.finish(), Vec::<Position>::new());
}
