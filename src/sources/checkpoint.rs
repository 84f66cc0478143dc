//! Checkpoints: the last acknowledged source position, saved atomically in the state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::metrics::Metrics;
use crate::model::Position;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("checkpoint {path} is not valid: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    pub fn new(state_directory: &Path, name: &str) -> CheckpointStore {
        CheckpointStore { path: state_directory.join(format!("{name}.checkpoint.json")) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Option<Position>, CheckpointError> {
        todo!("checkpoint")
    }

    pub fn save(&self, _position: &Position) -> Result<(), CheckpointError> {
        todo!("checkpoint")
    }
}

/// Thread body: saves the newest acknowledged position, at most once per `min_interval` but always
/// eventually (a trailing write), and once more when `acks` disconnects (clean shutdown).
pub fn run_writer(
    _store: CheckpointStore,
    _acks: Receiver<Position>,
    _min_interval: Duration,
    _metrics: Arc<Metrics>,
) {
    todo!("checkpoint writer")
}
