//! The file source: follows one log file like `tail -F`, through every kind of rotation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, FilePosition, Line};
use crate::stop::Stop;

pub struct FileSourceSettings {
    pub path: PathBuf,
    /// A checkpointed position to resume from (used only if its path is `path`).
    pub start: Option<FilePosition>,
    /// With no usable checkpoint: read the existing file from its start instead of its end.
    pub from_beginning: bool,
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
    pub max_batch_lines: usize,
}

/// Thread body: reads until `stop`, sending every complete line exactly once, in order.
pub fn run(
    _settings: FileSourceSettings,
    _out: Sender<Batch<Line>>,
    _stop: Stop,
    _metrics: Arc<Metrics>,
    _health: Health,
) {
    todo!("file source")
}
