//! Configuration: defaults, flags, and one clear error per bad value.

use clap::Parser;

use super::*;
use crate::resolve::pod_lookup::PodIndexMode;

fn parse(flags: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["kube-iptables-tailer"];
    argv.extend_from_slice(flags);
    Config::from_args(Args::try_parse_from(argv).expect("clap accepts the flags"))
}

#[test]
fn defaults_match_the_original_agent() {
    let config = parse(&["--iptables-log-path", "/var/log/iptables.log"]).unwrap();
    assert_eq!(config.prefixes, vec!["calico-drop:".to_string()]);
    assert_eq!(config.expiration, Duration::from_secs(600));
    assert_eq!(config.drop_queue.drops(), 100);
    assert_eq!(config.metrics_address, "0.0.0.0:9090".parse().unwrap());
    assert_eq!(config.log_level, log::LevelFilter::Info);
    assert_eq!(config.sink, SinkKind::Stdout);
    assert_eq!(config.state_directory, None);
    assert_eq!(
        config.source,
        SourceConfig::File {
            path: PathBuf::from("/var/log/iptables.log"),
            from_beginning: false,
            poll_interval: Duration::from_millis(50),
            max_line_bytes: 65536,
        }
    );
}

#[test]
fn repeated_prefix_flags_and_state_directory_list() {
    let config = parse(&[
        "--iptables-log-path=/l",
        "--iptables-log-prefix=a:",
        "--iptables-log-prefix=my drop:",
        "--state-directory=/var/lib/kit:/var/lib/other",
    ])
    .unwrap();
    assert_eq!(
        config.prefixes,
        vec!["a:".to_string(), "my drop:".to_string()]
    );
    assert_eq!(config.state_directory, Some(PathBuf::from("/var/lib/kit")));
}

#[test]
fn each_bad_value_names_its_variable() {
    let cases: [(&[&str], &str); 12] = [
        (
            &[],
            "invalid IPTABLES_LOG_PATH=\"\": required when LOG_SOURCE=file",
        ),
        (
            &["--iptables-log-path=/tmp"],
            "invalid IPTABLES_LOG_PATH=\"/tmp\": is a directory, not a file",
        ),
        (
            &["--iptables-log-path=/l", "--metrics-server-port=0"],
            "invalid METRICS_SERVER_PORT=\"0\": must be a whole number from 1 to 65535",
        ),
        (
            &["--iptables-log-path=/l", "--metrics-server-port=70000"],
            "invalid METRICS_SERVER_PORT=\"70000\": must be a whole number from 1 to 65535",
        ),
        (
            &["--iptables-log-path=/l", "--log-level=loud"],
            "invalid LOG_LEVEL=\"loud\": must be error, warn, info, debug or trace",
        ),
        (
            &["--iptables-log-path=/l", "--log-source=syslog"],
            "invalid LOG_SOURCE=\"syslog\": must be file, journald, kmsg or nflog",
        ),
        (
            &[
                "--iptables-log-path=/l",
                "--packet-drop-expiration-minutes=ten",
            ],
            "invalid PACKET_DROP_EXPIRATION_MINUTES=\"ten\": must be a whole number from 1 to 525600",
        ),
        (
            &["--iptables-log-path=/l", "--state-directory=relative"],
            "invalid STATE_DIRECTORY=\"relative\": must be an absolute path",
        ),
        (
            &["--iptables-log-path=/l", "--iptables-log-prefix="],
            "invalid IPTABLES_LOG_PREFIX=\"\": a prefix is empty",
        ),
        (
            &["--iptables-log-path=/l", "--log-format=calico"],
            "invalid LOG_FORMAT=\"calico\": must be auto, netfilter, antrea, ovn or aws",
        ),
        (
            &["--log-source=kmsg", "--log-format=antrea"],
            "invalid LOG_FORMAT=\"antrea\": does not go with LOG_SOURCE=kmsg",
        ),
        (
            &["--log-source=journald", "--log-format=antrea"],
            "invalid LOG_FORMAT=\"antrea\": does not go with LOG_SOURCE=journald",
        ),
    ];
    for (flags, message) in cases {
        assert_eq!(
            parse(flags).unwrap_err().to_string(),
            message,
            "flags {flags:?}"
        );
    }
}

