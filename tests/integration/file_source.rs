//! The file source and its checkpoints on real files: real appends, renames, truncations and deletions
//! in a temporary directory, with the source running on its own thread at a 10 ms poll interval.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kube_iptables_tailer::health::Health;
use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::{Batch, FileIdentity, FilePosition, Fingerprint, Line, Position};
use kube_iptables_tailer::sources::checkpoint::{CheckpointError, CheckpointStore, run_writer};
use kube_iptables_tailer::sources::file::{self, FileSourceSettings};
use kube_iptables_tailer::stop::{self, StopTrigger};

/// How long a test waits for lines that must come.
const WAIT: Duration = Duration::from_secs(10);
/// Many polls long: nothing arriving within it means nothing more is coming.
const QUIET: Duration = Duration::from_millis(150);

fn settings(path: &Path) -> FileSourceSettings {
    FileSourceSettings {
        path: path.to_path_buf(),
        start: None,
        from_beginning: false,
        poll_interval: Duration::from_millis(10),
        max_line_bytes: 64 * 1024,
        max_batch_lines: 100,
    }
}

fn from_beginning(path: &Path) -> FileSourceSettings {
    FileSourceSettings {
        from_beginning: true,
        ..settings(path)
    }
}

/// The file source running on its thread, with what it sent so far.
struct Tailer {
    trigger: StopTrigger,
    thread: Option<JoinHandle<()>>,
    batches: Receiver<Batch<Line>>,
    /// Lines received and not yet taken by the test.
    pending: VecDeque<String>,
    /// The end position of the last batch received.
    last_end: Option<FilePosition>,
    metrics: Arc<Metrics>,
    health: Health,
}

impl Tailer {
    fn start(settings: FileSourceSettings) -> Tailer {
        let _ = env_logger::builder().is_test(true).try_init();
        let (out, batches) = crossbeam_channel::bounded(16);
        let (trigger, stop) = stop::new();
        let (metrics, health) = (Arc::new(Metrics::new()), Health::new());
        let thread = {
            let (metrics, health) = (metrics.clone(), health.clone());
            std::thread::Builder::new()
                .name("file-source".to_string())
                .spawn(move || file::run(settings, out, stop, metrics, health))
                .expect("spawn the source thread")
        };
        Tailer {
            trigger,
            thread: Some(thread),
            batches,
            pending: VecDeque::new(),
            last_end: None,
            metrics,
            health,
        }
    }

    /// Waits until the source has opened and positioned its file.
    fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        while !self.health.is_ready() {
            assert!(Instant::now() < deadline, "the source did not become ready");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(self.metrics.source_ready.get(), 1);
    }

    /// The next batch, as sent.
    fn next_batch(&mut self) -> Batch<Line> {
        let batch = self
            .batches
            .recv_timeout(WAIT)
            .expect("a batch within the wait");
        self.last_end = Some(file_position(batch.end.clone()));
        batch
    }

    /// The next `count` lines, waiting for them.
    fn take(&mut self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        while self.pending.len() < count {
            match self.batches.recv_deadline(deadline) {
                Ok(batch) => self.receive(batch),
                Err(_) => panic!("waited {WAIT:?} for {count} lines, got {:?}", self.pending),
            }
        }
        self.pending.drain(..count).collect()
    }

    fn receive(&mut self, batch: Batch<Line>) {
        assert!(!batch.items.is_empty(), "positions come only with lines");
        for line in batch.items {
            assert_eq!(line.time, None, "a plain file knows no times");
            self.pending.push_back(line.text);
        }
        self.last_end = Some(file_position(batch.end));
    }

    /// Asserts that no line beyond those taken arrives.
    fn assert_no_more_lines(&mut self) {
        if let Ok(batch) = self.batches.recv_timeout(QUIET) {
            self.receive(batch);
        }
        assert!(
            self.pending.is_empty(),
            "unexpected lines: {:?}",
            self.pending
        );
    }

    fn rotations(&self, kind: &str) -> u64 {
        self.metrics.rotations.with_label_values(&[kind]).get()
    }

