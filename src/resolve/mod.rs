//! The resolve stage: who is behind each IP of a drop — a pod from the pod index, a node (hostNetwork),
//! or a name from reverse DNS — turning a `PacketDrop` into a `Located`.
//!
//! The stage starts only once the pod index has synced with the API: before that, every pod would look
//! like an external IP. Drops read meanwhile wait in the bounded channels upstream, so none is lost.
//! Every batch is passed on, even an empty one, so that its position reaches the checkpoint.

pub mod dns;
pub mod labels;
pub mod pod_lookup;
pub mod pods;
pub mod policies;
pub mod remote;

use std::collections::HashSet;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::metrics::Metrics;
use crate::metrics::policy::{MAX_POLICY_LABELS, PolicyLabels};
use crate::model::{Batch, Endpoint, Isolation, Located, PacketDrop, PolicyDirection};
use crate::stop::Stop;
use dns::ReverseDns;
use pod_lookup::PodLookup;
use policies::PolicyIndex;

/// Namespaces that get a `packet_drops_count` label value of their own; later ones are `other`.
pub const MAX_NAMESPACE_LABELS: usize = 200;

/// Thread body: waits for the index to sync (returns if stopped first), then locates every drop.
/// Returns when `input` is disconnected or `output`'s receiver is gone. `pods`: the pod index
/// (cluster mode), or a [`PodLookup`] with the remote pods too (node mode).
pub fn run(
    input: Receiver<Batch<PacketDrop>>,
    output: Sender<Batch<Located>>,
    pods: impl Into<PodLookup>,
    policies: Arc<PolicyIndex>,
    dns: ReverseDns,
    stop: Stop,
    metrics: Arc<Metrics>,
) {
    let pods = pods.into();
    if !pods.index().wait_synced(&stop) {
        log::info!("stopped before the pod index synced");
        return;
    }
    let mut labels = NamespaceLabels::new(MAX_NAMESPACE_LABELS);
    let mut policy_labels = PolicyLabels::new(MAX_POLICY_LABELS);
    for batch in &input {
        pods.prepare(&batch.items, !input.is_empty());
        let items = batch
            .items
            .into_iter()
            .map(|drop| {
                let located = locate(drop, &pods, &policies, &dns);
                let src = labels.of(&located.src);
                let dst = labels.of(&located.dst);
                let drops = u64::from(located.drop.count);
                metrics
                    .packet_drops
                    .with_label_values(&[src, dst])
                    .inc_by(drops);
                if let Some(policy) = &located.drop.policy {
                    let policy_labels =
                        policy_labels.of(policy, Some(&located.src), Some(&located.dst));
                    metrics
                        .policy_drops
                        .with_label_values(&policy_labels)
                        .inc_by(drops);
                }
                located
            })
            .collect();
        if output
            .send(Batch {
                items,
                end: batch.end,
            })
            .is_err()
        {
            return;
        }
    }
}

fn locate(drop: PacketDrop, pods: &PodLookup, policies: &PolicyIndex, dns: &ReverseDns) -> Located {
    let endpoint = |ip| {
        pods.lookup(ip).unwrap_or_else(|| Endpoint::External {
            ip,
            name: dns.name_of(ip),
        })
    };
    let src = endpoint(drop.packet.src);
    let dst = endpoint(drop.packet.dst);
    // Only where the log does not say which policy dropped it; NetworkPolicies do not apply to
    // hostNetwork pods.
    let isolating = |end: &Endpoint, direction| match end {
        Endpoint::Pod(pod) if drop.policy.is_none() && !pod.host_network => {
            policies.isolating(pod, direction)
        }
        _ => Vec::new(),
    };
    let isolation = Isolation {
        sender: isolating(&src, PolicyDirection::Egress),
        receiver: isolating(&dst, PolicyDirection::Ingress),
    };
    Located {
        src,
        dst,
        drop,
        isolation,
    }
}

/// The `packet_drops_count` label for an endpoint: its namespace for a pod, `node` or `external`
/// otherwise. Only the first `cap` namespaces seen get a label value of their own, so a cluster with
/// many namespaces cannot grow the metric without bound; later ones share `other`.
pub struct NamespaceLabels {
    cap: usize,
    known: HashSet<String>,
}

impl NamespaceLabels {
    pub const NODE: &'static str = "node";
    pub const EXTERNAL: &'static str = "external";
    pub const OTHER: &'static str = "other";

    pub fn new(cap: usize) -> NamespaceLabels {
        NamespaceLabels {
            cap,
            known: HashSet::new(),
        }
    }

    pub fn of<'a>(&mut self, endpoint: &'a Endpoint) -> &'a str {
        match endpoint {
            Endpoint::Pod(pod) => {
                if self.known.contains(&pod.namespace) {
                    &pod.namespace
                } else if self.known.len() < self.cap {
                    self.known.insert(pod.namespace.clone());
                    &pod.namespace
                } else {
                    Self::OTHER
                }
            }
            Endpoint::Node { .. } => Self::NODE,
            Endpoint::External { .. } => Self::EXTERNAL,
        }
    }
}

#[cfg(test)]
mod tests;
