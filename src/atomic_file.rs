//! Replacing a small state file atomically: after a crash or power loss it holds the old content or
//! the new one, never a mix (the checkpoint, the Event storm bound's full groups).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `content` to `<path>.tmp`, flushes it to disk, renames it over `path` and flushes the
/// directory too (the rename is durable only once the directory entry is). Leaves no temporary file
/// behind on failure.
pub fn replace(path: &Path, content: &[u8]) -> io::Result<()> {
    let temporary = temporary_path(path);
    let result = write_and_rename(path, &temporary, content);
    if result.is_err() {
        // It may also not exist, which is fine.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_and_rename(path: &Path, temporary: &Path, content: &[u8]) -> io::Result<()> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let mut file = File::create(temporary)?;
    file.write_all(content)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temporary, path)?;
    File::open(directory)?.sync_all()
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.to_path_buf().into_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_holds_the_new_content_and_no_temporary_file_stays() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.json");
        replace(&path, b"old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.json");
        replace(&path, b"old").unwrap();
        // The temporary name is taken by a directory: creating the file fails.
        std::fs::create_dir(directory.path().join("state.json.tmp")).unwrap();
        assert!(replace(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
