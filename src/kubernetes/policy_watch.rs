//! The NetworkPolicy watch: list and watch `networking.k8s.io/v1` NetworkPolicies into the
//! [`PolicyIndex`], which names the policies that isolate a pod where a drop's log names none.
//!
//! Optional by nature: an older deployment's ClusterRole may not grant `list`/`watch` on
//! networkpolicies. Then the API answers 403, the agent says so once (at warn), keeps trying with
//! the watcher's backoff (the permission may be granted later), and Events simply name no
//! isolating policies; readiness does not wait for it.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::async_stop::AsyncStop;
use super::stopped;
use crate::metrics::Metrics;
use crate::resolve::policies::{IsolatingPolicy, PolicyIndex};

pub async fn watch_policies(
    client: Client,
    index: Arc<PolicyIndex>,
    stop: AsyncStop,
    metrics: Arc<Metrics>,
) {
    let api: Api<NetworkPolicy> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut snapshot: Vec<IsolatingPolicy> = Vec::new();
    let mut warned = false;
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(Event::Init)) => snapshot.clear(),
                Some(Ok(Event::InitApply(policy))) => {
                    snapshot.extend(IsolatingPolicy::from_api(&policy));
                }
                Some(Ok(Event::InitDone)) => {
                    index.replace_all(std::mem::take(&mut snapshot));
                    metrics.network_policies.set(index.len() as i64);
                    metrics.network_policies_synced.set(1);
                    log::info!("NetworkPolicy index synced: {} policies", index.len());
                    warned = false;
                }
                Some(Ok(Event::Apply(policy))) => {
                    if let Some(policy) = IsolatingPolicy::from_api(&policy) {
                        index.upsert(policy);
                    }
                    metrics.network_policies.set(index.len() as i64);
                }
                Some(Ok(Event::Delete(policy))) => {
                    let metadata = &policy.metadata;
                    index.remove(
                        metadata.namespace.as_deref().unwrap_or_default(),
                        metadata.name.as_deref().unwrap_or_default(),
                    );
                    metrics.network_policies.set(index.len() as i64);
                }
                Some(Err(error)) => {
                    if warned {
                        log::debug!("NetworkPolicy watch: {error}; retrying");
                    } else {
                        log::warn!(
                            "NetworkPolicy watch: {error}; retrying. Until it works, Events do not \
                             name the NetworkPolicies that isolate a pod (the ClusterRole needs \
                             list and watch on networkpolicies.networking.k8s.io, as deploy/ has)"
                        );
                        warned = true;
                    }
                }
                None => return,
            },
            () = stopped(&stop) => return,
        }
    }
}
