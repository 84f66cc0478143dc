//! Reading records one at a time, behind [`RecordReader`]: from the /dev/kmsg device, or from a regular
//! file or FIFO that imitates it (one record per line) for tests and for replaying a saved buffer.
//!
//! The device returns exactly one record per read(), fails with EINVAL when the buffer is too small for
//! the record (the record stays unread), with EAGAIN when there is nothing new (opened non-blocking), and
//! with EPIPE when records we had not read yet were overwritten; the read after an EPIPE returns the
//! oldest record still there.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use super::position::Start;
use crate::sources::lines::{LineSplitter, Piece};
use crate::sources::wait::wait_readable;

/// Without a wake pipe (or reading a stand-in file): the longest wait before the stop is looked at.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Bytes for one read of the device: a record is at most about 8 KiB (message and dictionary).
const DEVICE_BUFFER_BYTES: usize = 16 * 1024;
/// The device buffer grows on EINVAL up to this; a bigger record is an error.
const MAX_DEVICE_BUFFER_BYTES: usize = 1024 * 1024;
/// A line of an imitating file longer than this is not a record.
const MAX_STREAM_LINE_BYTES: usize = 64 * 1024;

/// What the next read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// One record's bytes (its line and any dictionary lines).
    Record(&'a [u8]),
    /// Nothing new for now: wait.
    Empty,
    /// Records we had not read were overwritten; the next record is the oldest still available.
    Overwritten,
}

/// One record at a time, from /dev/kmsg or something that behaves like it.
pub(crate) trait RecordReader {
    fn next(&mut self) -> io::Result<Next<'_>>;

    /// Waits until a record may be there or `wake` (the stop's wake pipe) is readable; without a
    /// wake pipe, at most `POLL_TIMEOUT`.
    fn wait(&mut self, wake: Option<RawFd>) -> io::Result<()>;
}

/// Opens `path` non-blocking and positions it at `start`: /dev/kmsg (a character device), or a regular
/// file or FIFO with one record per line.
pub(crate) fn open(path: &Path, start: Start) -> io::Result<Box<dyn RecordReader>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_char_device() {
        // The device starts at the oldest record; SEEK_END moves it past the newest.
        if start == Start::End {
            file.seek(SeekFrom::End(0))?;
        }
        Ok(Box::new(DeviceReader {
            file,
            buffer: vec![0; DEVICE_BUFFER_BYTES],
        }))
    } else if kind.is_file() || kind.is_fifo() {
        // A FIFO holds only what is written from now on and cannot seek.
        if start == Start::End && kind.is_file() {
            file.seek(SeekFrom::End(0))?;
        }
        Ok(Box::new(StreamReader::new(file)))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a kernel log device, regular file or FIFO",
        ))
    }
}

/// /dev/kmsg itself.
struct DeviceReader {
    file: File,
    buffer: Vec<u8>,
}

impl RecordReader for DeviceReader {
    fn next(&mut self) -> io::Result<Next<'_>> {
        loop {
            match self.file.read(&mut self.buffer) {
                // The device never ends; treat an end as "nothing now".
                Ok(0) => return Ok(Next::Empty),
                Ok(read) => return Ok(Next::Record(&self.buffer[..read])),
                Err(error) => match error.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return Ok(Next::Empty),
                    Some(libc::EPIPE) => return Ok(Next::Overwritten),
                    Some(libc::EINVAL) if self.buffer.len() < MAX_DEVICE_BUFFER_BYTES => {
                        let bigger = self.buffer.len() * 2;
                        self.buffer.resize(bigger, 0);
                    }
                    _ => return Err(error),
                },
            }
        }
    }

    fn wait(&mut self, wake: Option<RawFd>) -> io::Result<()> {
        let mut fds = vec![self.file.as_raw_fd()];
        fds.extend(wake);
        let timeout = wake.is_none().then_some(POLL_TIMEOUT);
        // Readable, an overwrite (POLLERR), the stop or a timeout: the next read (or the caller's
        // look at the stop) tells which.
        wait_readable(&fds, timeout)?;
        Ok(())
    }
}

/// A regular file or FIFO holding records one per line, as `prio,seq,usec,flags;message`. A line that
/// starts with a space is a dictionary line of the record before it and is skipped, as in the device.
struct StreamReader {
    file: File,
    chunk: Vec<u8>,
    lines: LineSplitter,
    /// Complete lines read but not returned yet.
    ready: VecDeque<Vec<u8>>,
    /// The line last returned (kept so that `Next::Record` can borrow it).
    current: Vec<u8>,
}

impl StreamReader {
    fn new(file: File) -> StreamReader {
        StreamReader {
            file,
            chunk: vec![0; 64 * 1024],
            lines: LineSplitter::new(MAX_STREAM_LINE_BYTES),
            ready: VecDeque::new(),
            current: Vec::new(),
        }
    }

    /// Reads what is there now into `ready`; false when nothing was.
    fn fill(&mut self) -> io::Result<bool> {
        let read = loop {
            match self.file.read(&mut self.chunk) {
                Ok(read) => break read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => return Err(error),
            }
        };
        let ready = &mut self.ready;
        self.lines
            .push(&self.chunk[..read], |piece, _| match piece {
                Piece::Line(line) if line.first() == Some(&b' ') => {}
                Piece::Line(line) => ready.push_back(line.to_vec()),
                // Not a record: an empty line fails to parse and is counted as such.
                Piece::TooLong(_) => ready.push_back(Vec::new()),
            });
        Ok(read > 0)
    }
}

impl RecordReader for StreamReader {
    fn next(&mut self) -> io::Result<Next<'_>> {
        while self.ready.is_empty() {
            if !self.fill()? {
                return Ok(Next::Empty);
            }
        }
        self.current = self.ready.pop_front().unwrap_or_default();
        Ok(Next::Record(&self.current))
    }

    fn wait(&mut self, _wake: Option<RawFd>) -> io::Result<()> {
        // A regular file is always "readable" to poll(2), and a FIFO without a writer always hung up:
        // polling would spin, so a stream (a test's stand-in for the device) is polled by sleeping.
        std::thread::sleep(POLL_TIMEOUT);
        Ok(())
    }
}
