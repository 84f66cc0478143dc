//! The host service under a real systemd (PID 1 of a container, see `support::nspawn`), installed by
//! `make install` and set up as the environment file says: it reports a drop its source sees to the
//! journal, as a transient user with no capabilities (CAP_NET_ADMIN alone with the nflog drop-in the
//! unit's header documents), answers on its metrics port, and stops cleanly; a bad setting, or NFLOG
//! without the drop-in, fails the start at `--check-config` (ExecStartPre) with one line, before the
//! agent itself runs.

use std::time::Duration;

use serde_json::Value;

use super::repo;
use super::systemd::nflog_drop_in;
use crate::support::nspawn::{Container, Root, TOOLS};
use crate::support::{privileged, wait_until};

const SERVICE: &str = "kube-iptables-tailer.service";
/// What the service's processes are called in the journal (SYSLOG_IDENTIFIER): the agent's own lines.
const IDENTIFIER: &str = "kube-iptables-tailer";
const ENVIRONMENT_FILE: &str = "/etc/default/kube-iptables-tailer";
/// Where the unit's LoadCredential= reads the kubeconfig.
const KUBECONFIG: &str = "/etc/kube-iptables-tailer/kubeconfig";
/// Where `systemctl edit kube-iptables-tailer` would put the nflog drop-in.
const NFLOG_DROP_IN: &str = "/etc/systemd/system/kube-iptables-tailer.service.d/nflog.conf";
/// The capability sets of a process holding CAP_NET_ADMIN (bit 12) alone, and of one holding none.
const NET_ADMIN_ONLY: &str = "0000000000001000";
const NO_CAPABILITIES: &str = "0000000000000000";
/// What kube-router's rules put on a policy drop (`--nflog-prefix`).
const NFLOG_PREFIX: &str = "DROP by policy shop/deny-all";
const TIMEOUT: Duration = Duration::from_secs(20);

fn available(test: &str) -> bool {
    privileged(&format!("real systemd: {test}"), TOOLS)
}

/// The installed environment file with `settings` applied, each to the line (set or commented out)
/// that the shipped file has for it: the change an administrator makes, and no other.
fn configure(root: &Root, settings: &[(&str, &str)]) {
    let text = root.read(ENVIRONMENT_FILE);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (name, value) in settings {
        let line = lines
            .iter_mut()
            .find(|line| {
                line.trim_start_matches('#')
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('='))
            })
            .unwrap_or_else(|| panic!("the environment file has no line for {name}"));
        *line = format!("{name}={value}");
    }
    let text = lines.join("\n") + "\n";
    root.write(ENVIRONMENT_FILE, &text, 0o644);
}

/// A setting of the shipped environment file.
fn shipped_setting(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("systemd/kube-iptables-tailer.env")).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the shipped environment file sets no {name}"))
        .to_string()
}

/// A root with the agent installed, printing its drops to the journal (EVENT_SINK=stdout: there is no
/// cluster here) with `settings` on top. The kubeconfig is there too, empty: LoadCredential= fails
/// the start (243/CREDENTIALS) when its file is missing, whatever the sink.
fn installed(settings: &[(&str, &str)]) -> Root {
    let root = Root::with_agent_installed();
    let mut all = vec![("EVENT_SINK", "stdout")];
    all.extend_from_slice(settings);
    configure(&root, &all);
    root.write(KUBECONFIG, "", 0o600);
    root
}

/// Enables and starts the service, as `make install` says to, and waits until it is ready (its source
/// open), which is when a drop counts. Enabled, the unit stays loaded once stopped, with the exit
/// status of its last run.
fn start(container: &Container) -> String {
    let output = container.output(&["systemctl", "enable", "--now", SERVICE]);
    assert!(
        output.status.success(),
        "the start failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        container.journal(SERVICE)
    );
    wait_until("/readyz", TIMEOUT, || {
        container
            .output(&["curl", "-sf", "http://localhost:9090/readyz"])
            .status
            .success()
    });
    container.show(SERVICE, "MainPID")
}

/// The record the service printed (to the journal) with `prefix`, waiting for it.
fn record(container: &Container, prefix: &str) -> Value {
    let mut found = None;
    wait_until(&format!("a record with prefix {prefix:?}"), TIMEOUT, || {
        found = container
            .journal_of(SERVICE, IDENTIFIER)
            .iter()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .find(|record| record["prefix"] == prefix);
        found.is_some()
    });
    found.unwrap()
}

