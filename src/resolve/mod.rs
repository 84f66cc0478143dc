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

use std::collections::{HashMap, HashSet};
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
/// Distinct `packet_drops_count{src,dst}` pairs, at most; later pairs are counted as `other`/`other`.
pub const MAX_NAMESPACE_PAIRS: usize = 1_000;

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
    let mut labels = NamespaceLabels::new(MAX_NAMESPACE_LABELS, MAX_NAMESPACE_PAIRS);
    let mut policy_labels = PolicyLabels::new(MAX_POLICY_LABELS);
    for batch in &input {
        pods.prepare(&batch.items, !input.is_empty());
        let items = batch
            .items
            .into_iter()
            .map(|drop| {
                let located = locate(drop, &pods, &policies, &dns);
                let [src, dst] = labels.pair(&located.src, &located.dst);
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
    let (src, dst) = (pods.lookup(drop.packet.src), pods.lookup(drop.packet.dst));
    // A name is looked up only for the peer of a pod: without a pod end no Event names anything.
    let named = src.is_some() || dst.is_some();
    let endpoint = |found: Option<Endpoint>, ip: std::net::IpAddr| {
        found.unwrap_or_else(|| Endpoint::External {
            ip,
            name: named
                .then(|| dns.name_now(ip))
                .flatten()
                .unwrap_or_else(|| ip.to_string()),
        })
    };
    let src = endpoint(src, drop.packet.src);
    let dst = endpoint(dst, drop.packet.dst);
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

/// The `packet_drops_count{src,dst}` labels of a drop: each end's namespace for a pod, `node` or
/// `external` otherwise. The metric must not grow without bound on a cluster with many namespaces:
/// only the first `cap` namespaces seen get a label value of their own (later ones share `other`),
/// and only the first `pair_cap` pairs of values a series of their own.
///
/// A pair past the cap is counted as `other`/`other`, both ends, rather than keeping one end: that
/// gives a hard bound of `pair_cap + 1` series whatever the order drops come in (keeping `src` with
/// `dst="other"` would add up to a series per label value on each side), the pairs seen first keep
/// counting in their own series, and every drop is still counted once. `other`/`other` above zero
/// says the bound was reached.
pub struct NamespaceLabels {
    cap: usize,
    pair_cap: usize,
    /// Namespaces with a label value of their own, each numbered (after the fixed values) so that
    /// a pair is two numbers.
    known: HashMap<String, usize>,
    pairs: HashSet<(usize, usize)>,
}

impl NamespaceLabels {
    pub const NODE: &'static str = "node";
    pub const EXTERNAL: &'static str = "external";
    pub const OTHER: &'static str = "other";

    pub fn new(cap: usize, pair_cap: usize) -> NamespaceLabels {
        NamespaceLabels {
            cap,
            pair_cap,
            known: HashMap::new(),
            pairs: HashSet::new(),
        }
    }

    /// `[src, dst]` for a drop from `src` to `dst`.
    pub fn pair<'a>(&mut self, src: &'a Endpoint, dst: &'a Endpoint) -> [&'a str; 2] {
        let (src, src_number) = self.label(src);
        let (dst, dst_number) = self.label(dst);
        let pair = (src_number, dst_number);
        if self.pairs.contains(&pair) {
            return [src, dst];
        }
        if self.pairs.len() < self.pair_cap {
            self.pairs.insert(pair);
            return [src, dst];
        }
        [Self::OTHER, Self::OTHER]
    }

    /// One end's label value, and its number: 0 to 2 for the fixed values, then the namespaces in
    /// the order first seen.
    fn label<'a>(&mut self, endpoint: &'a Endpoint) -> (&'a str, usize) {
        match endpoint {
            Endpoint::Node { .. } => (Self::NODE, 0),
            Endpoint::External { .. } => (Self::EXTERNAL, 1),
            Endpoint::Pod(pod) => match self.known.get(&pod.namespace) {
                Some(number) => (&pod.namespace, *number),
                None if self.known.len() < self.cap => {
                    let number = 3 + self.known.len();
                    self.known.insert(pod.namespace.clone(), number);
                    (&pod.namespace, number)
                }
                None => (Self::OTHER, 2),
            },
        }
    }
}

#[cfg(test)]
mod tests;
