//! The journald source: the kernel's entries in the systemd journal (`_TRANSPORT=kernel`), each handed
//! on as a [`Line`] holding the entry's `MESSAGE` and its realtime timestamp, in journal order, exactly
//! once, with the entry's cursor as the position.
//!
//! The journal is read through sd-journal (`libsystemd`), which merges every journal file of a
//! directory (or of the local system journal), notices new, rotated and deleted (vacuumed) files
//! through inotify, and keeps its place across them. This module adds what sd-journal leaves to its
//! caller:
//! - where to start: after a checkpointed cursor (see `journald/reader.rs` for a cursor that no
//!   longer exists), else at the tail, so that only entries arriving after the start are read;
//! - waiting in poll(2) on sd-journal's inotify descriptor and the stop's wake pipe, woken as soon as
//!   an entry is written or the stop comes, with a 1 s safety net (sd-journal may want a look
//!   without a notice, and a replaced directory is checked then);
//! - errors (the directory cannot be opened, disappears or is replaced, a read fails): counted, logged,
//!   and answered by closing the journal and opening it again after a growing delay, resuming after
//!   the last entry handed on. The source never ends on an error; only the stop ends it.
//!
//! Batches are gathered and sent by `sources/batcher.rs`, as for every source; `journald/output.rs`
//! adds what is the journal's own (cursors).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{info, warn};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, JournalPosition, Line};
use crate::stop::Stop;

mod output;
mod reader;

use output::Output;
use reader::{JournalError, Reader, Resume};

/// The longest one wait blocks without a notice. New entries and the stop wake it at once; without
/// a wake pipe for the stop, waits are this short.
const WAIT_TIMEOUT: Duration = Duration::from_secs(1);
const WAIT_TIMEOUT_WITHOUT_WAKE: Duration = Duration::from_millis(100);
/// The first wait before opening the journal again after an error; it doubles up to the maximum.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

pub struct JournaldSettings {
    /// `JOURNAL_DIRECTORY`: read the journal files in this directory; `None`: the local system journal.
    pub directory: Option<PathBuf>,
    /// A checkpointed cursor to resume after.
    pub start: Option<JournalPosition>,
    pub max_batch_lines: usize,
}

/// Thread body: reads until `stop`, sending every kernel entry once, in journal order.
///
/// Errors never end it: each is counted in `source_errors`, logged, and followed by a reopen (counted
/// in `source_reopens`) after a delay growing from 100 ms to 5 s. It returns when `stop` is triggered
/// (or when nobody receives its batches any more).
pub fn run(
    settings: JournaldSettings,
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    health: Health,
) {
    let mut source = JournaldSource {
        output: Output::new(out, stop.clone(), metrics.clone(), settings.max_batch_lines),
        resume: match settings.start {
            Some(position) => Resume::After(position.cursor),
            None => Resume::Tail,
        },
        directory: settings.directory,
        stop: stop.clone(),
        metrics,
        health,
        opened: false,
        wake: match stop.wake_pipe() {
            Ok(wake) => Some(wake),
            Err(error) => {
                warn!("no wake pipe for the stop ({error}): looking at it every 100 ms");
                None
            }
        },
    };
    let mut retry_delay = FIRST_RETRY_DELAY;
    loop {
        let started = Instant::now();
        let error = match source.follow() {
            Ok(()) => return,
            Err(error) => error,
        };
        source.health.set_ready(false);
        source.metrics.source_ready.set(0);
        source.metrics.source_errors.inc();
        // A journal that worked for a while earns a quick retry; one that keeps failing, a slow one.
        if started.elapsed() >= MAX_RETRY_DELAY {
            retry_delay = FIRST_RETRY_DELAY;
        }
        warn!("{error}; opening the journal again in {retry_delay:?}");
        if stop.sleep(retry_delay) {
            return;
        }
        retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
    }
}

struct JournaldSource {
    directory: Option<PathBuf>,
    output: Output,
    /// Where the next opening of the journal starts: after the last entry handed on, once there is one.
    resume: Resume,
    stop: Stop,
    /// Readable once the stop is triggered: waits end then (`None` if it could not be made).
    wake: Option<std::io::PipeReader>,
    metrics: Arc<Metrics>,
    health: Health,
    /// Whether the journal was opened before (a later opening is a reopen).
    opened: bool,
}

impl JournaldSource {
    /// Opens the journal and reads it until the stop (`Ok`) or an error. Entries read before an error
    /// are handed on first, and `resume` moves past them.
    fn follow(&mut self) -> Result<(), JournalError> {
        let mut reader = Reader::open(self.directory.as_deref(), self.metrics.clone())?;
        let at_tail = self.resume == Resume::Tail;
        self.resume = reader.position(&self.resume)?;
        if self.opened {
            self.metrics.source_reopens.inc();
        }
        self.opened = true;
        match &self.directory {
            Some(dir) => info!(
                "reading kernel entries of the journal in {} {}",
                dir.display(),
                self.resume
            ),
            None => info!(
                "reading kernel entries of the system journal {}",
                self.resume
            ),
        }
        // Starting at the tail (no checkpoint), where reading starts is handed on (and checkpointed)
        // before any entry: a restart before the first entry resumes here, not at a later tail.
        if let (true, Resume::After(cursor)) = (at_tail, &self.resume) {
            self.output.mark(cursor);
            if !self.output.flush() {
                return Ok(());
            }
        }
        self.health.set_ready(true);
        self.metrics.source_ready.set(1);
        let result = self.read(&mut reader);
        // What was read before an error is sent before the journal is opened again. A stop during
        // that send ends the thread anyway, so its result needs no handling here.
        self.output.flush();
        if let Some(cursor) = self.output.last_sent() {
            self.resume = Resume::After(cursor.to_string());
        }
        result
    }

    fn read(&mut self, reader: &mut Reader) -> Result<(), JournalError> {
        loop {
            while let Some(entry) = reader.next()? {
                if !self.output.add(entry) {
                    return Ok(());
                }
            }
            if !self.output.flush() || self.stop.is_stopped() {
                return Ok(());
            }
            let wake = self.wake.as_ref().map(AsRawFd::as_raw_fd);
            let timeout = match wake {
                Some(_) => WAIT_TIMEOUT,
                None => WAIT_TIMEOUT_WITHOUT_WAKE,
            };
            reader.wait(wake, timeout)?;
        }
    }
}
