//! The kmsg source: the kernel's log read straight from /dev/kmsg, without rsyslog or journald between,
//! resumed at a record's sequence number within the same boot.
//!
//! Each read of the device returns one record, `prio,seq,usec,flags;message` ([`record`]); the
//! message becomes a [`Line`] whose time is the record's, turned from time since boot into wall time
//! when read ([`clock`]). Records of every facility are read: userspace writes to /dev/kmsg are forced
//! to facility `user`, and only root can write there, so a line a process wrote is as trustworthy as
//! the kernel's own (the parser still takes only lines with a configured prefix).
//!
//! Position: this boot's id (`boot_id_path`) and the sequence number of the last record handed on
//! ([`position`]). A checkpoint of this boot resumes after its record; one of another boot (the machine
//! rebooted) reads this boot's buffer from its start; with no checkpoint only new records are read.
//!
//! The kernel keeps a ring buffer (~128 KiB here, some 650 netfilter lines): records not read in time
//! are overwritten. The device then fails one read with EPIPE; the gap in sequence numbers is counted in
//! `source_lost{reason="overwritten"}` and reading goes on with the oldest record left. Records
//! overwritten while the agent was stopped are counted the same way at start.
//!
//! Reading is non-blocking, waiting in poll(2) for the device or the stop's wake pipe, with no timer.
//! Errors never end the thread: they are counted, the device is closed and opened again with a growing
//! delay, resuming after the last record read.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{info, warn};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, KmsgPosition, Line};
use crate::stop::Stop;

mod clock;
mod output;
mod position;
mod reader;
mod record;
#[cfg(test)]
mod tests;

use clock::Clocks;
use output::Output;
use position::{Admit, Sequence, Start, first_start};
use reader::{Next, RecordReader};
use record::Assembler;

/// The first and the longest wait before opening again after an error.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

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
///
/// Errors never end it: they are counted in `source_errors`, logged, and the device is opened again
/// with a growing delay (counted in `source_reopens`).
pub fn run(
    settings: KmsgSettings,
    out: Sender<Batch<Line>>,
    stop: Stop,
    metrics: Arc<Metrics>,
    health: Health,
) {
    let opener: Opener = Box::new(reader::open);
    KmsgSource::new(settings, out, stop, metrics, health, opener).run();
}

/// Opens the records at a path, positioned at a start: [`reader::open`], or a scripted reader in tests.
type Opener = Box<dyn FnMut(&Path, Start) -> io::Result<Box<dyn RecordReader>>>;

struct KmsgSource {
    settings: KmsgSettings,
    output: Output,
    stop: Stop,
    metrics: Arc<Metrics>,
    health: Health,
    /// Where the first open starts; decided at the first open, which reads the boot id.
    initial: Option<Start>,
    sequence: Sequence,
    assembler: Assembler,
    opener: Opener,
    /// Readable once the stop is triggered: waits end then. `None` if it could not be made (the
    /// waits then last at most `reader::POLL_TIMEOUT`).
    wake: Option<std::io::PipeReader>,
}

impl KmsgSource {
    fn new(
        settings: KmsgSettings,
        out: Sender<Batch<Line>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        health: Health,
        opener: Opener,
    ) -> KmsgSource {
        let wake = match stop.wake_pipe() {
            Ok(wake) => Some(wake),
            Err(error) => {
                warn!("no wake pipe for the stop ({error}): looking at it every 100 ms");
                None
            }
        };
        KmsgSource {
            output: Output::new(out, stop.clone(), metrics.clone(), settings.max_batch_lines),
            settings,
            stop,
            metrics,
            health,
            initial: None,
            sequence: Sequence::default(),
            assembler: Assembler::default(),
            opener,
            wake,
        }
    }

    /// Opens, reads until an error, and opens again after a growing delay, until stopped.
    fn run(mut self) {
        let mut retry_delay = FIRST_RETRY_DELAY;
        // Whether the device was open before: opening it again is a reopen.
        let mut opened_before = false;
        loop {
            let error = match self.open() {
                Ok(mut reader) => {
                    if opened_before {
                        self.metrics.source_reopens.inc();
                    }
                    opened_before = true;
                    self.set_ready(true);
                    let opened = Instant::now();
                    match self.follow(reader.as_mut()) {
                        Ok(()) => return,
                        Err(error) => {
                            // A device that was read well for a while starts the delays afresh; one
                            // that fails at once again and again backs off.
                            if opened.elapsed() >= MAX_RETRY_DELAY {
                                retry_delay = FIRST_RETRY_DELAY;
                            }
                            error
                        }
                    }
                }
                Err(error) => error,
            };
            self.metrics.source_errors.inc();
            self.set_ready(false);
            // What was read before the error goes on now, not after the delay.
            if !self.output.flush() {
                return;
            }
            warn!(
                "reading {}: {error}; opening it again in {retry_delay:?}",
                self.settings.path.display()
            );
            if self.stop.sleep(retry_delay) {
                return;
            }
            retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
        }
    }

