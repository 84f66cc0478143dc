//! The Kubernetes side, and the only module that knows tokio and kube-rs: a `current_thread` runtime on
//! its own thread runs the pod watch (filling the [`PodIndex`]) and the Event writer. The rest of the
//! program talks to it through crossbeam channels ([`EventWrite`] in, [`EventOutcome`] out) and the
//! index's synchronous methods.

mod backoff;
mod client;
mod counted;
mod event_writer;
mod pod_object;
mod pod_watch;
mod policy_watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::model::{EventOutcome, EventWrite};
use crate::resolve::pods::PodIndex;
use crate::resolve::policies::PolicyIndex;
use crate::stop::Stop;

pub use pod_watch::READY_CONDITION;

/// Everything the Kubernetes thread needs, from `config.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// What the watches keep up to date for the resolve stage.
pub struct Indexes {
    pub pods: Arc<PodIndex>,
    pub policies: Arc<PolicyIndex>,
}

/// Thread body: runs until `stop` for the pod watch, and until `writes` is disconnected for the
/// Event writer (so that writes still in the pipeline at shutdown get their outcome).
pub fn run(
    settings: KubeSettings,
    indexes: Indexes,
    writes: Receiver<EventWrite>,
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
        let client = client::connect(&settings).await?;
        let watch = pod_watch::watch_pods(
            client.clone(),
            settings.clone(),
            indexes.pods,
            health,
            stop.clone(),
            metrics.clone(),
        );
        let policy_watch = {
            let (wanted, client, metrics) = (
                settings.watch_network_policies,
                client.clone(),
                metrics.clone(),
            );
            async move {
                if wanted {
                    policy_watch::watch_policies(client, indexes.policies, stop, metrics).await;
                }
            }
        };
        let writer = event_writer::write_events(client, settings, writes, outcomes, metrics);
        // The writer ends when the events stage is gone; the watches end at stop.
        tokio::join!(watch, policy_watch, writer);
        Ok(())
    })
}

/// Resolves once the stop is triggered (polled: the stop signal is a crossbeam channel).
async fn stopped(stop: &Stop) {
    while !stop.is_stopped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