    /// Stops the source and waits for its thread; the end position of the last batch received.
    fn stop(mut self) -> FilePosition {
        self.trigger.trigger();
        let thread = self.thread.take().expect("joined once");
        thread.join().expect("the source thread did not panic");
        self.last_end.take().expect("a batch was received")
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        // Also when a test fails: the thread must not outlive its test.
        self.trigger.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[allow(unreachable_patterns)] // Other sources' positions may be added to `Position`.
fn file_position(position: Position) -> FilePosition {
    match position {
        Position::File(position) => position,
        other => panic!("the file source sent {other:?}"),
    }
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open to append");
    file.write_all(text.as_bytes()).expect("append");
}

fn rotated(path: &Path) -> PathBuf {
    path.with_extension("log.1")
}

fn lines(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| text.to_string()).collect()
}

fn log_path(directory: &tempfile::TempDir) -> PathBuf {
    directory.path().join("kern.log")
}

#[test]
fn lines_appended_after_start_are_read_and_existing_ones_are_not() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old 1\nold 2\n").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, "new 1\nnew 2\n");
    assert_eq!(tailer.take(2), lines(&["new 1", "new 2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.metrics.lines_read.get(), 2);
    let end = tailer.stop();
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(end.path, path);
    assert_eq!(end.offset, metadata.len());
    assert_eq!(
        (end.identity.device, end.identity.inode),
        (metadata.dev(), metadata.ino())
    );
}

#[test]
fn starting_at_the_end_hands_on_a_line_being_written_whole() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old\nhalf of a").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, " line\nnew\n");
    assert_eq!(tailer.take(2), lines(&["half of a line", "new"]));
    tailer.assert_no_more_lines();
}

#[test]
fn from_beginning_reads_the_existing_lines() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "old 1\nold 2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["old 1", "old 2"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_line_split_across_two_writes_arrives_once_whole() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    append(&path, "first half, ");
    std::thread::sleep(Duration::from_millis(50)); // several polls see the half line
    append(&path, "second half\r\nnext\n");
    assert_eq!(tailer.take(2), lines(&["first half, second half", "next"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_line_with_invalid_utf8_is_kept_with_replacement_characters() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, b"bad \xff byte\nfine\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["bad \u{fffd} byte", "fine"]));
}

#[test]
fn batches_hold_at_most_max_batch_lines_and_end_after_their_last_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let text: String = (0..250).map(|n| format!("line {n:03}\n")).collect();
    fs::write(&path, &text).unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    let mut read = 0;
    while read < 250 {
        let batch = tailer.next_batch();
        assert!(
            !batch.items.is_empty() && batch.items.len() <= 100,
            "{}",
            batch.items.len()
        );
        read += batch.items.len();
        // Every line is 9 bytes: the batch ends just after its last line.
        assert_eq!(file_position(batch.end).offset, read as u64 * 9);
    }
    assert_eq!(read, 250);
    tailer.assert_no_more_lines();
}

#[test]
fn rotation_by_rename_reads_the_old_files_tail_then_the_new_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    // A slow poll, so that the whole rotation happens between two polls.
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(1), lines(&["a1"]));

    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    old.write_all(b"a2\n").unwrap();
    fs::rename(&path, rotated(&path)).unwrap();
    // The writer has not reopened yet (rsyslog before logrotate's HUP): the tail goes to the old file.
    old.write_all(b"a3\n").unwrap();
    fs::write(&path, "b1\nb2\n").unwrap();

    assert_eq!(tailer.take(4), lines(&["a2", "a3", "b1", "b2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
    let end = tailer.stop();
    assert_eq!(end.identity.inode, fs::metadata(&path).unwrap().ino());
    assert_eq!(end.offset, 6);
}

#[test]
fn an_empty_new_file_is_not_switched_to_while_the_old_one_still_grows() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    fs::rename(&path, rotated(&path)).unwrap();
    File::create(&path).unwrap(); // logrotate `create`; the writer has not been told yet
    std::thread::sleep(Duration::from_millis(50));
    old.write_all(b"a2\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    append(&path, "b1\n"); // the writer reopened
    assert_eq!(tailer.take(2), lines(&["a2", "b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
}

#[test]
fn copytruncate_restarts_at_the_start_of_the_same_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\na2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["a1", "a2"]));
    fs::copy(&path, rotated(&path)).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "b1\n");
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
    assert_eq!(tailer.rotations("rename"), 0);
}

#[test]
fn truncation_then_regrowth_past_the_offset_is_noticed_by_the_fingerprint() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "first 1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(1), lines(&["first 1"]));
    // Between two polls the file is truncated and grows past our offset (8): its size alone looks fine.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "second 1\nsecond 2\n");
    assert_eq!(tailer.take(2), lines(&["second 1", "second 2"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
}

#[test]
fn truncation_to_the_same_first_bytes_is_noticed_by_the_size() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    // 2000 bytes of identical lines: after the truncation the first 1024 bytes are the same again.
    fs::write(&path, "same line\n".repeat(200)).unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        poll_interval: Duration::from_millis(300),
        ..from_beginning(&path)
    });
    assert_eq!(tailer.take(200).len(), 200);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &"same line\n".repeat(110));
    assert_eq!(tailer.take(110), vec!["same line".to_string(); 110]);
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 1);
}

