//! The labels of `policy_drops_total`: the policy's namespace and name, and the direction it guards.
//! Only the first `cap` policies seen get label values of their own (a cluster with many policies
//! cannot grow the metric without bound); later ones share `other`.

use std::collections::HashSet;

use crate::model::{Endpoint, Policy};

/// Policies with label values of their own, at most.
pub const MAX_POLICY_LABELS: usize = 1_000;

pub struct PolicyLabels {
    cap: usize,
    known: HashSet<(String, String)>,
}

impl PolicyLabels {
    pub const OTHER: &'static str = "other";

    pub fn new(cap: usize) -> PolicyLabels {
        PolicyLabels {
            cap,
            known: HashSet::new(),
        }
    }

    /// `[namespace, policy, direction]` for a drop by `policy` from `src` to `dst`.
    pub fn of<'a>(
        &mut self,
        policy: &'a Policy,
        src: Option<&Endpoint>,
        dst: Option<&Endpoint>,
    ) -> [&'a str; 3] {
        let key = (policy.namespace.clone(), policy.name.clone());
        let known = self.known.contains(&key) || {
            let room = self.known.len() < self.cap;
            if room {
                self.known.insert(key);
            }
            room
        };
        let direction = direction(policy, src, dst);
        if known {
            [&policy.namespace, &policy.name, direction]
        } else {
            [Self::OTHER, Self::OTHER, direction]
        }
    }
}

/// As the log says; else a namespaced policy guards the pods of its own namespace: the drop was at
/// their ingress when only the destination is one of them, at their egress when only the source is;
/// otherwise (both, neither, not resolved to pods, a cluster-wide policy) it is not known.
fn direction(policy: &Policy, src: Option<&Endpoint>, dst: Option<&Endpoint>) -> &'static str {
    if let Some(direction) = policy.direction {
        return direction.label();
    }
    if policy.namespace.is_empty() {
        return "unknown";
    }
    let in_namespace = |endpoint: Option<&Endpoint>| matches!(endpoint, Some(Endpoint::Pod(pod)) if pod.namespace == policy.namespace);
    match (in_namespace(src), in_namespace(dst)) {
        (false, true) => "ingress",
        (true, false) => "egress",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{PodInfo, PolicyKind};

    fn policy(namespace: &str, name: &str) -> Policy {
        Policy::new(PolicyKind::NetworkPolicy, namespace, name)
    }

    fn pod(namespace: &str) -> Endpoint {
        Endpoint::Pod(Arc::new(PodInfo {
            namespace: namespace.to_string(),
            name: "p".to_string(),
            uid: "u".to_string(),
            node: "n".to_string(),
            host_network: false,
            identifier_label: None,
            labels: Default::default(),
        }))
    }

    #[test]
    fn the_direction_is_told_by_which_end_is_in_the_policys_namespace() {
        let mut labels = PolicyLabels::new(10);
        let deny = policy("shop", "deny-all");
        let (shop, other) = (pod("shop"), pod("db"));
        assert_eq!(
            labels.of(&deny, Some(&other), Some(&shop)),
            ["shop", "deny-all", "ingress"]
        );
        assert_eq!(
            labels.of(&deny, Some(&shop), Some(&other)),
            ["shop", "deny-all", "egress"]
        );
        assert_eq!(labels.of(&deny, Some(&shop), Some(&shop))[2], "unknown");
        assert_eq!(labels.of(&deny, None, None)[2], "unknown");
    }

    #[test]
    fn policies_past_the_cap_share_other() {
        let mut labels = PolicyLabels::new(2);
        let (a, b, c) = (policy("x", "a"), policy("x", "b"), policy("x", "c"));
        assert_eq!(labels.of(&a, None, None)[1], "a");
        assert_eq!(labels.of(&b, None, None)[1], "b");
        assert_eq!(labels.of(&c, None, None)[..2], ["other", "other"]);
        assert_eq!(labels.of(&a, None, None)[1], "a", "known ones keep theirs");
    }
}
