//! Where drops come from. Each source runs on its own thread. The log sources (file, journald, kmsg)
//! send batches of lines to the parser, each batch with the position just after it, so that
//! acknowledged positions can be checkpointed; the NFLOG source receives packets, not lines, and sends
//! drops past the parser, with no position (the kernel keeps no history to resume).
//!
//! [`Source`] is the one thing the pipeline knows of them: made from the configuration (binding NFLOG
//! groups there, so that a group held by another listener fails the start), it says what it sends and
//! whether it resumes, and runs.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::config::SourceConfig;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, Line, PacketDrop, Position};
use crate::stop::Stop;

mod batcher;
pub mod checkpoint;
pub mod directory;
pub mod file;
pub mod fingerprint;
pub mod journald;
pub mod kmsg;
pub mod lines;
pub mod nflog;
pub mod wait;

use file::FileSourceSettings;
use journald::JournaldSettings;
use kmsg::KmsgSettings;
use nflog::{NflogSettings, NflogSource};

/// This boot's id: kmsg sequence numbers only mean something within one boot.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The configured source, ready to run on its thread.
pub enum Source {
    File(FileSourceSettings),
    Journald(JournaldSettings),
    Kmsg(KmsgSettings),
    /// Already bound to its groups.
    Nflog(NflogSource),
}

/// Where a source sends what it reads: lines to the parser, or drops past it.
pub enum SourceOutput {
    Lines(Sender<Batch<Line>>),
    Drops(Sender<Batch<PacketDrop>>),
}

impl Source {
    /// Whether `config` names a source that can resume from a checkpoint.
    pub fn resumes(config: &SourceConfig) -> bool {
        !matches!(config, SourceConfig::Nflog(_))
    }

    /// Makes the source of `config`, resuming after `start` (a checkpoint of the same kind; another
    /// kind is ignored). NFLOG binds its groups here: an error is for the start to report.
    pub fn open(
        config: SourceConfig,
        start: Option<Position>,
        max_batch: usize,
        stop: &Stop,
    ) -> Result<Source, nflog::OpenError> {
        Ok(match config {
            SourceConfig::File {
                path,
                from_beginning,
                poll_interval,
                max_line_bytes,
            } => Source::File(FileSourceSettings {
                path,
                start: match start {
                    Some(Position::File(position)) => Some(position),
                    _ => None,
                },
                from_beginning,
                poll_interval,
                max_line_bytes,
                max_batch_lines: max_batch,
                change_notices: true,
            }),
            SourceConfig::Journald { directory } => Source::Journald(JournaldSettings {
                directory,
                start: match start {
                    Some(Position::Journald(position)) => Some(position),
                    _ => None,
                },
                max_batch_lines: max_batch,
            }),
            SourceConfig::Kmsg { path } => Source::Kmsg(KmsgSettings {
                path,
                boot_id_path: PathBuf::from(BOOT_ID_PATH),
                start: match start {
                    Some(Position::Kmsg(position)) => Some(position),
                    _ => None,
                },
                max_batch_lines: max_batch,
            }),
            SourceConfig::Nflog(config) => Source::Nflog(nflog::open(
                NflogSettings {
                    config,
                    max_batch_drops: max_batch,
                },
                stop,
            )?),
        })
    }

    /// The name of its thread.
    pub fn thread_name(&self) -> &'static str {
        match self {
            Source::File(_) => "source-file",
            Source::Journald(_) => "source-journald",
            Source::Kmsg(_) => "source-kmsg",
            Source::Nflog(_) => "source-nflog",
        }
    }

    /// Whether it sends lines for the parser (else drops, past it).
    pub fn sends_lines(&self) -> bool {
        !matches!(self, Source::Nflog(_))
    }

    /// Thread body: reads until `stop`. `output` is lines when [`Source::sends_lines`], else drops.
    pub fn run(self, output: SourceOutput, stop: Stop, metrics: Arc<Metrics>, health: Health) {
        match (self, output) {
            (Source::File(settings), SourceOutput::Lines(out)) => {
                file::run(settings, out, stop, metrics, health)
            }
            (Source::Journald(settings), SourceOutput::Lines(out)) => {
                journald::run(settings, out, stop, metrics, health)
            }
            (Source::Kmsg(settings), SourceOutput::Lines(out)) => {
                kmsg::run(settings, out, stop, metrics, health)
            }
            (Source::Nflog(source), SourceOutput::Drops(out)) => {
                source.run(out, stop, metrics, health)
            }
            (source, _) => panic!(
                "{} was given the wrong output (sends_lines is {})",
                source.thread_name(),
                source.sends_lines()
            ),
        }
    }
}
