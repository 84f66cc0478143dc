//! `--check-config`: the configuration is validated as at start, one line says what would run, and the
//! agent exits without reading a log, binding a port or contacting the API: 0 when valid, 2 (with the
//! usual line naming the variable) when not.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::agent::BINARY;
use crate::support::privileged;

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

/// `KUBECONFIG` written into `dir`.
fn kubeconfig(dir: &std::path::Path) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, KUBECONFIG).unwrap();
    path.to_str().unwrap().to_string()
}

/// `--check-config` with `env`. With LOG_SOURCE=nflog a valid check binds the groups once, so as root
/// it runs in a network namespace of its own (`unshare --net`), never on the machine's own groups
/// (without root it cannot bind any, and only invalid settings are checked).
fn check_config(env: &[(&str, &str)]) -> Output {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let nflog = root
        && env
            .iter()
            .any(|(name, value)| *name == "LOG_SOURCE" && *value == "nflog");
    let mut command = if nflog {
        let mut command = Command::new("unshare");
        command.args(["--net", BINARY]);
        command
    } else {
        Command::new(BINARY)
    };
    command
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn a_good_configuration_prints_one_line_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().to_str().unwrap();
    let kubeconfig = kubeconfig(dir.path());
    let cases: [(Vec<(&str, &str)>, String); 4] = [
        (
            vec![("IPTABLES_LOG_PATH", "/var/log/iptables.log")],
            "source file /var/log/iptables.log, sink stdout, metrics on 0.0.0.0:9090".to_string(),
        ),
        (
            vec![
                ("LOG_SOURCE", "journald"),
                ("JOURNAL_DIRECTORY", journal),
                ("METRICS_SERVER_PORT", "9100"),
            ],
            format!("source journald {journal}, sink stdout, metrics on 0.0.0.0:9100"),
        ),
        (
            vec![
                ("LOG_SOURCE", "kmsg"),
                ("KUBE_API_SERVER", "https://127.0.0.1:6443"),
                ("NODE_NAME", "node-1"),
            ],
            "source kmsg /dev/kmsg, sink kubernetes (node node-1), metrics on 0.0.0.0:9090"
                .to_string(),
        ),
        (
            vec![
                ("LOG_SOURCE", "journald"),
                ("KUBECONFIG", &kubeconfig),
                ("NODE_NAME", "node-2"),
                ("METRICS_SERVER_ADDRESS", "127.0.0.1"),
            ],
            "source journald (system journal), sink kubernetes (node node-2), metrics on \
             127.0.0.1:9090"
                .to_string(),
        ),
    ];
    for (env, line) in cases {
        let output = check_config(&env);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{env:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("configuration OK: {line}\n")
        );
        assert!(output.stderr.is_empty(), "{env:?}");
    }
}

#[test]
fn a_bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-kubeconfig");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let empty_message = format!(
        "invalid KUBECONFIG={empty:?}: cannot be used: failed to determine current context"
    );
    let cases = [
        (
            vec![("IPTABLES_LOG_PATH", "")],
            "invalid IPTABLES_LOG_PATH=\"\": required when LOG_SOURCE=file",
        ),
        (
            vec![
                ("IPTABLES_LOG_PATH", "/var/log/iptables.log"),
                ("METRICS_SERVER_PORT", "70000"),
            ],
            "invalid METRICS_SERVER_PORT=\"70000\": must be a whole number from 1 to 65535",
        ),
        (
            vec![("LOG_SOURCE", "syslog")],
            "invalid LOG_SOURCE=\"syslog\": must be file, journald, kmsg or nflog",
        ),
        (
            vec![
                ("LOG_SOURCE", "kmsg"),
                ("KUBE_API_SERVER", "api.example.com:6443"),
            ],
            "invalid KUBE_API_SERVER=\"api.example.com:6443\": must be an http:// or https:// URL",
        ),
        (
            vec![
                ("LOG_SOURCE", "kmsg"),
                ("KUBE_API_SERVER", "https://api example.com:6443"),
            ],
            "invalid KUBE_API_SERVER=\"https://api example.com:6443\": must be an http:// or https:// URL",
        ),
        (
            vec![
                ("LOG_SOURCE", "kmsg"),
                ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ],
            "invalid KUBECONFIG=\"/nonexistent/kubeconfig\": cannot be read: No such file or directory (os error 2)",
        ),
        (
            vec![("LOG_SOURCE", "kmsg"), ("KUBECONFIG", empty)],
            &empty_message,
        ),
    ];
    for (env, message) in cases {
        let output = check_config(&env);
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("kube-iptables-tailer: {message}\n")
        );
        assert!(output.stdout.is_empty(), "{env:?}");
    }
}