#[test]
fn bad_time_layout_names_the_variable() {
    let error = parse(&[
        "--iptables-log-path=/l",
        "--packet-drop-log-time-layout=hello",
    ])
    .unwrap_err();
    assert_eq!(error.variable, "PACKET_DROP_LOG_TIME_LAYOUT");
    assert_eq!(error.value, "hello");
}

#[test]
fn kube_api_server_makes_auto_choose_kubernetes_with_the_original_defaults() {
    let config = parse(&[
        "--iptables-log-path=/l",
        "--kube-api-server=http://127.0.0.1:6443",
        "--node-name=node-7",
    ])
    .unwrap();
    let SinkKind::Kubernetes(kubernetes) = config.sink else {
        panic!("expected the kubernetes sink, got {:?}", config.sink);
    };
    assert_eq!(
        kubernetes,
        KubernetesConfig {
            kubeconfig: None,
            api_server: Some("http://127.0.0.1:6443".to_string()),
            node_name: "node-7".to_string(),
            reason: "PacketDrop".to_string(),
            component: "kube-iptables-tailer".to_string(),
            pod_index: PodIndexMode::Node,
            pod_lookup_ttl: Duration::from_secs(60),
            identifier: crate::model::PodIdentifier::Namespace,
            identifier_label: None,
            dns_lookup: true,
            network_policy_attribution: true,
            repeat_interval: Duration::from_secs(2 * 60),
            events_qps: 20.0,
            events_burst: 100,
            events_per_pod: Some(10),
        }
    );
}

/// The Kubernetes settings of `flags` (with a log path and the kubernetes sink).
fn kubernetes(flags: &[&str]) -> Result<KubernetesConfig, ConfigError> {
    let mut all = vec!["--iptables-log-path=/l", "--event-sink=kubernetes"];
    all.extend_from_slice(flags);
    match parse(&all)?.sink {
        SinkKind::Kubernetes(kubernetes) => Ok(kubernetes),
        other => panic!("expected the kubernetes sink, got {other:?}"),
    }
}

#[test]
fn pod_index_is_node_where_the_node_is_named_and_cluster_where_it_is_not() {
    let mode = |flags: &[&str]| kubernetes(flags).unwrap().pod_index;
    assert_eq!(mode(&["--node-name=node-7"]), PodIndexMode::Node);
    // Without NODE_NAME the host name is a guess (in a pod it is the pod's name): every pod.
    assert_eq!(mode(&[]), PodIndexMode::Cluster);
    assert_eq!(
        mode(&["--node-name=node-7", "--pod-index=cluster"]),
        PodIndexMode::Cluster
    );
    assert_eq!(
        mode(&["--node-name=node-7", "--pod-index=node"]),
        PodIndexMode::Node
    );
    let ttl = kubernetes(&["--pod-lookup-ttl-seconds=5"]).unwrap();
    assert_eq!(ttl.pod_lookup_ttl, Duration::from_secs(5));
}

#[test]
fn pod_index_mistakes_name_the_variable() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--pod-index=node"],
            "invalid POD_INDEX=\"node\": requires NODE_NAME (this node's name, from the downward \
             API's spec.nodeName)",
        ),
        (
            &["--node-name=node-7", "--pod-index=nodes"],
            "invalid POD_INDEX=\"nodes\": must be cluster or node",
        ),
        (
            &["--pod-lookup-ttl-seconds=0"],
            "invalid POD_LOOKUP_TTL_SECONDS=\"0\": must be a whole number from 1 to 3600",
        ),
    ];
    for (flags, message) in cases {
        assert_eq!(
            kubernetes(flags).unwrap_err().to_string(),
            message,
            "flags {flags:?}"
        );
    }
}

#[test]
fn pod_resync_minutes_is_accepted_and_checked_as_old_deployments_set_it() {
    let flags =
        |resync: &'static str| vec!["--iptables-log-path=/l", "--event-sink=kubernetes", resync];
    assert!(parse(&flags("--pod-resync-minutes=5")).is_ok());
    assert_eq!(
        parse(&flags("--pod-resync-minutes=0"))
            .unwrap_err()
            .to_string(),
        "invalid POD_RESYNC_MINUTES=\"0\": must be a whole number from 1 to 1440"
    );
}

