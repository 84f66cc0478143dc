//! Rotated files that came between: when the path names another file, the one we finished may not be
//! the one just before it. Two rotations within one poll interval, or while the agent was stopped,
//! leave a file that was at the path for a while and never opened by us, now under a rotated name
//! (`kern.log.1`, `kern.log-20261202`). It is found in the log's directory and read before the
//! path's file.
//!
//! Which files came between is told by when they were last written (modification time): one writer
//! writes one content at a time, so a content that came after the one we finished was written after
//! any time we saw that one written. Rename keeps the time, and a copytruncate copy holds its
//! original's content, so this holds for every rotated name; birth times do not (a file
//! copytruncate started over was born long before its new content). A file written after the time
//! we last saw ours written, that is neither ours nor the path's file nor one we read already, came
//! between; they are read in the order they were written. A compressed one (`.gz`, `.xz`, ...)
//! cannot be read: it is counted and skipped.
//!
//! A copy made by copytruncate holds lines we read from the original: its first bytes are those of
//! a file we read, and files whose fingerprint we have seen are never read again as a file that
//! came between. It also holds the lines written after our last read of the original and before the
//! truncation: [`copy_of`] finds it, and its rest is read from our offset before the new content.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use log::info;

use super::FollowedFile;
use crate::model::FileIdentity;
use crate::sources::{directory, fingerprint};

/// Identities of files read (finished) by this process, remembered to never read them again.
const REMEMBERED_FILES: usize = 64;
/// File name endings of compressed logs.
const COMPRESSED: [&str; 7] = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z", ".lzma"];

/// The files this process read to their end (and the first bytes of each, to know its copies), and
/// the compressed files already counted as skipped.
#[derive(Default)]
pub(super) struct ReadFiles {
    files: VecDeque<FileIdentity>,
    compressed: HashSet<(u64, u64)>,
}

impl ReadFiles {
    pub(super) fn add(&mut self, identity: FileIdentity) {
        if self.files.len() == REMEMBERED_FILES {
            self.files.pop_front();
        }
        self.files.push_back(identity);
    }

    /// Whether a compressed file is seen for the first time (to be counted once).
    fn first_sight_of_compressed(&mut self, metadata: &Metadata) -> bool {
        if self.compressed.len() >= REMEMBERED_FILES * 16 {
            self.compressed.clear();
        }
        self.compressed.insert((metadata.dev(), metadata.ino()))
    }

    /// Whether a file whose first bytes are `head` was read (it, or the file it is a copy of). By the
    /// first bytes alone: the inode of a file read and deleted is given to the next file created,
    /// which a rotation that removes its oldest file and creates a new one does at once.
    fn contains(&self, head: &[u8]) -> bool {
        self.files.iter().any(|read| {
            read.fingerprint.len > 0 && fingerprint::head_matches(head, &read.fingerprint)
        })
    }
}

/// What a look in the directory found.
#[derive(Default)]
pub(super) struct Between {
    /// The oldest file that came between, to read next.
    pub(super) next: Option<(PathBuf, File)>,
    /// Compressed files that came between, seen for the first time: skipped (a compressed copy of a
    /// file we read is new too, so this is no count of lost lines).
    pub(super) compressed: Vec<PathBuf>,
}

/// The files in `path`'s directory written since we last saw `finished` written while it held the
/// content we read, other than it (or a copy of it) and the file now at `path`, that this process
/// has not read; the one written first is `next`. With `copies_only`, only files created since
/// then (copies made of it; a file renamed away was created before).
pub(super) fn between(
    path: &Path,
    finished: &FollowedFile,
    read: &mut ReadFiles,
    copies_only: bool,
) -> std::io::Result<Between> {
    let mut found = Between::default();
    let finished_identity = finished.identity;
    let written = finished.written;
    // The file at the path as the same listing shows it: one stat'ed before the listing may have
    // been rotated away by the time the listing settles (the rotations it waited for), and would be
    // passed over as "the path's file" while it now is a file that came between.
    let Snapshot { current, rotated } = snapshot(path)?;
    // (last written, born, inode, path): the order to read them in.
    let mut candidates: Vec<(Duration, Option<SystemTime>, u64, PathBuf)> = Vec::new();
    for (entry_path, entry_name, metadata) in rotated {
        let is_current = current.as_ref().is_some_and(|current| {
            current.dev() == metadata.dev() && current.ino() == metadata.ino()
        });
        if is_current || fingerprint::same_inode(&metadata, &finished_identity) {
            continue;
        }
        // Last written before we saw ours written: an older rotation (or a copy of an older
        // content), read before. The same time is not "before": file times move in clock ticks
        // (a few ms), and a rotation right after our read can share its tick. A file of an older
        // content in that tick is known by its first bytes if this process read it; after a
        // restart it is read again, and its drops are replays that Events do not count twice.
        let Some(modified) = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.duration_since(std::time::UNIX_EPOCH).ok())
        else {
            continue;
        };
        if modified.as_nanos() < u128::from(written) {
            continue;
        }
        if COMPRESSED.iter().any(|ending| entry_name.ends_with(ending)) {
            if read.first_sight_of_compressed(&metadata) {
                found.compressed.push(entry_path);
            }
            continue;
        }
        // Within one tick, the one created first (birth time where kept), then by inode.
        let born = metadata.created().ok();
        let born_since = born
            .and_then(|born| born.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|born| born.as_nanos() >= u128::from(written));
        if copies_only && !born_since {
            continue;
        }
        candidates.push((modified, born, metadata.ino(), entry_path));
    }
    candidates.sort();
    for (_, _, _, candidate) in candidates {
        let Ok(file) = File::open(&candidate) else {
            continue;
        };
        let head = fingerprint::read_head(&file, None)?;
        // Empty: nothing to read yet. Our first bytes (when we know any): a copy of ours.
        let ours = finished_identity.fingerprint.len > 0
            && fingerprint::head_matches(&head, &finished_identity.fingerprint);
        if head.is_empty() || read.contains(&head) || ours {
            continue;
        }
        found.next = Some((candidate, file));
        break;
    }
    if !found.compressed.is_empty() {
        info!(
            "skipped compressed rotated files (their lines are read before compression, unless a \
             rotation compressed a file that came between): {:?}",
            found.compressed
        );
    }
    Ok(found)
}

