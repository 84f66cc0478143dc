//! The raw command line and environment, as clap reads them: every option a string until validation.

use clap::Parser;

use crate::parse::time::ORIGINAL_DEFAULT_LAYOUT;

/// The raw command line and environment, as clap reads them.
#[derive(Parser, Debug)]
#[command(
    name = "kube-iptables-tailer",
    version,
    about = "Follows the kernel's netfilter LOG lines for dropped packets and reports each drop.",
    long_about = "Follows the kernel's netfilter LOG lines for dropped packets (iptables, ip6tables, nftables) \
                  and reports each drop: as a JSON record on stdout, and in Prometheus metrics.\n\
                  Every option can also be set by the environment variable shown with it."
)]
pub struct Args {
    /// Where drops come from: file, journald, kmsg, or nflog (NFLOG groups over netlink). Unset:
    /// journald when JOURNAL_DIRECTORY is set (the original agent's switch), else file.
    #[arg(long, env = "LOG_SOURCE")]
    pub log_source: Option<String>,

    /// The log file that rsyslog (or ulogd2) writes the kernel's LOG lines to. Required for LOG_SOURCE=file.
    #[arg(long, env = "IPTABLES_LOG_PATH")]
    pub iptables_log_path: Option<String>,

    /// The journal directory to read (LOG_SOURCE=journald), e.g. a mounted /run/log/journal or
    /// /var/log/journal; unset: the local system journal. Set without LOG_SOURCE, it selects journald.
    #[arg(long, env = "JOURNAL_DIRECTORY")]
    pub journal_directory: Option<String>,

    /// The kernel log device (LOG_SOURCE=kmsg).
    #[arg(long, env = "KMSG_PATH", default_value = "/dev/kmsg")]
    pub kmsg_path: String,

    /// The NFLOG groups to bind (LOG_SOURCE=nflog), separated by commas: the `--nflog-group` of your
    /// iptables rules, `log group` of nft rules; kube-router (k3s) logs to group 100.
    #[arg(long, env = "NFLOG_GROUPS", default_value = "100")]
    pub nflog_groups: String,

    /// The netlink socket's receive buffer in bytes (LOG_SOURCE=nflog): what absorbs a burst of drops
    /// while the agent is busy; a fuller buffer loses messages (counted).
    #[arg(long, env = "NFLOG_BUFFER_BYTES", default_value = "4194304")]
    pub nflog_buffer_bytes: String,

    /// How many bytes of each logged packet the kernel copies (LOG_SOURCE=nflog): enough for the IP and
    /// transport headers.
    #[arg(long, env = "NFLOG_COPY_RANGE", default_value = "128")]
    pub nflog_copy_range: String,

    /// The format of the lines read: auto (each line as it looks: a netfilter LOG line with a
    /// configured prefix, an OVN ACL audit line, an Antrea np.log line, an AWS network policy agent
    /// flow record), netfilter, antrea (file only), ovn (file or journald), aws (file only).
    #[arg(long, env = "LOG_FORMAT", default_value = "auto")]
    pub log_format: String,

