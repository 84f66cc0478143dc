//! Plain data handed from one pipeline stage to the next: lines with their source positions, and the
//! drops (`PacketDrop`) parsed from them. No behaviour lives here beyond small conversions.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod policy;

pub use policy::{Policy, PolicyDirection, PolicyKind, Verdict};

/// A run of consecutive items from one source, with the position just after the last of them.
///
/// Stages pass batches rather than single items so that a burst costs one channel operation, and so that
/// the position travels with the data: the last stage acknowledges `end` only after it has handled every
/// item, which is what makes a checkpoint safe (it never points past an unhandled line).
///
/// `end` is `None` for a source that cannot resume (NFLOG: the kernel keeps no history), so there is
/// nothing to acknowledge or checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T> {
    pub items: Vec<T>,
    pub end: Option<Position>,
}

/// One log line as a source read it, without its line terminator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The time the source knows for this line (a journal entry's timestamp, a kmsg record's time).
    /// `None` for plain files: the parser reads the time from the line's syslog header.
    pub time: Option<DateTime<Utc>>,
    /// Where the line is in what the source reads: the same on every read of the same line, so that a
    /// replay after a restart is known for one.
    pub mark: Mark,
}

/// Where a source is, precise enough to resume right after the last handled line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Position {
    File(FilePosition),
    Journald(JournalPosition),
    Kmsg(KmsgPosition),
}

/// Where a line is in what its source reads: a content (a file's content from its first line on; a
/// journal's sequence-number space; a boot's kernel log) and a place in it that only grows (the
/// byte offset of the line's end, the entry's or record's sequence number). The same line read
/// again, after a restart, has the same mark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Mark {
    /// A checksum that names the content.
    pub content: u64,
    pub offset: u64,
}

/// A field of a journal cursor (`s=…;i=…;b=…;m=…;t=…;x=…`): `s` is the sequence-number space, `i` the
/// entry's sequence number in it (hexadecimal).
pub fn journal_cursor_field<'a>(cursor: &'a str, key: &str) -> Option<&'a str> {
    cursor
        .split(';')
        .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
}

/// A byte offset in one particular file (not merely one path: rotation swaps files under a path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// The path the agent follows; a checkpoint for another path is not used.
    pub path: PathBuf,
    pub identity: FileIdentity,
    /// Offset of the first byte not yet handed on (just after the last complete line).
    pub offset: u64,
    /// The file's modification time (nanoseconds since the Unix epoch) as last seen while it held
    /// this content: every file whose content came after this one was written later, which is how a
    /// restart finds the rotated files that came after it (`sources/file/rotated.rs`). 0 in
    /// checkpoints from before it was kept (then it is taken from the file again).
    #[serde(default, alias = "epoch")]
    pub written: u64,
}

/// A place in the systemd journal: the cursor of the last handled entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPosition {
    pub cursor: String,
}

/// A place in the kernel's ring buffer: records are numbered from boot, so the boot tells whether a
/// sequence number still means anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgPosition {
    /// `/proc/sys/kernel/random/boot_id` when the record was read.
    pub boot_id: String,
    /// The sequence number of the last handled record.
    pub sequence: u64,
}

/// What makes a file the same file: device and inode, plus a checksum of its first bytes, because an
/// inode number is reused as soon as a deleted file's inode is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub fingerprint: Fingerprint,
}

/// A checksum of the first `len` bytes of a file. A file shorter than the fingerprint size gets a
/// fingerprint of what it has; it grows (and stays comparable over the bytes it covers) as the file grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u32,
    pub checksum: u64,
}

/// A packet that a netfilter LOG rule reported, with the time and the rule's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketDrop {
    pub time: DateTime<Utc>,
    /// The host name from the syslog header, when the line had one.
    pub hostname: Option<String>,
    /// The configured prefix that matched this line.
    pub prefix: String,
    /// How many packets the line stands for: 1, but Antrea writes one line for the same packet seen
    /// N times within a second (`[N packets in D]`).
    pub count: u32,
    /// What was done to the packet, where the log says (a CNI's audit log; a LOG line does not).
    pub verdict: Option<Verdict>,
    pub packet: Packet,
    /// The mark of the line it was read from (`None` for NFLOG: no line, no replay).
    pub mark: Option<Mark>,
    /// The policy that dropped it, where the log names one (`parse/policy.rs`).
    pub policy: Option<Policy>,
}

