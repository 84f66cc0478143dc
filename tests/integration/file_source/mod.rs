//! The file source and its checkpoints on real files: real appends, renames, truncations and deletions
//! in a temporary directory, with the source running on its own thread at a 10 ms poll interval.
//!
//! This module holds what the tests share (the source on its thread as a [`Tailer`], file helpers);
//! the tests are in a module per theme.

mod between;
mod checkpoints;
mod notices;
mod reading;
mod rotation;
mod soak;

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kube_iptables_tailer::health::Health;
use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::{Batch, FilePosition, Line, Position};
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
        change_notices: true,
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
    /// The position the source said it starts at.
    start: Option<FilePosition>,
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
            start: None,
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

    /// The next batch with lines, as sent (the start position before it is recorded).
    fn next_batch(&mut self) -> Batch<Line> {
        loop {
            let batch = self
                .batches
                .recv_timeout(WAIT)
                .expect("a batch within the wait");
            if self.is_start_position(&batch) {
                continue;
            }
            self.last_end = Some(file_position(batch.end.clone()));
            return batch;
        }
    }

    /// The source's first batch is where it starts reading, without lines (so that it is checkpointed
    /// before the first line); every later batch carries lines.
    fn is_start_position(&mut self, batch: &Batch<Line>) -> bool {
        if !batch.items.is_empty() {
            return false;
        }
        assert!(
            self.start.is_none() && self.last_end.is_none(),
            "only the first batch is without lines: {batch:?}"
        );
        self.start = Some(file_position(batch.end.clone()));
        true
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
        if self.is_start_position(&batch) {
            return;
        }
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

    /// Where the source started reading (its first batch), waiting for it.
    fn start_position(&mut self) -> FilePosition {
        while self.start.is_none() {
            let batch = self.batches.recv_timeout(WAIT).expect("the start position");
            self.receive(batch);
        }
        self.start.clone().unwrap()
    }

    /// Stops the source, which handed on no line, and waits for its thread.
    fn stop_without_lines(mut self) {
        self.trigger.trigger();
        let thread = self.thread.take().expect("joined once");
        thread.join().expect("the source thread did not panic");
        assert!(self.pending.is_empty() && self.last_end.is_none());
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
fn file_position(position: Option<Position>) -> FilePosition {
    match position {
        Some(Position::File(position)) => position,
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
