//! Checkpoints: the last acknowledged source position, saved atomically in the state directory.
//!
//! A checkpoint is written to `<path>.tmp`, flushed to disk, renamed over the old one and the directory
//! flushed too, so that after a crash or power loss the file holds either the old position or the new
//! one, never a mix. Only acknowledged positions are saved (every line before them was handled), and
//! [`run_writer`] saves the newest one it has been given at most once per interval, because a position
//! arrives with every batch and a disk write per batch would be wasteful.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{debug, warn};

use crate::metrics::Metrics;
use crate::model::Position;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    pub fn new(state_directory: &Path, name: &str) -> CheckpointStore {
        CheckpointStore {
            path: state_directory.join(format!("{name}.checkpoint.json")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved position; `None` if nothing was saved yet.
    pub fn load(&self) -> Result<Option<Position>, CheckpointError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| CheckpointError::Corrupt {
                path: self.path.clone(),
                source,
            })
    }

    /// Replaces the saved position atomically (see the module documentation).
    pub fn save(&self, position: &Position) -> Result<(), CheckpointError> {
        // A path that is not UTF-8 cannot be written as JSON: an I/O error like any other.
        serde_json::to_vec(position)
            .map_err(io::Error::other)
            .and_then(|mut text| {
                text.push(b'\n');
                crate::atomic_file::replace(&self.path, &text)
            })
            .map_err(|source| CheckpointError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Thread body: saves the newest acknowledged position, at most once per `min_interval` but always
/// eventually (a trailing write), and once more when `acks` disconnects (clean shutdown).
///
/// Acknowledgements come in order, so the newest supersedes all older ones. A failed write is logged,
/// counted and retried at the next interval; it never ends the thread.
pub fn run_writer(
    store: CheckpointStore,
    acks: Receiver<Position>,
    min_interval: Duration,
    metrics: Arc<Metrics>,
) {
    let mut unsaved: Option<Position> = None;
    let mut last_write: Option<Instant> = None;
    loop {
        // With something unsaved, wait only until it may be written; otherwise wait for an ack.
        let received = match (&unsaved, last_write) {
            (Some(_), Some(written)) => acks.recv_deadline(written + min_interval),
            (Some(_), None) => Err(RecvTimeoutError::Timeout),
            (None, _) => acks.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(position) => {
                // Skip straight to the newest of those already queued.
                unsaved = Some(acks.try_iter().last().unwrap_or(position));
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(position) = unsaved.take() {
                    last_write = Some(Instant::now());
                    if !save(&store, &position, &metrics) {
                        unsaved = Some(position);
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(position) = unsaved.take() {
                    save(&store, &position, &metrics);
                }
                return;
            }
        }
    }
}

/// Saves, counting and logging the outcome; whether it worked.
fn save(store: &CheckpointStore, position: &Position, metrics: &Metrics) -> bool {
    match store.save(position) {
        Ok(()) => {
            metrics.checkpoint_writes.inc();
            debug!("saved checkpoint {}", store.path().display());
            true
        }
        Err(error) => {
            metrics.checkpoint_failures.inc();
            warn!("{error}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileIdentity, FilePosition, Fingerprint};

    fn position(offset: u64) -> Position {
        Position::File(FilePosition {
            path: PathBuf::from("/var/log/kern.log"),
            identity: FileIdentity {
                device: 2049,
                inode: 131,
                fingerprint: Fingerprint {
                    len: 1024,
                    checksum: 0xdead_beef,
                },
            },
            offset,
            written: 0,
        })
    }

    #[test]
    fn the_newest_of_a_burst_of_acks_is_written_promptly_then_the_rest_once() {
        let directory = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (acks, received) = crossbeam_channel::unbounded();
        let writer = {
            let (store, metrics) = (
                CheckpointStore::new(directory.path(), "file"),
                metrics.clone(),
            );
            std::thread::spawn(move || {
                run_writer(store, received, Duration::from_millis(200), metrics)
            })
        };
        acks.send(position(1)).unwrap();
        let store = CheckpointStore::new(directory.path(), "file");
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.load().unwrap() != Some(position(1)) {
            assert!(
                Instant::now() < deadline,
                "the first ack was not written promptly"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for offset in 2..=50 {
            acks.send(position(offset)).unwrap();
        }
        // The trailing write comes after the interval, without waiting for another ack.
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.load().unwrap() != Some(position(50)) {
            assert!(
                Instant::now() < deadline,
                "the trailing write did not happen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(acks);
        writer.join().unwrap();
        assert!(
            metrics.checkpoint_writes.get() <= 3,
            "{}",
            metrics.checkpoint_writes.get()
        );
        assert_eq!(metrics.checkpoint_failures.get(), 0);
    }

    #[test]
    fn a_failed_write_is_counted_not_fatal() {
        let directory = tempfile::tempdir().unwrap();
        // The state "directory" is a file: every write fails.
        let blocker = directory.path().join("state");
        std::fs::write(&blocker, b"").unwrap();
        let metrics = Arc::new(Metrics::new());
        let (acks, received) = crossbeam_channel::unbounded();
        acks.send(position(7)).unwrap();
        drop(acks);
        run_writer(
            CheckpointStore::new(&blocker, "file"),
            received,
            Duration::ZERO,
            metrics.clone(),
        );
        assert!(metrics.checkpoint_failures.get() >= 1);
        assert_eq!(metrics.checkpoint_writes.get(), 0);
    }
}