/// The netfilter LOG fields that describe the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// `IN=`: the input interface, empty for locally generated packets.
    pub in_interface: String,
    /// `OUT=`: the output interface, empty for packets delivered locally.
    pub out_interface: String,
    /// `MAC=`: destination MAC, source MAC and EtherType; absent on OUTPUT-chain lines.
    pub mac: Option<String>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `LEN=`: the IP packet length (the first `LEN=`; UDP lines carry a second one).
    pub length: Option<u32>,
    /// `TTL=` (IPv4) or `HOPLIMIT=` (IPv6).
    pub ttl: Option<u8>,
    /// `ID=`: the IP identification (the first `ID=`; ICMP echo lines carry a second one).
    pub id: Option<u32>,
    pub protocol: Protocol,
    pub transport: Transport,
    /// Bare words such as `DF`, `SYN`, `ACK`.
    pub flags: Flags,
}

impl Packet {
    /// A packet as a CNI's own log describes it: addresses, protocol and ports, no interfaces or
    /// IP header fields (the caller adds what its log has).
    pub fn flow(src: IpAddr, dst: IpAddr, protocol: Protocol, transport: Transport) -> Packet {
        Packet {
            in_interface: String::new(),
            out_interface: String::new(),
            mac: None,
            src,
            dst,
            length: None,
            ttl: None,
            id: None,
            protocol,
            transport,
            flags: Flags::default(),
        }
    }
}

/// The `PROTO=` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    UdpLite,
    Icmp,
    Icmpv6,
    Sctp,
    /// A protocol the kernel printed as a number (`PROTO=47`).
    Number(u8),
}

impl Protocol {
    /// The name as the original agent's event text writes it (`80/TCP`).
    pub fn name(self) -> String {
        match self {
            Protocol::Tcp => "TCP".to_string(),
            Protocol::Udp => "UDP".to_string(),
            Protocol::UdpLite => "UDPLITE".to_string(),
            Protocol::Icmp => "ICMP".to_string(),
            Protocol::Icmpv6 => "ICMPv6".to_string(),
            Protocol::Sctp => "SCTP".to_string(),
            Protocol::Number(n) => n.to_string(),
        }
    }
}

/// What the transport header told: ports, or ICMP type and code, or nothing known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Ports { src: u16, dst: u16 },
    Icmp { kind: u8, code: u8 },
    None,
}

/// Known bare-word flags of a LOG line, as a bit set (no allocation per line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// Every flag word the kernel writes, in the order it writes them.
    pub const NAMES: [&'static str; 11] = [
        "CE", "DF", "MF", "CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN",
    ];

    /// Adds `word` if it is a known flag; returns whether it was.
    pub fn insert(&mut self, word: &str) -> bool {
        match Self::NAMES.iter().position(|name| *name == word) {
            Some(bit) => {
                self.0 |= 1 << bit;
                true
            }
            None => false,
        }
    }

    pub fn contains(self, word: &str) -> bool {
        Self::NAMES
            .iter()
            .position(|name| *name == word)
            .is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    /// The set flags, in kernel order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// A pod as the agent keeps it: only the fields it uses, so that 100,000 pods stay small.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.nodeName`.
    pub node: String,
    /// `spec.hostNetwork`: the pod's IP is its node's, shared with every other such pod there.
    pub host_network: bool,
    /// The value of the label named by `POD_IDENTIFIER_LABEL`, when that is configured and set.
    pub identifier_label: Option<String>,
    /// The pod's labels (what NetworkPolicies select it by), shared with every pod that has the same.
    pub labels: Labels,
}

/// A set of labels, sorted by key. Pods of one workload have the same labels, and the pod watch
/// hands them one shared copy (`resolve/labels.rs`): a pod costs a pointer, not its labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Arc<[(Box<str>, Box<str>)]>);

