//! NetworkPolicies as the API serves them: the test's JSON (apiVersion, kind, metadata namespace and
//! name, spec) with the fields the API server fills in on a write (uid, resourceVersion, generation,
//! creationTimestamp) and the spec defaults it applies.

use serde_json::{Value, json};

/// The namespace and name of a policy a test passes; panics without them, as a test's mistake.
pub(super) fn key(policy: &Value) -> (String, String) {
    let field = |name: &str| {
        policy["metadata"][name]
            .as_str()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| panic!("fake API: a NetworkPolicy needs metadata.{name}: {policy}"))
            .to_string()
    };
    (field("namespace"), field("name"))
}

/// `policy` with what the API server sets on any write of it: apiVersion, kind and the spec defaults.
pub(super) fn defaulted(mut policy: Value) -> Value {
    assert!(
        policy.is_object(),
        "fake API: a NetworkPolicy is a JSON object"
    );
    policy["apiVersion"] = json!("networking.k8s.io/v1");
    policy["kind"] = json!("NetworkPolicy");
    if !policy["spec"].is_object() {
        policy["spec"] = json!({});
    }
    let spec = &mut policy["spec"];
    // The API server's defaults (SetDefaults_NetworkPolicy, and podSelector is never omitted): a
    // client sees them even when the manifest left them out.
    if spec.get("podSelector").is_none() {
        spec["podSelector"] = json!({});
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let egress = spec["egress"]
            .as_array()
            .is_some_and(|rules| !rules.is_empty());
        spec["policyTypes"] = if egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
    }
    policy
}

/// Sets the metadata the server owns on a `defaulted` policy.
pub(super) fn stamp(
    mut policy: Value,
    uid: &str,
    resource_version: u64,
    generation: u64,
    created: &str,
) -> Value {
    let metadata = &mut policy["metadata"];
    metadata["uid"] = json!(uid);
    metadata["resourceVersion"] = json!(resource_version.to_string());
    metadata["generation"] = json!(generation);
    metadata["creationTimestamp"] = json!(created);
    policy
}
