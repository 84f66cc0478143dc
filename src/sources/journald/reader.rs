//! One opening of the journal: sd-journal restricted to kernel entries, positioned where reading
//! resumes, read entry by entry, and waited on.
//!
//! Resuming after a cursor follows sd-journal's own idiom: `sd_journal_seek_cursor` then
//! `sd_journal_next` lands on the cursor's entry if it still exists, otherwise on the oldest entry after
//! the place the cursor names (sd-journal compares by sequence number within the same journal, else by
//! boot and monotonic time, else by wall-clock time). `sd_journal_test_cursor` on that first entry tells
//! the two apart: the cursor's own entry was handed on before and is skipped; any other entry is the
//! first one after a gap (the cursor's file was vacuumed or rotated away while the agent was down), so
//! it is kept, and the loss is logged and counted as `source_lost{reason="vanished_cursor"}`.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use log::warn;
use systemd::journal::{Journal, OpenDirectoryOptions, OpenOptions};

use crate::checksum::checksum;
use crate::metrics::Metrics;
use crate::model::{Line, Mark, journal_cursor_field};
use crate::sources::wait::wait_readable;

/// The only entries read: those journald took from the kernel's log buffer.
const TRANSPORT_FIELD: &str = "_TRANSPORT";
const KERNEL_TRANSPORT: &str = "kernel";
const MESSAGE_FIELD: &str = "MESSAGE";

#[derive(Debug, thiserror::Error)]
pub(super) enum JournalError {
    #[error("cannot open {what}: {source}")]
    Open {
        what: String,
        source: systemd::Error,
    },
    #[error("reading the journal: {0}")]
    Read(systemd::Error),
    #[error("waiting for the journal: {0}")]
    Wait(io::Error),
    #[error("journal directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("journal directory {0} was replaced by another directory")]
    Replaced(PathBuf),
}

/// Where reading starts when the journal is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Resume {
    /// After the newest kernel entry present: only entries arriving later are read.
    Tail,
    /// From the oldest kernel entry (the journal held none when reading began at its tail).
    Head,
    /// After the entry with this cursor.
    After(String),
}

impl fmt::Display for Resume {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resume::Tail => write!(formatter, "from its end"),
            Resume::Head => write!(formatter, "from its first kernel entry"),
            Resume::After(cursor) => write!(formatter, "after the cursor {cursor}"),
        }
    }
}

/// A kernel entry: its message and time as a line, and its cursor.
pub(super) struct Entry {
    pub(super) line: Line,
    pub(super) cursor: String,
}

/// The journal directory as it was when opened: to notice that it disappears or is replaced (a new
/// mount), which sd-journal does not report.
struct WatchedDirectory {
    path: PathBuf,
    device: u64,
    inode: u64,
}

pub(super) struct Reader {
    journal: Journal,
    directory: Option<WatchedDirectory>,
    /// The cursor resumed after, until the first entry read has been compared with it.
    unverified: Option<String>,
    metrics: Arc<Metrics>,
}

impl Reader {
    /// Opens the journal in `directory` (with its machine-id subdirectories, as `journalctl -D`), or
    /// the local system journal, for kernel entries only.
    pub(super) fn open(
        directory: Option<&Path>,
        metrics: Arc<Metrics>,
    ) -> Result<Reader, JournalError> {
        let what = match directory {
            Some(path) => format!("the journal directory {}", path.display()),
            None => "the system journal".to_string(),
        };
        let open_error = |source| JournalError::Open {
            what: what.clone(),
            source,
        };
        // Identified before opening: a replacement in between is then noticed at the first wait.
        let watched = directory.map(WatchedDirectory::identify).transpose()?;
        let mut journal = match directory {
            Some(path) => {
                OpenDirectoryOptions::default().open_directory(path.as_os_str().as_encoded_bytes())
            }
            None => OpenOptions::default().system(true).local_only(true).open(),
        }
        .map_err(open_error)?;
        journal
            .match_add(TRANSPORT_FIELD, KERNEL_TRANSPORT)
            .map_err(open_error)?;
        // sd-journal sets up its inotify watches on the first request for its descriptor; asked now, a
        // file created from here on is seen.
        journal.fd().map_err(open_error)?;
        Ok(Reader {
            journal,
            directory: watched,
            unverified: None,
            metrics,
        })
    }

