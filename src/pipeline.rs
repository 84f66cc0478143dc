//! The data path, start to end. This file builds the channels, starts one named thread per stage, waits
//! for the stop signal and joins them:
//!
//! ```text
//! source-{file|journald|kmsg} ──Batch<Line>──▶ parse ──Batch<PacketDrop>──▶ sink-stdout
//! source-nflog ─────────────────────────────────Batch<PacketDrop>──┘└──▶ resolve ──▶ events ◀──▶ kubernetes ──▶ API
//! sink-stdout or events ──Position (acknowledged)──▶ checkpoint
//! metrics-http (/metrics /healthz /readyz)        signals (SIGTERM/SIGINT → stop)
//! ```
//!
//! NFLOG hands over packets, already drops: it skips the parser, and keeps no checkpoint (the kernel
//! keeps no history to resume from).
//!
//! With no cluster the drops go to stdout; with one, `spawn_kubernetes_stages` adds the stages that turn
//! them into Events.
//!
//! Every channel is bounded, so a slow stage makes the one before it wait instead of losing lines.
//! Shutdown drains: the source stops reading, and each later stage ends when its input is disconnected
//! and empty, so every line read is handled and the last acknowledged position is checkpointed. Any stage
//! that ends (or panics) triggers the stop for all; a panic is re-raised as an error at join.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, KubernetesConfig, SinkKind};
use crate::events::{self, EventSettings};
use crate::health::Health;
use crate::kubernetes::{self, KubeSettings};
use crate::metrics::{self, Metrics};
use crate::model::{Batch, PacketDrop, Position};
use crate::parse::{self, Parser};
use crate::resolve::dns::{DnsSettings, ReverseDns};
use crate::resolve::pod_lookup::{PodIndexMode, PodLookup};
use crate::resolve::remote::{RemotePods, RemoteSettings};
use crate::resolve::{self, pods::PodIndex, policies::PolicyIndex};
use crate::sinks;
use crate::sources::checkpoint::{self, CheckpointStore};
use crate::sources::{Source, SourceOutput, nflog};
use crate::stop::{self, Stop, StopTrigger};

