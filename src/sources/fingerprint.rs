//! What makes a file the same file: its device and inode, plus a checksum of its first bytes.
//!
//! The inode alone is not enough: a deleted file's inode number is handed to the next file created,
//! which is exactly what happens when a log is deleted and recreated. The first bytes of a log (its
//! first lines, with their timestamps) tell two such files apart. The checksum is persisted in
//! checkpoints, so it must never change between releases (see `crate::checksum`).

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::model::{FileIdentity, Fingerprint};

/// How many bytes from the start of a file the fingerprint covers (fewer while the file is shorter).
pub const FINGERPRINT_BYTES: usize = 1024;

pub use crate::checksum::checksum;

/// The fingerprint of a file whose first bytes are `head` (at most [`FINGERPRINT_BYTES`] are used).
pub fn fingerprint_of(head: &[u8]) -> Fingerprint {
    let covered = &head[..head.len().min(FINGERPRINT_BYTES)];
    Fingerprint {
        len: covered.len() as u32,
        checksum: checksum(covered),
    }
}

/// Whether a file whose first bytes are `head` starts with the bytes `fingerprint` was taken of.
/// A file shorter than the fingerprint is another file (or the same one, truncated).
pub fn head_matches(head: &[u8], fingerprint: &Fingerprint) -> bool {
    let len = fingerprint.len as usize;
    head.len() >= len && checksum(&head[..len]) == fingerprint.checksum
}

/// Reads the first bytes of `file`: enough for a new fingerprint and to check `known`, if given.
pub fn read_head(file: &File, known: Option<&Fingerprint>) -> io::Result<Vec<u8>> {
    let wanted = known
        .map_or(0, |known| known.len as usize)
        .max(FINGERPRINT_BYTES);
    let mut head = vec![0; wanted];
    let mut filled = 0;
    while filled < wanted {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// The identity of an open file, from its own metadata (not the path's, which may have moved on).
pub fn identify(file: &File) -> io::Result<FileIdentity> {
    let metadata = file.metadata()?;
    let head = read_head(file, None)?;
    Ok(FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
        fingerprint: fingerprint_of(&head),
    })
}

/// Whether `metadata` is of the same device and inode as `identity` (the fingerprint is not checked).
pub fn same_inode(metadata: &Metadata, identity: &FileIdentity) -> bool {
    metadata.dev() == identity.device && metadata.ino() == identity.inode
}

/// Whether the open `file` is the file `identity` describes: same inode, same first bytes.
pub fn is_same_file(file: &File, identity: &FileIdentity) -> io::Result<bool> {
    if !same_inode(&file.metadata()?, identity) {
        return Ok(false);
    }
    Ok(head_matches(
        &read_head(file, Some(&identity.fingerprint))?,
        &identity.fingerprint,
    ))
}

/// Looks in `directory` for the file `identity` describes, under any name (a log rotated while we
/// were not running is usually `NAME.1`). Entries that vanish or cannot be opened are passed over.
pub fn find_in_directory(
    directory: &Path,
    identity: &FileIdentity,
) -> io::Result<Option<(PathBuf, File)>> {
    // Listed until stable: a rotation renaming files meanwhile must not hide ours.
    for (path, _, metadata) in super::directory::stable_entries(directory)? {
        // The metadata does not follow symlinks: a link to the file is not the file.
        if !metadata.is_file() || !same_inode(&metadata, identity) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if is_same_file(&file, identity)? {
            return Ok(Some((path, file)));
        }
    }
    Ok(None)
}

/// Extends `fingerprint` with bytes read at `at`, when they continue right where it ends and it does
/// not yet cover [`FINGERPRINT_BYTES`]: a position then names the content it was read from, also
/// when the file was empty (or short) when it was first identified.
pub fn extend(fingerprint: &mut Fingerprint, at: u64, bytes: &[u8]) {
    let len = u64::from(fingerprint.len);
    if at != len || fingerprint.len as usize >= FINGERPRINT_BYTES {
        return;
    }
    let more = &bytes[..bytes
        .len()
        .min(FINGERPRINT_BYTES - fingerprint.len as usize)];
    fingerprint.checksum = crate::checksum::checksum_continued(fingerprint.checksum, more);
    fingerprint.len += more.len() as u32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn checksum_is_fnv1a_64() {
        // Published FNV-1a test vectors: the value must never change, checkpoints persist it.
        assert_eq!(checksum(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(checksum(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_short_file_fingerprint_still_matches_after_the_file_grows() {
        let short = fingerprint_of(b"first line\n");
        assert_eq!(short.len, 11);
        assert!(head_matches(b"first line\nsecond line\n", &short));
        assert!(!head_matches(b"other line\nsecond line\n", &short));
        assert!(
            !head_matches(b"first", &short),
            "a shorter file is another file"
        );
    }

    #[test]
    fn fingerprint_covers_at_most_the_first_bytes() {
        let long = vec![b'x'; FINGERPRINT_BYTES * 3];
        assert_eq!(
            fingerprint_of(&long),
            fingerprint_of(&long[..FINGERPRINT_BYTES])
        );
        assert_eq!(fingerprint_of(&long).len as usize, FINGERPRINT_BYTES);
    }

    #[test]
    fn a_file_is_found_again_under_another_name_by_its_identity() {
        let directory = tempfile::tempdir().unwrap();
        let original = directory.path().join("kern.log");
        let mut file = File::create(&original).unwrap();
        file.write_all(b"line one\n").unwrap();
        let identity = identify(&File::open(&original).unwrap()).unwrap();
        std::fs::rename(&original, directory.path().join("kern.log.1")).unwrap();
        File::create(&original)
            .unwrap()
            .write_all(b"line two\n")
            .unwrap();

        let (found, file) = find_in_directory(directory.path(), &identity)
            .unwrap()
            .unwrap();
        assert_eq!(found, directory.path().join("kern.log.1"));
        assert!(is_same_file(&file, &identity).unwrap());
        assert!(!is_same_file(&File::open(&original).unwrap(), &identity).unwrap());
    }

    #[test]
    fn a_fingerprint_taken_of_an_empty_file_grows_with_what_is_read_from_its_start() {
        let mut fingerprint = fingerprint_of(b"");
        extend(&mut fingerprint, 0, b"first line\n");
        assert_eq!(fingerprint, fingerprint_of(b"first line\n"));
        // Bytes that do not continue where it ends leave it as it is.
        extend(&mut fingerprint, 50, b"later");
        assert_eq!(fingerprint, fingerprint_of(b"first line\n"));
        extend(&mut fingerprint, 11, &[b'x'; 2000]);
        let mut whole = b"first line\n".to_vec();
        whole.extend_from_slice(&[b'x'; 2000]);
        assert_eq!(fingerprint, fingerprint_of(&whole));
    }
}
