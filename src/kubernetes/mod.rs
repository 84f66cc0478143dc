//! The Kubernetes side, and the only module that knows tokio and kube-rs: a `current_thread` runtime on
//! its own thread runs the pod watch (filling the [`PodIndex`]), in node mode the lookups of other
//! nodes' pods (answering [`RemotePods`]), and the Event writer. The rest of the program talks to it
//! through crossbeam channels ([`EventWrite`] in, [`EventOutcome`] out), the lookup queue, and the
//! indexes' synchronous methods.

mod async_stop;
mod backoff;
mod client;
mod counted;
mod event_writer;
mod pod_object;
mod pod_watch;
mod policy_watch;
mod remote_lookup;
mod write_channel;
mod write_tasks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use async_stop::AsyncStop;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::EventOutcome;
use crate::resolve::pod_lookup::PodIndexMode;
use crate::resolve::pods::PodIndex;
use crate::resolve::policies::PolicyIndex;
use crate::resolve::remote::RemotePods;
use crate::stop::Stop;

pub use client::{api_server_url, check_kubeconfig};
pub use pod_watch::READY_CONDITION;
pub use remote_lookup::{LookupLimits, LookupQueue, lookup_queue};
pub use write_channel::{WriteReceiver, WriteSender, write_channel};

/// Everything the Kubernetes thread needs, from `config.rs`.
#[derive(Clone, Debug, PartialEq)]
pub struct KubeSettings {
    /// `--kubeconfig` / `KUBECONFIG`: a kubeconfig file (the host systemd unit case).
    pub kubeconfig: Option<PathBuf>,
    /// `KUBE_API_SERVER`: overrides the API server address of whatever configuration is found.
    pub api_server: Option<String>,
    /// This node's name: the Events' source host.
    pub node_name: String,
    /// `KUBE_EVENT_DISPLAY_REASON`.
    pub reason: String,
    /// `KUBE_EVENT_SOURCE_COMPONENT_NAME`.
    pub component: String,
    /// `POD_IDENTIFIER_LABEL`: the label whose value the index keeps for each pod.
    pub identifier_label: Option<String>,
    /// Pods per list page.
    pub page_size: u32,
    /// An Event write that has not succeeded after this long is given up (and counted).
    pub give_up_after: Duration,
    /// `NETWORK_POLICY_ATTRIBUTION`: watch NetworkPolicies to name those that isolate a pod.
    pub watch_network_policies: bool,
    /// `POD_INDEX`: every pod, or this node's (and the others looked up on demand).
    pub pod_index: PodIndexMode,
    /// Node mode: how fast other nodes' pods may be looked up.
    pub lookups: LookupLimits,
}

/// What the watches keep up to date for the resolve stage.
pub struct Indexes {
    pub pods: Arc<PodIndex>,
    pub policies: Arc<PolicyIndex>,
    /// Node mode: the remote pods' cache, and the queue of IPs the resolve stage asks for.
    pub remote: Option<(Arc<RemotePods>, LookupQueue)>,
}

/// Thread body: runs until `stop` for the pod watch, and until `writes` is disconnected for the
/// Event writer (so that writes still in the pipeline at shutdown get their outcome).
pub fn run(
    settings: KubeSettings,
    indexes: Indexes,
    writes: WriteReceiver,
    outcomes: Sender<EventOutcome>,
    health: Health,
    stop: Stop,
    metrics: Arc<Metrics>,
) -> Result<(), client::ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(client::ClientError::Runtime)?;
    runtime.block_on(async move {
        let stop = AsyncStop::new(&stop);
        let client = client::connect(&settings).await?;
        let Indexes {
            pods,
            policies,
            remote,
        } = indexes;
        let watch = pod_watch::watch_pods(
            client.clone(),
            settings.clone(),
            pods,
            health,
            stop.clone(),
            metrics.clone(),
        );
        let lookups = {
            let (client, stop, metrics) = (client.clone(), stop.clone(), metrics.clone());
            let (limits, label) = (settings.lookups, settings.identifier_label.clone());
            async move {
                if let Some((remote, queue)) = remote {
                    remote_lookup::look_up_pods(
                        client, queue, remote, limits, label, stop, metrics,
                    )
                    .await;
                }
            }
        };
        let policy_watch = {
            let (wanted, client, metrics) = (
                settings.watch_network_policies,
                client.clone(),
                metrics.clone(),
            );
            async move {
                if wanted {
                    policy_watch::watch_policies(client, policies, stop, metrics).await;
                }
            }
        };
        let writer = event_writer::write_events(client, settings, writes, outcomes, metrics);
        // The writer ends when the events stage is gone; the watches and lookups end at stop.
        tokio::join!(watch, policy_watch, lookups, writer);
        Ok(())
    })
}

/// Resolves once the stop is triggered.
async fn stopped(stop: &AsyncStop) {
    stop.stopped().await;
}