/// `systemctl start` fails at ExecStartPre, and the agent never starts: what `--check-config` said (its
/// new lines in the journal) and its exit status.
fn start_fails_at_check_config(container: &Container) -> (Vec<String>, u8) {
    let before = container.journal_of(SERVICE, IDENTIFIER).len();
    let output = container.output(&["systemctl", "enable", "--now", SERVICE]);
    assert!(
        !output.status.success(),
        "the start succeeded:\n{}",
        container.journal(SERVICE)
    );
    assert_eq!(container.show(SERVICE, "Result"), "exit-code");
    assert_eq!(
        container.show(SERVICE, "ExecMainStartTimestampMonotonic"),
        "0",
        "the agent itself ran:\n{}",
        container.journal(SERVICE)
    );
    // { path=/usr/local/bin/kube-iptables-tailer ; argv[]=… --check-config ; … ; code=exited ; status=2 }
    let pre = container.show(SERVICE, "ExecStartPre");
    assert!(
        pre.contains("--check-config ;") && pre.contains(" ; code=exited ; "),
        "{pre}"
    );
    let status = pre
        .split(" ; ")
        .find_map(|field| field.strip_prefix("status="))
        .and_then(|status| status.trim_end_matches(" }").parse().ok())
        .unwrap_or_else(|| panic!("no status in {pre}"));
    let said = container.journal_of(SERVICE, IDENTIFIER)[before..].to_vec();
    // Restart=on-failure tries again after RestartSec, whatever the status: RestartPreventExitStatus=
    // looks at the main process alone. Stop that, and forget the failure.
    container.run(&["systemctl", "stop", SERVICE]);
    container.run(&["systemctl", "reset-failed", SERVICE]);
    (said, status)
}

/// The service stops on `systemctl stop`: its process exits 0 by itself (not killed after
/// TimeoutStopSec), and the unit is inactive, not failed.
fn assert_stops_cleanly(container: &Container) {
    container.run(&["systemctl", "stop", SERVICE]);
    let state = ["ActiveState", "Result", "ExecMainCode", "ExecMainStatus"]
        .map(|property| container.show(SERVICE, property));
    // ExecMainCode 1 is CLD_EXITED (2 would be CLD_KILLED).
    assert_eq!(
        state,
        ["inactive", "success", "1", "0"],
        "{}",
        container.journal(SERVICE)
    );
}

#[test]
fn the_installed_unit_reports_a_logged_drop_as_a_transient_user_without_capabilities() {
    if !available("file source") {
        return;
    }
    let log_path = shipped_setting("IPTABLES_LOG_PATH");
    let prefix = shipped_setting("IPTABLES_LOG_PREFIX");
    let container = installed(&[]).boot();
    // No rsyslog in the container: the file it would create, as Debian has it (root:adm 0640).
    container.run(&[
        "install",
        "-m",
        "0640",
        "-o",
        "root",
        "-g",
        "adm",
        "/dev/null",
        &log_path,
    ]);
    let pid = start(&container);

    // A LOG line as rsyslog writes it, timestamped now (drops older than ten minutes are skipped).
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let line = format!(
        "{now} node-1 kernel: {prefix} IN=eth0 OUT= MAC=0a:58:0a:00:02:09:0a:58:0a:00:01:05:08:00 \
         SRC=10.0.1.5 DST=10.0.2.9 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=51234 \
         DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    );
    container.run_with_input(&["sh", "-c", &format!("cat >> {log_path}")], &line);
    let record = record(&container, &prefix);
    for (field, value) in [
        ("hostname", "node-1"),
        ("in", "eth0"),
        ("src", "10.0.1.5"),
        ("dst", "10.0.2.9"),
        ("proto", "TCP"),
    ] {
        assert_eq!(record[field], value, "{field} of {record}");
    }
    assert_eq!(
        (record["spt"].as_u64(), record["dpt"].as_u64()),
        (Some(51234), Some(80))
    );

    // DynamicUser=: a uid from systemd's dynamic range, in the groups that may read logs.
    let uid: Vec<u32> = container
        .proc_status(&pid, "Uid")
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(
        uid.iter()
            .all(|id| (61184..=65519).contains(id) && *id == uid[0]),
        "uid {uid:?}"
    );
    let groups = container.proc_status(&pid, "Groups");
    let journal_gid = container.run(&["getent", "group", "systemd-journal"]);
    let journal_gid = journal_gid.trim().split(':').nth(2).unwrap();
    for gid in ["4", journal_gid] {
        assert!(
            groups.split_whitespace().any(|g| g == gid),
            "groups {groups}"
        );
    }
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(container.proc_status(&pid, set), NO_CAPABILITIES, "{set}");
    }
    assert_eq!(container.proc_status(&pid, "NoNewPrivs"), "1");
    assert_eq!(
        container.proc_status(&pid, "Seccomp"),
        "2",
        "SystemCallFilter="
    );
    // StateDirectory= with DynamicUser=: the checkpoints' directory belongs to the transient user.
    let state = container.run(&[
        "stat",
        "-c",
        "%u %a",
        "/var/lib/private/kube-iptables-tailer",
    ]);
    assert_eq!(state.trim(), format!("{} 700", uid[0]));

    let metrics = container.run(&["curl", "-s", "localhost:9090/metrics"]);
    assert!(
        metrics.contains("\nkube_iptables_tailer_drops_parsed_total 1\n"),
        "{metrics}"
    );

    assert_stops_cleanly(&container);
}

