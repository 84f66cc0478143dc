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
//! the socket and on the stop's wake pipe: an idle agent does not wake at all ([`reader`]).

use std::io::PipeReader;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
mod overflow;
mod packet;
mod reader;
mod socket;
#[cfg(test)]
mod tests;

pub use socket::OpenError;

use reader::Reader;
use socket::NflogSocket;

/// The first and the longest wait before binding again after an error.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

pub struct NflogSettings {
    pub config: NflogConfig,
    pub max_batch_drops: usize,
}

/// The groups, bound, and the pipe that wakes the reader at the stop: made at start, before any
/// thread, so that an error ends the agent at once.
pub struct NflogSource {
    settings: NflogSettings,
    socket: NflogSocket,
    wake: PipeReader,
}

/// Binds the configured groups.
pub fn open(settings: NflogSettings, stop: &Stop) -> Result<NflogSource, OpenError> {
    let wake = stop.wake_pipe().map_err(OpenError::Socket)?;
    let config = &settings.config;
    let socket = NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes)?;
    info!(
        "bound NFLOG groups {:?} (copy range {} bytes, receive buffer {} bytes)",
        config.groups,
        config.copy_range,
        socket.receive_buffer_bytes()
    );
    Ok(NflogSource {
        settings,
        socket,
        wake,
    })
}

/// Binds the groups and lets them go again: what `--check-config` does to find a group another
/// listener holds, or a missing capability, before the agent starts.
pub fn probe(config: &NflogConfig) -> Result<(), OpenError> {
    NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes).map(drop)
}

impl NflogSource {
    /// Thread body: reads until `stop`, sending drops in batches as they come; an error closes the
    /// socket and binds the groups again after a growing delay.
    pub fn run(
        self,
        out: Sender<Batch<PacketDrop>>,
        stop: Stop,
        metrics: Arc<Metrics>,
        health: Health,
    ) {
        let NflogSource {
            settings,
            mut socket,
            wake,
        } = self;
        let mut reader = Reader::new(settings.max_batch_drops, out, metrics);
        let mut retry_delay = FIRST_RETRY_DELAY;
        loop {
            reader.set_ready(&health, true, &socket);
            let opened = Instant::now();
            let error = match reader.follow(&mut socket, &stop, &wake) {
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
            // The old socket's last overflow count is taken before it closes, freeing the groups.
            reader.drained(&socket);
            drop(socket);
            warn!("reading NFLOG: {error}; binding the groups again");
            let config = &settings.config;
            socket = loop {
                if stop.sleep(retry_delay) {
                    return;
                }
                retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                match NflogSocket::open(&config.groups, config.copy_range, config.buffer_bytes) {
                    Ok(socket) => break socket,
                    Err(error) => {
                        reader.metrics.source_errors.inc();
                        warn!("{error}; trying again in {retry_delay:?}");
                    }
                }
            };
            reader.rebound();
            reader.metrics.source_reopens.inc();
            info!("bound NFLOG groups {:?} again", config.groups);
        }
    }
}