#[test]
fn the_unterminated_end_of_a_rotated_file_is_handed_on_as_a_line() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    append(&path, "a writer died mid-li");
    fs::rename(&path, rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    assert_eq!(tailer.take(2), lines(&["a writer died mid-li", "b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_deleted_file_is_drained_and_its_recreation_read_from_the_start() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    fs::remove_file(&path).unwrap();
    old.write_all(b"a2\n").unwrap(); // still written after deletion, through an open handle
    assert_eq!(tailer.take(1), lines(&["a2"]));
    std::thread::sleep(Duration::from_millis(50)); // polls see the path missing
    fs::write(&path, "b1\n").unwrap();
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("recreate"), 1);
    assert_eq!(tailer.rotations("rename"), 0);
}

#[test]
fn a_file_missing_at_start_is_read_from_its_start_once_it_appears() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let mut tailer = Tailer::start(settings(&path));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!tailer.health.is_ready(), "not ready without a file");
    fs::write(&path, "x1\nx2\n").unwrap();
    assert_eq!(tailer.take(2), lines(&["x1", "x2"]));
    tailer.wait_ready();
    tailer.assert_no_more_lines();
}

#[test]
fn a_file_shorter_than_the_fingerprint_is_followed_as_it_grows() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "s\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["s"]));
    let first = tailer.last_end.clone().unwrap();
    assert_eq!(first.identity.fingerprint.len, 2);
    for n in 0..150 {
        append(&path, &format!("line {n:03}\n"));
    }
    let expected: Vec<String> = (0..150).map(|n| format!("line {n:03}")).collect();
    assert_eq!(tailer.take(150), expected);
    let grown = tailer.last_end.clone().unwrap();
    assert_eq!(grown.offset, 2 + 150 * 9);
    assert_eq!(grown.identity.fingerprint.len, 1024);
    assert_eq!(
        (grown.identity.device, grown.identity.inode),
        (first.identity.device, first.identity.inode)
    );
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("truncate"), 0);
}

#[test]
fn a_line_longer_than_the_limit_is_skipped_and_its_neighbours_arrive() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "").unwrap();
    let mut tailer = Tailer::start(settings(&path));
    tailer.wait_ready();
    let half = "x".repeat(512 * 1024);
    append(&path, &format!("before\n{half}"));
    std::thread::sleep(Duration::from_millis(30));
    append(&path, &format!("{half}\nafter\n"));
    assert_eq!(tailer.take(2), lines(&["before", "after"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.metrics.lines_too_long.get(), 1);
    assert_eq!(tailer.stop().offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn resuming_from_a_checkpoint_reads_exactly_the_new_lines() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\na2\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(2), lines(&["a1", "a2"]));
    let store = CheckpointStore::new(directory.path(), "file");
    store.save(&Position::File(tailer.stop())).unwrap();

    append(&path, "a3\na4\n");
    let start = file_position(store.load().unwrap().expect("a saved checkpoint"));
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(start),
        ..settings(&path)
    });
    assert_eq!(tailer.take(2), lines(&["a3", "a4"]));
    tailer.assert_no_more_lines();
}

