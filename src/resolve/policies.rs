//! The cluster's NetworkPolicies, kept to answer one question: which policies isolate this pod in
//! this direction? A pod is isolated for ingress (egress) by every policy of its namespace whose
//! `podSelector` matches its labels and whose `policyTypes` hold Ingress (Egress); traffic the
//! isolating policies do not allow is dropped. Where a drop's log names no policy, its Event says
//! which policies isolate the pod (`...; isolated by NetworkPolicy shop/default-deny`).
//!
//! The rules' peers are not evaluated (that needs the peer's and its namespace's labels): a policy
//! that selects the pod is listed even if one of its rules would allow this peer. A policy with a
//! rule that allows everything (`{}`: no peers, no ports) isolates nothing and is left out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::model::{Labels, PodInfo, PolicyDirection};

/// What the index keeps of one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolatingPolicy {
    pub namespace: String,
    pub name: String,
    selector: Selector,
    ingress: bool,
    egress: bool,
}

/// A label selector: every requirement must hold (an empty selector selects every pod).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    /// An operator Kubernetes does not know: selects nothing (the API server refuses such a policy).
    Never,
}

impl Selector {
    fn from_api(selector: &LabelSelector) -> Selector {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(key, value)| Requirement::Equals(key.clone(), value.clone()))
            .collect();
        for expression in selector.match_expressions.iter().flatten() {
            let key = expression.key.clone();
            let values = expression.values.clone().unwrap_or_default();
            requirements.push(match expression.operator.as_str() {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                _ => Requirement::Never,
            });
        }
        Selector { requirements }
    }

    fn matches(&self, labels: &Labels) -> bool {
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::Equals(key, value) => labels.get(key) == Some(value.as_str()),
                Requirement::In(key, values) => labels
                    .get(key)
                    .is_some_and(|value| values.iter().any(|v| v == value)),
                Requirement::NotIn(key, values) => labels
                    .get(key)
                    .is_none_or(|value| values.iter().all(|v| v != value)),
                Requirement::Exists(key) => labels.get(key).is_some(),
                Requirement::DoesNotExist(key) => labels.get(key).is_none(),
                Requirement::Never => false,
            })
    }
}

/// Whether a rule allows every peer on every port (`{}`), which makes the direction open.
fn allows_everything(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
) -> bool {
    peers.is_none_or(Vec::is_empty) && ports.is_none_or(Vec::is_empty)
}

impl IsolatingPolicy {
    /// What the index keeps of `policy`; `None` for one without a namespace or name.
    pub fn from_api(policy: &NetworkPolicy) -> Option<IsolatingPolicy> {
        let namespace = policy.metadata.namespace.clone()?;
        let name = policy.metadata.name.clone()?;
        let spec = policy.spec.as_ref()?;
        let ingress_rules = spec.ingress.as_ref();
        let egress_rules = spec.egress.as_ref();
        // Unset policyTypes (the API server defaults them; older objects): Ingress always, Egress
        // when there are egress rules.
        let (ingress_type, egress_type) = match &spec.policy_types {
            Some(types) if !types.is_empty() => (
                types.iter().any(|t| t == "Ingress"),
                types.iter().any(|t| t == "Egress"),
            ),
            _ => (true, egress_rules.is_some_and(|rules| !rules.is_empty())),
        };
        let ingress_open = ingress_rules.is_some_and(|rules| {
            rules
                .iter()
                .any(|rule| allows_everything(rule.from.as_ref(), rule.ports.as_ref()))
        });
        let egress_open = egress_rules.is_some_and(|rules| {
            rules
                .iter()
                .any(|rule| allows_everything(rule.to.as_ref(), rule.ports.as_ref()))
        });
        Some(IsolatingPolicy {
            namespace,
            name,
            selector: spec
                .pod_selector
                .as_ref()
                .map(Selector::from_api)
                .unwrap_or_default(),
            ingress: ingress_type && !ingress_open,
            egress: egress_type && !egress_open,
        })
    }

    fn isolates(&self, pod: &PodInfo, direction: PolicyDirection) -> bool {
        let guards = match direction {
            PolicyDirection::Ingress => self.ingress,
            PolicyDirection::Egress => self.egress,
        };
        guards && self.namespace == pod.namespace && self.selector.matches(&pod.labels)
    }
}

/// The policies, by namespace; shared by the policy watch (writer) and the resolve stage (reader).
#[derive(Default)]
pub struct PolicyIndex {
    by_namespace: RwLock<HashMap<String, Vec<Arc<IsolatingPolicy>>>>,
}

impl PolicyIndex {
    /// The names of the policies that isolate `pod` in `direction`, sorted.
    pub fn isolating(&self, pod: &PodInfo, direction: PolicyDirection) -> Vec<String> {
        let by_namespace = self
            .by_namespace
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut names: Vec<String> = by_namespace
            .get(&pod.namespace)
            .into_iter()
            .flatten()
            .filter(|policy| policy.isolates(pod, direction))
            .map(|policy| policy.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Replaces every policy (a full list).
    pub fn replace_all(&self, policies: Vec<IsolatingPolicy>) {
        let mut by_namespace: HashMap<String, Vec<Arc<IsolatingPolicy>>> = HashMap::new();
        for policy in policies {
            by_namespace
                .entry(policy.namespace.clone())
                .or_default()
                .push(Arc::new(policy));
        }
        *self
            .by_namespace
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = by_namespace;
    }

    /// Adds or replaces one policy.
    pub fn upsert(&self, policy: IsolatingPolicy) {
        let mut by_namespace = self
            .by_namespace
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let policies = by_namespace.entry(policy.namespace.clone()).or_default();
        policies.retain(|known| known.name != policy.name);
        policies.push(Arc::new(policy));
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        let mut by_namespace = self
            .by_namespace
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(policies) = by_namespace.get_mut(namespace) {
            policies.retain(|known| known.name != name);
            if policies.is_empty() {
                by_namespace.remove(namespace);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_namespace
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