#[test]
fn a_bad_setting_fails_the_start_at_check_config_with_one_line_naming_it() {
    if !available("bad setting") {
        return;
    }
    let container = installed(&[("METRICS_SERVER_PORT", "70000")]).boot();
    let (said, status) = start_fails_at_check_config(&container);
    assert_eq!(
        said,
        [
            "kube-iptables-tailer: invalid METRICS_SERVER_PORT=\"70000\": must be a whole number from 1 to 65535"
        ]
    );
    assert_eq!(status, 2);
}

#[test]
fn with_the_nflog_drop_in_the_unit_reports_an_nflog_drop_holding_cap_net_admin_alone() {
    if !available("nflog drop-in") {
        return;
    }
    let root = installed(&[("LOG_SOURCE", "nflog"), ("NFLOG_GROUPS", "100")]);
    root.write(NFLOG_DROP_IN, &nflog_drop_in(), 0o644);
    let container = root.boot();
    // The container's own network namespace (--private-network), where the service runs too.
    for target in [
        vec![
            "NFLOG",
            "--nflog-group",
            "100",
            "--nflog-prefix",
            NFLOG_PREFIX,
        ],
        vec!["DROP"],
    ] {
        let mut rule = vec![
            "iptables", "-A", "INPUT", "-p", "udp", "--dport", "9999", "-j",
        ];
        rule.extend(target);
        container.run(&rule);
    }
    let pid = start(&container);

    container.run(&["bash", "-c", "echo -n x > /dev/udp/127.0.0.1/9999"]);
    let record = record(&container, NFLOG_PREFIX);
    for (field, value) in [
        ("in", "lo"),
        ("src", "127.0.0.1"),
        ("dst", "127.0.0.1"),
        ("proto", "UDP"),
    ] {
        assert_eq!(record[field], value, "{field} of {record}");
    }
    assert_eq!(record["dpt"].as_u64(), Some(9999), "{record}");

    for set in ["CapEff", "CapPrm", "CapAmb", "CapBnd"] {
        assert_eq!(container.proc_status(&pid, set), NET_ADMIN_ONLY, "{set}");
    }
    assert_stops_cleanly(&container);
}

#[test]
fn without_the_nflog_drop_in_check_config_fails_the_start() {
    if !available("nflog without the drop-in") {
        return;
    }
    let container = installed(&[("LOG_SOURCE", "nflog"), ("NFLOG_GROUPS", "100")]).boot();

    // The unit as shipped: RestrictAddressFamilies= has no AF_NETLINK, so the socket itself is refused
    // (EAFNOSUPPORT), before any group is asked for: a deployment mistake (exit 2) naming the fix.
    let (said, status) = start_fails_at_check_config(&container);
    assert_eq!(
        said,
        [
            "kube-iptables-tailer: netlink sockets are not allowed here (a host unit without AF_NETLINK in RestrictAddressFamilies=? the unit's nflog drop-in adds it)"
        ]
    );
    assert_eq!(status, 2);

    // With the drop-in's address families but not its capability, the group itself is refused.
    let drop_in = nflog_drop_in();
    let families: Vec<&str> = drop_in
        .lines()
        .filter(|line| line.starts_with('[') || line.starts_with("RestrictAddressFamilies="))
        .collect();
    assert_eq!(families.len(), 2, "{drop_in}");
    container
        .root()
        .write(NFLOG_DROP_IN, &(families.join("\n") + "\n"), 0o644);
    container.run(&["systemctl", "daemon-reload"]);
    let (said, status) = start_fails_at_check_config(&container);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("kube-iptables-tailer: not permitted to bind NFLOG group 100: "),
        "{said:?}"
    );
    assert_eq!(status, 2);
}
