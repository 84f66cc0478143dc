//! Where the file source starts: at a checkpoint (finding the checkpointed file even if it was rotated
//! while the agent was stopped), at the end of the existing file, or at the start of a file that
//! appears later.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use log::{info, warn};

use super::{FileSource, FileSourceSettings, FollowedFile, READ_CHUNK_BYTES, open_if_present};
use crate::model::FilePosition;
use crate::sources::fingerprint;

/// How to position in the first file the source opens.
pub(super) enum Start {
    /// At a checkpointed position (its path is the followed path).
    Checkpoint(FilePosition),
    /// At the end of the file that exists now: only new lines are read.
    End,
    /// At offset 0 of the file, once there is one.
    Beginning,
}

pub(super) fn first_start(settings: &FileSourceSettings) -> Start {
    let without_checkpoint = if settings.from_beginning {
        Start::Beginning
    } else {
        Start::End
    };
    match &settings.start {
        Some(position) if position.path == settings.path => Start::Checkpoint(position.clone()),
        Some(position) => {
            info!(
                "not using the checkpoint for {}: the followed file is {}",
                position.path.display(),
                settings.path.display()
            );
            without_checkpoint
        }
        None => without_checkpoint,
    }
}

impl FileSource {
    /// Opens the first file, positioned as `start` says; `None` while there is no file yet.
    pub(super) fn start(&mut self, start: &mut Start) -> io::Result<Option<FollowedFile>> {
        let file = open_if_present(&self.settings.path)?;
        let max_line_bytes = self.settings.max_line_bytes;
        let followed = match (&*start, file) {
            (Start::Checkpoint(position), file) => {
                let position = position.clone();
                return self.resume(&position, file, start);
            }
            (Start::End, Some(file)) => open_at_end(file, max_line_bytes)?,
            (Start::Beginning, Some(file)) => FollowedFile::new(file, 0, None, max_line_bytes)?,
            (Start::End | Start::Beginning, None) => {
                // A file that appears after we started holds only new lines: read all of it.
                *start = Start::Beginning;
                self.announce_waiting();
                return Ok(None);
            }
        };
        self.announced_missing = false;
        Ok(Some(followed))
    }

    /// Resumes at a checkpointed position. The file at the path is the checkpointed one unless it was
    /// rotated while we were stopped; then the checkpointed file is looked for in the same directory
    /// under any name and followed from the checkpoint. The next poll sees that the path names another
    /// file and moves on to it once the rotated file is drained, as for any rotation.
    fn resume(
        &mut self,
        position: &FilePosition,
        current: Option<File>,
        start: &mut Start,
    ) -> io::Result<Option<FollowedFile>> {
        let path = self.settings.path.display();
        let max_line_bytes = self.settings.max_line_bytes;
        let current = match current {
            Some(file) if fingerprint::is_same_file(&file, &position.identity)? => {
                if position.identity.fingerprint.len == 0 {
                    return self.resume_unread(file, position);
                }
                let (mut offset, mut written) = (position.offset, Some(position.written));
                if file.metadata()?.len() < offset {
                    info!("{path} was truncated while we were stopped; reading it from the start");
                    self.metrics
                        .rotations
                        .with_label_values(&["truncate"])
                        .inc();
                    (offset, written) = (0, None);
                }
                self.announced_missing = false;
                return Ok(Some(FollowedFile::new(
                    file,
                    offset,
                    written,
                    max_line_bytes,
                )?));
            }
            current => current,
        };
        let directory = parent_directory(&self.settings.path);
        if let Some((rotated_path, rotated)) =
            fingerprint::find_in_directory(directory, &position.identity)?
        {
            info!(
                "{path} was rotated while we were stopped: reading the rest of {} first",
                rotated_path.display()
            );
            // Nothing of it was read: before its rename it may have been written, copied and
            // truncated too, and that copy comes first, as when it is still at the path.
            if position.identity.fingerprint.len == 0 {
                return self.resume_unread(rotated, position);
            }
            // Shorter than the checkpoint: it was truncated after all; whatever it holds is unread.
            let (offset, written) = if rotated.metadata()?.len() < position.offset {
                (0, None)
            } else {
                (position.offset, Some(position.written))
            };
            self.announced_missing = false;
            return Ok(Some(FollowedFile::new(
                rotated,
                offset,
                written,
                max_line_bytes,
            )?));
        }
        if let Some((copy_path, copy)) =
            super::rotated::copy_of(&self.settings.path, &position.identity, position.offset)?
        {
            info!(
                "{path} was truncated while we were stopped: reading the rest of its copy {} first",
                copy_path.display()
            );
            self.announced_missing = false;
            return Ok(Some(FollowedFile::new(
                copy,
                position.offset,
                Some(position.written),
                max_line_bytes,
            )?));
        }
        warn!(
            "the checkpointed file of {path} was not found (rotated and removed while we were \
             stopped?): lines written to it after the checkpoint may be lost; \
             reading {path} from its start"
        );
        self.metrics
            .rotated_files
            .with_label_values(&["gone"])
            .inc();
        *start = Start::Beginning;
        match current {
            Some(file) => Ok(Some(FollowedFile::new(file, 0, None, max_line_bytes)?)),
            None => {
                self.announce_waiting();
                Ok(None)
            }
        }
    }

    /// Resumes in a file of which nothing was read (it was empty): it may have been written, copied
    /// and truncated while we were stopped (copytruncate), so a copy written since comes first; then
    /// the next poll moves on to the path's file, from its start.
    fn resume_unread(
        &mut self,
        file: File,
        position: &FilePosition,
    ) -> io::Result<Option<FollowedFile>> {
        let max_line_bytes = self.settings.max_line_bytes;
        let unread = FollowedFile::new(file, 0, Some(position.written), max_line_bytes)?;
        self.announced_missing = false;
        Ok(Some(self.written_before(&unread)?.unwrap_or(unread)))
    }

    fn announce_waiting(&mut self) {
        if !self.announced_missing {
            info!("waiting for {} to appear", self.settings.path.display());
            self.announced_missing = true;
        }
    }
}

fn parent_directory(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Opens a file at "its end" for a tail: just after its last `\n`, so that a line still being written
/// as we start is handed on whole once it ends. Looks back at most `max_line_bytes + 1` bytes; if those
/// hold no `\n`, the last line is too long anyway: start at the end of the file, skipping its rest.
fn open_at_end(file: File, max_line_bytes: usize) -> io::Result<FollowedFile> {
    let size = file.metadata()?.len();
    let lowest = size.saturating_sub(max_line_bytes as u64 + 1);
    let mut buffer = vec![0; READ_CHUNK_BYTES.min((size - lowest) as usize)];
    let mut end = size;
    while end > lowest {
        let start = end.saturating_sub(buffer.len() as u64).max(lowest);
        let chunk = &mut buffer[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(newline) = memchr::memrchr(b'\n', chunk) {
            return FollowedFile::new(file, start + newline as u64 + 1, None, max_line_bytes);
        }
        end = start;
    }
    if lowest == 0 {
        return FollowedFile::new(file, 0, None, max_line_bytes);
    }
    let mut followed = FollowedFile::new(file, size, None, max_line_bytes)?;
    followed.lines.skip_current_line(size - lowest);
    Ok(followed)
}