/// copytruncate's copy of the content `identity` describes (its first bytes), at least `min_len`
/// long: the lines written after our last read and before the truncation are there, past our offset.
/// `None` when there is none (logrotate without copytruncate, or a copy already compressed).
pub(super) fn copy_of(
    path: &Path,
    identity: &FileIdentity,
    min_len: u64,
) -> std::io::Result<Option<(PathBuf, File)>> {
    for (entry_path, entry_name, metadata) in snapshot(path)?.rotated {
        if COMPRESSED.iter().any(|ending| entry_name.ends_with(ending))
            || metadata.len() < min_len
            || fingerprint::same_inode(&metadata, identity)
        {
            continue;
        }
        let Ok(file) = File::open(&entry_path) else {
            continue;
        };
        let head = fingerprint::read_head(&file, Some(&identity.fingerprint))?;
        if fingerprint::head_matches(&head, &identity.fingerprint) {
            return Ok(Some((entry_path, file)));
        }
    }
    Ok(None)
}

/// Whether `entry` is a rotated name of the log named `name`: the name with something after it
/// (logrotate: `kern.log.1`, `kern.log-20261202.gz`), or lumberjack's `STEM-TIME.EXT[.gz]` (Antrea's
/// `np-2026-12-02T10-00-00.000.log` for `np.log`, the AWS network policy agent's likewise).
fn is_rotated_name(name: &str, entry: &str) -> bool {
    if entry != name && entry.starts_with(name) {
        return true;
    }
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return false;
    };
    let Some(rest) = entry
        .strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix('-'))
    else {
        return false;
    };
    let suffix = format!(".{extension}");
    let time = match rest.find(&suffix) {
        Some(end)
            if rest[end + suffix.len()..].is_empty()
                || rest[end + suffix.len()..].starts_with('.') =>
        {
            &rest[..end]
        }
        _ => return false,
    };
    // 2006-01-02T15-04-05.000
    time.len() == 23
        && time
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'-' | b'T' | b'.'))
}

/// The log's directory in one listing: the file at the log's path, and the regular files under a
/// rotated name of it (the log's name in front: `kern.log.1`, `kern.log-20261202.gz`) with their
/// names and metadata.
struct Snapshot {
    current: Option<Metadata>,
    rotated: Vec<(PathBuf, String, Metadata)>,
}

/// The listing is one the next listing agreed with, so that a rotation renaming files meanwhile
/// does not hide one (`sources/directory.rs`). Entries that vanish or cannot be read are passed
/// over; the metadata does not follow symlinks, so a link is not a rotated file.
fn snapshot(path: &Path) -> std::io::Result<Snapshot> {
    let mut snapshot = Snapshot {
        current: None,
        rotated: Vec::new(),
    };
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(snapshot);
    };
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for (entry_path, entry_name, metadata) in directory::stable_entries(directory)? {
        if entry_name == name {
            // A log that is a link is the file it points to.
            snapshot.current = if metadata.file_type().is_symlink() {
                std::fs::metadata(path).ok()
            } else {
                Some(metadata)
            };
        } else if metadata.is_file() && is_rotated_name(name, &entry_name) {
            snapshot.rotated.push((entry_path, entry_name, metadata));
        }
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::is_rotated_name;

    #[test]
    fn rotated_names_of_logrotate_and_lumberjack() {
        for (name, entry) in [
            ("kern.log", "kern.log.1"),
            ("kern.log", "kern.log.2.gz"),
            ("kern.log", "kern.log-20261202"),
            ("np.log", "np-2026-12-02T10-00-00.000.log"),
            ("np.log", "np-2026-12-02T10-00-00.000.log.gz"),
            (
                "network-policy-agent.log",
                "network-policy-agent-2026-12-02T10-00-00.000.log.gz",
            ),
        ] {
            assert!(is_rotated_name(name, entry), "{entry} of {name}");
        }
        for (name, entry) in [
            ("kern.log", "kern.log"),
            ("kern.log", "syslog"),
            ("np.log", "np-other.log"),
            ("np.log", "np-2026-12-02T10-00-00.000.txt"),
            ("np.log", "np-2026-12-02T10-00-00.000.logx"),
            ("np.log", "npx-2026-12-02T10-00-00.000.log"),
        ] {
            assert!(!is_rotated_name(name, entry), "{entry} of {name}");
        }
    }
}
