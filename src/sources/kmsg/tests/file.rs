//! The whole source thread on a regular file that imitates /dev/kmsg (one record per line): where it
//! starts for each kind of checkpoint, and how it waits for a boot id it cannot read yet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line, Position};
use crate::sources::kmsg::{KmsgSettings, run};
use crate::stop::{self, StopTrigger};

const BOOT: &str = "0f2d5f6e-8a3b-4c1d-9e7f-112233445566";

struct Running {
    batches: Receiver<Batch<Line>>,
    metrics: Arc<Metrics>,
    health: Health,
    trigger: StopTrigger,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(dir: &Path, start: Option<KmsgPosition>) -> Running {
        let (sender, batches) = bounded(16);
        let (trigger, stop) = stop::new();
        let metrics = Arc::new(Metrics::new());
        let health = Health::new();
        let settings = KmsgSettings {
            path: dir.join("kmsg"),
            boot_id_path: dir.join("boot_id"),
            start,
            max_batch_lines: 1024,
        };
        let (thread_metrics, thread_health) = (metrics.clone(), health.clone());
        let thread = std::thread::spawn(move || {
            run(settings, sender, stop, thread_metrics, thread_health);
        });
        Running {
            batches,
            metrics,
            health,
            trigger,
            thread: Some(thread),
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.health.is_ready() {
            assert!(Instant::now() < deadline, "the source never became ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(self.metrics.source_ready.get(), 1);
    }

    /// Exactly `count` lines: waits for them, then checks that no more follow within a short while.
    fn expect(&self, count: usize) -> (Vec<String>, Vec<u64>) {
        let (mut texts, mut ends) = (Vec::new(), Vec::new());
        while texts.len() < count {
            let batch = self
                .batches
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("expected {count} lines, got {texts:?}"));
            texts.extend(batch.items.into_iter().map(|line| line.text));
            ends.push(sequence(
                batch.end.as_ref().expect("kmsg batches have a position"),
            ));
        }
        if let Ok(extra) = self.batches.recv_timeout(Duration::from_millis(300)) {
            panic!("expected {count} lines, then got {extra:?}");
        }
        (texts, ends)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.trigger.trigger();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the source thread does not panic");
        }
    }
}

fn sequence(position: &Position) -> u64 {
    match position {
        Position::Kmsg(position) => {
            assert_eq!(position.boot_id, BOOT);
            position.sequence
        }
        other => panic!("not a kmsg position: {other:?}"),
    }
}

fn append(dir: &Path, sequences: std::ops::RangeInclusive<u64>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kmsg"))
        .unwrap();
    for sequence in sequences {
        // With a dictionary line, which belongs to the record before it.
        write!(
            file,
            "4,{sequence},{},-;line {sequence}\n SUBSYSTEM=net\n",
            sequence * 1000
        )
        .unwrap();
    }
}

fn with_boot_id() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("boot_id"), format!("{BOOT}\n")).unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

fn position(boot_id: &str, sequence: u64) -> Option<KmsgPosition> {
    Some(KmsgPosition {
        boot_id: boot_id.to_string(),
        sequence,
    })
}

#[test]
fn without_a_checkpoint_only_records_written_after_the_start_are_read() {
    let (_dir, dir) = with_boot_id();
    append(&dir, 1..=3);
    let source = Running::start(&dir, None);
    source.wait_ready();
    append(&dir, 4..=5);
    let (texts, ends) = source.expect(2);
    assert_eq!(texts, ["line 4", "line 5"]);
    assert_eq!(ends.last(), Some(&5));
    assert_eq!(source.metrics.lines_read.get(), 2);
}

#[test]
fn a_checkpoint_of_this_boot_resumes_after_its_record() {
    let (_dir, dir) = with_boot_id();
    append(&dir, 1..=4);
    let source = Running::start(&dir, position(BOOT, 2));
    let (texts, _) = source.expect(2);
    assert_eq!(texts, ["line 3", "line 4"]);
    assert_eq!(
        source
            .metrics
            .source_lost
            .with_label_values(&["overwritten"])
            .get(),
        0
    );
}

#[test]
fn records_overwritten_since_the_checkpoint_are_counted_as_lost() {
    let (_dir, dir) = with_boot_id();
    append(&dir, 10..=12);
    let source = Running::start(&dir, position(BOOT, 5));
    let (texts, _) = source.expect(3);
    assert_eq!(texts, ["line 10", "line 11", "line 12"]);
    assert_eq!(
        source
            .metrics
            .source_lost
            .with_label_values(&["overwritten"])
            .get(),
        4
    );
}

#[test]
fn a_checkpoint_of_another_boot_reads_the_buffer_from_its_start() {
    let (_dir, dir) = with_boot_id();
    append(&dir, 1..=3);
    let source = Running::start(&dir, position("an-earlier-boot", 2));
    let (texts, ends) = source.expect(3);
    assert_eq!(texts, ["line 1", "line 2", "line 3"]);
    assert_eq!(ends.last(), Some(&3));
}

#[test]
fn an_unreadable_boot_id_is_retried_until_it_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    append(dir.path(), 1..=2);
    let source = Running::start(dir.path(), position(BOOT, 1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while source.metrics.source_errors.get() == 0 {
        assert!(Instant::now() < deadline, "no error counted");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!source.health.is_ready());
    std::fs::write(dir.path().join("boot_id"), BOOT).unwrap();
    let (texts, _) = source.expect(1);
    assert_eq!(texts, ["line 2"]);
    assert_eq!(source.metrics.source_reopens.get(), 0);
}

#[test]
fn a_stop_ends_the_thread_soon() {
    let (_dir, dir) = with_boot_id();
    append(&dir, 1..=1);
    let mut source = Running::start(&dir, None);
    source.wait_ready();
    let started = Instant::now();
    source.trigger.trigger();
    source.thread.take().unwrap().join().unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
}
