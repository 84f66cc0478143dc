//! The pod watch: list (in pages) and watch the pods the index holds — every pod with
//! `POD_INDEX=cluster`, this node's (`spec.nodeName`) with `node` — keeping only what the index needs
//! (`pod_object.rs` decodes nothing else). There is no periodic relist: the watch asks for bookmarks,
//! so it resumes from a recent version after the API server ends it, and only when that version is
//! gone (410 Expired, as a watch event or as the watch request's answer) does it list again; each
//! completed list replaces the index atomically.

use std::sync::Arc;

use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::async_stop::AsyncStop;
use super::pod_object::SlimPod;
use super::{KubeSettings, stopped};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::resolve::labels::LabelSets;
use crate::resolve::pod_lookup::PodIndexMode;
use crate::resolve::pods::{PodIndex, PodRecord};

/// The readiness condition this watch sets once the index has synced.
pub const READY_CONDITION: &str = "pod_index";

pub async fn watch_pods(
    client: Client,
    settings: KubeSettings,
    index: Arc<PodIndex>,
    health: Health,
    stop: AsyncStop,
    metrics: Arc<Metrics>,
) {
    let label = settings.identifier_label.as_deref();
    let mut lists = 0u64;
    loop {
        let api: Api<SlimPod> = Api::all(client.clone());
        let config = watcher_config(&settings);
        // default_backoff: an API that is down (or answers errors) is retried with growing pauses.
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut snapshot: Vec<PodRecord> = Vec::new();
        let mut label_sets = LabelSets::default();
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
                        snapshot.extend(pod.record(label, &mut label_sets));
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
                        if pods == 0 && settings.pod_index == PodIndexMode::Node {
                            // Every node runs a pod or two (this agent's own): a wrong name, likely.
                            log::warn!(
                                "no pod with an IP on node {:?}: is NODE_NAME this node's name? Its \
                                 pods are looked up one by one meanwhile",
                                settings.node_name
                            );
                        }
                    }
                    Some(Ok(Event::Apply(pod))) => match pod.record(label, &mut label_sets) {
                        Some(record) => index.upsert(record),
                        None => index.remove(pod.uid()),
                    },
                    Some(Ok(Event::Delete(pod))) => index.remove(pod.uid()),
                    Some(Err(error)) if version_gone(&error) => {
                        // kube-runtime's watcher retries such a watch from the same version forever:
                        // start over with a list.
                        log::info!("pod watch: {error}; listing again");
                        break;
                    }
                    Some(Err(error)) => {
                        metrics.watch_restarts.with_label_values(&["error"]).inc();
                        log::warn!("pod watch: {error}; retrying");
                    }
                    None => break,
                },
                () = stopped(&stop) => return,
            }
        }
    }
}

/// The watch's list and watch parameters for the index's mode.
fn watcher_config(settings: &KubeSettings) -> watcher::Config {
    let config = watcher::Config::default().page_size(settings.page_size);
    match settings.pod_index {
        // Pages keep the memory of a list of every pod small (an unpaged list is one body of
        // hundreds of megabytes); a quorum read, but only at start and after a 410.
        PodIndexMode::Cluster => config,
        // A node's pods are few: the API server's watch cache serves them (resourceVersion=0),
        // found by its node index, without reading etcd. Unpaged: kube-rs leaves out
        // resourceVersion=0 from a list with a limit (older API servers ignore the limit then).
        PodIndexMode::Node => {
            let mut config = config
                .fields(&format!("spec.nodeName={}", settings.node_name))
                .any_semantic();
            config.page_size = None;
            config
        }
    }
}

/// A watch started from a version the API server no longer has (410 Gone as the request's answer).
fn version_gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchStartFailed(kube::Error::Api(status)) if status.code == 410)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn start_failed(code: u16) -> watcher::Error {
        let status = Status::failure("too old resource version: 5 (9)", "Expired").with_code(code);
        watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn a_watch_refused_with_410_starts_over_and_other_failures_are_retried() {
        assert!(version_gone(&start_failed(410)));
        assert!(!version_gone(&start_failed(500)));
        // As a watch event, 410 makes the watcher list again by itself.
        let event = Status::failure("too old", "Expired").with_code(410);
        assert!(!version_gone(&watcher::Error::WatchError(Box::new(event))));
    }

    #[test]
    fn node_mode_watches_this_nodes_pods_from_the_watch_cache() {
        let mut settings = KubeSettings {
            kubeconfig: None,
            api_server: None,
            node_name: "node-7".to_string(),
            reason: "PacketDrop".to_string(),
            component: "kube-iptables-tailer".to_string(),
            identifier_label: None,
            page_size: 500,
            give_up_after: std::time::Duration::from_secs(600),
            watch_network_policies: false,
            pod_index: PodIndexMode::Node,
            lookups: super::super::LookupLimits {
                qps: 5.0,
                burst: 20,
            },
        };
        let node = watcher_config(&settings);
        assert_eq!(node.field_selector.as_deref(), Some("spec.nodeName=node-7"));
        assert_eq!(node.list_semantic, watcher::ListSemantic::Any);
        assert_eq!(node.page_size, None);
        settings.pod_index = PodIndexMode::Cluster;
        let cluster = watcher_config(&settings);
        assert_eq!(cluster.field_selector, None);
        assert_eq!(cluster.list_semantic, watcher::ListSemantic::MostRecent);
        assert_eq!(cluster.page_size, Some(500));
    }
}
