//! A directory's entries, listed until two listings agree. A `readdir` that runs while files are
//! renamed in the directory (logrotate shifting `kern.log.1` to `kern.log.2`, and so on) may miss a
//! file whose new name lands behind the position the listing has reached; the file source looks
//! for rotated files exactly while rotations happen, and a missed file would be a file of lines
//! never read.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to keep listing while listings disagree (a logrotate shifting thousands of `.k` names
/// takes tens of milliseconds), and the pause between two listings that disagreed.
const SETTLE_FOR_AT_MOST: Duration = Duration::from_secs(2);
const SETTLE_PAUSE: Duration = Duration::from_millis(5);

/// One entry: its path, its name, and its metadata (not following symlinks).
pub type Entry = (PathBuf, String, Metadata);

/// The entries of `directory` whose names are UTF-8 and whose metadata can be read, from a listing
/// that the next one agrees with (same names, same inodes).
pub fn stable_entries(directory: &Path) -> io::Result<Vec<Entry>> {
    let started = Instant::now();
    let mut listed = entries(directory)?;
    loop {
        let again = entries(directory)?;
        if same_files(&listed, &again) {
            return Ok(again);
        }
        listed = again;
        // Renames that never stop: the last listing, which may lack a file being renamed.
        if started.elapsed() > SETTLE_FOR_AT_MOST {
            log::warn!(
                "{} kept changing for {SETTLE_FOR_AT_MOST:?}: going on with a listing that may \
                 miss a file being renamed",
                directory.display()
            );
            return Ok(listed);
        }
        std::thread::sleep(SETTLE_PAUSE);
    }
}

fn entries(directory: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(directory)?.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // `DirEntry::metadata` does not follow symlinks; an entry gone meanwhile is passed over.
        if let Ok(metadata) = entry.metadata() {
            entries.push((entry.path(), name, metadata));
        }
    }
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(entries)
}

fn same_files(a: &[Entry], b: &[Entry]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.1 == b.1 && a.2.ino() == b.2.ino() && a.2.dev() == b.2.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_entry_with_its_metadata_in_name_order() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("b"), "2").unwrap();
        std::fs::write(directory.path().join("a"), "1").unwrap();
        std::fs::create_dir(directory.path().join("c")).unwrap();
        let names: Vec<(String, bool)> = stable_entries(directory.path())
            .unwrap()
            .into_iter()
            .map(|(_, name, metadata)| (name, metadata.is_file()))
            .collect();
        assert_eq!(
            names,
            [
                ("a".to_string(), true),
                ("b".to_string(), true),
                ("c".to_string(), false)
            ]
        );
    }
}