    /// The LOG rules' prefix that marks a drop line; repeat the flag, or separate with commas in the variable.
    #[arg(
        long,
        env = "IPTABLES_LOG_PREFIX",
        default_value = "calico-drop:",
        value_delimiter = ','
    )]
    pub iptables_log_prefix: Vec<String>,

    /// Go reference layout of the line's timestamp. The default also accepts any RFC 3339 fraction and
    /// RFC 3164 (`Jan _2 15:04:05`) timestamps.
    #[arg(long, env = "PACKET_DROP_LOG_TIME_LAYOUT", default_value = ORIGINAL_DEFAULT_LAYOUT)]
    pub packet_drop_log_time_layout: String,

    /// The zone of timestamps written without one (RFC 3164); unset: /etc/localtime, else UTC.
    #[arg(long, env = "TZ", hide = true)]
    pub tz: Option<String>,

    /// Drops older than this many minutes are not reported.
    #[arg(long, env = "PACKET_DROP_EXPIRATION_MINUTES", default_value = "10")]
    pub packet_drop_expiration_minutes: String,

    /// How many parsed drops may wait for the sink (Events or stdout), as in the original agent.
    #[arg(long, env = "PACKET_DROP_CHANNEL_BUFFER_SIZE", default_value = "100")]
    pub packet_drop_channel_buffer_size: String,

    /// Kept for compatibility with the original agent, which polled the file this often; it is checked
    /// and otherwise unused: the agent wakes on change notices (inotify).
    #[arg(long, env = "WATCH_LOGS_INTERVAL_SECONDS", default_value = "5")]
    pub watch_logs_interval_seconds: String,

    /// How often the followed file is checked for new lines and rotation when inotify cannot be had, in
    /// milliseconds (with it, the agent wakes on changes and looks at least every second).
    #[arg(long, env = "FILE_POLL_INTERVAL_MS", default_value = "50")]
    pub file_poll_interval_ms: String,

    /// With no checkpoint, read the existing file from its start instead of its end.
    #[arg(long, env = "FROM_BEGINNING")]
    pub from_beginning: bool,

    /// Lines longer than this many bytes are skipped whole (and counted).
    #[arg(long, env = "MAX_LINE_BYTES", default_value = "65536")]
    pub max_line_bytes: String,

    /// Directory for checkpoints (systemd's StateDirectory= sets it). Unset: no checkpoints, and a
    /// restart begins at the end of the file.
    #[arg(long, env = "STATE_DIRECTORY")]
    pub state_directory: Option<String>,

    /// Where drops go: stdout, kubernetes, or auto (kubernetes when a cluster is configured, else stdout).
    #[arg(long, env = "EVENT_SINK", default_value = "auto")]
    pub event_sink: String,

    /// Port of the /metrics, /healthz and /readyz HTTP server.
    #[arg(long, env = "METRICS_SERVER_PORT", default_value = "9090")]
    pub metrics_server_port: String,

    /// Address the metrics server listens on.
    #[arg(long, env = "METRICS_SERVER_ADDRESS", default_value = "0.0.0.0")]
    pub metrics_server_address: String,

    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set, refines it per module).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// This node's name, the Events' source host (the downward API sets it in a DaemonSet). Default:
    /// the host name.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// A kubeconfig file, for running outside the cluster (a host systemd unit).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<String>,

    /// The API server's address; overrides the one from the service account or kubeconfig.
    #[arg(long, env = "KUBE_API_SERVER")]
    pub kube_api_server: Option<String>,

    /// Set by Kubernetes in every pod: tells the agent it runs in a cluster.
    #[arg(long, env = "KUBERNETES_SERVICE_HOST", hide = true)]
    pub kubernetes_service_host: Option<String>,

    /// Accepted for compatibility and validated (minutes); unused: the pod watch resumes with
    /// bookmarks and lists again only when its version expired (410).
    #[arg(long, env = "POD_RESYNC_MINUTES", default_value = "30")]
    pub pod_resync_minutes: String,

    /// Which pods the index holds: cluster (every pod, listed and watched) or node (this node's;
    /// other IPs are looked up when a drop names them). Default: node when NODE_NAME is set, else
    /// cluster.
    #[arg(long, env = "POD_INDEX")]
    pub pod_index: Option<String>,

    /// With POD_INDEX=node: how long a pod of another node, once looked up, names its IP before it is
    /// looked up again (seconds); an IP that was no pod's is asked again after a quarter of it.
    #[arg(long, env = "POD_LOOKUP_TTL_SECONDS", default_value = "60")]
    pub pod_lookup_ttl_seconds: String,

    /// How the peer pod is named in an Event: namespace, name, label or name_with_namespace.
    #[arg(long, env = "POD_IDENTIFIER", default_value = "namespace")]
    pub pod_identifier: String,

    /// The label whose value names a pod when POD_IDENTIFIER=label.
    #[arg(long, env = "POD_IDENTIFIER_LABEL")]
    pub pod_identifier_label: Option<String>,

    /// Look up the DNS name of IPs that are no pod: true or false.
    #[arg(long, env = "DNS_LOOKUP", default_value = "true")]
    pub dns_lookup: String,

    /// Watch NetworkPolicies to name those that isolate a pod in Events whose log names no policy:
    /// true or false.
    #[arg(long, env = "NETWORK_POLICY_ATTRIBUTION", default_value = "true")]
    pub network_policy_attribution: String,

    /// The Events' reason.
    #[arg(long, env = "KUBE_EVENT_DISPLAY_REASON", default_value = "PacketDrop")]
    pub kube_event_display_reason: String,

    /// The Events' source component.
    #[arg(
        long,
        env = "KUBE_EVENT_SOURCE_COMPONENT_NAME",
        default_value = "kube-iptables-tailer"
    )]
    pub kube_event_source_component_name: String,

    /// Repeats of a drop within this many minutes raise the count of one Event instead of creating another.
    #[arg(long, env = "REPEATED_EVENTS_INTERVAL_MINUTES", default_value = "2")]
    pub repeated_events_interval_minutes: String,

    /// Event writes per second, at most (writes wait, and aggregate, beyond it).
    #[arg(long, env = "EVENTS_QPS", default_value = "20")]
    pub events_qps: String,

    /// Event writes allowed in a burst above EVENTS_QPS.
    #[arg(long, env = "EVENTS_BURST", default_value = "100")]
    pub events_burst: String,

    /// Events of their own a pod gets per direction and repeat interval (one per peer, port and
    /// policy); drops from further peers count toward one roll-up Event. 0: no bound.
    #[arg(long, env = "EVENTS_PER_POD", default_value = "10")]
    pub events_per_pod: String,

    /// Validate the configuration, print one line saying what would run, and exit (0 when valid, 2
    /// when not) without reading any log or contacting the API. For a unit's ExecStartPre=.
    #[arg(long)]
    pub check_config: bool,
}