#[test]
fn stdout_sink_wins_over_a_configured_cluster_when_asked_for() {
    let config = parse(&[
        "--iptables-log-path=/l",
        "--kube-api-server=http://127.0.0.1:6443",
        "--event-sink=stdout",
    ])
    .unwrap();
    assert_eq!(config.sink, SinkKind::Stdout);
}

#[test]
fn each_bad_kubernetes_value_names_its_variable() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--pod-identifier=label"],
            "invalid POD_IDENTIFIER_LABEL=\"\": required when POD_IDENTIFIER=label",
        ),
        (
            &["--pod-identifier=ip"],
            "invalid POD_IDENTIFIER=\"ip\": must be namespace, name, label or name_with_namespace",
        ),
        (
            &["--dns-lookup=maybe"],
            "invalid DNS_LOOKUP=\"maybe\": must be true or false",
        ),
        (
            &["--events-qps=0"],
            "invalid EVENTS_QPS=\"0\": must be a number above 0, at most 10000",
        ),
        (
            &["--kube-api-server=127.0.0.1:6443"],
            "invalid KUBE_API_SERVER=\"127.0.0.1:6443\": must be an http:// or https:// URL",
        ),
        (
            &["--repeated-events-interval-minutes=0"],
            "invalid REPEATED_EVENTS_INTERVAL_MINUTES=\"0\": must be a whole number from 1 to 1440",
        ),
    ];
    for (flags, message) in cases {
        let mut all = vec!["--iptables-log-path=/l", "--event-sink=kubernetes"];
        all.extend_from_slice(flags);
        assert_eq!(
            parse(&all).unwrap_err().to_string(),
            message,
            "flags {flags:?}"
        );
    }
}

#[test]
fn nflog_defaults_to_kube_routers_group_with_a_4_mib_buffer() {
    let config = parse(&["--log-source=nflog"]).unwrap();
    assert_eq!(
        config.source,
        SourceConfig::Nflog(NflogConfig {
            groups: vec![100],
            buffer_bytes: 4 << 20,
            copy_range: 128,
        })
    );
}

#[test]
fn nflog_takes_several_groups_in_order() {
    let config = parse(&[
        "--log-source=nflog",
        "--nflog-groups=5, 100,0",
        "--nflog-buffer-bytes=65536",
        "--nflog-copy-range=40",
    ])
    .unwrap();
    assert_eq!(
        config.source,
        SourceConfig::Nflog(NflogConfig {
            groups: vec![5, 100, 0],
            buffer_bytes: 65536,
            copy_range: 40,
        })
    );
}

#[test]
fn bad_nflog_settings_name_their_variable() {
    let cases: [(&str, &str); 7] = [
        (
            "--nflog-groups=abc",
            "invalid NFLOG_GROUPS=\"abc\": must be group numbers from 0 to 65535 separated by commas",
        ),
        (
            "--nflog-groups=100,65536",
            "invalid NFLOG_GROUPS=\"100,65536\": must be group numbers from 0 to 65535 separated by commas",
        ),
        (
            "--nflog-groups=",
            "invalid NFLOG_GROUPS=\"\": must be group numbers from 0 to 65535 separated by commas",
        ),
        (
            "--nflog-groups=7,7",
            "invalid NFLOG_GROUPS=\"7,7\": group 7 is named twice",
        ),
        (
            "--nflog-buffer-bytes=1024",
            "invalid NFLOG_BUFFER_BYTES=\"1024\": must be a whole number from 65536 to 1073741824",
        ),
        (
            "--nflog-copy-range=20",
            "invalid NFLOG_COPY_RANGE=\"20\": must be a whole number from 40 to 65535",
        ),
        (
            "--nflog-copy-range=65536",
            "invalid NFLOG_COPY_RANGE=\"65536\": must be a whole number from 40 to 65535",
        ),
    ];
    for (flag, message) in cases {
        let error = parse(&["--log-source=nflog", flag]).unwrap_err();
        assert_eq!(error.to_string(), message, "{flag}");
    }
}

#[test]
fn journal_directory_alone_selects_journald_as_the_original_did() {
    let journal = tempfile::tempdir().unwrap();
    let directory = format!("--journal-directory={}", journal.path().display());
    let config = parse(&[&directory]).unwrap();
    assert_eq!(
        config.source,
        SourceConfig::Journald {
            directory: Some(journal.path().to_path_buf()),
        }
    );
    // Also with IPTABLES_LOG_PATH left over from a file deployment: the original read the journal.
    let config = parse(&[&directory, "--iptables-log-path=/var/log/iptables.log"]).unwrap();
    assert_eq!(
        config.source,
        SourceConfig::Journald {
            directory: Some(journal.path().to_path_buf()),
        }
    );
}

