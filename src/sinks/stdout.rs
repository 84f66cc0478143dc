//! The stdout sink: one JSON object per drop, one per line, then the batch's position is acknowledged.

use std::io::Write;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::metrics::policy::{MAX_POLICY_LABELS, PolicyLabels};
use crate::model::{Batch, PacketDrop, PolicyDirection, Position, Transport, Verdict};

/// Namespace label for `packet_drops_count` until drops are resolved to pods.
const UNKNOWN_NAMESPACE: &str = "unknown";

/// A drop as printed. IPs are in canonical text form (the kernel writes IPv6 fully expanded).
#[derive(Serialize)]
struct Record<'a> {
    time: String,
    hostname: Option<&'a str>,
    prefix: &'a str,
    #[serde(rename = "in")]
    in_interface: &'a str,
    #[serde(rename = "out")]
    out_interface: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<&'a str>,
    src: String,
    dst: String,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    spt: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpt: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u8>,
    flags: Vec<&'static str>,
    /// Packets the line stands for, when more than one (Antrea's `[N packets in D]`).
    #[serde(skip_serializing_if = "is_one")]
    count: u32,
    /// `drop` or `reject`, where the log says.
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    /// The policy that dropped it, where the log names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<PolicyRecord<'a>>,
}

#[derive(Serialize)]
struct PolicyRecord<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
}

fn is_one(count: &u32) -> bool {
    *count == 1
}

impl<'a> Record<'a> {
    fn new(drop: &'a PacketDrop) -> Record<'a> {
        let packet = &drop.packet;
        let (spt, dpt, icmp_type, icmp_code) = match packet.transport {
            Transport::Ports { src, dst } => (Some(src), Some(dst), None, None),
            Transport::Icmp { kind, code } => (None, None, Some(kind), Some(code)),
            Transport::None => (None, None, None, None),
        };
        Record {
            time: drop
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            hostname: drop.hostname.as_deref(),
            prefix: &drop.prefix,
            in_interface: &packet.in_interface,
            out_interface: &packet.out_interface,
            mac: packet.mac.as_deref(),
            src: packet.src.to_string(),
            dst: packet.dst.to_string(),
            proto: packet.protocol.name(),
            spt,
            dpt,
            icmp_type,
            icmp_code,
            len: packet.length,
            ttl: packet.ttl,
            flags: packet.flags.names(),
            count: drop.count,
            verdict: drop.verdict.map(Verdict::name),
            policy: drop.policy.as_ref().map(|policy| PolicyRecord {
                kind: policy.kind.name(),
                namespace: &policy.namespace,
                name: &policy.name,
                rule: policy.rule.as_deref(),
                direction: policy.direction.map(PolicyDirection::label),
            }),
        }
    }
}

/// Thread body: prints every drop, flushes once per batch, then acknowledges the batch's end position.
/// Returns when `input` is disconnected, or with the error when stdout cannot be written.
pub fn run(
    input: Receiver<Batch<PacketDrop>>,
    acks: Option<Sender<Position>>,
    mut out: impl Write,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let drops_unknown = metrics
        .packet_drops
        .with_label_values(&[UNKNOWN_NAMESPACE, UNKNOWN_NAMESPACE]);
    let mut policy_labels = PolicyLabels::new(MAX_POLICY_LABELS);
    for batch in input {
        for drop in &batch.items {
            serde_json::to_writer(&mut out, &Record::new(drop))?;
            out.write_all(b"\n")?;
            metrics.records_written.inc();
            drops_unknown.inc_by(u64::from(drop.count));
            if let Some(policy) = &drop.policy {
                let labels = policy_labels.of(policy, None, None);
                metrics
                    .policy_drops
                    .with_label_values(&labels)
                    .inc_by(u64::from(drop.count));
            }
        }
        out.flush()?;
        if let (Some(acks), Some(end)) = (&acks, batch.end) {
            // The checkpoint writer only goes away at shutdown, after this loop ends.
            let _ = acks.send(end);
        }
    }
    Ok(())
}
