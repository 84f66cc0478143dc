//! The netlink socket an NFLOG source reads: bound to its groups in copy-packet mode, with a receive
//! buffer set past `net.core.rmem_max` (CAP_NET_ADMIN), read without blocking.
//!
//! Binding is one netfilter configuration request per group, acknowledged by the kernel: `BIND`, the
//! copy mode and range, and a queue threshold of 1 so the kernel sends each packet at once instead of
//! gathering up to 100 of them for up to a second (its defaults), which would be the latency of a drop.
//! Closing the socket (or the process ending, however it ends) unbinds the groups.

use crate::sources::wait::wait_readable;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{ErrorBuffer, NLMSG_ERROR, NetlinkBuffer};
use netlink_packet_netfilter::NetfilterProtoFamily;
use netlink_packet_netfilter::nflog::{ConfigCmd, ConfigMode, ConfigNla, config_request};
use netlink_sys::{Socket, constants::NETLINK_NETFILTER};

use super::holder;

/// How long the kernel may take to acknowledge a configuration request (it answers at once).
const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// One receive takes one datagram: with a queue threshold of 1, one packet's message, at most the
/// copy range (≤ 65535 bytes) plus the headers and attributes (a few hundred bytes). 128 KiB holds
/// the largest.
const RECEIVE_BUFFER_BYTES: usize = 128 << 10;

/// Why the groups could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open a netfilter netlink socket: {0}")]
    Socket(io::Error),
    #[error(
        "netlink sockets are not allowed here (a host unit without AF_NETLINK in RestrictAddressFamilies=? the unit's nflog drop-in adds it)"
    )]
    NetlinkRefused,
    #[error(
        "NFLOG group {group} is already bound by another listener: {holder}; stop it, or choose other groups with NFLOG_GROUPS"
    )]
    Busy { group: u16, holder: String },
    #[error(
        "not permitted to bind NFLOG group {group}: the agent needs CAP_NET_ADMIN in the network namespace of the rules (hostNetwork on Kubernetes)"
    )]
    NotPermitted { group: u16 },
    #[error("cannot bind NFLOG group {group}: {source}{hint}")]
    Bind {
        group: u16,
        source: io::Error,
        hint: &'static str,
    },
}

impl OpenError {
    /// A mistake in how the agent was deployed (another listener, a missing capability), not a fault
    /// that retrying would cure.
    pub fn is_deployment(&self) -> bool {
        matches!(
            self,
            OpenError::Busy { .. } | OpenError::NotPermitted { .. } | OpenError::NetlinkRefused
        )
    }
}

/// What one non-blocking receive found.
pub enum Received<'a> {
    /// One datagram: one or more netlink messages.
    Messages(&'a [u8]),
    /// Nothing waiting.
    Empty,
    /// The kernel dropped messages because the receive buffer was full (ENOBUFS).
    Overflow,
}

pub struct NflogSocket {
    socket: Socket,
    buffer: Vec<u8>,
    /// The socket's inode: its row in /proc/net/netlink, where the kernel counts what it dropped.
    inode: u64,
    /// The receive buffer the kernel granted (it doubles what is asked, for its bookkeeping).
    receive_buffer_bytes: usize,
    /// Datagrams of packets that arrived while a later group was being bound, read first.
    early: VecDeque<Vec<u8>>,
    /// The early datagram last handed out.
    current: Vec<u8>,
    /// The receive buffer overflowed while a group was being bound: reported after the early datagrams.
    early_overflow: bool,
}

