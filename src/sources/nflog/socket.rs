//! The netlink socket an NFLOG source reads: bound to its groups in copy-packet mode, with a receive
//! buffer set past `net.core.rmem_max` (CAP_NET_ADMIN), read without blocking.
//!
//! Binding is one netfilter configuration request per group, acknowledged by the kernel: `BIND`, the
//! copy mode and range, and a queue threshold of 1 so the kernel sends each packet at once instead of
//! gathering up to 100 of them for up to a second (its defaults), which would be the latency of a drop.
//! Closing the socket (or the process ending, however it ends) unbinds the groups.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nflog::{ConfigCmd, ConfigMode, ConfigNla, config_request};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{Socket, constants::NETLINK_NETFILTER};

use super::holder;

/// How long the kernel may take to acknowledge a configuration request (it answers at once).
const ACK_TIMEOUT_MS: i32 = 2_000;
/// One receive holds one kernel message batch; with a threshold of 1 that is one packet, but a
/// listener that set a larger `nlbufsiz` before could leave bigger ones. 64 KiB holds any.
const RECEIVE_BUFFER_BYTES: usize = 64 << 10;

/// Why the groups could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open a netfilter netlink socket: {0}")]
    Socket(io::Error),
    #[error(
        "NFLOG group {group} is already bound by another listener: {holder}; stop it, or choose other groups with NFLOG_GROUPS"
    )]
    Busy { group: u16, holder: String },
    #[error(
        "not permitted to bind NFLOG group {group}: the agent needs CAP_NET_ADMIN in the network namespace of the rules (hostNetwork on Kubernetes)"
    )]
    NotPermitted { group: u16 },
    #[error("cannot bind NFLOG group {group}: {source}")]
    Bind { group: u16, source: io::Error },
}

impl OpenError {
    /// A mistake in how the agent was deployed (another listener, a missing capability), not a fault
    /// that retrying would cure.
    pub fn is_deployment(&self) -> bool {
        matches!(
            self,
            OpenError::Busy { .. } | OpenError::NotPermitted { .. }
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
}

impl NflogSocket {
    /// Binds `groups` (each to this socket only) copying `copy_range` bytes of each packet.
    pub fn open(groups: &[u16], copy_range: u16, buffer_bytes: usize) -> Result<Self, OpenError> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(OpenError::Socket)?;
        socket.bind_auto().map_err(OpenError::Socket)?;
        set_receive_buffer(&socket, buffer_bytes).map_err(OpenError::Socket)?;
        let receive_buffer_bytes = socket.get_rx_buf_sz().map_err(OpenError::Socket)?;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .map(|metadata| std::os::unix::fs::MetadataExt::ino(&metadata))
            .unwrap_or(0);
        let mut nflog = NflogSocket {
            socket,
            buffer: vec![0; RECEIVE_BUFFER_BYTES],
            inode,
            receive_buffer_bytes,
            early: VecDeque::new(),
            current: Vec::new(),
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
                .map_err(|error| bind_error(group, error))?;
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
        let table = std::fs::read_to_string("/proc/net/netlink").ok()?;
        holder::netlink_drops(&table, self.inode)
    }

    /// Sends one configuration request for `group` and waits for the kernel's acknowledgement.
    fn configure(&mut self, group: u16, nlas: Vec<ConfigNla>) -> io::Result<()> {
        let mut request = config_request(NetfilterProtoFamily::Unspec, group, nlas);
        request.header.sequence_number = u32::from(group) + 1;
        request.finalize();
        let mut bytes = vec![0; request.header.length as usize];
        request.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        loop {
            wait_readable(self.socket.as_raw_fd(), ACK_TIMEOUT_MS)?;
            let size = self.socket.recv(&mut &mut self.buffer[..], 0)?;
            let mut rest = &self.buffer[..size];
            let mut acknowledgement = None;
            while !rest.is_empty() {
                let message = NetlinkMessage::<NetfilterMessage>::deserialize(rest)
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
                let length = (message.header.length as usize).max(1);
                rest = rest.get(align(length)..).unwrap_or_default();
                if let NetlinkPayload::Error(error) = message.payload
                    && message.header.sequence_number == request.header.sequence_number
                {
                    // An acknowledgement is an error message with code 0 (`None`).
                    acknowledgement = Some(match error.code {
                        None => Ok(()),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    });
                }
            }
            match acknowledgement {
                Some(result) => return result,
                // Packets of a group bound a moment ago, ahead of this acknowledgement: kept for the
                // reader (an acknowledgement always comes alone in its datagram).
                None => self.early.push_back(self.buffer[..size].to_vec()),
            }
        }
    }
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
/// without the capability the ordinary SO_RCVBUF, capped by the kernel, is the fallback.
fn set_receive_buffer(socket: &Socket, bytes: usize) -> io::Result<()> {
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
        return Ok(());
    }
    log::warn!(
        "cannot force the NFLOG receive buffer to {bytes} bytes ({}); asking within net.core.rmem_max",
        io::Error::last_os_error()
    );
    socket.set_rx_buf_sz(value)
}

/// Waits until `fd` can be read, or fails with a timeout.
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut poll, 1, timeout_ms) } {
            1.. => return Ok(()),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel did not acknowledge the NFLOG configuration",
                ));
            }
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// The kernel answers a bind of a group that another socket holds with EPERM, the same answer as for
/// a missing CAP_NET_ADMIN; the group's row in /proc/net/netfilter/nfnetlink_log tells them apart.
fn bind_error(group: u16, error: io::Error) -> OpenError {
    match error.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EBUSY) => match holder::describe_holder(group) {
            Some(holder) => OpenError::Busy { group, holder },
            None => OpenError::NotPermitted { group },
        },
        _ => OpenError::Bind {
            group,
            source: error,
        },
    }
}
