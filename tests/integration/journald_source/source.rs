//! The journald source function on its own thread, on real journal files: the batches it sends, the
//! text and time of each line, and what it does when its directory disappears and comes back.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::DateTime;
use crossbeam_channel::Receiver;
use kube_iptables_tailer::checksum::checksum;
use kube_iptables_tailer::health::Health;
use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::{
    Batch, JournalPosition, Line, Mark, Position, journal_cursor_field,
};
use kube_iptables_tailer::sources::journald::{self, JournaldSettings};
use kube_iptables_tailer::stop::{self, StopTrigger};

use super::{journal_dir, udp_drop};
use crate::support::journald::{self as journal, Entry, JournalWriter, kernel, write_file};
use crate::support::wait_until;

/// How long a test waits for what must come.
const WAIT: Duration = Duration::from_secs(10);

/// The source running on its thread.
struct Source {
    trigger: StopTrigger,
    thread: Option<JoinHandle<()>>,
    batches: Receiver<Batch<Line>>,
    metrics: Arc<Metrics>,
    health: Health,
}

impl Source {
    fn start(directory: &Path, start: Option<String>, max_batch_lines: usize) -> Source {
        let _ = env_logger::builder().is_test(true).try_init();
        let settings = JournaldSettings {
            directory: Some(directory.to_path_buf()),
            start: start.map(|cursor| JournalPosition { cursor }),
            max_batch_lines,
        };
        let (out, batches) = crossbeam_channel::bounded(16);
        let (trigger, stop) = stop::new();
        let (metrics, health) = (Arc::new(Metrics::new()), Health::new());
        let thread = {
            let (metrics, health) = (metrics.clone(), health.clone());
            std::thread::Builder::new()
                .name("source-journald".to_string())
                .spawn(move || journald::run(settings, out, stop, metrics, health))
                .expect("spawn the source thread")
        };
        Source {
            trigger,
            thread: Some(thread),
            batches,
            metrics,
            health,
        }
    }

    fn wait_ready(&self) {
        wait_until("the source to be ready", WAIT, || self.health.is_ready());
        assert_eq!(self.metrics.source_ready.get(), 1);
    }

    fn next_batch(&self) -> Batch<Line> {
        self.batches
            .recv_timeout(WAIT)
            .expect("a batch within the wait")
    }

    /// The texts of the next `count` lines, waiting for them.
    fn take(&self, count: usize) -> Vec<String> {
        let mut texts = Vec::new();
        while texts.len() < count {
            let batch = self.next_batch();
            texts.extend(batch.items.into_iter().map(|line| line.text));
        }
        assert_eq!(texts.len(), count, "{texts:?}");
        texts
    }

    fn assert_nothing_more(&self) {
        if let Ok(batch) = self.batches.recv_timeout(Duration::from_millis(300)) {
            panic!("unexpected batch: {batch:?}");
        }
    }

    /// Triggers the stop and joins the thread; returns how long that took.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.trigger.trigger();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the source panicked");
        started.elapsed()
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.trigger.trigger();
    }
}

fn cursor(position: &Position) -> &str {
    match position {
        Position::Journald(position) => &position.cursor,
        other => panic!("not a journal position: {other:?}"),
    }
}

