use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::resolve::labels::LabelSets;

fn policy(value: serde_json::Value) -> IsolatingPolicy {
    let policy: NetworkPolicy = serde_json::from_value(value).unwrap();
    IsolatingPolicy::from_api(&policy).unwrap()
}

fn named(namespace: &str, name: &str, spec: serde_json::Value) -> IsolatingPolicy {
    policy(json!({"metadata": {"namespace": namespace, "name": name}, "spec": spec}))
}

fn pod(namespace: &str, labels: &[(&str, &str)]) -> PodInfo {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    PodInfo {
        namespace: namespace.to_string(),
        name: "p".to_string(),
        uid: "u".to_string(),
        node: "n".to_string(),
        host_network: false,
        identifier_label: None,
        labels: LabelSets::default().share(Some(&labels)),
    }
}

fn index(policies: Vec<IsolatingPolicy>) -> PolicyIndex {
    let index = PolicyIndex::default();
    index.replace_all(policies);
    index
}

const INGRESS: PolicyDirection = PolicyDirection::Ingress;
const EGRESS: PolicyDirection = PolicyDirection::Egress;

#[test]
fn a_default_deny_isolates_every_pod_of_its_namespace_in_its_directions() {
    let index = index(vec![
        named(
            "shop",
            "default-deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
        named(
            "shop",
            "deny-egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        ),
        named(
            "db",
            "default-deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
    ]);
    let web = pod("shop", &[("app", "web")]);
    assert_eq!(index.isolating(&web, INGRESS), ["default-deny"]);
    assert_eq!(index.isolating(&web, EGRESS), ["deny-egress"]);
    let elsewhere = pod("cache", &[("app", "web")]);
    assert!(index.isolating(&elsewhere, INGRESS).is_empty());
    assert_eq!(index.len(), 3);
}

#[test]
fn selectors_match_labels_and_expressions() {
    let index = index(vec![
        named(
            "shop",
            "web-only",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "lb"}}}]}]
            }),
        ),
        named(
            "shop",
            "tiers",
            json!({
                "podSelector": {"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front", "back"]},
                    {"key": "canary", "operator": "DoesNotExist"}
                ]},
                "policyTypes": ["Ingress"]
            }),
        ),
        named(
            "shop",
            "not-batch",
            json!({
                "podSelector": {"matchExpressions": [
                    {"key": "kind", "operator": "NotIn", "values": ["batch"]},
                    {"key": "app", "operator": "Exists"}
                ]},
                "policyTypes": ["Ingress"]
            }),
        ),
    ]);
    let web = pod("shop", &[("app", "web"), ("tier", "front")]);
    assert_eq!(
        index.isolating(&web, INGRESS),
        ["not-batch", "tiers", "web-only"]
    );
    let canary = pod(
        "shop",
        &[("app", "web"), ("tier", "front"), ("canary", "1")],
    );
    assert_eq!(index.isolating(&canary, INGRESS), ["not-batch", "web-only"]);
    let batch = pod("shop", &[("app", "job"), ("kind", "batch")]);
    assert!(index.isolating(&batch, INGRESS).is_empty());
    let bare = pod("shop", &[]);
    assert!(index.isolating(&bare, INGRESS).is_empty());
}

#[test]
fn policy_types_default_from_the_rules_and_an_allow_all_rule_isolates_nothing() {
    let index = index(vec![
        // No policyTypes: Ingress, and Egress because it has egress rules.
        named(
            "shop",
            "both",
            json!({
                "podSelector": {},
                "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]
            }),
        ),
        named(
            "shop",
            "allow-all-in",
            json!({
                "podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]
            }),
        ),
    ]);
    let web = pod("shop", &[]);
    assert_eq!(index.isolating(&web, INGRESS), ["both"]);
    assert_eq!(index.isolating(&web, EGRESS), ["both"]);
}

#[test]
fn policies_come_and_go() {
    let index = index(Vec::new());
    let web = pod("shop", &[]);
    index.upsert(named(
        "shop",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    ));
    assert_eq!(index.isolating(&web, INGRESS), ["deny"]);
    // Changed to egress only: replaced, not added.
    index.upsert(named(
        "shop",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Egress"]}),
    ));
    assert!(index.isolating(&web, INGRESS).is_empty());
    assert_eq!(index.len(), 1);
    index.remove("shop", "deny");
    assert!(index.is_empty());
}

#[test]
fn an_unknown_operator_selects_nothing() {
    let index = index(vec![named(
        "shop",
        "odd",
        json!({
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Matches", "values": ["w"]}]},
            "policyTypes": ["Ingress"]
        }),
    )]);
    assert!(
        index
            .isolating(&pod("shop", &[("app", "w")]), INGRESS)
            .is_empty()
    );
}
