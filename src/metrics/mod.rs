//! The agent's Prometheus registry and every counter in it, created once and shared by the stages.
//!
//! Labels carry only small fixed sets (reasons, kinds) or namespaces with a cap, never IPs, ports or pod
//! names, so the number of series stays bounded whatever the traffic is.

pub mod policy;
pub mod server;

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

const PREFIX: &str = "kube_iptables_tailer";

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    /// `packet_drops_count{src,dst}`: the original agent's metric, labelled by namespace.
    pub packet_drops: IntCounterVec,
    /// Lines read from the source (complete lines, whether drops or not).
    pub lines_read: IntCounter,
    /// Lines that parsed as drops and were handed on.
    pub drops_parsed: IntCounter,
    /// Lines not handed on, by reason (`not_a_drop`, `bad_timestamp`, `missing_field`, `expired`, ...).
    pub lines_skipped: IntCounterVec,
    /// Lines longer than the limit, skipped whole.
    pub lines_too_long: IntCounter,
    /// Times the followed file was replaced or truncated, by kind (`rename`, `truncate`, `recreate`).
    pub rotations: IntCounterVec,
    /// Rotated files by what became of them: `read_between` (a file that came between two we saw,
    /// read), `compressed_skipped`, `gone` (the checkpointed file no longer exists).
    pub rotated_files: IntCounterVec,
    /// Read errors on the source that were retried.
    pub source_errors: IntCounter,
    /// Checkpoints written, and state writes (checkpoints, the storm bound's groups) failed.
    pub checkpoint_writes: IntCounter,
    pub checkpoint_failures: IntCounter,
    /// Drop records written by the stdout sink.
    pub records_written: IntCounter,
    /// 1 once the source has opened its input and is reading.
    pub source_ready: IntGauge,
    /// Records the source could not read, by reason (`overwritten` kmsg records, a `vanished_cursor`).
    pub source_lost: IntCounterVec,
    /// Times the source was opened again after an error.
    pub source_reopens: IntCounter,
    /// Seconds between now and the newest entry's time, as of the last entry read.
    pub source_lag_seconds: prometheus::Gauge,
    /// Drops whose Event write was given up, by reason (`queue_full`, `rejected`, `gave_up`).
    pub events_dropped: IntCounterVec,
    /// Events created, and Events whose count was raised.
    pub events_created: IntCounter,
    pub events_patched: IntCounter,
    /// Drops read again after a restart that their Event had counted already (not added again).
    pub events_replays_skipped: IntCounter,
    /// Drops counted toward a pod's roll-up Event, past `EVENTS_PER_POD` Events of their own.
    pub events_rolled_up: IntCounter,
    /// Drops whose log names the policy, by its namespace and name and the direction it guards
    /// (`metrics/policy.rs` bounds the label values).
    pub policy_drops: IntCounterVec,
    /// Event writes waiting (aggregating) for the rate limit or the API.
    pub events_pending: IntGauge,
    /// Failed API requests, by HTTP status code or `network`.
    pub api_errors: IntCounterVec,
    /// Pods (IPs) in the index, and 1 once it has synced with the API.
    pub pod_index_size: IntGauge,
    pub pod_index_synced: IntGauge,
    /// NetworkPolicies in the index, and 1 once it has synced (0 while they cannot be listed: RBAC).
    pub network_policies: IntGauge,
    pub network_policies_synced: IntGauge,
    /// Pod watches started again (`expired`: a relist after 410 Gone; `error`).
    pub watch_restarts: IntCounterVec,
    /// `POD_INDEX=node`: lookups of IPs on other nodes, by result (`pod`, `node`, `none`,
    /// `rate_limited`, `error`).
    pub remote_pod_lookups: IntCounterVec,
    /// `POD_INDEX=node`: IPs located as external because their lookup had no answer in time, by
    /// reason (`slow`: not answered within the wait; `queue_full`: not asked).
    pub remote_pods_unresolved: IntCounterVec,
    /// Reverse DNS lookups, by result (`found`, `not_found`, `timeout`, `busy`), and answers from cache.
    pub dns_lookups: IntCounterVec,
    pub dns_cache_hits: IntCounter,
    /// NFLOG packet messages received, decoded into drops, and skipped by reason (`malformed`,
    /// `no_payload`, `not_ip`, `truncated`).
    pub nflog_received: IntCounter,
    pub nflog_decoded: IntCounter,
    pub nflog_skipped: IntCounterVec,
    /// NFLOG drops whose transport header the copy range cut (reported without ports).
    pub nflog_incomplete: IntCounter,
    /// The NFLOG socket's receive buffer as the kernel granted it.
    pub nflog_receive_buffer_bytes: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let metrics = Metrics {
            packet_drops: IntCounterVec::new(
                Opts::new(
                    "packet_drops_count",
                    "Packet drops seen, by source and destination namespace",
                ),
                &["src", "dst"],
            )
            .expect("valid metric"),
            lines_read: counter(
                "lines_read_total",
                "Complete lines read from the log source",
            ),
            drops_parsed: counter(
                "drops_parsed_total",
                "Packet drops parsed from lines (an Antrea line may stand for several)",
            ),
            lines_skipped: counter_vec(
                "lines_skipped_total",
                "Lines that were not handed on as drops, by reason",
                &["reason"],
            ),
            lines_too_long: counter(
                "lines_too_long_total",
                "Lines longer than the maximum line length, skipped whole",
            ),
            rotations: counter_vec(
                "file_rotations_total",
                "Times the followed log file was rotated, by kind",
                &["kind"],
            ),
            rotated_files: counter_vec(
                "rotated_files_total",
                "Rotated log files found in the directory, by what became of them",
                &["outcome"],
            ),
            source_errors: counter(
                "source_errors_total",
                "Errors reading the log source (retried)",
            ),
            checkpoint_writes: counter("checkpoint_writes_total", "Checkpoints written"),
            checkpoint_failures: counter(
                "checkpoint_failures_total",
                "Writes of the state directory that failed (checkpoints, the Event storm bound's \
                 full groups)",
            ),
            records_written: counter("records_written_total", "Drop records written to stdout"),
            source_ready: IntGauge::with_opts(Opts::new(
                format!("{PREFIX}_source_ready"),
                "1 once the log source is open and being read",
            ))
            .expect("valid metric"),
            source_lost: counter_vec(
                "source_lost_total",
                "Records the source could not read, by reason",
                &["reason"],
            ),
            source_reopens: counter(
                "source_reopens_total",
                "Times the source was opened again after an error",
            ),
            source_lag_seconds: prometheus::Gauge::with_opts(Opts::new(
                format!("{PREFIX}_source_lag_seconds"),
                "Now minus the time of the newest entry read, when it was read",
            ))
            .expect("valid metric"),
            events_dropped: counter_vec(
                "events_dropped_total",
                "Drops not reported because their Event write was given up, by reason",
                &["reason"],
            ),
            events_created: counter("events_created_total", "Events created"),
            events_patched: counter("events_patched_total", "Events whose count was raised"),
            events_replays_skipped: counter(
                "events_replays_skipped_total",
                "Drops read again after a restart that their Event had counted already",
            ),
            events_rolled_up: counter(
                "events_rolled_up_total",
                "Drops counted toward a pod's roll-up Event: its peers past EVENTS_PER_POD Events \
                 of their own per direction and repeat interval",
            ),
            policy_drops: counter_vec(
                "policy_drops_total",
                "Drops whose log names the policy, by its namespace and name and the direction it \
                 guards (ingress, egress, unknown)",
                &["namespace", "policy", "direction"],
            ),
            events_pending: gauge(
                "events_pending",
                "Event writes waiting for the rate limit or the API",
            ),
            api_errors: counter_vec(
                "api_errors_total",
                "Failed Kubernetes API requests, by HTTP status or network",
                &["code"],
            ),
            pod_index_size: gauge("pod_index_size", "IP addresses in the pod index"),
            pod_index_synced: gauge(
                "pod_index_synced",
                "1 once the pod index has synced with the API",
            ),
            network_policies: gauge(
                "network_policies",
                "NetworkPolicies in the index (they name the policies that isolate a pod)",
            ),
            network_policies_synced: gauge(
                "network_policies_synced",
                "1 once the NetworkPolicy index has synced with the API",
            ),
            watch_restarts: counter_vec(
                "watch_restarts_total",
                "Pod watches started again, by reason",
                &["reason"],
            ),
            remote_pod_lookups: counter_vec(
                "remote_pod_lookups_total",
                "POD_INDEX=node: lookups of IPs on other nodes at the API, by result",
                &["result"],
            ),
            remote_pods_unresolved: counter_vec(
                "remote_pods_unresolved_total",
                "POD_INDEX=node: IPs located as external because their lookup had no answer in time, by reason",
                &["reason"],
            ),
            dns_lookups: counter_vec(
                "dns_lookups_total",
                "Reverse DNS lookups of IPs that are no pod, by result",
                &["result"],
            ),
            dns_cache_hits: counter(
                "dns_cache_hits_total",
                "Reverse DNS answers taken from the cache",
            ),
            nflog_received: counter(
                "nflog_messages_received_total",
                "NFLOG packet messages received from the kernel",
            ),
            nflog_decoded: counter(
                "nflog_messages_decoded_total",
                "NFLOG packet messages decoded into drops",
            ),
            nflog_skipped: counter_vec(
                "nflog_messages_skipped_total",
                "NFLOG packet messages that gave no drop, by reason",
                &["reason"],
            ),
            nflog_incomplete: counter(
                "nflog_messages_incomplete_total",
                "NFLOG drops reported without ports: the copy range cut the transport header",
            ),
            nflog_receive_buffer_bytes: gauge(
                "nflog_receive_buffer_bytes",
                "The NFLOG socket's receive buffer in bytes, as the kernel granted it",
            ),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 37] = [
            Box::new(self.packet_drops.clone()),
            Box::new(self.lines_read.clone()),
            Box::new(self.drops_parsed.clone()),
            Box::new(self.lines_skipped.clone()),
            Box::new(self.lines_too_long.clone()),
            Box::new(self.rotations.clone()),
            Box::new(self.rotated_files.clone()),
            Box::new(self.source_errors.clone()),
            Box::new(self.checkpoint_writes.clone()),
            Box::new(self.checkpoint_failures.clone()),
            Box::new(self.records_written.clone()),
            Box::new(self.source_ready.clone()),
            Box::new(self.source_lost.clone()),
            Box::new(self.source_reopens.clone()),
            Box::new(self.source_lag_seconds.clone()),
            Box::new(self.events_dropped.clone()),
            Box::new(self.events_created.clone()),
            Box::new(self.events_patched.clone()),
            Box::new(self.events_replays_skipped.clone()),
            Box::new(self.events_rolled_up.clone()),
            Box::new(self.policy_drops.clone()),
            Box::new(self.events_pending.clone()),
            Box::new(self.api_errors.clone()),
            Box::new(self.pod_index_size.clone()),
            Box::new(self.pod_index_synced.clone()),
            Box::new(self.network_policies.clone()),
            Box::new(self.network_policies_synced.clone()),
            Box::new(self.watch_restarts.clone()),
            Box::new(self.remote_pod_lookups.clone()),
            Box::new(self.remote_pods_unresolved.clone()),
            Box::new(self.dns_lookups.clone()),
            Box::new(self.dns_cache_hits.clone()),
            Box::new(self.nflog_received.clone()),
            Box::new(self.nflog_decoded.clone()),
            Box::new(self.nflog_skipped.clone()),
            Box::new(self.nflog_incomplete.clone()),
            Box::new(self.nflog_receive_buffer_bytes.clone()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("metric names are unique");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::with_opts(Opts::new(format!("{PREFIX}_{name}"), help)).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(format!("{PREFIX}_{name}"), help)).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(format!("{PREFIX}_{name}"), help), labels).expect("valid metric")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_the_original_metric_and_prefixed_counters() {
        let metrics = Metrics::new();
        metrics
            .packet_drops
            .with_label_values(&["unknown", "unknown"])
            .inc();
        metrics
            .lines_skipped
            .with_label_values(&["not_a_drop"])
            .inc_by(3);
        let text = metrics.render();
        assert!(
            text.contains("packet_drops_count{dst=\"unknown\",src=\"unknown\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("kube_iptables_tailer_lines_skipped_total{reason=\"not_a_drop\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("kube_iptables_tailer_lines_read_total 0\n"),
            "{text}"
        );
    }
}
