//! The ClusterRole against the agent's real API calls: the agent runs against the fake API server
//! through every kind of write it makes (a new Event, a repeat, a restart that finds its Event
//! existing), and each request it sent is turned into the (group, resource, verb) that Kubernetes'
//! authorizer would check. Every request must be granted, and every grant must have been used.

use std::collections::BTreeSet;

use chrono::Utc;
use k8s_openapi::api::rbac::v1::ClusterRole;

use super::manifests::{OVERLAYS, render};
use crate::kubernetes::{append_drop, cluster, start_agent, wait_for_count, wait_ready};
use crate::support::fake_api::{FakeApi, Recorded};

/// (API group, resource, verb), as RBAC rules name them.
type Grant = (String, String, String);

fn grant(group: &str, resource: &str, verb: &str) -> Grant {
    (group.to_string(), resource.to_string(), verb.to_string())
}

/// Everything `role` allows, spelt out; wildcards, resource names and non-resource URLs are refused
/// outright, as nothing the agent does needs them.
fn grants(role: &ClusterRole) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.resource_names.is_none(), "no resourceNames: {rule:?}");
        assert!(
            rule.non_resource_urls.is_none(),
            "no nonResourceURLs: {rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for name in [group, resource, verb] {
                        assert!(!name.contains('*'), "no wildcards: {rule:?}");
                    }
                    grants.insert(grant(group, resource, verb));
                }
            }
        }
    }
    grants
}

/// What the API server's authorizer checks for `request` (the request-info rules of
/// k8s.io/apiserver: the method, and for GET whether a name or `watch` is given).
fn authorized_as(request: &Recorded) -> Grant {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("a request outside the resource API: {request:?}"),
    };
    let (resource, name) = match rest {
        ["namespaces", _, resource] => (*resource, None),
        ["namespaces", _, resource, name] => (*resource, Some(*name)),
        [resource] => (*resource, None),
        _ => panic!("a request the test does not know: {request:?}"),
    };
    let watch = request
        .query
        .get("watch")
        .is_some_and(|value| value == "true" || value == "1");
    let verb = match (request.method.as_str(), name, watch) {
        ("GET", _, true) => "watch",
        ("GET", Some(_), false) => "get",
        ("GET", None, false) => "list",
        ("POST", None, _) => "create",
        ("PATCH", Some(_), _) => "patch",
        ("PUT", Some(_), _) => "update",
        ("DELETE", Some(_), _) => "delete",
        _ => panic!("a request the test does not know: {request:?}"),
    };
    grant(group, resource, verb)
}

#[test]
fn the_cluster_role_grants_pods_and_network_policies_list_watch_and_events_create_get_patch_only() {
    let expected: BTreeSet<Grant> = [
        grant("", "pods", "list"),
        grant("", "pods", "watch"),
        grant("", "events", "create"),
        grant("", "events", "get"),
        grant("", "events", "patch"),
        grant("networking.k8s.io", "networkpolicies", "list"),
        grant("networking.k8s.io", "networkpolicies", "watch"),
    ]
    .into();
    for overlay in OVERLAYS {
        let Some(rendered) = render("cluster role", overlay) else {
            return;
        };
        assert_eq!(grants(&rendered.cluster_roles[0]), expected, "{overlay}");
    }
}

#[test]
fn every_request_the_agent_makes_is_granted_and_every_grant_is_used() {
    let Some(rendered) = render("RBAC against the agent's requests", "file") else {
        return;
    };
    let granted = grants(&rendered.cluster_roles[0]);

    let api = FakeApi::start();
    cluster(&api);
    let dir = tempfile::tempdir().unwrap();
    let time = Utc::now();
    // A new Event (create), then a repeat of it (patch).
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    wait_for_count(&api, "cart-1", 1);
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    wait_for_count(&api, "cart-1", 2);
    let (status, _) = agent.terminate();
    assert!(status.success());
    // A restart: the create meets the existing Event (409), which is read (get) and raised (patch).
    append_drop(dir.path(), time, "10.0.1.5", "10.0.2.9", "TCP", 80, 1);
    let agent = start_agent(dir.path(), &api, &[]);
    wait_ready(&agent);
    wait_for_count(&api, "cart-1", 3);
    drop(agent);

    let used: BTreeSet<Grant> = api.requests().iter().map(authorized_as).collect();
    let refused: Vec<&Grant> = used.difference(&granted).collect();
    assert!(
        refused.is_empty(),
        "requests the ClusterRole does not allow: {refused:?}"
    );
    let unused: Vec<&Grant> = granted.difference(&used).collect();
    assert!(unused.is_empty(), "grants the agent never used: {unused:?}");
}
