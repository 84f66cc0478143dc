//! `POD_INDEX=node`: looks up, one IP at a time, the pods of other nodes that the resolve stage asks
//! for: `GET /api/v1/pods?fieldSelector=status.podIP=IP&resourceVersion=0`, which the API server
//! answers from its watch cache (no etcd read). At most `LOOKUPS_IN_FLIGHT` at once and `qps` a
//! second (with a burst): a lookup over the limit is answered "not looked up" at once, so that the
//! resolve stage does not wait for it, and is asked again by a later drop.
//!
//! `status.podIP` is a pod's first address: a dual-stack pod's second one is not found this way
//! (it is located as an external address).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::async_stop::AsyncStop;
use super::pod_object::SlimPod;
use super::stopped;
use crate::events::ratelimit::TokenBucket;
use crate::metrics::Metrics;
use crate::model::Endpoint;
use crate::resolve::labels::LabelSets;
use crate::resolve::pods::best_claim;
use crate::resolve::remote::{AskFn, Lookup, RemotePods};

/// Lookups at the API at once.
const LOOKUPS_IN_FLIGHT: usize = 4;
/// A lookup not answered in this long failed (the resolve stage stopped waiting long before).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// IPs waiting for a lookup slot; more are turned away (the resolve stage counts them).
const QUEUE: usize = 256;
/// Distinct label sets kept for sharing among remote pods before the set starts over (bounded memory).
const MAX_LABEL_SETS: usize = 1024;

/// How fast the lookups may go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LookupLimits {
    pub qps: f64,
    pub burst: u32,
}

/// The IPs the resolve stage asked for, on their way to [`look_up_pods`].
pub struct LookupQueue(mpsc::Receiver<IpAddr>);

/// A queue of lookups: the resolve stage's side (what [`RemotePods`] calls to ask; it never blocks)
/// and the Kubernetes thread's.
pub fn lookup_queue() -> (AskFn, LookupQueue) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let ask: AskFn = Box::new(move |ip| sender.try_send(ip).is_ok());
    (ask, LookupQueue(receiver))
}

/// Task body: answers the lookups until the stop (or until the resolve stage is gone).
pub async fn look_up_pods(
    client: Client,
    mut queue: LookupQueue,
    remote: Arc<RemotePods>,
    limits: LookupLimits,
    identifier_label: Option<String>,
    stop: AsyncStop,
    metrics: Arc<Metrics>,
) {
    let api: Api<SlimPod> = Api::all(client);
    let mut bucket = TokenBucket::new(limits.qps, limits.burst, Instant::now());
    let mut label_sets = LabelSets::default();
    let mut running = FuturesUnordered::new();
    let counted = |result: &str| {
        metrics
            .remote_pod_lookups
            .with_label_values(&[result])
            .inc()
    };
    loop {
        tokio::select! {
            asked = queue.0.recv(), if running.len() < LOOKUPS_IN_FLIGHT => {
                let Some(ip) = asked else { break };
                if bucket.take(Instant::now()).is_err() {
                    counted("rate_limited");
                    remote.answer(ip, Lookup::NotAnswered);
                    continue;
                }
                running.push(look_up(api.clone(), ip));
            }
            Some((ip, found)) = running.next(), if !running.is_empty() => {
                let lookup = match found {
                    Ok(pods) => {
                        if label_sets.len() > MAX_LABEL_SETS {
                            label_sets.clear();
                        }
                        let label = identifier_label.as_deref();
                        let records = (pods.iter())
                            .filter_map(|pod| pod.record(label, &mut label_sets))
                            .collect();
                        let endpoint = best_claim(records, ip);
                        counted(match endpoint {
                            Some(Endpoint::Pod(_)) => "pod",
                            Some(Endpoint::Node { .. }) => "node",
                            _ => "none",
                        });
                        Lookup::Found(endpoint)
                    }
                    Err(error) => {
                        counted("error");
                        log::debug!("pod lookup of {ip}: {error}");
                        Lookup::NotAnswered
                    }
                };
                remote.answer(ip, lookup);
            }
            () = stopped(&stop) => break,
        }
    }
}

/// The pods whose `status.podIP` is `ip`, as the API server's cache has them.
async fn look_up(api: Api<SlimPod>, ip: IpAddr) -> (IpAddr, Result<Vec<SlimPod>, String>) {
    let params = ListParams::default()
        .fields(&format!("status.podIP={ip}"))
        .match_any();
    let found = match tokio::time::timeout(LOOKUP_TIMEOUT, api.list(&params)).await {
        Ok(Ok(list)) => Ok(list.items),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
    };
    (ip, found)
}
