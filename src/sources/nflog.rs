//! The NFLOG source: packets that iptables `-j NFLOG --nflog-group N` or nft `log group N` rules send to
//! netlink, read straight from the kernel with no ulogd2, rsyslog or journald between. kube-router (the
//! network policy of k3s) logs its policy drops this way, to group 100.
//!
//! NFLOG hands over packets, not lines: each message becomes a [`PacketDrop`] here ([`decode`]) and
//! goes to the stages after the parser. Every packet of a bound group is a drop; the group is what
//! selects them, so `IPTABLES_LOG_PREFIX` is not applied (the message's prefix is kept on the drop).
//!
//! There is no history: what the kernel logged while the agent was not bound is gone, and there is no
//! position to checkpoint (batches carry none). The groups are bound before the pipeline starts, so a
//! group another listener holds (ulogd2, say) is an error at start that names the holder.
//!
//! The kernel drops messages when the socket's receive buffer is full (`NFLOG_BUFFER_BYTES`); the next
//! read then fails with ENOBUFS. Reading goes on, and once the queue is drained the kernel's own count
//! of what it dropped for this socket (/proc/net/netlink) goes to `source_lost_total{reason="overflow"}`.
//! Other errors close the socket and bind again after a growing delay. The thread waits in poll(2) on
//! the socket and on the stop's wake pipe: an idle agent does not wake at all.

use std::io::PipeReader;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::Sender;
use log::{info, warn};

use crate::config::NflogConfig;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{Batch, PacketDrop};
use crate::stop::Stop;

mod decode;
mod holder;
mod interfaces;
mod packet;
mod socket;
#[cfg(test)]
mod tests;

pub use socket::OpenError;

use decode::decode_datagram;
use interfaces::InterfaceNames;
use socket::{NflogSocket, Received};

/// The first and the longest wait before binding again after an error.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Datagrams still read after the stop, at most.
const MAX_READ_AFTER_STOP: usize = 10_000;
/// Overflow is logged at warn at most this often (a flood would otherwise flood the log too).
const OVERFLOW_WARN_INTERVAL: Duration = Duration::from_secs(10);

pub struct NflogSettings {
    pub config: NflogConfig,
    pub max_batch_drops: usize,
}

/// The groups, bound: made at start, before any thread, so that a bind error ends the agent at once.
pub struct NflogSource {
    settings: NflogSettings,
    socket: NflogSocket,
}

/// Binds the configured groups.
pub fn open(settings: NflogSettings) -> Result<NflogSource, OpenError> {
    let config = &settings.config;
    let socket = NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes)?;
    info!(
        "bound NFLOG groups {:?} (copy range {} bytes, receive buffer {} bytes)",
        config.groups,
        config.copy_range,
        socket.receive_buffer_bytes()
    );
    Ok(NflogSource { settings, socket })
}

/// Binds the groups and lets them go again: what `--check-config` does to find a group another
/// listener holds, or a missing capability, before the agent starts.
pub fn probe(config: &NflogConfig) -> Result<(), OpenError> {
    NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes).map(drop)
}

impl NflogSource {
    /// Thread body: reads until `stop`, sending drops in batches as they come.
    pub fn run(
        self,
        out: Sender<Batch<PacketDrop>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        health: Health,
    ) {
        let wake = match stop.wake_pipe() {
            Ok(wake) => wake,
            Err(error) => {
                // Without a pipe nothing could wake the thread for the stop: fail the pipeline.
                warn!("cannot create the stop pipe: {error}");
                return;
            }
        };
        let mut reader = Reader {
            max_batch: self.settings.max_batch_drops,
            out,
            metrics,
            names: InterfaceNames::default(),
            batch: Vec::new(),
            kernel_drops: 0,
            overflowed: false,
            last_overflow_warning: None,
        };
        let mut socket = self.socket;
        let mut retry_delay = FIRST_RETRY_DELAY;
        loop {
            reader.set_ready(&health, true, &socket);
            let opened = Instant::now();
            let error = match reader.follow(&mut socket, &wake) {
                Ok(()) => return,
                Err(error) => error,
            };
            reader.metrics.source_errors.inc();
            reader.set_ready(&health, false, &socket);
            if !reader.flush() {
                return;
            }
            if opened.elapsed() >= MAX_RETRY_DELAY {
                retry_delay = FIRST_RETRY_DELAY;
            }
            // The old socket's last overflow is counted before it goes; then it is closed first,
            // freeing the groups, and bound again until that works.
            if reader.overflowed {
                reader.count_kernel_drops(&socket);
            }
            drop(socket);
            socket = loop {
                warn!("reading NFLOG: {error}; binding the groups again in {retry_delay:?}");
                if stop.sleep(retry_delay) {
                    return;
                }
                retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                let config = &self.settings.config;
                match NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes) {
                    Ok(socket) => break socket,
                    Err(error) => {
                        reader.metrics.source_errors.inc();
                        warn!("{error}");
                    }
                }
            };
            reader.metrics.source_reopens.inc();
            reader.kernel_drops = 0;
        }
    }
}

