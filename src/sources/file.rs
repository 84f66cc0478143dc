//! The file source: follows one log file like `tail -F`, through every kind of rotation, handing on
//! every complete line exactly once, in order.
//!
//! One open file is followed at a time (a `FollowedFile`). On each look (woken by the kernel's change
//! notices, `file/wake.rs`, or at the latest after a poll interval) the source
//! 1. checks that the open file still holds the bytes it read: if it is shorter than our offset, or its
//!    first bytes changed (copytruncate, then written again past our offset before we looked), it reads
//!    it again from offset 0;
//! 2. reads everything appended and hands on the complete lines ([`LineSplitter`] keeps a partial last
//!    line until its `\n` arrives);
//! 3. looks at which file the path names now. Another file (rename + create, delete + recreate) means
//!    the open file is drained to its end first, then the new one is read from offset 0. A missing path
//!    means the open (deleted or renamed) file is still read until a new one appears.
//!
//! Positions name the file by identity (device, inode, fingerprint of its first bytes), so a restart
//! finds the file it was reading even if it was rotated meanwhile (see `file/start.rs`); batches are
//! gathered and sent by `sources/batcher.rs`, with `file/output.rs` adding what is the file's own.
//!
//! When the path names another file, or ours was truncated, `file/rotation.rs` moves on. A file may
//! have come between (two rotations within one poll interval, or while the agent was stopped): it
//! is found in the directory by when it was last written and read first (`file/rotated.rs`).
//!
//! Accepted limits, inherent to following a path: a file that came between and was deleted or
//! compressed before we looked is not read; lines a writer still appends to the old file after the
//! new file has data (two writers) are not read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use log::{info, warn};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, FileIdentity, FilePosition, Line};
use crate::sources::fingerprint;
use crate::sources::lines::{LineSplitter, Piece};
use crate::stop::Stop;

mod output;
mod rotated;
mod rotation;
mod start;
mod wake;

use output::{FileEnd, Output};
use rotated::ReadFiles;
use start::{Start, first_start};
use wake::Wake;

/// Size of one read: large enough that a burst costs few system calls, small enough to send lines soon.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// With change notices (inotify), the longest wait without one before looking anyway.
const NOTICED_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How much of a file's first line names its content.
const FIRST_LINE_BYTES: usize = 256;
/// The longest wait between retries after an I/O error.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

pub struct FileSourceSettings {
    pub path: PathBuf,
    /// A checkpointed position to resume from (used only if its path is `path`).
    pub start: Option<FilePosition>,
    /// With no usable checkpoint: read the existing file from its start instead of its end.
    pub from_beginning: bool,
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
    pub max_batch_lines: usize,
    /// Wake on the kernel's change notices (inotify) rather than every `poll_interval`. Off only in
    /// tests that play an agent slow to look (everything they do happens between two looks).
    pub change_notices: bool,
}

/// Thread body: reads until `stop`, sending every complete line exactly once, in order.
///
/// I/O errors never end it: they are counted in `source_errors`, logged, and retried with a growing
/// delay. It returns when `stop` is triggered (or when nobody receives its batches any more).
pub fn run(
    settings: FileSourceSettings,
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    health: Health,
) {
    let mut state = State::Starting(first_start(&settings));
    let poll_interval = settings.poll_interval;
    let mut source = FileSource {
        output: Output::new(&settings, out, stop.clone(), metrics.clone()),
        settings,
        metrics,
        health,
        buffer: vec![0; READ_CHUNK_BYTES],
        announced_missing: false,
        read: ReadFiles::default(),
        directory_modified: None,
    };
    let mut wake = Wake::new(&source.settings.path, &stop, source.settings.change_notices);
    // With change notices the poll is only a safety net; without them it is how changes are seen.
    let wait_at_most = if wake.notified() {
        poll_interval.max(NOTICED_POLL_INTERVAL)
    } else {
        poll_interval
    };
    let mut retry_delay = poll_interval.max(Duration::from_millis(10));
    loop {
        let stopped = match source.poll(&mut state) {
            Ok(Flow::Stopped) => return,
            Ok(Flow::Again) => stop.is_stopped(),
            Ok(Flow::Wait) => {
                retry_delay = poll_interval.max(Duration::from_millis(10));
                let followed = match &state {
                    State::Following(followed) => Some(&followed.file),
                    State::Starting(_) => None,
                };
                wake.wait(followed, wait_at_most, &stop)
            }
            Err(error) => {
                source.metrics.source_errors.inc();
                let path = source.settings.path.display();
                warn!("reading {path}: {error}; retrying in {retry_delay:?}");
                let pause = retry_delay;
                retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                stop.sleep(pause)
            }
        };
        if stopped {
            return;
        }
    }
}

