//! The policy behind a drop, as a CNI's log names it: its kind, name, rule and direction, and what
//! it did to the packet.

/// What a policy did to a packet: dropped it silently, or rejected it (the sender was told).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Drop,
    Reject,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        }
    }
}

/// A network policy that dropped a packet, as the CNI's log names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub kind: PolicyKind,
    /// Empty for a kind that is not namespaced (a GlobalNetworkPolicy, an AdminNetworkPolicy).
    pub namespace: String,
    pub name: String,
    /// The rule, tier or index within the policy, where the log names it (not part of an Event's
    /// identity: the policy is what its owner looks up).
    pub rule: Option<String>,
    /// Which of the policy's directions dropped it, where the log says.
    pub direction: Option<PolicyDirection>,
}

/// A policy's rule direction, as the pod it guards sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyDirection {
    Ingress,
    Egress,
}

impl PolicyDirection {
    /// The metric's label value.
    pub fn label(self) -> &'static str {
        match self {
            PolicyDirection::Ingress => "ingress",
            PolicyDirection::Egress => "egress",
        }
    }
}

impl Policy {
    /// A policy of `kind` in `namespace` (empty: cluster-wide) named `name`, rule unknown.
    pub fn new(kind: PolicyKind, namespace: &str, name: &str) -> Policy {
        Policy {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            rule: None,
            direction: None,
        }
    }

    /// `NAMESPACE/NAME`, or `NAME` for a kind that is not namespaced: as `kubectl get` takes it.
    pub fn qualified_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// The kind of a [`Policy`]: the resources of each CNI that drop packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// Calico's own `projectcalico.org/v3` NetworkPolicy (namespaced).
    CalicoNetworkPolicy,
    /// Calico's GlobalNetworkPolicy (cluster-wide).
    GlobalNetworkPolicy,
    /// Calico's staged policies (they log what they would drop).
    StagedNetworkPolicy,
    StagedGlobalNetworkPolicy,
    StagedKubernetesNetworkPolicy,
    /// Calico's profile (a namespace's or service account's defaults).
    CalicoProfile,
    /// `policy.networking.k8s.io` ClusterNetworkPolicy (Calico's `kcnp`).
    ClusterNetworkPolicy,
    /// Antrea-native policies (`crd.antrea.io`).
    AntreaNetworkPolicy,
    AntreaClusterNetworkPolicy,
    /// `policy.networking.k8s.io` AdminNetworkPolicy and BaselineAdminNetworkPolicy (cluster-wide).
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
    /// OVN-Kubernetes' EgressFirewall (namespaced).
    EgressFirewall,
}

impl PolicyKind {
    /// The kind as its CNI names it.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::CalicoNetworkPolicy => "CalicoNetworkPolicy",
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            PolicyKind::StagedNetworkPolicy => "StagedNetworkPolicy",
            PolicyKind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            PolicyKind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            PolicyKind::CalicoProfile => "Profile",
            PolicyKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
            PolicyKind::AntreaNetworkPolicy => "AntreaNetworkPolicy",
            PolicyKind::AntreaClusterNetworkPolicy => "AntreaClusterNetworkPolicy",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            PolicyKind::EgressFirewall => "EgressFirewall",
        }
    }
}