/// The cursors of the kernel entries in the journal, oldest first.
fn kernel_cursors(dir: &Path) -> Vec<String> {
    journal::entries(dir, true)
        .iter()
        .map(|entry| entry["__CURSOR"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn batches_hold_at_most_max_batch_lines_and_end_at_their_last_entry() {
    if !journal::available("batches_hold_at_most_max_batch_lines") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, active) = journal_dir(root.path());
    let mut entries: Vec<Entry> = (0..=5).map(|port| kernel(&udp_drop(port))).collect();
    entries.insert(
        3,
        Entry {
            transport: "journal",
            ..kernel("not from the kernel")
        },
    );
    write_file(&active, &entries);
    let cursors = kernel_cursors(&dir);
    assert_eq!(cursors.len(), 6);

    // Resuming after the first entry: the other five are there already, read in one go.
    let source = Source::start(&dir, Some(cursors[0].clone()), 2);
    source.wait_ready();
    let kernel_entries: Vec<&Entry> = entries.iter().filter(|e| e.transport == "kernel").collect();
    for (range, end) in [(1..3, 2), (3..5, 4), (5..6, 5)] {
        let batch = source.next_batch();
        let expected: Vec<Line> = kernel_entries[range.clone()]
            .iter()
            .zip(&cursors[range])
            .map(|(entry, cursor)| Line {
                text: String::from_utf8(entry.message.clone()).unwrap(),
                time: DateTime::from_timestamp_micros(entry.time.timestamp_micros()),
                // The mark is the entry's sequence number (the cursor's `i`) in its
                // sequence-number space (the cursor's `s`).
                mark: Mark {
                    content: checksum(journal_cursor_field(cursor, "s").unwrap().as_bytes()),
                    offset: journal_cursor_field(cursor, "i")
                        .and_then(|number| u64::from_str_radix(number, 16).ok())
                        .expect("a sequence number in the cursor"),
                },
            })
            .collect();
        assert_eq!(batch.items, expected);
        assert_eq!(batch.end.as_ref().map(cursor), Some(cursors[end].as_str()));
    }
    source.assert_nothing_more();
    assert_eq!(source.metrics.lines_read.get(), 5);
    assert_eq!(
        source
            .metrics
            .source_lost
            .with_label_values(&["vanished_cursor"])
            .get(),
        0
    );
    let took = source.stop();
    assert!(took < Duration::from_millis(500), "stopping took {took:?}");
}

#[test]
fn a_message_that_is_not_utf8_is_kept_with_replacement_characters() {
    if !journal::available("a_message_that_is_not_utf8_is_kept") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, active) = journal_dir(root.path());
    let source = Source::start(&dir, None, 100);
    source.wait_ready();
    write_file(
        &active,
        &[Entry {
            message: b"calico-drop: \xff\xfe IN=eth0".to_vec(),
            ..kernel("")
        }],
    );
    assert_eq!(source.take(1), ["calico-drop: \u{fffd}\u{fffd} IN=eth0"]);
}

#[test]
fn journal_files_in_a_machine_id_subdirectory_are_read_as_in_var_log_journal() {
    if !journal::available("journal_files_in_a_machine_id_subdirectory_are_read") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = journal_dir(root.path());
    let source = Source::start(&dir, None, 100);
    source.wait_ready();
    // Created after the start, as journald creates /var/log/journal/MACHINE_ID when it flushes.
    let machine = dir.join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir(&machine).unwrap();
    write_file(
        &machine.join("system.journal"),
        &[kernel("in a subdirectory")],
    );
    assert_eq!(source.take(1), ["in a subdirectory"]);
}

#[test]
fn a_directory_that_disappears_is_opened_again_when_it_returns() {
    if !journal::available("a_directory_that_disappears_is_opened_again") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (dir, active) = journal_dir(root.path());
    write_file(&active, &[kernel("history")]);
    let source = Source::start(&dir, None, 100);
    source.wait_ready();
    write_file(&active, &[kernel("one")]);
    assert_eq!(source.take(1), ["one"]);

    std::fs::remove_dir_all(&dir).unwrap();
    wait_until("the error to be counted", WAIT, || {
        source.metrics.source_errors.get() >= 1
    });
    assert!(!source.health.is_ready());
    assert_eq!(source.metrics.source_ready.get(), 0);

    // Back, with new files: the cursor of "one" is gone with the old file, so reading continues from
    // the oldest entry after it.
    let (_, active) = journal_dir(root.path());
    write_file(&active, &[kernel("two"), kernel("three")]);
    assert_eq!(source.take(2), ["two", "three"]);
    source.wait_ready();
    assert_eq!(source.metrics.source_reopens.get(), 1);
    assert_eq!(
        source
            .metrics
            .source_lost
            .with_label_values(&["vanished_cursor"])
            .get(),
        1
    );
    // And it follows the new directory.
    let mut writer = JournalWriter::start(&active);
    writer.write(&[kernel("four")]);
    assert_eq!(source.take(1), ["four"]);
    source.assert_nothing_more();
    writer.close();
}