impl Labels {
    pub fn new(mut pairs: Vec<(Box<str>, Box<str>)>) -> Labels {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Labels(pairs.into())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let at = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether both are the one shared copy (not merely equal).
    pub fn same_copy(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// How a pod is named in the text of an Event about its peer (`POD_IDENTIFIER`, as the original).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodIdentifier {
    /// The pod's namespace (the original's default).
    Namespace,
    /// The pod's name.
    Name,
    /// The value of the label `POD_IDENTIFIER_LABEL` (the pod's name when it has no such label).
    Label,
    /// `namespace/name`.
    NameWithNamespace,
}

/// Who sent or received a dropped packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A pod with an IP of its own: it gets an Event.
    Pod(Arc<PodInfo>),
    /// An IP that hostNetwork pods use: the node's. Named by the node; it gets no Event, since no one
    /// pod owns the IP.
    Node { ip: IpAddr, node: String },
    /// An IP that is no pod: named by reverse DNS, or by the IP itself when that finds nothing.
    External { ip: IpAddr, name: String },
}

/// A drop with both of its ends identified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub drop: PacketDrop,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Where the log names no policy: the NetworkPolicies that isolate each pod end in the drop's
    /// direction (`resolve/policies.rs`).
    pub isolation: Isolation,
}

/// The names of the NetworkPolicies (of the pod's own namespace) that isolate the sending pod for
/// egress and the receiving pod for ingress; empty where none does or the end is no pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Isolation {
    pub sender: Vec<String>,
    pub receiver: Vec<String>,
}

/// Which side of a drop an Event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The pod sent the packet ("sending traffic to").
    Sending,
    /// The pod was to receive it ("receiving traffic from").
    Receiving,
}

/// The most an Event can count: the API's `count` is an int32. A write carries at most this many
/// drops, and an Event's count stops here instead of wrapping or being refused.
pub const MAX_EVENT_COUNT: u32 = i32::MAX as u32;

/// One write the events stage asks of the API: add `count` drops to the Event `name` on `pod`,
/// creating it if it does not exist yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventWrite {
    /// Identifies this write in its [`EventOutcome`].
    pub ticket: u64,
    /// Deterministic, so a retry or a restart updates the same Event instead of creating another.
    pub name: String,
    pub pod: Arc<PodInfo>,
    pub message: String,
    /// Drops to add to the Event's count; at most [`MAX_EVENT_COUNT`].
    pub count: u32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Where in the source these drops were read: what makes a replay after a restart countable once.
    pub marks: WriteMarks,
}

/// The source marks of a write's drops. The Event records how far into each content it has counted
/// (the highest offset per content); a drop at or below that was counted by an earlier run and is
/// not added again. Only the first write of an Event in a run can meet such drops (a replay starts at
/// the checkpoint, before anything new), so only it carries every drop's mark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteMarks {
    /// The highest offset of the drops in each content they were read from, in reading order.
    pub through: Vec<Mark>,
    /// Each drop's mark, in reading order, when this is the Event's first write in this run; empty
    /// otherwise (every drop is new).
    pub each: Vec<Mark>,
    /// Drops of a first write whose marks were not kept (past a cap): they count as new. They come
    /// after the kept ones in the stream, so only a replay longer than the cap is counted twice.
    pub unkept: u32,
}

/// What became of an [`EventWrite`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventOutcome {
    pub ticket: u64,
    pub result: WriteResult,
    /// Once accepted: how far the Event has counted in each content. A later drop of this run at or
    /// below it is one an earlier run counted (a replay reaching past the Event's first write).
    pub through: Vec<Mark>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// The API accepted it: the Event was created, or its count raised.
    Accepted { created: bool },
    /// Given up on, for the reason named (a metric label, e.g. `rejected` for a 4xx that cannot
    /// succeed); counted in `kube_iptables_tailer_events_dropped_total{reason}`.
    Shed { reason: &'static str },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_keep_known_words_in_kernel_order() {
        let mut flags = Flags::default();
        assert!(flags.insert("SYN"));
        assert!(flags.insert("DF"));
        assert!(!flags.insert("URGP=0"));
        assert_eq!(flags.names(), vec!["DF", "SYN"]);
        assert!(flags.contains("SYN"));
        assert!(!flags.contains("ACK"));
    }
}
