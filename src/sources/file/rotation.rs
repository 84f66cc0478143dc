//! What the file source does when the path names another file (a rotation: the files that came
//! between first, then the new one) or when the followed file was truncated (copytruncate: the rest
//! in the copy first, and any content copied and truncated away since). Which files came between is
//! `rotated.rs`'s part.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use log::info;

use super::{FileSource, Flow, FollowedFile, modified, open_if_present, rotated};
use crate::sources::fingerprint;

impl FileSource {
    /// The path names `current`, another file than ours: ours is finished once the writer is done
    /// with it, then the files that came between are read, then `current`.
    pub(super) fn move_on(
        &mut self,
        followed: &mut FollowedFile,
        current: &Metadata,
    ) -> io::Result<Flow> {
        let path = self.settings.path.clone();
        // An empty new file is not switched to yet: until it has data the writer may still be
        // finishing ours (rsyslog writes the renamed file until logrotate's postrotate HUP). A file
        // that came between with data is another matter: it was written after ours, which is done.
        // It is looked for when the directory changed (a stat per poll, not a scan, while a quiet
        // log stays empty after its rotation).
        let next = if current.len() == 0 {
            if !self.directory_changed()? {
                return Ok(Flow::Wait);
            }
            None
        } else {
            let Some(next) = open_if_present(&path)? else {
                return Ok(Flow::Wait);
            };
            Some(FollowedFile::new(
                next,
                0,
                None,
                self.settings.max_line_bytes,
            )?)
        };
        // Lines may have been appended to ours since the read above: they come first.
        if !self.drain(followed)? {
            return Ok(Flow::Stopped);
        }
        let between = self.came_between(followed, false)?;
        if between.is_none() && next.is_none() {
            return Ok(Flow::Wait);
        }
        if !self.finish(followed) {
            return Ok(Flow::Stopped);
        }
        // A renamed file still has a name; a deleted one has none left.
        let kind = if followed.file.metadata()?.nlink() == 0 {
            "recreate"
        } else {
            "rename"
        };
        self.metrics.rotations.with_label_values(&[kind]).inc();
        self.read.add(followed.identity);
        *followed = match (between, next) {
            (Some(between), _) => self.follow_between(&format!("was rotated ({kind})"), between)?,
            (None, Some(next)) => {
                info!(
                    "{} was rotated ({kind}); reading the new file from its start",
                    path.display()
                );
                next
            }
            (None, None) => unreachable!("one of them, checked before finishing ours"),
        };
        self.directory_modified = None;
        Ok(Flow::Again)
    }

    /// For a file of which nothing was read: a file written since we saw it written, holding an
    /// earlier content of it (written, copied and truncated meanwhile), to read first. The next
    /// poll finds that the path names another file and comes back to it, from its start.
    pub(super) fn written_before(
        &mut self,
        unread: &FollowedFile,
    ) -> io::Result<Option<FollowedFile>> {
        // Copies only: a file renamed away that its writer still finished after ours was opened
        // is older, and was read (or is not ours to read: we started after it).
        match self.came_between(unread, true)? {
            Some(earlier) => Ok(Some(
                self.follow_between("was written and rotated before we read it", earlier)?,
            )),
            None => Ok(None),
        }
    }

    /// The file that came first after `finished` (see `rotated::between`), counting the compressed
    /// ones found, which cannot be read.
    fn came_between(
        &mut self,
        finished: &FollowedFile,
        copies_only: bool,
    ) -> io::Result<Option<(PathBuf, File)>> {
        let between = rotated::between(&self.settings.path, finished, &mut self.read, copies_only)?;
        self.metrics
            .rotated_files
            .with_label_values(&["compressed_skipped"])
            .inc_by(between.compressed.len() as u64);
        Ok(between.next)
    }

    /// A file that came between, followed from its start; says so (`what` happened to the log).
    fn follow_between(
        &mut self,
        what: &str,
        (between_path, file): (PathBuf, File),
    ) -> io::Result<FollowedFile> {
        let between = FollowedFile::new(file, 0, None, self.settings.max_line_bytes)?;
        // Names move on with every rotation: the inode and the time say which file it was.
        info!(
            "{} {what}; {} came between and is read first (inode {}, written {})",
            self.settings.path.display(),
            between_path.display(),
            between.identity.inode,
            between.written
        );
        self.metrics
            .rotated_files
            .with_label_values(&["read_between"])
            .inc();
        Ok(between)
    }

    /// Whether the log's directory changed (an entry created, renamed or removed) since the last
    /// call; true the first time.
    fn directory_changed(&mut self) -> io::Result<bool> {
        let directory = self
            .settings
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let modified = std::fs::metadata(directory)?.modified()?;
        let changed = self.directory_modified != Some(modified);
        self.directory_modified = Some(modified);
        Ok(changed)
    }

    /// After a truncation: reads the rest of copytruncate's copy first, if there is one; else a
    /// content written and truncated away since, from its copy; else starts the same file again from
    /// offset 0. False if stopped.
    pub(super) fn restart_truncated(&mut self, followed: &mut FollowedFile) -> io::Result<bool> {
        let path = self.settings.path.clone();
        if let Some((copy_path, copy)) =
            rotated::copy_of(&path, &followed.identity, followed.read_offset + 1)?
        {
            // The same content, so the same line marks; its partial last line goes on in the copy.
            // Once it is read, the path names another file (the truncated one): a rotation.
            info!(
                "{} was truncated; reading the rest of its copy {} first",
                path.display(),
                copy_path.display()
            );
            self.metrics
                .rotations
                .with_label_values(&["truncate"])
                .inc();
            followed.identity = fingerprint::identify(&copy)?;
            followed.file = copy;
            return Ok(true);
        }
        // Contents written and truncated away since we last saw ours (two copytruncates within one
        // poll interval) are in copies written since: they come before the file's new content.
        // The fallible steps first, so that an error leaves everything as it was for the retry.
        let between = self.came_between(followed, false)?;
        let identity = fingerprint::identify(&followed.file)?;
        let written = modified(&followed.file.metadata()?);
        if !self.finish(followed) {
            return Ok(false);
        }
        self.metrics
            .rotations
            .with_label_values(&["truncate"])
            .inc();
        // A copy copytruncate made holds these first bytes: never read again.
        self.read.add(followed.identity);
        if let Some(between) = between {
            *followed = self.follow_between("was truncated", between)?;
            return Ok(true);
        }
        info!(
            "{} was truncated; reading it again from the start",
            path.display()
        );
        followed.identity = identity;
        followed.read_offset = 0;
        // The truncated file's own time, not now: the content may have been written and rotated
        // away already, and what came after it was written after it.
        followed.written = written;
        followed.content = None;
        Ok(true)
    }
}
