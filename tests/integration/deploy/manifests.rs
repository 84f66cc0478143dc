//! The overlays rendered by `kubectl kustomize` and read into k8s-openapi types, strictly: a field
//! Kubernetes does not know (a typo, a field at the wrong level) is an error, not silently dropped.

use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{have, repo};

/// deploy/overlays/*: one per log source.
pub const OVERLAYS: [&str; 4] = ["file", "journald", "kmsg", "nflog"];

/// The agent's container in the DaemonSet.
pub const AGENT: &str = "kube-iptables-tailer";

/// Every object one overlay renders, by kind.
pub struct Rendered {
    pub overlay: &'static str,
    pub service_accounts: Vec<ServiceAccount>,
    pub cluster_roles: Vec<ClusterRole>,
    pub bindings: Vec<ClusterRoleBinding>,
    pub daemon_sets: Vec<DaemonSet>,
}

impl Rendered {
    pub fn daemon_set(&self) -> &DaemonSet {
        assert_eq!(self.daemon_sets.len(), 1, "{}: one DaemonSet", self.overlay);
        &self.daemon_sets[0]
    }

    pub fn pod(&self) -> &PodSpec {
        let template = &self.daemon_set().spec.template;
        template.spec.as_ref().expect("pod template spec")
    }

    pub fn agent(&self) -> &Container {
        self.pod()
            .containers
            .iter()
            .find(|container| container.name == AGENT)
            .unwrap_or_else(|| panic!("{}: no container named {AGENT}", self.overlay))
    }

    /// Every container of the pod, init containers included.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        let pod = self.pod();
        pod.containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
    }

    /// The agent's variable `name` when set to a plain value.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.agent()
            .env
            .iter()
            .flatten()
            .find(|variable| variable.name == name)?
            .value
            .as_deref()
    }
}

/// Renders `deploy/overlays/<overlay>`, or `None` (the test skips) when kubectl is missing.
pub fn render(test: &str, overlay: &'static str) -> Option<Rendered> {
    if !have(test, "kubectl") {
        return None;
    }
    let directory = repo().join("deploy/overlays").join(overlay);
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(&directory)
        .output()
        .expect("run kubectl kustomize");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {stderr}",
        directory.display()
    );
    // Deprecated kustomize fields are reported here: the overlays use none.
    assert!(
        stderr.trim().is_empty(),
        "kubectl kustomize {overlay} warned: {stderr}"
    );
    let yaml = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    Some(parse(overlay, &yaml).unwrap_or_else(|error| panic!("{error}")))
}

/// Reads every YAML document of `yaml` into its Kubernetes type.
pub fn parse(overlay: &'static str, yaml: &str) -> Result<Rendered, String> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|error| format!("{overlay}: YAML: {error}"))?;
    let mut rendered = Rendered {
        overlay,
        service_accounts: Vec::new(),
        cluster_roles: Vec::new(),
        bindings: Vec::new(),
        daemon_sets: Vec::new(),
    };
    for document in &documents {
        let api_version = document["apiVersion"].as_str().unwrap_or("");
        let kind = document["kind"].as_str().unwrap_or("");
        let context = format!(
            "{overlay}: {kind} {}",
            document["metadata"]["name"].as_str().unwrap_or("(no name)")
        );
        match (api_version, kind) {
            ("v1", "ServiceAccount") => rendered.service_accounts.push(strict(&context, document)?),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                rendered.cluster_roles.push(strict(&context, document)?)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                rendered.bindings.push(strict(&context, document)?)
            }
            ("apps/v1", "DaemonSet") => rendered.daemon_sets.push(strict(&context, document)?),
            _ => return Err(format!("{context}: unexpected {api_version} {kind}")),
        }
    }
    Ok(rendered)
}

/// Reads `document` into `T` and writes it back: k8s-openapi skips fields it does not know, so a
/// field missing after the round trip is one Kubernetes would reject (or, worse, ignore).
fn strict<T: DeserializeOwned + Serialize>(context: &str, document: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(document.clone())
        .map_err(|error| format!("{context}: not a valid object: {error}"))?;
    let back = serde_json::to_value(&typed).expect("k8s-openapi objects serialize");
    match difference("", document, &back) {
        None => Ok(typed),
        Some(difference) => Err(format!("{context}: {difference}")),
    }
}

