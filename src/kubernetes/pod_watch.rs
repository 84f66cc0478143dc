//! The pod watch: list (in pages) and watch every pod, keeping only what the index needs
//! (`pod_object.rs` decodes nothing else). A relist happens after a watch expires (410, handled by
//! kube-runtime's watcher, which starts over with a list) and every `POD_RESYNC_MINUTES`; each
//! completed list replaces the index atomically.

use std::sync::Arc;

use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::pod_object::SlimPod;
use super::{KubeSettings, stopped};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::resolve::labels::LabelSets;
use crate::resolve::pods::{PodIndex, PodRecord};
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
        let api: Api<SlimPod> = Api::all(client.clone());
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
                    }
                    Some(Ok(Event::Apply(pod))) => match pod.record(label, &mut label_sets) {
                        Some(record) => index.upsert(record),
                        None => index.remove(pod.uid()),
                    },
                    Some(Ok(Event::Delete(pod))) => index.remove(pod.uid()),
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
