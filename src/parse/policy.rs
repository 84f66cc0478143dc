//! The policy a drop's log prefix names, where the CNI writes one there. Pure text, no lookups.
//!
//! - kube-router as k3s ships it logs each policy's drops to NFLOG group 100 with the prefix
//!   `DROP by policy NAMESPACE/NAME` (k3s-io/kube-router, `appendRuleToPolicyChain`; upstream
//!   kube-router sets no prefix). The writer cuts `NAMESPACE/NAME` to 48 characters to keep the
//!   prefix within netfilter's 64: a long name is reported as logged.
//! - Calico (3.30/3.31 patch releases on) expands `%k` (the policy kind's short name) and `%p`
//!   (`NAMESPACE/NAME`, or `NAME` for a cluster-wide kind) in Felix's `logPrefix`, e.g.
//!   `calico-drop %k %p` renders `calico-drop knp shop/deny-all: ` (Felix adds the `: `). Any
//!   prefix holding a kind short name followed by a name is read that way.
//!
//! See `docs/cni-drop-logs.md` for the sources.

use crate::model::{Policy, PolicyKind};

const KUBE_ROUTER: &str = "DROP by policy ";

/// The policy `logged` (the prefix as the kernel logged it, e.g. NFLOG's `NFULA_PREFIX`) names.
pub fn from_prefix(logged: &str) -> Option<Policy> {
    match logged.trim().strip_prefix(KUBE_ROUTER) {
        Some(named) => kube_router(named),
        None => calico(logged),
    }
}

fn kube_router(named: &str) -> Option<Policy> {
    let (namespace, name) = named.trim().split_once('/')?;
    if !valid(namespace) || !valid(name) || name.contains('/') {
        return None;
    }
    Some(Policy::new(PolicyKind::NetworkPolicy, namespace, name))
}

/// A name part as Kubernetes allows it: not empty, no whitespace.
fn valid(part: &str) -> bool {
    !part.is_empty() && !part.contains(char::is_whitespace)
}

/// Felix's `%k` short names (`PolicyID.KindShortName`) and whether the kind is namespaced.
fn calico_kind(short: &str) -> Option<(PolicyKind, bool)> {
    Some(match short {
        "knp" => (PolicyKind::NetworkPolicy, true),
        "np" => (PolicyKind::CalicoNetworkPolicy, true),
        "gnp" => (PolicyKind::GlobalNetworkPolicy, false),
        "snp" => (PolicyKind::StagedNetworkPolicy, true),
        "sgnp" => (PolicyKind::StagedGlobalNetworkPolicy, false),
        "sknp" => (PolicyKind::StagedKubernetesNetworkPolicy, true),
        "kcnp" => (PolicyKind::ClusterNetworkPolicy, false),
        "pro" => (PolicyKind::CalicoProfile, false),
        _ => return None,
    })
}

/// `... KIND NAME` (the name as `%p` renders it), with Felix's `:` after it.
fn calico(logged: &str) -> Option<Policy> {
    let tokens: Vec<&str> = logged.split_whitespace().collect();
    let at = tokens
        .iter()
        .rposition(|token| calico_kind(token).is_some())?;
    let (kind, namespaced) = calico_kind(tokens[at])?;
    let named = tokens.get(at + 1)?.trim_end_matches(':');
    if tokens.len() != at + 2 {
        return None;
    }
    let (namespace, name) = match named.split_once('/') {
        Some((namespace, name)) if namespaced => (namespace, name),
        // `%n` (no namespace) in a namespaced kind's prefix: the name alone.
        None => ("", named),
        Some(_) => return None,
    };
    let namespace_valid = valid(namespace) || !named.contains('/');
    if !namespace_valid || !valid(name) || name.contains('/') {
        return None;
    }
    Some(Policy::new(kind, namespace, name))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(namespace: &str, name: &str) -> Option<Policy> {
        Some(Policy::new(PolicyKind::NetworkPolicy, namespace, name))
    }

    #[test]
    fn kube_router_in_k3s_names_the_policy_in_its_nflog_prefix() {
        assert_eq!(
            from_prefix("DROP by policy shop/deny-all"),
            policy("shop", "deny-all")
        );
        // As a LOG line's text before `IN=` (ulogd's syslog emulation), spaces around it.
        assert_eq!(
            from_prefix(" DROP by policy kube-system/allow-dns "),
            policy("kube-system", "allow-dns")
        );
        // safeJoin cut both halves to 23 characters: reported as logged.
        assert_eq!(
            from_prefix("DROP by policy a-very-long-namespace-nam/a-very-long-policy-name-"),
            policy("a-very-long-namespace-nam", "a-very-long-policy-name-")
        );
    }

    #[test]
    fn calico_names_the_policy_where_its_log_prefix_asks_for_kind_and_name() {
        let named = |kind, namespace: &str, name: &str| Some(Policy::new(kind, namespace, name));
        // `logPrefix: "calico-drop %k %p"`, as Felix renders it (it adds ": ").
        assert_eq!(
            from_prefix("calico-drop knp shop/deny-all: "),
            named(PolicyKind::NetworkPolicy, "shop", "deny-all")
        );
        assert_eq!(
            from_prefix("calico-drop np shop/web-only:"),
            named(PolicyKind::CalicoNetworkPolicy, "shop", "web-only")
        );
        assert_eq!(
            from_prefix("drop gnp deny-external: "),
            named(PolicyKind::GlobalNetworkPolicy, "", "deny-external")
        );
        // With the tier in front (`%t %k %p`), and a profile (no tier).
        assert_eq!(
            from_prefix("drop security sgnp quarantine: "),
            named(PolicyKind::StagedGlobalNetworkPolicy, "", "quarantine")
        );
        assert_eq!(
            from_prefix("drop  pro kns.shop: "),
            named(PolicyKind::CalicoProfile, "", "kns.shop")
        );
        assert_eq!(
            from_prefix("d kcnp baseline: "),
            named(PolicyKind::ClusterNetworkPolicy, "", "baseline")
        );
        // `%n` in a namespaced kind's prefix: the name alone.
        assert_eq!(
            from_prefix("drop knp deny-all: "),
            named(PolicyKind::NetworkPolicy, "", "deny-all")
        );
    }

    #[test]
    fn prefixes_that_name_no_policy_give_none() {
        for prefix in [
            "",
            "calico-packet:",
            "DROP by policy",
            "DROP by policy ",
            "DROP by policy shop",
            "DROP by policy /deny-all",
            "DROP by policy shop/",
            "DROP by policy shop/deny all",
            "DROP by policy a/b/c",
            "drop by policy shop/deny-all",
            "calico-packet: ",
            "calico-drop knp",
            "calico-drop knp shop/deny-all extra:",
            "calico-drop gnp shop/deny-all:",
            "calico-drop knp shop/a/b:",
            "calico-drop knp /deny:",
        ] {
            assert_eq!(from_prefix(prefix), None, "{prefix:?}");
        }
    }

    proptest! {
        #[test]
        fn any_prefix_is_read_without_panicking(prefix in ".{0,80}") {
            let _ = from_prefix(&prefix);
        }
    }
}