/// The first place where `rendered` and `typed` differ, as a path.
fn difference(path: &str, rendered: &Value, typed: &Value) -> Option<String> {
    match (rendered, typed) {
        (Value::Object(rendered), Value::Object(typed)) => rendered
            .iter()
            .find_map(|(key, value)| match typed.get(key) {
                None => Some(format!("{path}.{key} is not a field Kubernetes knows")),
                Some(other) => difference(&format!("{path}.{key}"), value, other),
            })
            .or_else(|| {
                typed
                    .keys()
                    .find(|key| !rendered.contains_key(*key))
                    .map(|key| format!("{path}.{key} appeared in the round trip"))
            }),
        (Value::Array(rendered), Value::Array(typed)) if rendered.len() == typed.len() => rendered
            .iter()
            .zip(typed)
            .enumerate()
            .find_map(|(index, (value, other))| {
                difference(&format!("{path}[{index}]"), value, other)
            }),
        _ if rendered == typed => None,
        _ => Some(format!(
            "{path} is {rendered} in the manifest but {typed} as Kubernetes reads it"
        )),
    }
}

#[test]
fn every_overlay_renders_kubernetes_objects_with_no_unknown_field() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("overlays render", overlay) else {
            return;
        };
        assert_eq!(rendered.service_accounts.len(), 1, "{overlay}");
        assert_eq!(rendered.cluster_roles.len(), 1, "{overlay}");
        assert_eq!(rendered.bindings.len(), 1, "{overlay}");
        assert_eq!(rendered.daemon_sets.len(), 1, "{overlay}");
    }
}

#[test]
fn a_misspelt_or_misplaced_field_is_an_error() {
    let daemon_set = |security_context: Value| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "x"},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "x", "image": "x:1", "securityContext": security_context}]},
                },
            },
        })
    };
    let good = daemon_set(json!({"readOnlyRootFilesystem": true}));
    assert!(strict::<DaemonSet>("good", &good).is_ok());
    let misspelt = daemon_set(json!({"readOnlyRootFileSystem": true}));
    assert_eq!(
        strict::<DaemonSet>("misspelt", &misspelt).err().as_deref(),
        Some(
            "misspelt: .spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem \
             is not a field Kubernetes knows"
        )
    );
    // A pod-level field put on the container.
    let misplaced = daemon_set(json!({"supplementalGroups": [4]}));
    assert!(strict::<DaemonSet>("misplaced", &misplaced).is_err());
    // Two documents, one of a kind the deployment has no business with.
    let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\n\
                apiVersion: v1\nkind: Secret\nmetadata: {name: b}\n";
    assert_eq!(
        parse("test", yaml).err().as_deref(),
        Some("test: Secret b: unexpected v1 Secret")
    );
}

#[test]
fn every_object_is_in_one_namespace_and_the_binding_names_the_pods_account() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("namespaces", overlay) else {
            return;
        };
        let daemon_set = rendered.daemon_set();
        let namespace = daemon_set.metadata.namespace.as_deref();
        assert!(
            namespace.is_some(),
            "{overlay}: the DaemonSet has a namespace"
        );
        let account = &rendered.service_accounts[0];
        assert_eq!(
            account.metadata.namespace.as_deref(),
            namespace,
            "{overlay}"
        );
        assert_eq!(
            rendered.pod().service_account_name.as_ref(),
            account.metadata.name.as_ref(),
            "{overlay}: the pods run as the ServiceAccount"
        );
        let binding = &rendered.bindings[0];
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(
            Some(&binding.role_ref.name),
            rendered.cluster_roles[0].metadata.name.as_ref(),
            "{overlay}: the binding grants the agent's ClusterRole"
        );
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{overlay}: one subject");
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
        assert_eq!(subjects[0].namespace.as_deref(), namespace, "{overlay}");
    }
}
