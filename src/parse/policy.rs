//! The policy a drop's log prefix names, where the CNI writes one there. Pure text, no lookups.
//!
//! kube-router as k3s ships it logs each policy's drops to NFLOG group 100 with the prefix
//! `DROP by policy NAMESPACE/NAME` (k3s-io/kube-router, `appendRuleToPolicyChain`; upstream
//! kube-router sets no prefix). The writer cuts `NAMESPACE/NAME` to 48 characters to keep the prefix
//! within netfilter's 64: a long name is reported as logged. See `docs/cni-drop-logs.md`.

use crate::model::{Policy, PolicyKind};

const KUBE_ROUTER: &str = "DROP by policy ";

/// The policy `logged` (the prefix as the kernel logged it, e.g. NFLOG's `NFULA_PREFIX`) names.
pub fn from_prefix(logged: &str) -> Option<Policy> {
    let named = logged.trim().strip_prefix(KUBE_ROUTER)?.trim();
    let (namespace, name) = named.split_once('/')?;
    let valid = |part: &str| !part.is_empty() && !part.contains(char::is_whitespace);
    if !valid(namespace) || !valid(name) || name.contains('/') {
        return None;
    }
    Some(Policy {
        kind: PolicyKind::NetworkPolicy,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(namespace: &str, name: &str) -> Option<Policy> {
        Some(Policy {
            kind: PolicyKind::NetworkPolicy,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
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
