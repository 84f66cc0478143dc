//! The pod as the agent decodes it from the API: only the fields the pod index keeps (names, uid,
//! labels, node, hostNetwork, addresses, phase, deletion), not the whole core/v1 `Pod`.
//!
//! Why: a real Pod is 5–20 KB of JSON (containers, volumes, managedFields, conditions), and decoding
//! all of it into `k8s_openapi::api::core::v1::Pod` only to keep a few strings made syncing 100,000 pods
//! cost seconds of CPU. serde skips every other field without building anything from it.
//! `SlimPod` is a `kube::Resource` of kind Pod, so kube-runtime's watcher and `Api::list` use it as
//! they would use `Pod`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::model::PodInfo;
use crate::resolve::labels::LabelSets;
use crate::resolve::pods::{PodPhase, PodRecord};

/// A pod, trimmed while it is decoded.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "WirePod")]
pub struct SlimPod {
    /// name, namespace, uid and resourceVersion only: what the watcher and the index read.
    metadata: ObjectMeta,
    labels: Option<BTreeMap<String, String>>,
    deleting: bool,
    node: Option<String>,
    host_network: bool,
    phase: Option<String>,
    /// `status.podIPs`, or `status.podIP` where only that is set; unparsable ones left out.
    ips: Vec<IpAddr>,
}

impl SlimPod {
    pub fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or_default()
    }

    /// The compact record of the pod, or `None` when it has no IP yet (nothing to index).
    pub fn record(
        &self,
        identifier_label: Option<&str>,
        label_sets: &mut LabelSets,
    ) -> Option<PodRecord> {
        if self.ips.is_empty() {
            return None;
        }
        let metadata = &self.metadata;
        let info = PodInfo {
            namespace: metadata.namespace.clone().unwrap_or_default(),
            name: metadata.name.clone().unwrap_or_default(),
            uid: metadata.uid.clone().unwrap_or_default(),
            node: self.node.clone().unwrap_or_default(),
            host_network: self.host_network,
            identifier_label: identifier_label
                .and_then(|key| self.labels.as_ref()?.get(key).cloned()),
            labels: label_sets.share(self.labels.as_ref()),
        };
        Some(PodRecord {
            info,
            ips: self.ips.clone(),
            phase: PodPhase::from_status(self.phase.as_deref()),
            deleting: self.deleting,
        })
    }
}

impl kube::Resource for SlimPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The JSON of a Pod, with every field the index does not use left out (serde skips them).
#[derive(Deserialize)]
struct WirePod {
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    spec: WireSpec,
    #[serde(default)]
    status: WireStatus,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    /// Only whether it is set matters: the pod is terminating.
    deletion_timestamp: Option<IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<String>,
    host_network: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<WireIp>>,
}

#[derive(Deserialize)]
struct WireIp {
    ip: Option<String>,
}

impl From<WirePod> for SlimPod {
    fn from(wire: WirePod) -> SlimPod {
        let WirePod {
            metadata,
            spec,
            status,
        } = wire;
        let mut ips: Vec<IpAddr> = (status.pod_ips.into_iter().flatten())
            .filter_map(|ip| ip.ip?.parse().ok())
            .collect();
        if ips.is_empty() {
            // Older API servers only fill `podIP`.
            ips.extend(status.pod_ip.and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        SlimPod {
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                uid: metadata.uid,
                resource_version: metadata.resource_version,
                ..ObjectMeta::default()
            },
            labels: metadata.labels,
            deleting: metadata.deletion_timestamp.is_some(),
            node: spec.node_name,
            host_network: spec.host_network.unwrap_or(false),
            phase: status.phase,
            ips,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    fn pod(json: serde_json::Value) -> SlimPod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_pod_becomes_a_compact_record_with_every_ip() {
        let pod = pod(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "frontend-1", "uid": "u-1",
                         "resourceVersion": "42",
                         "labels": {"app": "frontend", "tier": "web"}},
            "spec": {"nodeName": "node-1", "containers": []},
            "status": {"phase": "Running", "podIP": "10.0.1.5",
                       "podIPs": [{"ip": "10.0.1.5"}, {"ip": "fd00::1:5"}]}
        }));
        assert_eq!(pod.meta().resource_version.as_deref(), Some("42"));
        let mut label_sets = LabelSets::default();
        let record = pod.record(Some("app"), &mut label_sets).unwrap();
        let labels = record.info.labels.clone();
        assert_eq!(labels.get("tier"), Some("web"));
        assert_eq!(labels.len(), 2);
        assert_eq!(
            record,
            PodRecord {
                info: PodInfo {
                    namespace: "shop".into(),
                    name: "frontend-1".into(),
                    uid: "u-1".into(),
                    node: "node-1".into(),
                    host_network: false,
                    identifier_label: Some("frontend".into()),
                    labels,
                },
                ips: vec!["10.0.1.5".parse().unwrap(), "fd00::1:5".parse().unwrap()],
                phase: PodPhase::Running,
                deleting: false,
            }
        );
    }

    #[test]
    fn pod_ip_alone_terminating_and_host_network_are_kept() {
        let pod = pod(serde_json::json!({
            "metadata": {"namespace": "kube-system", "name": "proxy", "uid": "u-2",
                         "deletionTimestamp": "2026-11-25T21:00:00Z"},
            "spec": {"nodeName": "node-2", "hostNetwork": true, "containers": []},
            "status": {"phase": "Succeeded", "podIP": "192.0.2.10"}
        }));
        let record = pod.record(None, &mut LabelSets::default()).unwrap();
        assert_eq!(record.ips, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
        assert!(record.info.host_network && record.deleting);
        assert_eq!(record.phase, PodPhase::Finished);
        assert_eq!(record.info.identifier_label, None);
    }

    #[test]
    fn a_pod_without_an_ip_is_not_indexed() {
        let pod = pod(serde_json::json!({
            "metadata": {"namespace": "a", "name": "b", "uid": "c"},
            "status": {"phase": "Pending"}
        }));
        assert_eq!(pod.uid(), "c");
        assert_eq!(pod.record(None, &mut LabelSets::default()), None);
    }

    #[test]
    fn the_fields_the_index_does_not_use_are_skipped_whatever_they_hold() {
        // A real pod's bulk (managedFields, containers, conditions) and nulls decode to the same record.
        let pod = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": "a", "name": "b", "uid": "c", "deletionTimestamp": null,
                         "annotations": {"x": "y"},
                         "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "b-1", "uid": "r"}]},
            "spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}],
                     "volumes": [{"name": "v", "emptyDir": {}}], "hostNetwork": null},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.9.0.1"}, {"ip": "not an IP"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        let record = pod.record(None, &mut LabelSets::default()).unwrap();
        assert_eq!(record.ips, vec!["10.9.0.1".parse::<IpAddr>().unwrap()]);
        assert!(!record.deleting && !record.info.host_network);
        assert_eq!(record.info.node, "");
    }
}