#[test]
fn resuming_after_a_rename_while_stopped_reads_the_rotated_file_then_the_new_one() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\na3\n");
    fs::rename(&path, rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(3), lines(&["a2", "a3", "b1"]));
    tailer.assert_no_more_lines();
    assert_eq!(tailer.rotations("rename"), 1);
}

#[test]
fn resuming_when_the_rotated_file_is_gone_reads_the_current_file_from_its_start() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let end = tailer.stop();

    append(&path, "a2\n"); // lost: its file is removed while the source is stopped
    fs::rename(&path, rotated(&path)).unwrap();
    fs::remove_file(rotated(&path)).unwrap();
    fs::write(&path, "b1\n").unwrap();
    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    assert_eq!(tailer.take(1), lines(&["b1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_checkpoint_for_another_path_is_not_used() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(from_beginning(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));
    let mut end = tailer.stop();
    end.path = directory.path().join("other.log");
    end.offset = 0;

    let mut tailer = Tailer::start(FileSourceSettings {
        start: Some(end),
        ..settings(&path)
    });
    tailer.wait_ready();
    append(&path, "a2\n");
    assert_eq!(
        tailer.take(1),
        lines(&["a2"]),
        "started at the end, as without a checkpoint"
    );
}

#[test]
fn stop_ends_the_source_even_when_nobody_takes_its_batches() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let text: String = (0..5000).map(|n| format!("line {n}\n")).collect();
    fs::write(&path, text).unwrap();
    // max_batch_lines 1 and a 16-batch channel: the source blocks on a full channel.
    let mut tailer = Tailer::start(FileSourceSettings {
        max_batch_lines: 1,
        ..from_beginning(&path)
    });
    tailer.wait_ready();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    tailer.trigger.trigger();
    tailer.thread.take().unwrap().join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

fn sample_position(offset: u64) -> Position {
    Position::File(FilePosition {
        path: PathBuf::from("/var/log/kern.log"),
        identity: FileIdentity {
            device: 64769,
            inode: 4242,
            fingerprint: Fingerprint {
                len: 1024,
                checksum: 0x0123_4567_89ab_cdef,
            },
        },
        offset,
    })
}

#[test]
fn a_checkpoint_is_saved_atomically_and_loads_back() {
    let directory = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(directory.path(), "file");
    assert!(store.load().unwrap().is_none(), "no checkpoint yet");
    store.save(&sample_position(10)).unwrap();
    store.save(&sample_position(20)).unwrap();
    assert_eq!(store.load().unwrap(), Some(sample_position(20)));
    let names: Vec<String> = fs::read_dir(directory.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["file.checkpoint.json".to_string()],
        "no temporary file left behind"
    );
}

#[test]
fn a_corrupt_checkpoint_is_an_error_not_a_start_from_scratch() {
    let directory = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(directory.path(), "file");
    fs::write(store.path(), "{\"source\":\"file\",\"pa").unwrap();
    assert!(matches!(store.load(), Err(CheckpointError::Corrupt { .. })));
}

#[test]
fn the_checkpoint_writer_saves_the_last_ack_when_acks_disconnect() {
    let directory = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (acks, received) = crossbeam_channel::unbounded();
    let writer = {
        let (store, metrics) = (
            CheckpointStore::new(directory.path(), "file"),
            metrics.clone(),
        );
        // An hour between writes: only the first ack and the final one can be written.
        std::thread::spawn(move || run_writer(store, received, Duration::from_secs(3600), metrics))
    };
    let store = CheckpointStore::new(directory.path(), "file");
    acks.send(sample_position(1)).unwrap();
    let deadline = Instant::now() + WAIT;
    while store.load().unwrap() != Some(sample_position(1)) {
        assert!(
            Instant::now() < deadline,
            "the first ack is written at once"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    for offset in 2..=5 {
        acks.send(sample_position(offset)).unwrap();
    }
    drop(acks);
    writer.join().unwrap();
    assert_eq!(store.load().unwrap(), Some(sample_position(5)));
    assert_eq!(metrics.checkpoint_writes.get(), 2);
    assert_eq!(metrics.checkpoint_failures.get(), 0);
}

/// How the soak's rotator rotates.
#[derive(Clone, Copy, Debug)]
enum Rotation {
    /// logrotate `create`: rename, create an empty file; the writer writes a little more to the old
    /// file (before its HUP), then reopens the path.
    RenameAndCreate,
    /// logrotate `copytruncate`: copy, then truncate in place; the writer appends (O_APPEND) at 0.
    CopyTruncate,
}

#[test]
fn soak_every_line_arrives_exactly_once_in_order_through_many_rotations() {
    const LINES: usize = 20_000;
    const ROTATIONS: usize = 50;
    const EVERY: usize = LINES / (ROTATIONS + 1);
    const TAIL_LINES: usize = 3;
    let line = |n: usize| format!("soak line {n:06} {}", "x".repeat(40));

    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    File::create(&path).unwrap();
    let started = Instant::now();
    let mut tailer = Tailer::start(FileSourceSettings {
        max_batch_lines: 500,
        ..from_beginning(&path)
    });
    tailer.wait_ready();
    let received = Arc::new(AtomicUsize::new(0));
    let (requests, rotator_requests) = crossbeam_channel::bounded::<(usize, Rotation)>(0);
    let (rotator_done, done) = crossbeam_channel::bounded::<()>(0);

    let rotator = {
        let (path, received) = (path.clone(), received.clone());
        std::thread::spawn(move || {
            for (written, rotation) in rotator_requests {
                // A tail of one path cannot follow a second rotation before it has seen the first,
                // and copytruncate loses what was not read before the copy: wait for the source.
                let deadline = Instant::now() + WAIT;
                while received.load(Ordering::SeqCst) < written {
                    assert!(Instant::now() < deadline, "the source fell behind");
                    std::thread::sleep(Duration::from_millis(1));
                }
                match rotation {
                    Rotation::RenameAndCreate => {
                        fs::rename(&path, rotated(&path)).unwrap();
                        File::create(&path).unwrap();
                    }
                    Rotation::CopyTruncate => {
                        fs::copy(&path, rotated(&path)).unwrap();
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .unwrap()
                            .set_len(0)
                            .unwrap();
                    }
                }
                rotator_done.send(()).unwrap();
            }
        })
    };
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let open = || OpenOptions::new().append(true).open(&path).unwrap();
            let mut file = open();
            let mut rotations = 0;
            let mut n = 0;
            while n < LINES {
                if n > 0 && n % EVERY == 0 && rotations < ROTATIONS {
                    let rotation = if rotations % 2 == 0 {
                        Rotation::RenameAndCreate
                    } else {
                        Rotation::CopyTruncate
                    };
                    rotations += 1;
                    requests.send((n, rotation)).unwrap();
                    done.recv().unwrap(); // paused during the rotation
                    if let Rotation::RenameAndCreate = rotation {
                        for _ in 0..TAIL_LINES {
                            writeln!(file, "{}", line(n)).unwrap();
                            n += 1;
                        }
                        file = open(); // the HUP
                    }
                }
                writeln!(file, "{}", line(n)).unwrap();
                n += 1;
            }
            rotations
        })
    };

    let mut arrived = Vec::with_capacity(LINES);
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrived.len() < LINES {
        let batch = tailer
            .batches
            .recv_deadline(deadline)
            .unwrap_or_else(|_| panic!("only {} of {LINES} lines arrived", arrived.len()));
        arrived.extend(batch.items.into_iter().map(|line| line.text));
        received.store(arrived.len(), Ordering::SeqCst);
    }
    let rotations = writer.join().unwrap();
    rotator.join().unwrap();
    tailer.assert_no_more_lines();
    let elapsed = started.elapsed();

    assert_eq!(rotations, ROTATIONS);
    for (n, text) in arrived.iter().enumerate() {
        assert_eq!(*text, line(n), "line {n}");
    }
    assert_eq!(tailer.rotations("rename"), (ROTATIONS / 2) as u64);
    assert_eq!(tailer.rotations("truncate"), (ROTATIONS / 2) as u64);
    assert_eq!(tailer.rotations("recreate"), 0);
    assert_eq!(tailer.metrics.lines_read.get(), LINES as u64);
    assert_eq!(tailer.metrics.source_errors.get(), 0);
    eprintln!("soak: {LINES} lines, {ROTATIONS} rotations in {elapsed:?}");
}
