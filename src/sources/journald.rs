//! The journald source (to be written): kernel entries of the systemd journal, resumed at a cursor.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, JournalPosition, Line};
use crate::stop::Stop;

pub struct JournaldSettings {
    /// `JOURNAL_DIRECTORY`: read the journal files in this directory; `None`: the local system journal.
    pub directory: Option<PathBuf>,
    /// A checkpointed cursor to resume after.
    pub start: Option<JournalPosition>,
    pub max_batch_lines: usize,
}

/// Thread body: reads until `stop`.
pub fn run(
    _settings: JournaldSettings,
    _out: Sender<Batch<Line>>,
    _stop: Stop,
    _metrics: Arc<Metrics>,
    _health: Health,
) {
    todo!("journald source")
}
