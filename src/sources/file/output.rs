//! The file source's side of batching (`sources/batcher.rs` does the rest): lines as they come out of
//! the splitter, positions named by file identity and offset, and the warning for a line too long.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;
use log::warn;

use super::FileSourceSettings;
use crate::metrics::Metrics;
use crate::model::{Batch, FileIdentity, FilePosition, Line, Mark, Position};
use crate::sources::batcher::Batcher;
use crate::stop::Stop;

/// Gathers lines into batches and sends them: a full batch at once, the rest at `flush`.
pub(super) struct Output {
    /// Each line ends at a file (and when it was last seen written) and an offset; the path is the same for
    /// all, so it is added only when a batch is sent.
    batcher: Batcher<FileEnd>,
    metrics: Arc<Metrics>,
    path: PathBuf,
    max_line_bytes: usize,
}

impl Output {
    pub(super) fn new(
        settings: &FileSourceSettings,
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
    ) -> Output {
        Output {
            batcher: Batcher::new(out, stop, metrics.clone(), settings.max_batch_lines),
            metrics,
            path: settings.path.clone(),
            max_line_bytes: settings.max_line_bytes,
        }
    }

    pub(super) fn add(&mut self, line: &[u8], end: FileEnd) {
        // A line with bytes that are not UTF-8 is still a line: keep it, with replacement characters.
        let line = Line {
            text: String::from_utf8_lossy(line).into_owned(),
            time: None,
            mark: Mark {
                content: end.content,
                offset: end.offset,
            },
        };
        let path = &self.path;
        // A stop shows at the caller's next `flush`, which it always reaches.
        self.batcher.add(line, end, |end| position(path, end));
    }

    /// Hands on a position without lines: where reading starts, so that it is checkpointed even
    /// before the first line arrives (a crash then resumes there, not at the file's end of that time).
    pub(super) fn position(&mut self, end: FileEnd) {
        self.batcher.mark(end);
    }

    pub(super) fn too_long(&self, length: u64) {
        self.metrics.lines_too_long.inc();
        warn!(
            "skipped a line of {length} bytes in {}: longer than the limit of {} bytes",
            self.path.display(),
            self.max_line_bytes
        );
    }

    /// Sends the lines gathered so far; false once stopped (then nothing more is sent).
    pub(super) fn flush(&mut self) -> bool {
        let path = &self.path;
        self.batcher.flush(|end| position(path, end))
    }
}

/// Where a line ends: in which file (and when it was last seen written), at which offset.
#[derive(Clone, Copy, Debug)]
pub(super) struct FileEnd {
    pub(super) identity: FileIdentity,
    pub(super) offset: u64,
    pub(super) written: u64,
    /// The checksum of the file's first line: names its content in line marks.
    pub(super) content: u64,
}

fn position(path: &std::path::Path, end: &FileEnd) -> Position {
    Position::File(FilePosition {
        path: path.to_path_buf(),
        identity: end.identity,
        offset: end.offset,
        written: end.written,
    })
}
