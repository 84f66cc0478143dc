//! Batching and sending: lines gathered into batches of at most `max_batch_lines`, each with the
//! position just after its last line, sent without waiting past a stop.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Sender, select};
use log::warn;

use super::FileSourceSettings;
use crate::metrics::Metrics;
use crate::model::{Batch, FileIdentity, FilePosition, Line, Position};
use crate::stop::Stop;

/// Gathers lines into batches and sends them: a full batch at once, the rest at `flush`.
pub(super) struct Output {
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    path: PathBuf,
    max_line_bytes: usize,
    max_batch_lines: usize,
    lines: Vec<Line>,
    /// The file and offset just after the last line in `lines`.
    end: Option<(FileIdentity, u64)>,
    stopped: bool,
}

impl Output {
    pub(super) fn new(
        settings: &FileSourceSettings,
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
    ) -> Output {
        Output {
            out,
            stop,
            metrics,
            path: settings.path.clone(),
            max_line_bytes: settings.max_line_bytes,
            max_batch_lines: settings.max_batch_lines.max(1),
            lines: Vec::new(),
            end: None,
            stopped: false,
        }
    }

    pub(super) fn add(&mut self, line: &[u8], identity: FileIdentity, end: u64) {
        if self.stopped {
            return;
        }
        // A line with bytes that are not UTF-8 is still a line: keep it, with replacement characters.
        self.lines.push(Line {
            text: String::from_utf8_lossy(line).into_owned(),
            time: None,
        });
        self.end = Some((identity, end));
        if self.lines.len() >= self.max_batch_lines {
            self.flush();
        }
    }

    /// Hands on a position without lines: where reading starts, so that it is checkpointed even
    /// before the first line arrives (a crash then resumes there, not at the file's end of that time).
    pub(super) fn position(&mut self, identity: FileIdentity, offset: u64) {
        if self.lines.is_empty() {
            self.end = Some((identity, offset));
        }
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
        if self.stopped || self.stop.is_stopped() {
            self.stopped = true;
            return false;
        }
        let Some((identity, offset)) = self.end.take() else {
            return true;
        };
        let position = FilePosition {
            path: self.path.clone(),
            identity,
            offset,
        };
        let batch = Batch {
            items: std::mem::take(&mut self.lines),
            end: Position::File(position),
        };
        let count = batch.items.len() as u64;
        // A full channel blocks us, but not past a stop: lines not sent are not acknowledged, so a
        // checkpoint never covers them.
        select! {
            send(self.out, batch) -> sent => match sent {
                Ok(()) => self.metrics.lines_read.inc_by(count),
                Err(_) => self.stopped = true,
            },
            recv(self.stop.receiver()) -> _ => self.stopped = true,
        }
        !self.stopped
    }
}
