//! Pods as tests describe them ([`FakePod`], a builder) and as the API serves them (core/v1 Pod JSON
//! with the fields a node agent reads: addresses, node, hostNetwork, phase, labels, deletion).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::store::now;

/// A pod as a test describes it; the fake turns it into core/v1 Pod JSON.
#[derive(Clone, Debug)]
pub struct FakePod {
    pub namespace: String,
    pub name: String,
    /// `None`: a fresh uid on add, the stored one on update.
    pub uid: Option<String>,
    /// `spec.nodeName`; `None` for a pod not yet scheduled.
    pub node: Option<String>,
    /// `status.podIPs` (the first is also `status.podIP`); empty before the pod has an address.
    pub ips: Vec<String>,
    /// `status.hostIP`.
    pub host_ip: Option<String>,
    pub host_network: bool,
    /// `status.phase`: Pending, Running, Succeeded, Failed, Unknown.
    pub phase: String,
    pub labels: BTreeMap<String, String>,
    /// Whether `metadata.deletionTimestamp` is set (the pod is terminating).
    pub deleting: bool,
}

impl FakePod {
    /// A running pod on `node-1` without addresses; add them with [`FakePod::ip`].
    pub fn new(namespace: &str, name: &str) -> FakePod {
        FakePod {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: None,
            node: Some("node-1".to_string()),
            ips: Vec::new(),
            host_ip: None,
            host_network: false,
            phase: "Running".to_string(),
            labels: BTreeMap::new(),
            deleting: false,
        }
    }

    pub fn uid(mut self, uid: &str) -> FakePod {
        self.uid = Some(uid.to_string());
        self
    }

    pub fn node(mut self, node: &str) -> FakePod {
        self.node = Some(node.to_string());
        self
    }

    pub fn unscheduled(mut self) -> FakePod {
        self.node = None;
        self
    }

    /// Adds one pod IP (v4 or v6).
    pub fn ip(mut self, ip: &str) -> FakePod {
        self.ips.push(ip.to_string());
        self
    }

    pub fn host_ip(mut self, ip: &str) -> FakePod {
        self.host_ip = Some(ip.to_string());
        self
    }

    /// A hostNetwork pod; its pod IPs are the node's, as in a cluster.
    pub fn host_network(mut self) -> FakePod {
        self.host_network = true;
        self
    }

    pub fn phase(mut self, phase: &str) -> FakePod {
        self.phase = phase.to_string();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> FakePod {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn deleting(mut self) -> FakePod {
        self.deleting = true;
        self
    }
}

pub(super) fn pod_json(pod: &FakePod, uid: &str, resource_version: u64, created: &str) -> Value {
    let mut metadata = json!({
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": uid,
        "resourceVersion": resource_version.to_string(),
        "creationTimestamp": created,
    });
    if !pod.labels.is_empty() {
        metadata["labels"] = json!(pod.labels);
    }
    if pod.deleting {
        metadata["deletionTimestamp"] = json!(now());
        metadata["deletionGracePeriodSeconds"] = json!(30);
    }
    let mut spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": if pod.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
        "serviceAccountName": "default",
    });
    if let Some(node) = &pod.node {
        spec["nodeName"] = json!(node);
    }
    if pod.host_network {
        spec["hostNetwork"] = json!(true);
    }
    let mut status = json!({"phase": pod.phase});
    if let Some(host_ip) = &pod.host_ip {
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
    }
    if let Some(first) = pod.ips.first() {
        status["podIP"] = json!(first);
        let ips: Vec<Value> = pod.ips.iter().map(|ip| json!({"ip": ip})).collect();
        status["podIPs"] = json!(ips);
    }
    if pod.node.is_some() {
        status["startTime"] = json!(created);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status})
}
