//! What wakes the file source between polls: the kernel's change notices (inotify) instead of a
//! timer, so that an idle agent costs nothing and a new line is read at once.
//!
//! Watched: the log's directory (files created, renamed or removed: a rotation, the log appearing),
//! the file being read (written, truncated, renamed, removed), and the file at the log's path when
//! that is another one (a new log that is not read until it has data, while the old one may still
//! be written). A poll still happens after `FILE_POLL_INTERVAL_MS` without a notice, as a safety
//! net (a file system that sends none); without inotify at all (no instances left), that interval
//! is the poll, as before.

use std::fs::File;
use std::io::{self, PipeReader};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use inotify::{Inotify, WatchDescriptor, WatchMask};
use log::warn;

use crate::sources::wait::wait_readable;
use crate::stop::Stop;

/// A watched file: its inode, and the watch.
struct Watched {
    inode: u64,
    watch: WatchDescriptor,
}

pub(super) struct Wake {
    path: PathBuf,
    notices: Option<Notices>,
}

struct Notices {
    inotify: Inotify,
    stop_pipe: PipeReader,
    followed: Option<Watched>,
    at_path: Option<Watched>,
    buffer: Vec<u8>,
}

/// How long after a change notice the source looks: changes within it are read together.
const GATHER: Duration = Duration::from_millis(25);

const FILE_CHANGES: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::DELETE_SELF);

impl Wake {
    /// Change notices for the log at `path` (when `wanted`), or, when inotify cannot be had, plain
    /// sleeps.
    pub(super) fn new(path: &Path, stop: &Stop, wanted: bool) -> Wake {
        let notices = wanted
            .then(|| {
                Notices::new(path, stop)
                    .inspect_err(|error| {
                        warn!(
                            "no change notices (inotify) for {}: {error}; polling it instead",
                            path.display()
                        );
                    })
                    .ok()
            })
            .flatten();
        Wake {
            path: path.to_path_buf(),
            notices,
        }
    }

    /// Whether change notices are in use.
    pub(super) fn notified(&self) -> bool {
        self.notices.is_some()
    }

    /// Waits for a change to the followed file (`followed`, when one is open), the file at the
    /// path, or the directory, for at most `timeout`; true if the stop came.
    pub(super) fn wait(&mut self, followed: Option<&File>, timeout: Duration, stop: &Stop) -> bool {
        let Some(notices) = &mut self.notices else {
            return stop.sleep(timeout);
        };
        // A watch that cannot be placed (the file went away meanwhile) is placed on the next wait;
        // the timeout covers the gap.
        let _ = notices.watch_files(&self.path, followed);
        let fds = [
            notices.inotify.as_fd().as_raw_fd(),
            notices.stop_pipe.as_raw_fd(),
        ];
        match wait_readable(&fds, Some(timeout)) {
            Ok(Some(_)) => {
                // A writer rarely writes one line alone: what comes within a moment is read in one
                // look and passed on as one batch (each look wakes every stage once).
                if stop.sleep(GATHER) {
                    return true;
                }
                notices.drain();
            }
            Ok(None) => {}
            Err(error) => {
                warn!("waiting for changes to {}: {error}", self.path.display());
                return stop.sleep(timeout);
            }
        }
        stop.is_stopped()
    }
}

impl Notices {
    fn new(path: &Path, stop: &Stop) -> io::Result<Notices> {
        let inotify = Inotify::init()?;
        let directory = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        inotify.watches().add(
            directory,
            WatchMask::CREATE
                | WatchMask::MOVED_FROM
                | WatchMask::MOVED_TO
                | WatchMask::DELETE
                | WatchMask::ATTRIB,
        )?;
        Ok(Notices {
            inotify,
            stop_pipe: stop.wake_pipe()?,
            followed: None,
            at_path: None,
            buffer: vec![0; 4096],
        })
    }

    /// Watches the followed file and the file at the path (when they differ), and no other.
    fn watch_files(&mut self, path: &Path, followed: Option<&File>) -> io::Result<()> {
        let followed_inode = match followed {
            Some(file) => Some(file.metadata()?.ino()),
            None => None,
        };
        if self.followed.as_ref().map(|watched| watched.inode) != followed_inode {
            self.unwatch_followed();
            if let (Some(file), Some(inode)) = (followed, followed_inode) {
                // The open file itself, whatever its name now: through its /proc/self/fd link.
                let link = format!("/proc/self/fd/{}", file.as_raw_fd());
                let watch = self.inotify.watches().add(link, FILE_CHANGES)?;
                self.followed = Some(Watched { inode, watch });
            }
        }
        let at_path = std::fs::metadata(path).ok().map(|metadata| metadata.ino());
        let wanted_at_path = at_path.filter(|inode| Some(*inode) != followed_inode);
        if self.at_path.as_ref().map(|watched| watched.inode) != wanted_at_path {
            if let Some(old) = self.at_path.take() {
                self.remove_unless_followed(old);
            }
            if let Some(inode) = wanted_at_path {
                let watch = self.inotify.watches().add(path, FILE_CHANGES)?;
                self.at_path = Some(Watched { inode, watch });
            }
        }
        Ok(())
    }

    fn unwatch_followed(&mut self) {
        if let Some(old) = self.followed.take() {
            let shared = self
                .at_path
                .as_ref()
                .is_some_and(|at_path| at_path.watch == old.watch);
            if !shared {
                // Gone already when the file was deleted (the kernel removed the watch).
                let _ = self.inotify.watches().remove(old.watch);
            }
        }
    }

    fn remove_unless_followed(&mut self, old: Watched) {
        let shared = self
            .followed
            .as_ref()
            .is_some_and(|followed| followed.watch == old.watch);
        if !shared {
            let _ = self.inotify.watches().remove(old.watch);
        }
    }

    /// Reads the queued notices: they only say "look again", which the next poll does.
    fn drain(&mut self) {
        while let Ok(events) = self.inotify.read_events(&mut self.buffer) {
            if events.count() == 0 {
                break;
            }
        }
    }
}