/// The storm bound's state in the state directory: the Event groups that filled (`events/storm.rs`).
const STORM_STATE_FILE: &str = "events-per-pod.json";
/// Batches of lines waiting to be parsed. Small: a batch holds up to `DropQueue::batch_lines` lines.
const LINE_QUEUE_BATCHES: usize = 16;
/// A checkpoint is written at most this often (and always at shutdown).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// Event writes outstanding at the API at once (each for a different Event).
const EVENT_WRITES_IN_FLIGHT: usize = 8;
/// Distinct Events waiting (aggregating) for the rate limit or the API before new ones are shed.
const MAX_PENDING_EVENTS: usize = 10_000;
/// At shutdown, how long Event writes in flight may still finish (SIGTERM must end the agent in 2 s).
const EVENTS_SHUTDOWN_GRACE: Duration = Duration::from_millis(1200);
/// An Event write still failing after this long is given up and counted.
const EVENT_WRITE_GIVE_UP: Duration = Duration::from_secs(600);
/// Pods per list page: pages keep the memory of a relist small.
const POD_LIST_PAGE_SIZE: u32 = 500;
/// Node mode: lookups of other nodes' pods per second, and in a burst. One node's share of the API
/// server's load: an IP is looked up once per `POD_LOOKUP_TTL_SECONDS` at most, and a scan from
/// thousands of addresses costs 5 lookups a second (the rest are located by IP, and counted).
const POD_LOOKUP_QPS: f64 = 5.0;
const POD_LOOKUP_BURST: u32 = 20;
/// Node mode: IPs of other nodes whose lookup answers are kept (about 600 bytes each at most).
const POD_LOOKUP_CACHE: usize = 4096;
/// Node mode: the longest a batch of drops waits for the lookups of its unknown IPs.
const POD_LOOKUP_MAX_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    MetricsServer(#[from] metrics::server::BindError),
    #[error("cannot use STATE_DIRECTORY {path}: {source}")]
    StateDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Nflog(#[from] nflog::OpenError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot write drops to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("{0}")]
    Kubernetes(String),
    #[error("thread {0} panicked: {1}")]
    Panicked(&'static str, String),
}

impl PipelineError {
    /// The agent was deployed wrongly (another listener holds an NFLOG group, a capability is
    /// missing): a configuration error, exit code 2, rather than a failure.
    pub fn is_configuration(&self) -> bool {
        matches!(self, PipelineError::Nflog(error) if error.is_deployment())
    }
}

/// Runs the agent until SIGTERM/SIGINT (Ok) or until a stage fails (Err).
pub fn run(config: Config) -> Result<(), PipelineError> {
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    let (trigger, stop) = stop::new();

    // Everything that can fail at start is done before the first thread starts.
    let server = metrics::server::bind(config.metrics_address)?;
    let checkpoints = match &config.state_directory {
        _ if !Source::resumes(&config.source) => {
            log::info!(
                "{} keeps no history: no checkpoint, a restart reads what comes from then on",
                config.source.name()
            );
            None
        }
        Some(directory) => Some(open_checkpoints(directory, config.source.name())?),
        None => {
            log::warn!(
                "STATE_DIRECTORY is not set: no checkpoints; a restart begins at the end of the log"
            );
            None
        }
    };
    let start = checkpoints.as_ref().and_then(load_checkpoint);
    // Batches no larger than the drop queue's: its bound is a number of drops
    // (PACKET_DROP_CHANNEL_BUFFER_SIZE), and a batch of lines becomes at most that many drops.
    let queue = config.drop_queue;
    let source = Source::open(config.source, start, queue.batch_lines.get(), &stop)?;
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(PipelineError::Signals)?;
    let signals_handle = signals.handle();

    let (drops_tx, drops_rx) = bounded(queue.batches.get());
    let (acks_tx, acks_rx) = bounded::<Position>(LINE_QUEUE_BATCHES);

    let mut workers: Vec<Worker> = Vec::new();
    let spawn = Spawner {
        health: &health,
        stop: &stop,
        trigger: &trigger,
    };

    let output = if source.sends_lines() {
        let (lines_tx, lines_rx) = bounded(LINE_QUEUE_BATCHES);
        let parser = Parser::new(config.prefixes, config.time_layout, config.local_zone)
            .with_format(config.log_format);
        let (expiration, parse_metrics) = (config.expiration, metrics.clone());
        workers.push(spawn.worker("parse", move || {
            parse::stage::run(parser, expiration, lines_rx, drops_tx, parse_metrics);
            Ok(())
        }));
        SourceOutput::Lines(lines_tx)
    } else {
        SourceOutput::Drops(drops_tx)
    };
    let (source_stop, source_metrics, source_health) =
        (stop.clone(), metrics.clone(), health.clone());
    workers.push(spawn.worker(source.thread_name(), move || {
        source.run(output, source_stop, source_metrics, source_health);
        Ok(())
    }));

    let acks = checkpoints.as_ref().map(|_| acks_tx);
    // Kept beside the checkpoint, which it must agree with: without one there is nothing to replay.
    let storm_state = checkpoints
        .as_ref()
        .and(config.state_directory.as_ref())
        .map(|directory| directory.join(STORM_STATE_FILE));
    match config.sink {
        SinkKind::Stdout => {
            let sink_metrics = metrics.clone();
            workers.push(spawn.worker("sink-stdout", move || {
                // Buffered, and flushed once per batch: a burst costs a few writes, not one per record.
                let stdout = std::io::BufWriter::new(std::io::stdout().lock());
                sinks::stdout::run(drops_rx, acks, stdout, sink_metrics)
                    .map_err(PipelineError::Stdout)
            }));
        }
        SinkKind::Kubernetes(settings) => {
            let events = EventsState {
                acks,
                storm_state,
                expiration: config.expiration,
            };
            workers.extend(spawn_kubernetes_stages(
                settings, drops_rx, events, &spawn, &metrics,
            ));
        }
    }

    if let Some(store) = checkpoints {
        let checkpoint_metrics = metrics.clone();
        workers.push(spawn.worker("checkpoint", move || {
            checkpoint::run_writer(store, acks_rx, CHECKPOINT_INTERVAL, checkpoint_metrics);
            Ok(())
        }));
    }

    let (server_metrics, server_health, server_stop) =
        (metrics.clone(), health.clone(), stop.clone());
    let metrics_thread = spawn.thread("metrics-http", move || {
        metrics::server::run(server, server_metrics, server_health, server_stop);
    });

    let signal_trigger = trigger.clone();
    let signals_thread = spawn.thread("signals", move || {
        let mut received = signals.forever();
        if let Some(signal) = received.next() {
            log::info!("received signal {signal}: stopping (send it again to exit at once)");
            signal_trigger.trigger();
        }
        if received.next().is_some() {
            log::warn!("second signal: exiting without draining");
            std::process::exit(1);
        }
    });

    log::info!(
        "started; metrics on http://{}/metrics",
        config.metrics_address
    );
    let mut failure = None;
    for (name, handle) in workers {
        let outcome = match handle.join() {
            Ok(result) => result,
            Err(panic) => Err(PipelineError::Panicked(name, panic_message(&panic))),
        };
        if let Err(error) = outcome {
            log::error!("{name}: {error}");
            failure.get_or_insert(error);
        }
    }
    trigger.trigger();
    signals_handle.close();
    for (name, handle) in [
        ("metrics-http", metrics_thread),
        ("signals", signals_thread),
    ] {
        if let Err(panic) = handle.join() {
            failure.get_or_insert(PipelineError::Panicked(name, panic_message(&panic)));
        }
    }
    match failure {
        Some(error) => Err(error),
        None => {
            log::info!("stopped");
            Ok(())
        }
    }
}

/// The stages after parsing when drops become Events:
///
/// ```text
/// parse ──Batch<PacketDrop>──▶ resolve ──Batch<Located>──▶ events ──EventWrite──▶ kubernetes ──▶ API
///            (PodIndex ◀── pod watch in kubernetes)          ▲── EventOutcome ──┘
/// events ──Position (once every drop of a batch is accepted or shed)──▶ checkpoint
/// ```
fn spawn_kubernetes_stages(
    settings: KubernetesConfig,
    drops: Receiver<Batch<PacketDrop>>,
    EventsState {
        acks,
        storm_state,
        expiration,
    }: EventsState,
    spawn: &Spawner,
    metrics: &Arc<Metrics>,
) -> Vec<Worker> {
    let index = Arc::new(PodIndex::new(metrics.clone()));
    let policies = Arc::new(PolicyIndex::default());
    let remote = match settings.pod_index {
        PodIndexMode::Cluster => None,
        PodIndexMode::Node => {
            let (ask, queue) = kubernetes::lookup_queue();
            let remote_settings = RemoteSettings {
                ttl: settings.pod_lookup_ttl,
                negative_ttl: settings.pod_lookup_ttl / 4,
                capacity: std::num::NonZeroUsize::new(POD_LOOKUP_CACHE).expect("not zero"),
                max_wait: POD_LOOKUP_MAX_WAIT,
            };
            Some((
                Arc::new(RemotePods::new(remote_settings, ask, metrics.clone())),
                queue,
            ))
        }
    };
    spawn
        .health
        .set_condition(kubernetes::READY_CONDITION, false);
    let dns = ReverseDns::new(DnsSettings::defaults(settings.dns_lookup), metrics.clone());
    let (located_tx, located_rx) = bounded(LINE_QUEUE_BATCHES);
    let (writes_tx, writes_rx) = kubernetes::write_channel(EVENT_WRITES_IN_FLIGHT);
    // Outcomes never outnumber the writes in flight, so the writer never waits on this channel.
    let (outcomes_tx, outcomes_rx) = bounded(EVENT_WRITES_IN_FLIGHT * 2);
    let mut workers = Vec::new();

    let (resolve_index, resolve_policies, resolve_stop, resolve_metrics) = (
        PodLookup::new(index.clone(), remote.as_ref().map(|(pods, _)| pods.clone())),
        policies.clone(),
        spawn.stop.clone(),
        metrics.clone(),
    );
    workers.push(spawn.worker("resolve", move || {
        resolve::run(
            drops,
            located_tx,
            resolve_index,
            resolve_policies,
            dns,
            resolve_stop,
            resolve_metrics,
        );
        Ok(())
    }));

    let event_settings = EventSettings {
        identifier: settings.identifier,
        repeat_interval: settings.repeat_interval,
        qps: settings.events_qps,
        burst: settings.events_burst,
        node_name: settings.node_name.clone(),
        max_pending: MAX_PENDING_EVENTS,
        max_in_flight: EVENT_WRITES_IN_FLIGHT,
        shutdown_grace: EVENTS_SHUTDOWN_GRACE,
        events_per_pod: settings.events_per_pod,
        storm_state,
        expiration,
    };
    let (events_stop, events_metrics) = (spawn.stop.clone(), metrics.clone());
    workers.push(spawn.worker("events", move || {
        events::run(
            event_settings,
            located_rx,
            writes_tx,
            outcomes_rx,
            acks,
            events_stop,
            events_metrics,
        );
        Ok(())
    }));

    let kube_settings = KubeSettings {
        kubeconfig: settings.kubeconfig,
        api_server: settings.api_server,
        node_name: settings.node_name,
        reason: settings.reason,
        component: settings.component,
        identifier_label: settings.identifier_label,
        page_size: POD_LIST_PAGE_SIZE,
        give_up_after: EVENT_WRITE_GIVE_UP,
        watch_network_policies: settings.network_policy_attribution,
        pod_index: settings.pod_index,
        lookups: kubernetes::LookupLimits {
            qps: POD_LOOKUP_QPS,
            burst: POD_LOOKUP_BURST,
        },
    };
    let (kube_health, kube_stop, kube_metrics) =
        (spawn.health.clone(), spawn.stop.clone(), metrics.clone());
    workers.push(spawn.worker("kubernetes", move || {
        kubernetes::run(
            kube_settings,
            kubernetes::Indexes {
                pods: index,
                policies,
                remote,
            },
            writes_rx,
            outcomes_tx,
            kube_health,
            kube_stop,
            kube_metrics,
        )
        .map_err(|error| PipelineError::Kubernetes(error.to_string()))
    }));
    workers
}

/// A pipeline stage's thread, by name.
type Worker = (&'static str, JoinHandle<Result<(), PipelineError>>);

/// Starts named threads that report their liveness.
struct Spawner<'a> {
    health: &'a Health,
    stop: &'a Stop,
    trigger: &'a StopTrigger,
}

impl Spawner<'_> {
    /// A pipeline stage: when it ends, for whatever reason, the whole pipeline stops, since data can no
    /// longer flow through it.
    fn worker<F>(&self, name: &'static str, body: F) -> Worker
    where
        F: FnOnce() -> Result<(), PipelineError> + Send + 'static,
    {
        let trigger = self.trigger.clone();
        let handle = self.thread(name, move || {
            let _stop_when_done = StopOnDrop(trigger);
            body()
        });
        (name, handle)
    }

    fn thread<F, T>(&self, name: &'static str, body: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let liveness = self.health.alive(name, self.stop.clone());
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _liveness = liveness;
                body()
            })
            .unwrap_or_else(|error| panic!("cannot start thread {name}: {error}"))
    }
}

/// What the events stage keeps across restarts, and how long drops stay current.
struct EventsState {
    /// Where acknowledged positions go; `None` without checkpoints.
    acks: Option<Sender<Position>>,
    storm_state: Option<PathBuf>,
    expiration: Duration,
}

/// Triggers the stop when dropped, also while unwinding from a panic.
struct StopOnDrop(StopTrigger);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

fn open_checkpoints(
    directory: &std::path::Path,
    name: &str,
) -> Result<CheckpointStore, PipelineError> {
    let state_error = |source| PipelineError::StateDirectory {
        path: directory.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(directory).map_err(state_error)?;
    // Fail now, not at the first checkpoint, when the directory cannot be written.
    let probe = directory.join(".write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(state_error)?;
    Ok(CheckpointStore::new(directory, name))
}

fn load_checkpoint(store: &CheckpointStore) -> Option<Position> {
    match store.load() {
        Ok(Some(position)) => {
            log::info!(
                "resuming from checkpoint {}: {position:?}",
                store.path().display()
            );
            Some(position)
        }
        Ok(None) => None,
        Err(error) => {
            log::warn!("ignoring the checkpoint: {error}");
            None
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_string()
    }
}