#[test]
fn an_explicit_log_source_wins_over_journal_directory() {
    let journal = tempfile::tempdir().unwrap();
    let directory = format!("--journal-directory={}", journal.path().display());
    let config = parse(&["--log-source=file", &directory, "--iptables-log-path=/l"]).unwrap();
    assert_eq!(config.source.name(), "file");
    let config = parse(&["--log-source=kmsg", &directory]).unwrap();
    assert_eq!(config.source.name(), "kmsg");
    // An empty JOURNAL_DIRECTORY is unset (a manifest's `value: ""`): the default stays file.
    let error = parse(&["--journal-directory="]).unwrap_err();
    assert_eq!(error.variable, "IPTABLES_LOG_PATH");
}

/// A kubeconfig as a host service gets one: a cluster, a token, a current context.
const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: \"https://10.0.0.1:6443\"}
users:
- name: agent
  user: {token: abc}
contexts:
- name: agent@prod
  context: {cluster: prod, user: agent}
current-context: agent@prod
";

#[test]
fn a_readable_kubeconfig_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, KUBECONFIG).unwrap();
    let flag = format!("--kubeconfig={}", path.display());
    let config = parse(&["--iptables-log-path=/l", &flag]).unwrap();
    let SinkKind::Kubernetes(kubernetes) = config.sink else {
        panic!("expected the kubernetes sink, got {:?}", config.sink);
    };
    assert_eq!(kubernetes.kubeconfig, Some(path));
}

#[test]
fn a_kubeconfig_that_cannot_be_used_names_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let missing = dir.path().join("missing").display().to_string();
    let directory = dir.path().display().to_string();
    let garbage = write("garbage", "clusters: [unclosed\n");
    let empty = write("empty", "");
    let no_server = write(
        "no-server",
        &KUBECONFIG.replace("{server: \"https://10.0.0.1:6443\"}", "{}"),
    );
    let cases = [
        (
            &missing,
            "cannot be read: No such file or directory (os error 2)",
        ),
        (&directory, "cannot be read: Is a directory (os error 21)"),
        (
            &empty,
            "cannot be used: failed to determine current context",
        ),
        (
            &no_server,
            "cannot be used: cluster url is missing on selected cluster",
        ),
    ];
    for (path, problem) in cases {
        let flag = format!("--kubeconfig={path}");
        let error = parse(&["--iptables-log-path=/l", &flag]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid KUBECONFIG={path:?}: {problem}")
        );
    }
    let flag = format!("--kubeconfig={garbage}");
    let error = parse(&["--iptables-log-path=/l", &flag]).unwrap_err();
    assert_eq!(error.variable, "KUBECONFIG");
    assert!(
        error.problem.starts_with("is not a kubeconfig: "),
        "{error}"
    );
    assert!(!error.to_string().contains('\n'), "one line: {error}");
}

#[test]
fn a_kubeconfig_is_not_read_when_events_go_to_stdout() {
    // The systemd unit always hands one over; with EVENT_SINK=stdout it may be empty or absent.
    let config = parse(&[
        "--iptables-log-path=/l",
        "--kubeconfig=/nonexistent/kubeconfig",
        "--event-sink=stdout",
    ])
    .unwrap();
    assert_eq!(config.sink, SinkKind::Stdout);
}

#[test]
fn a_kube_api_server_that_is_no_http_url_names_kube_api_server() {
    for server in [
        "https://",
        "https://api example:6443",
        "https://api.example:port",
        "ftp://api.example",
        "api.example.com:6443",
    ] {
        let flag = format!("--kube-api-server={server}");
        let error = parse(&["--iptables-log-path=/l", &flag]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid KUBE_API_SERVER={server:?}: must be an http:// or https:// URL"),
        );
    }
    for server in [
        "http://127.0.0.1:8080",
        "https://api.example.com",
        "https://[::1]:6443/prefix",
    ] {
        let flag = format!("--kube-api-server={server}");
        assert!(
            parse(&["--iptables-log-path=/l", &flag]).is_ok(),
            "{server}"
        );
    }
}