/// The reading loop's state, kept across a re-bind.
struct Reader {
    max_batch: usize,
    out: Sender<Batch<PacketDrop>>,
    metrics: Arc<Metrics>,
    names: InterfaceNames,
    batch: Vec<PacketDrop>,
    /// The kernel's drop count for the socket as last read.
    kernel_drops: u64,
    /// ENOBUFS was seen and the kernel's count not read since.
    overflowed: bool,
    last_overflow_warning: Option<Instant>,
}

impl Reader {
    /// Reads until stopped (Ok) or an error that needs a new socket.
    fn follow(&mut self, socket: &mut NflogSocket, wake: &PipeReader) -> std::io::Result<()> {
        // Once stopped, what is already queued is still read, up to a bound (a flood must not hold
        // the shutdown).
        let mut after_stop: Option<usize> = None;
        loop {
            if let Some(left) = after_stop.as_mut() {
                if *left == 0 {
                    self.flush();
                    return Ok(());
                }
                *left -= 1;
            }
            match socket.receive()? {
                Received::Messages(bytes) => {
                    let (received, now) = (Utc::now(), Instant::now());
                    let (metrics, names, batch) = (&self.metrics, &mut self.names, &mut self.batch);
                    let packets =
                        decode_datagram(bytes, received, now, names, |decoded| match decoded {
                            Ok(drop) => {
                                metrics.nflog_decoded.inc();
                                metrics.drops_parsed.inc();
                                batch.push(drop);
                            }
                            Err(skip) => metrics
                                .nflog_skipped
                                .with_label_values(&[skip.reason()])
                                .inc(),
                        });
                    self.metrics.nflog_received.inc_by(packets);
                    if self.batch.len() >= self.max_batch && !self.flush() {
                        return Ok(());
                    }
                }
                Received::Overflow => self.overflow(socket),
                Received::Empty => {
                    // Drained: what was read goes on now, then the kernel's count of what it dropped
                    // while the buffer was full is final for this episode.
                    if !self.flush() {
                        return Ok(());
                    }
                    if self.overflowed {
                        self.count_kernel_drops(socket);
                    }
                    if after_stop.is_some() {
                        return Ok(());
                    }
                    if wait(socket, wake)? == Woken::Stop {
                        after_stop = Some(MAX_READ_AFTER_STOP);
                    }
                }
            }
        }
    }

    fn overflow(&mut self, socket: &NflogSocket) {
        self.overflowed = true;
        let counted = self.count_kernel_drops(socket);
        let due = self
            .last_overflow_warning
            .is_none_or(|last| last.elapsed() >= OVERFLOW_WARN_INTERVAL);
        if due {
            self.last_overflow_warning = Some(Instant::now());
            warn!(
                "the NFLOG receive buffer ({} bytes) overflowed: the kernel dropped {} messages so far \
                 (source_lost_total{{reason=\"overflow\"}}); raise NFLOG_BUFFER_BYTES if this repeats",
                socket.receive_buffer_bytes(),
                counted.map_or("some".to_string(), |total| total.to_string()),
            );
        }
    }

    /// Adds what the kernel dropped since the last look to `source_lost{reason="overflow"}`. Where the
    /// kernel's count cannot be read, each ENOBUFS counts as one (a lower bound).
    fn count_kernel_drops(&mut self, socket: &NflogSocket) -> Option<u64> {
        let lost = self.metrics.source_lost.with_label_values(&["overflow"]);
        match socket.kernel_drops() {
            Some(total) => {
                lost.inc_by(total.saturating_sub(self.kernel_drops));
                self.kernel_drops = total.max(self.kernel_drops);
                self.overflowed = false;
                Some(total)
            }
            None => {
                if self.overflowed {
                    lost.inc();
                }
                self.overflowed = false;
                None
            }
        }
    }

    /// Sends the drops read so far; false when the next stage is gone.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let items = std::mem::take(&mut self.batch);
        self.out.send(Batch { items, end: None }).is_ok()
    }

    fn set_ready(&self, health: &Health, ready: bool, socket: &NflogSocket) {
        health.set_ready(ready);
        self.metrics.source_ready.set(i64::from(ready));
        self.metrics
            .nflog_receive_buffer_bytes
            .set(i64::try_from(socket.receive_buffer_bytes()).unwrap_or(i64::MAX));
    }
}

#[derive(PartialEq, Eq)]
enum Woken {
    Data,
    Stop,
}

/// Waits, without a timeout, until the socket has data or the stop is triggered.
fn wait(socket: &NflogSocket, wake: &PipeReader) -> std::io::Result<Woken> {
    let mut fds = [
        libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfds for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // POLLERR on the socket is a pending ENOBUFS: the next receive reports it.
        return Ok(if fds[1].revents != 0 {
            Woken::Stop
        } else {
            Woken::Data
        });
    }
}