enum State {
    /// No file opened yet (it may not exist yet).
    Starting(Start),
    Following(FollowedFile),
}

/// What the run loop does after a poll.
enum Flow {
    /// Sleep for the poll interval.
    Wait,
    /// Poll again at once (a new file was opened: read it without delay).
    Again,
    /// The stop was triggered, or nobody receives batches any more.
    Stopped,
}

/// The file being read, and how far.
struct FollowedFile {
    file: File,
    /// The open file's identity; its fingerprint grows while the file is shorter than the fingerprint
    /// size (device and inode stay).
    identity: FileIdentity,
    /// The next byte to read. Bytes between the end of the last line handed on and this offset are the
    /// start of a line still waiting for its `\n`, held in `lines`.
    read_offset: u64,
    lines: LineSplitter,
    /// The file's modification time (nanoseconds since the Unix epoch) as last seen while it held the
    /// content we read: files that came after it were written later (`file/rotated.rs`).
    written: u64,
    /// The checksum of the file's first line, once it is complete: the content of line marks.
    content: Option<u64>,
}

impl FollowedFile {
    /// Follows `file` from `offset`; it was last seen written at `written` when known (a checkpoint
    /// says), else at its modification time now.
    fn new(
        file: File,
        offset: u64,
        written: Option<u64>,
        max_line_bytes: usize,
    ) -> io::Result<FollowedFile> {
        let identity = fingerprint::identify(&file)?;
        let written = match written {
            Some(written) if written != 0 => written,
            _ => modified(&file.metadata()?),
        };
        Ok(FollowedFile {
            file,
            identity,
            read_offset: offset,
            lines: LineSplitter::new(max_line_bytes),
            written,
            content: None,
        })
    }

    /// Where the next line would end (before it is read: where reading starts).
    fn end_at(&self, offset: u64) -> FileEnd {
        FileEnd {
            identity: self.identity,
            offset,
            written: self.written,
            content: self.content.unwrap_or_default(),
        }
    }

    /// Whether nothing of the file's content was seen: not one byte read, none known.
    fn knows_nothing(&self) -> bool {
        self.read_offset == 0 && self.identity.fingerprint.len == 0
    }

    /// Whether the file no longer holds the bytes we read: it is shorter than our offset, or its first
    /// bytes changed. Extends the fingerprint of a file that was shorter than the fingerprint size,
    /// and notes when a file that still holds our content was last written.
    fn was_truncated(&mut self) -> io::Result<bool> {
        let metadata = self.file.metadata()?;
        if metadata.len() < self.read_offset {
            return Ok(true);
        }
        let known = self.identity.fingerprint;
        let head = fingerprint::read_head(&self.file, Some(&known))?;
        if !fingerprint::head_matches(&head, &known) {
            return Ok(true);
        }
        if self.content.is_none() {
            // Resumed past the first line: named by the bytes the fingerprint vouches for.
            self.content = first_line_checksum(&head[..known.len as usize]);
        }
        if head.len() > known.len as usize {
            self.identity.fingerprint = fingerprint::fingerprint_of(&head);
        }
        // Looked at before the first bytes, which still match: the time is this content's. Not when
        // the file is empty: its time may be that of a truncation of content we never read (written,
        // copied and truncated since we looked), whose copy must still count as written since.
        if !head.is_empty() {
            self.written = self.written.max(modified(&metadata));
        }
        Ok(false)
    }
}

struct FileSource {
    settings: FileSourceSettings,
    output: Output,
    metrics: Arc<Metrics>,
    health: Health,
    buffer: Vec<u8>,
    /// Whether the path's absence was logged already (once per absence, not once per poll).
    announced_missing: bool,
    /// The files read to their end, never to be read again (see `file/rotated.rs`).
    read: ReadFiles,
    /// The log directory's modification time when last looked for files that came between.
    directory_modified: Option<std::time::SystemTime>,
}

impl FileSource {
    fn poll(&mut self, state: &mut State) -> io::Result<Flow> {
        match state {
            State::Starting(start) => {
                let Some(followed) = self.start(start)? else {
                    return Ok(Flow::Wait);
                };
                self.output.position(followed.end_at(followed.read_offset));
                if !self.output.flush() {
                    return Ok(Flow::Stopped);
                }
                *state = State::Following(followed);
                self.health.set_ready(true);
                self.metrics.source_ready.set(1);
                Ok(Flow::Again)
            }
            State::Following(followed) => self.follow(followed),
        }
    }