    /// Places the reader so that [`Reader::next`] returns the first entry to hand on; returns where a
    /// later opening should resume if no entry is handed on before it (the tail, once found, becomes
    /// the newest entry's cursor).
    pub(super) fn position(&mut self, resume: &Resume) -> Result<Resume, JournalError> {
        match resume {
            Resume::Head => {
                self.journal.seek_head().map_err(JournalError::Read)?;
                Ok(Resume::Head)
            }
            Resume::Tail => self.seek_tail(),
            Resume::After(cursor) => match self.journal.seek_cursor(cursor.as_str()) {
                Ok(()) => {
                    self.unverified = Some(cursor.clone());
                    Ok(resume.clone())
                }
                // Not a cursor at all (a damaged checkpoint): there is no place to resume from.
                Err(error) if error.kind() == io::ErrorKind::InvalidInput => {
                    self.lost_cursor(cursor, "is not a valid cursor; reading from the end");
                    self.seek_tail()
                }
                Err(error) => Err(JournalError::Read(error)),
            },
        }
    }

    fn seek_tail(&mut self) -> Result<Resume, JournalError> {
        self.journal.seek_tail().map_err(JournalError::Read)?;
        // Stepping back onto the newest entry pins the place: `next` then returns what follows it.
        if self.journal.previous().map_err(JournalError::Read)? == 0 {
            // No kernel entry at all yet: every one that comes is new.
            self.journal.seek_head().map_err(JournalError::Read)?;
            return Ok(Resume::Head);
        }
        let cursor = self.journal.cursor().map_err(JournalError::Read)?;
        Ok(Resume::After(cursor))
    }

    /// The next kernel entry, or `None` when there is none yet.
    pub(super) fn next(&mut self) -> Result<Option<Entry>, JournalError> {
        loop {
            if self.journal.next().map_err(JournalError::Read)? == 0 {
                return Ok(None);
            }
            if let Some(cursor) = self.unverified.take() {
                if self
                    .journal
                    .test_cursor(cursor.as_str())
                    .map_err(JournalError::Read)?
                {
                    // The entry handed on last time: skip it.
                    continue;
                }
                self.lost_cursor(
                    &cursor,
                    "is no longer in the journal (rotated or vacuumed away); continuing from the oldest \
                     entry after it",
                );
            }
            return self.entry().map(Some);
        }
    }

    fn entry(&mut self) -> Result<Entry, JournalError> {
        let usec = self.journal.timestamp_usec().map_err(JournalError::Read)?;
        let cursor = self.journal.cursor().map_err(JournalError::Read)?;
        // Kernel entries always carry a message; one without is still an entry, with empty text, so
        // that its position is passed on like any other.
        let text = match self
            .journal
            .get_data(MESSAGE_FIELD)
            .map_err(JournalError::Read)?
        {
            Some(field) => String::from_utf8_lossy(field.value().unwrap_or_default()).into_owned(),
            None => String::new(),
        };
        // The entry's sequence number (the cursor's `i`), in the journal's sequence-number space
        // (its `s`): a journal file set renumbered from 1 is another space.
        let mark = Mark {
            content: checksum(journal_cursor_field(&cursor, "s").unwrap_or("").as_bytes()),
            offset: journal_cursor_field(&cursor, "i")
                .and_then(|number| u64::from_str_radix(number, 16).ok())
                .unwrap_or(0),
        };
        Ok(Entry {
            line: Line {
                text,
                time: Some(time_from_usec(usec)),
                mark,
            },
            cursor,
        })
    }