    /// Reads the boot id, opens the device and positions it: at the start the checkpoint asks for the
    /// first time, after the last record read when opening again.
    fn open(&mut self) -> io::Result<Box<dyn RecordReader>> {
        let boot_id = read_boot_id(&self.settings.boot_id_path)?;
        let initial = *self
            .initial
            .get_or_insert_with(|| first_start(self.settings.start.as_ref(), &boot_id));
        let start = self.sequence.restart(initial);
        let reader = (self.opener)(&self.settings.path, start)?;
        self.sequence.started(start);
        let path = self.settings.path.display();
        match start {
            Start::After(sequence) => {
                info!("reading {path} after record {sequence} (boot {boot_id})")
            }
            Start::Beginning => info!(
                "reading {path} from its oldest record: the checkpoint is of another boot than {boot_id}"
            ),
            Start::End => info!("reading {path} from its end: new records only (boot {boot_id})"),
        }
        self.output.boot_id = boot_id;
        Ok(reader)
    }

    /// Reads records as they come: Ok once stopped, or the error that ended reading.
    fn follow(&mut self, reader: &mut dyn RecordReader) -> io::Result<()> {
        // Whether the last read found nothing, after a wait: a pending `c` fragment then goes on alone.
        let mut idle = false;
        loop {
            if self.stop.is_stopped() {
                return Ok(());
            }
            match reader.next()? {
                Next::Record(bytes) => {
                    idle = false;
                    if !self.take(bytes) {
                        return Ok(());
                    }
                }
                Next::Overwritten => {
                    self.sequence.overwritten();
                    // Its continuations may be gone: the piece we have goes on as it is.
                    if !self.emit_pending() {
                        return Ok(());
                    }
                }
                Next::Empty => {
                    if idle && !self.emit_pending() {
                        return Ok(());
                    }
                    if !self.output.flush() {
                        return Ok(());
                    }
                    reader.wait(self.wake.as_ref().map(AsRawFd::as_raw_fd))?;
                    idle = true;
                }
            }
        }
    }

    /// Handles one record's bytes; false once stopped.
    fn take(&mut self, bytes: &[u8]) -> bool {
        let record = match record::parse(bytes) {
            Ok(record) => record,
            Err(error) => {
                self.metrics.source_errors.inc();
                warn!(
                    "skipped a kernel log record: {error}: {:?}",
                    String::from_utf8_lossy(bytes)
                );
                return true;
            }
        };
        match self.sequence.admit(record.sequence) {
            Admit::Skip => return true,
            Admit::Take { lost: 0 } => {}
            Admit::Take { lost } => {
                self.metrics
                    .source_lost
                    .with_label_values(&["overwritten"])
                    .inc_by(lost);
                warn!(
                    "the kernel overwrote {lost} log record(s) before they were read; continuing at record {}",
                    record.sequence
                );
            }
        }
        let clocks = Clocks::now();
        let output = &mut self.output;
        let mut sending = true;
        self.assembler.push(record, |message| {
            sending &= output.add(
                message.text,
                clocks.wall_time(message.usec),
                message.sequence,
            );
        });
        sending
    }

    /// Hands on a pending fragment whose continuation did not come; false once stopped.
    fn emit_pending(&mut self) -> bool {
        match self.assembler.flush() {
            Some(message) => {
                let time = Clocks::now().wall_time(message.usec);
                self.output.add(message.text, time, message.sequence)
            }
            None => true,
        }
    }

    fn set_ready(&self, ready: bool) {
        self.health.set_ready(ready);
        self.metrics.source_ready.set(i64::from(ready));
    }
}

fn read_boot_id(path: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot read the boot id from {}: {error}", path.display()),
        )
    })?;
    let boot_id = text.trim();
    if boot_id.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the boot id in {} is empty", path.display()),
        ));
    }
    Ok(boot_id.to_string())
}