    /// One poll of an open file: truncation, new lines, rotation (the steps of the module docs).
    fn follow(&mut self, followed: &mut FollowedFile) -> io::Result<Flow> {
        // Nothing known of its content (it was empty when we opened it): it may have been written,
        // copied and truncated since, which its first bytes cannot tell (two copytruncates within
        // one poll interval). Looked at once, when it first has data.
        if followed.knows_nothing() && followed.file.metadata()?.len() > 0 {
            if let Some(earlier) = self.written_before(followed)? {
                *followed = earlier;
                return Ok(Flow::Again);
            }
        }
        // Checked before reading: a file truncated and written again past our offset would otherwise
        // have the middle of other lines read from our old offset.
        if followed.was_truncated()? && !self.restart_truncated(followed)? {
            return Ok(Flow::Stopped);
        }
        if !self.drain(followed)? {
            return Ok(Flow::Stopped);
        }
        let path = self.settings.path.clone();
        let current = match std::fs::metadata(&path) {
            Ok(current) => current,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if !self.announced_missing {
                    info!(
                        "{} is gone; reading the open file until a new one appears",
                        path.display()
                    );
                    self.announced_missing = true;
                }
                return Ok(Flow::Wait);
            }
            Err(error) => return Err(error),
        };
        self.announced_missing = false;
        // Our open file keeps its inode allocated, so no other file can have it: same inode, same file.
        if fingerprint::same_inode(&current, &followed.identity) {
            return Ok(Flow::Wait);
        }
        self.move_on(followed, &current)
    }

    /// Reads from the offset to the end of the file, handing on every complete line; false if stopped.
    fn drain(&mut self, followed: &mut FollowedFile) -> io::Result<bool> {
        loop {
            let read = match followed
                .file
                .read_at(&mut self.buffer, followed.read_offset)
            {
                Ok(0) => return Ok(true),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            let chunk_start = followed.read_offset;
            followed.read_offset += read as u64;
            // What we know of the content comes from the bytes we read, not from another read of
            // the file, which may hold another content by then: the chunk extends the fingerprint
            // and, from the start of the file, names the content (its first line is complete
            // before any line is handed on).
            fingerprint::extend(
                &mut followed.identity.fingerprint,
                chunk_start,
                &self.buffer[..read],
            );
            if followed.content.is_none() && chunk_start == 0 {
                followed.content = first_line_checksum(&self.buffer[..read]);
            }
            // A copytruncate between the last check and this read would have us read the new
            // content from our old offset, or the chunk be of a content gone since: looked at
            // again after the read (the head must still be what we know), the chunk is dropped
            // and the next poll starts the new content over (reading the copy's rest first).
            if followed.was_truncated()? {
                followed.read_offset = chunk_start;
                return Ok(true);
            }
            let at = followed.end_at(0);
            let output = &mut self.output;
            followed
                .lines
                .push(&self.buffer[..read], |piece, end| match piece {
                    Piece::Line(line) => output.add(
                        line,
                        FileEnd {
                            offset: chunk_start + end as u64,
                            ..at
                        },
                    ),
                    Piece::TooLong(length) => output.too_long(length),
                });
            if !self.output.flush() {
                return Ok(false);
            }
        }
    }

    /// The file is done with (rotated away or truncated): hands on its unterminated last line. rsyslog
    /// always ends its lines, so such a fragment is rare (a writer that died mid-line); passing it on
    /// loses nothing, while keeping it would glue it to the first line of another file.
    fn finish(&mut self, followed: &mut FollowedFile) -> bool {
        let end = followed.end_at(followed.read_offset);
        let output = &mut self.output;
        followed.lines.finish(|piece| match piece {
            Piece::Line(line) => output.add(line, end),
            Piece::TooLong(length) => output.too_long(length),
        });
        self.output.flush()
    }
}

fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// When a file was last written, in nanoseconds since the Unix epoch.
fn modified(metadata: &std::fs::Metadata) -> u64 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// The checksum of the first line in `head` (the first bytes of a file; the first 256 bytes when the
/// line is longer), `None` while that line is not complete. It names the file's content in line
/// marks: the same content read again (after a restart, or in a copy) has the same name, another
/// content another.
fn first_line_checksum(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FIRST_LINE_BYTES)];
    let line = match memchr::memchr(b'\n', head) {
        Some(end) => &head[..=end],
        None if head.len() == FIRST_LINE_BYTES => head,
        None => return None,
    };
    Some(crate::checksum::checksum(line))
}