#[test]
fn a_good_nflog_configuration_binds_its_groups_once_and_prints_one_line() {
    if !privileged("--check-config with NFLOG", &["unshare"]) {
        return;
    }
    // NFLOG_GROUPS defaults to kube-router's group.
    let output = check_config(&[
        ("LOG_SOURCE", "nflog"),
        ("KUBE_API_SERVER", "https://127.0.0.1:6443"),
        ("NODE_NAME", "node-1"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "configuration OK: source nflog groups 100, sink kubernetes (node node-1), metrics on 0.0.0.0:9090\n"
    );
}

#[test]
fn a_bad_nflog_group_exits_2_naming_the_variable() {
    let output = check_config(&[("LOG_SOURCE", "nflog"), ("NFLOG_GROUPS", "abc")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("kube-iptables-tailer: invalid NFLOG_GROUPS=\"abc\":"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn checking_binds_no_port_and_writes_nothing() {
    // The metrics port is taken: a start fails on it; a check does not get that far. Nor does it
    // create the checkpoint directory.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("iptables.log");
    std::fs::write(&log, "").unwrap();
    let state = dir.path().join("state");
    let env = [
        ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
        ("STATE_DIRECTORY", state.to_str().unwrap()),
        ("METRICS_SERVER_ADDRESS", "127.0.0.1"),
        ("METRICS_SERVER_PORT", port.as_str()),
    ];
    let output = check_config(&env);
    assert_eq!(output.status.code(), Some(0));
    assert!(!state.exists());

    let mut started = Command::new(BINARY)
        .env_clear()
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = started.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            started.kill().unwrap();
            started.wait().unwrap();
            panic!("a real start with the port taken did not fail");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "a real start fails on the port");
}

/// The example environment file's `NAME=value` lines, with the commented-out `#NAME=value` examples
/// whose names start with `uncomment` put back in, and what the unit adds: the kubeconfig systemd
/// hands over (at /run/credentials/kube-iptables-tailer.service/kubeconfig; here `kubeconfig`, a
/// file the check reads).
fn example_environment<'a>(
    text: &'a str,
    uncomment: &str,
    kubeconfig: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter_map(|line| match line.strip_prefix('#') {
            Some(example) if !uncomment.is_empty() && example.starts_with(uncomment) => {
                Some(example)
            }
            Some(_) => None,
            None => Some(line),
        })
        .filter(|line| !line.is_empty())
        .map(|line| line.split_once('=').expect("NAME=value"))
        .collect();
    env.push(("KUBECONFIG", kubeconfig));
    env
}

fn example_text() -> String {
    std::fs::read_to_string(super::repo().join("systemd/kube-iptables-tailer.env")).unwrap()
}

#[test]
fn the_example_environment_file_is_a_valid_configuration() {
    let text = example_text();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path());
    let env = example_environment(&text, "", &kubeconfig);
    assert!(env.iter().any(|(name, _)| *name == "LOG_SOURCE"));
    let output = check_config(&env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("sink kubernetes"));
}

#[test]
fn the_example_environment_file_with_its_nflog_settings_is_a_valid_configuration() {
    if !privileged("--check-config with NFLOG", &["unshare"]) {
        return;
    }
    let text = example_text();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path());
    let mut env = example_environment(&text, "NFLOG_", &kubeconfig);
    let names: Vec<&str> = env.iter().map(|(name, _)| *name).collect();
    for documented in ["NFLOG_GROUPS", "NFLOG_BUFFER_BYTES", "NFLOG_COPY_RANGE"] {
        assert!(names.contains(&documented), "{documented} is in the file");
    }
    for (name, value) in &mut env {
        if *name == "LOG_SOURCE" {
            *value = "nflog";
        }
    }
    let output = check_config(&env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("configuration OK: source nflog groups 100, sink kubernetes"),
        "{stdout}"
    );
}
