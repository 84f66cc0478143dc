//! The pod watch: list (in pages) and watch every pod, keeping only what the index needs. A relist
//! happens after a watch expires (410, handled by kube-runtime's watcher, which starts over with a
//! list) and every `POD_RESYNC_MINUTES`; each completed list replaces the index atomically.

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::{KubeSettings, stopped};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::PodInfo;
use crate::resolve::labels::LabelSets;
use crate::resolve::pods::{PodIndex, PodPhase, PodRecord};
use crate::stop::Stop;

/// The readiness condition this watch sets once the index has synced.
pub const READY_CONDITION: &str = "pod_index";

pub async fn watch_pods(
    client: Client,
    settings: KubeSettings,
    index: Arc<PodIndex>,
    health: Health,
    stop: Stop,
    metrics: Arc<Metrics>,
) {
    let label = settings.identifier_label.as_deref();
    loop {
        let api: Api<Pod> = Api::all(client.clone());
        let config = watcher::Config::default().page_size(settings.page_size);
        // default_backoff: an API that is down (or answers errors) is retried with growing pauses.
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let resync = tokio::time::sleep(settings.resync);
        tokio::pin!(resync);
        let mut snapshot: Vec<PodRecord> = Vec::new();
        let mut label_sets = LabelSets::default();
        let mut lists = 0u64;
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(Event::Init)) => {
                        snapshot.clear();
                        label_sets.clear();
                        lists += 1;
                        if lists > 1 {
                            // The watcher starts over after its watch expired (410) or failed.
                            metrics.watch_restarts.with_label_values(&["expired"]).inc();
                        }
                    }
                    Some(Ok(Event::InitApply(pod))) => {
                        snapshot.extend(record(&pod, label, &mut label_sets));
                    }
                    Some(Ok(Event::InitDone)) => {
                        let pods = snapshot.len();
                        index.replace_all(std::mem::take(&mut snapshot));
                        health.set_condition(READY_CONDITION, true);
                        log::info!(
                            "pod index synced: {pods} pods, {} IPs, {} label sets",
                            index.len(),
                            label_sets.len()
                        );
                    }
                    Some(Ok(Event::Apply(pod))) => match record(&pod, label, &mut label_sets) {
                        Some(record) => index.upsert(record),
                        None => index.remove(uid(&pod)),
                    },
                    Some(Ok(Event::Delete(pod))) => index.remove(uid(&pod)),
                    Some(Err(error)) => {
                        metrics.watch_restarts.with_label_values(&["error"]).inc();
                        log::warn!("pod watch: {error}; retrying");
                    }
                    None => break,
                },
                () = &mut resync => {
                    metrics.watch_restarts.with_label_values(&["resync"]).inc();
                    log::debug!("periodic pod relist");
                    break;
                }
                () = stopped(&stop) => return,
            }
        }
    }
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// The compact record of a pod, or `None` when it has no IP yet (nothing to index).
fn record(
    pod: &Pod,
    identifier_label: Option<&str>,
    label_sets: &mut LabelSets,
) -> Option<PodRecord> {
    let metadata = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|status| status.pod_ips.as_ref())
        .map(|ips| ips.iter().filter_map(|ip| ip.ip.parse().ok()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        // Older API servers only fill `podIP`.
        ips.extend(
            status
                .and_then(|status| status.pod_ip.as_deref())
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    if ips.is_empty() {
        return None;
    }
    let phase = PodPhase::from_status(status.and_then(|status| status.phase.as_deref()));
    let info = PodInfo {
        namespace: metadata.namespace.clone().unwrap_or_default(),
        name: metadata.name.clone().unwrap_or_default(),
        uid: metadata.uid.clone().unwrap_or_default(),
        node: spec
            .and_then(|spec| spec.node_name.clone())
            .unwrap_or_default(),
        host_network: spec.and_then(|spec| spec.host_network).unwrap_or(false),
        identifier_label: identifier_label
            .and_then(|key| metadata.labels.as_ref()?.get(key).cloned()),
        labels: label_sets.share(metadata.labels.as_ref()),
    };
    Some(PodRecord {
        info,
        ips,
        phase,
        deleting: metadata.deletion_timestamp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_pod_becomes_a_compact_record_with_every_ip() {
        let pod = pod(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "frontend-1", "uid": "u-1",
                         "labels": {"app": "frontend", "tier": "web"}},
            "spec": {"nodeName": "node-1", "containers": []},
            "status": {"phase": "Running", "podIP": "10.0.1.5",
                       "podIPs": [{"ip": "10.0.1.5"}, {"ip": "fd00::1:5"}]}
        }));
        let mut label_sets = LabelSets::default();
        let record = record(&pod, Some("app"), &mut label_sets).unwrap();
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
        let record = record(&pod, None, &mut LabelSets::default()).unwrap();
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
        assert_eq!(record(&pod, None, &mut LabelSets::default()), None);
    }
}
