//! Tests of the events stage: drops built the way the resolve stage builds them, and a thread that
//! runs [`run`](super::run) with a test playing the kube thread.

mod stage;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    Endpoint, FileIdentity, FilePosition, Fingerprint, Flags, Located, Packet, PacketDrop, PodInfo,
    Position, Protocol, Transport,
};

pub(super) const NODE: &str = "node-1";

pub(super) fn pod(namespace: &str, name: &str, uid: &str) -> Arc<PodInfo> {
    Arc::new(PodInfo {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        node: NODE.to_string(),
        host_network: false,
        identifier_label: None,
        labels: Default::default(),
    })
}

pub(super) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// 2024-05-01T10:00:00Z plus `seconds`.
pub(super) fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

pub(super) fn external(ip_text: &str, name: &str) -> Endpoint {
    Endpoint::External {
        ip: ip(ip_text),
        name: name.to_string(),
    }
}

/// A TCP drop from `src` (at `src_ip`) to `dst` (at `dst_ip`) port `dpt`, at `time`.
pub(super) fn tcp(
    src_ip: &str,
    src: Endpoint,
    dst_ip: &str,
    dst: Endpoint,
    dpt: u16,
    time: DateTime<Utc>,
) -> Located {
    Located {
        isolation: Default::default(),
        drop: PacketDrop {
            time,
            hostname: Some(NODE.to_string()),
            count: 1,
            verdict: None,
            prefix: "DROP:".to_string(),
            mark: None,
            policy: None,
            packet: Packet {
                in_interface: "eth0".to_string(),
                out_interface: String::new(),
                mac: None,
                src: ip(src_ip),
                dst: ip(dst_ip),
                length: Some(60),
                ttl: Some(64),
                id: Some(1),
                protocol: Protocol::Tcp,
                transport: Transport::Ports {
                    src: 40000,
                    dst: dpt,
                },
                flags: Flags::default(),
            },
        },
        src,
        dst,
    }
}

/// A file position at `offset`, standing for the end of a batch.
pub(super) fn position(offset: u64) -> Position {
    Position::File(FilePosition {
        path: PathBuf::from("/var/log/iptables.log"),
        identity: FileIdentity {
            device: 1,
            inode: 2,
            fingerprint: Fingerprint {
                len: 0,
                checksum: 0,
            },
        },
        offset,
        written: 0,
    })
}