    /// Blocks until the journal changes, `wake` (the stop's wake pipe) is readable or `timeout`
    /// passes, then checks that the directory is still the one opened.
    pub(super) fn wait(
        &mut self,
        wake: Option<RawFd>,
        timeout: Duration,
    ) -> Result<(), JournalError> {
        // sd_journal_wait cannot also wait for the stop: poll its inotify descriptor with the
        // wake pipe, then let it process what changed.
        let journal_fd = self.journal.fd().map_err(JournalError::Read)?;
        let mut fds = vec![journal_fd];
        fds.extend(wake);
        wait_readable(&fds, Some(timeout)).map_err(JournalError::Wait)?;
        self.journal.process().map_err(JournalError::Read)?;
        match &self.directory {
            Some(watched) => watched.check(),
            None => Ok(()),
        }
    }

    fn lost_cursor(&self, cursor: &str, what: &str) {
        warn!("the checkpointed journal cursor {cursor} {what}");
        self.metrics
            .source_lost
            .with_label_values(&["vanished_cursor"])
            .inc();
    }
}

impl WatchedDirectory {
    fn identify(path: &Path) -> Result<WatchedDirectory, JournalError> {
        let metadata = std::fs::metadata(path).map_err(|source| JournalError::Directory {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(WatchedDirectory {
            path: path.to_path_buf(),
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    fn check(&self) -> Result<(), JournalError> {
        let now = WatchedDirectory::identify(&self.path)?;
        if (now.device, now.inode) != (self.device, self.inode) {
            return Err(JournalError::Replaced(self.path.clone()));
        }
        Ok(())
    }
}

/// A journal realtime timestamp (microseconds since the epoch) as a time.
fn time_from_usec(usec: u64) -> DateTime<Utc> {
    i64::try_from(usec)
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        // Beyond chrono's range (year 262,000): not a time a journal writes; the read time stands in.
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_microseconds_become_utc_time() {
        assert_eq!(
            time_from_usec(1_700_000_000_123_456)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    fn vanished(metrics: &Metrics) -> u64 {
        metrics
            .source_lost
            .with_label_values(&["vanished_cursor"])
            .get()
    }

    #[test]
    fn an_empty_journal_is_read_from_its_head_so_every_entry_that_comes_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = Reader::open(Some(dir.path()), Arc::new(Metrics::new())).unwrap();
        assert_eq!(reader.position(&Resume::Tail).unwrap(), Resume::Head);
        assert!(reader.next().unwrap().is_none());
        reader.wait(None, Duration::from_millis(1)).unwrap();
    }

    #[test]
    fn a_checkpoint_that_is_no_cursor_is_counted_as_lost_and_reading_starts_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let mut reader = Reader::open(Some(dir.path()), metrics.clone()).unwrap();
        let resume = reader
            .position(&Resume::After("garbage".to_string()))
            .unwrap();
        assert_eq!(resume, Resume::Head);
        assert_eq!(vanished(&metrics), 1);
    }

    #[test]
    fn a_missing_directory_cannot_be_opened_and_a_replaced_one_is_noticed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("journal");
        let error = Reader::open(Some(&dir), Arc::new(Metrics::new()))
            .err()
            .expect("no directory, no journal");
        assert!(
            matches!(&error, JournalError::Directory { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{error}"
        );

        std::fs::create_dir(&dir).unwrap();
        let mut reader = Reader::open(Some(&dir), Arc::new(Metrics::new())).unwrap();
        reader.position(&Resume::Tail).unwrap();
        // Another directory under the same path (a new mount, or removed and created again); the
        // first one is kept so that its inode cannot be reused.
        std::fs::rename(&dir, root.path().join("old")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let error = reader
            .wait(None, Duration::from_millis(1))
            .expect_err("replaced");
        assert!(matches!(error, JournalError::Replaced(_)), "{error}");
    }

    #[test]
    fn resume_says_where_reading_starts() {
        assert_eq!(Resume::Tail.to_string(), "from its end");
        assert_eq!(
            Resume::After("s=1;i=2".to_string()).to_string(),
            "after the cursor s=1;i=2"
        );
    }
}
