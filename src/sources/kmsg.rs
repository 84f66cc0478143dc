//! The kmsg source (to be written): the kernel's ring buffer read from /dev/kmsg, resumed at a sequence
//! number within the same boot.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line};
use crate::stop::Stop;

pub struct KmsgSettings {
    /// `KMSG_PATH` (`--kmsg-path`): `/dev/kmsg`, or a file that imitates it in tests.
    pub path: PathBuf,
    /// Where the boot id is read: `/proc/sys/kernel/random/boot_id`.
    pub boot_id_path: PathBuf,
    /// A checkpointed position to resume after (ignored when its boot id is not this boot's).
    pub start: Option<KmsgPosition>,
    pub max_batch_lines: usize,
}

/// Thread body: reads until `stop`.
pub fn run(
    _settings: KmsgSettings,
    _out: Sender<Batch<Line>>,
    _stop: Stop,
    _metrics: Arc<Metrics>,
    _health: Health,
) {
    todo!("kmsg source")
}