impl NflogSocket {
    /// Binds `groups` (each to this socket only) copying `copy_range` bytes of each packet.
    pub fn open(groups: &[u16], copy_range: u16, buffer_bytes: usize) -> Result<Self, OpenError> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|error| {
            // A seccomp or RestrictAddressFamilies= filter answers EAFNOSUPPORT.
            match error.raw_os_error() {
                Some(libc::EAFNOSUPPORT) => OpenError::NetlinkRefused,
                _ => OpenError::Socket(error),
            }
        })?;
        socket.bind_auto().map_err(OpenError::Socket)?;
        let capable = set_receive_buffer(&socket, buffer_bytes).map_err(OpenError::Socket)?;
        let receive_buffer_bytes = socket.get_rx_buf_sz().map_err(OpenError::Socket)?;
        let inode = match std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd())) {
            Ok(metadata) => std::os::unix::fs::MetadataExt::ino(&metadata),
            Err(error) => {
                log::warn!(
                    "cannot find the NFLOG socket in /proc ({error}): overflows are counted one per \
                     report, not by the kernel's exact count"
                );
                0
            }
        };
        let mut nflog = NflogSocket {
            socket,
            buffer: vec![0; RECEIVE_BUFFER_BYTES],
            inode,
            receive_buffer_bytes,
            early: VecDeque::new(),
            current: Vec::new(),
            early_overflow: false,
        };
        for &group in groups {
            // The kernel applies the command first (creating the group's instance), then the rest.
            nflog
                .configure(
                    group,
                    vec![
                        ConfigCmd::Bind.into(),
                        ConfigMode::new_packet(u32::from(copy_range)).into(),
                        ConfigNla::QThresh(1),
                    ],
                )
                .map_err(|error| bind_error(group, error, capable))?;
        }
        nflog
            .socket
            .set_non_blocking(true)
            .map_err(OpenError::Socket)?;
        Ok(nflog)
    }

    pub fn receive_buffer_bytes(&self) -> usize {
        self.receive_buffer_bytes
    }

    /// Reads one datagram without waiting.
    pub fn receive(&mut self) -> io::Result<Received<'_>> {
        if let Some(datagram) = self.early.pop_front() {
            self.current = datagram;
            return Ok(Received::Messages(&self.current));
        }
        if std::mem::take(&mut self.early_overflow) {
            return Ok(Received::Overflow);
        }
        match self.socket.recv(&mut &mut self.buffer[..], 0) {
            Ok(size) => Ok(Received::Messages(&self.buffer[..size])),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(Received::Empty),
            Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => Ok(Received::Overflow),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(Received::Empty),
            Err(error) => Err(error),
        }
    }

    /// Messages the kernel dropped for this socket since it was opened (the `Drops` column of
    /// /proc/net/netlink), when that can be read.
    pub fn kernel_drops(&self) -> Option<u64> {
        if self.inode == 0 {
            return None;
        }
        let table = std::fs::read_to_string("/proc/net/netlink").ok()?;
        holder::netlink_drops(&table, self.inode)
    }

    /// Sends one configuration request for `group` and waits for the kernel's acknowledgement.
    fn configure(&mut self, group: u16, nlas: Vec<ConfigNla>) -> io::Result<()> {
        let mut request = config_request(NetfilterProtoFamily::Unspec, group, nlas);
        // Packets come with sequence number 0: the acknowledgement is told apart by its own.
        let sequence = u32::from(group) + 1;
        request.header.sequence_number = sequence;
        request.finalize();
        let mut bytes = vec![0; request.header.length as usize];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        loop {
            let acknowledged = wait_readable(&[self.socket.as_raw_fd()], Some(ACK_TIMEOUT))?;
            if acknowledged.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel did not acknowledge the NFLOG configuration",
                ));
            }
            let size = match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Ok(size) => size,
                // Packets of a group bound a moment ago filled the buffer: counted once reading
                // starts; the acknowledgement, queued before, is still to come.
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.early_overflow = true;
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            match acknowledgement(&self.buffer[..size], sequence) {
                Some(result) => return result,
                // Packets ahead of the acknowledgement: kept for the reader, in order (an
                // acknowledgement always comes alone in its datagram).
                None => self.early.push_back(self.buffer[..size].to_vec()),
            }
        }
    }
}

/// The outcome an acknowledgement datagram reports for the request `sequence`, or `None` when the
/// datagram is something else. Only the netlink headers are read: a packet the netfilter decoder
/// might refuse is no reason to fail a bind.
fn acknowledgement(datagram: &[u8], sequence: u32) -> Option<io::Result<()>> {
    let message = NetlinkBuffer::new_checked(datagram).ok()?;
    if message.message_type() != NLMSG_ERROR || message.sequence_number() != sequence {
        return None;
    }
    let error = ErrorBuffer::new_checked(message.payload()).ok()?;
    // An acknowledgement is an error message with code 0 (`None`).
    Some(match error.code() {
        None => Ok(()),
        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
    })
}

impl AsRawFd for NflogSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Netlink messages start on 4-byte boundaries.
pub fn align(length: usize) -> usize {
    (length + 3) & !3
}

/// SO_RCVBUFFORCE passes `net.core.rmem_max` (it needs CAP_NET_ADMIN, which binding needs anyway);
/// without the capability the ordinary SO_RCVBUF, capped by the kernel, is the fallback. Returns
/// whether the process has CAP_NET_ADMIN (the forced size was allowed).
fn set_receive_buffer(socket: &Socket, bytes: usize) -> io::Result<bool> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket and a c_int option value of the size given.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    log::warn!(
        "cannot force the NFLOG receive buffer to {bytes} bytes ({error}); asking within net.core.rmem_max"
    );
    socket.set_rx_buf_sz(value)?;
    Ok(error.raw_os_error() != Some(libc::EPERM))
}

/// The kernel answers a bind of a group that another socket holds with EPERM, the same answer as for
/// a missing CAP_NET_ADMIN. Whether the process had the capability (`capable`, from forcing the
/// receive buffer, which needs it too) tells them apart; the group's row in
/// /proc/net/netfilter/nfnetlink_log then names the holder.
fn bind_error(group: u16, error: io::Error, capable: bool) -> OpenError {
    match error.raw_os_error() {
        Some(libc::EPERM) if !capable => OpenError::NotPermitted { group },
        Some(libc::EPERM) | Some(libc::EBUSY) => OpenError::Busy {
            group,
            holder: holder::describe_holder(group)
                .unwrap_or_else(|| "a listener that /proc does not name".to_string()),
        },
        // What a kernel without NFLOG support answers.
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOENT | libc::EPROTONOSUPPORT) => {
            OpenError::Bind {
                group,
                source: error,
                hint: " (does this kernel have nfnetlink_log, CONFIG_NETFILTER_NETLINK_LOG?)",
            }
        }
        _ => OpenError::Bind {
            group,
            source: error,
            hint: "",
        },
    }
}
