//! The agent binary on real files without a kernel: what it prints, how it is configured, how it stops,
//! how it resumes, and what its HTTP endpoints say.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::support::agent::{Agent, BINARY};
use crate::support::wait_until;

const PREFIX: &str = "calico-drop:";

/// A kernel line as rsyslog's RSYSLOG_FileFormat writes it, for a UDP drop to `dpt`.
fn udp_line(time: &str, dpt: u16) -> String {
    format!(
        "{time} node-1 kernel: {PREFIX} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 \
         SRC=10.0.3.7 DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=43077 DF PROTO=UDP SPT=34393 DPT={dpt} LEN=9 \n"
    )
}

fn now_syslog() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn start(dir: &Path, extra: &[(&str, &str)]) -> Agent {
    let log = dir.join("kern.log");
    let state = dir.join("state");
    let mut env = vec![
        ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
        ("STATE_DIRECTORY", state.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    Agent::start(dir, &env)
}

fn wait_ready(agent: &Agent) {
    wait_until("/readyz to answer 200", Duration::from_secs(10), || {
        agent
            .get("/readyz")
            .is_some_and(|(status, _)| status == 200)
    });
}

#[test]
fn prints_each_appended_drop_as_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    append(&log, &udp_line(&now_syslog(), 1)); // history: before the agent started, not reported
    let agent = start(dir.path(), &[]);
    wait_ready(&agent);

    let time = Utc::now();
    let stamp = time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    append(
        &log,
        &format!(
            "{stamp} node-1 kernel: {PREFIX} IN=cali1a2b OUT=eth0 MAC=ee:ee:ee:ee:ee:ee:8a:e3:5a:9a:33:d3:08:00 \
             SRC=10.0.1.5 DST=10.0.2.9 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=62275 DF PROTO=TCP SPT=51234 DPT=80 \
             WINDOW=64240 RES=0x00 SYN URGP=0 \n\
             {stamp} node-1 kernel: IPv6: ADDRCONF(NETDEV_CHANGE): cali1a2b: link becomes ready\n\
             {stamp} node-1 kernel: {PREFIX} IN= OUT=eth0 SRC=fd00:0000:0000:0000:0000:0000:0001:0005 \
             DST=fd00:0000:0000:0000:0000:0000:0002:0009 LEN=84 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 \
             CODE=0 ID=7 SEQ=1 \n"
        ),
    );
    let records = agent.expect_records(2);
    let expected_time = chrono::DateTime::parse_from_rfc3339(&stamp)
        .unwrap()
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    assert_eq!(
        records[0],
        json!({
            "time": expected_time, "hostname": "node-1", "prefix": PREFIX, "in": "cali1a2b", "out": "eth0",
            "mac": "ee:ee:ee:ee:ee:ee:8a:e3:5a:9a:33:d3:08:00", "src": "10.0.1.5", "dst": "10.0.2.9",
            "proto": "TCP", "spt": 51234, "dpt": 80, "len": 60, "ttl": 63, "flags": ["DF", "SYN"],
        })
    );
    assert_eq!(
        records[1],
        json!({
            "time": expected_time, "hostname": "node-1", "prefix": PREFIX, "in": "", "out": "eth0",
            "src": "fd00::1:5", "dst": "fd00::2:9", "proto": "ICMPv6", "icmp_type": 128, "icmp_code": 0,
            "len": 84, "ttl": 64, "flags": [],
        })
    );
    assert_eq!(agent.metric("kube_iptables_tailer_lines_read_total"), 3.0);
    assert_eq!(agent.metric("kube_iptables_tailer_drops_parsed_total"), 2.0);
    assert_eq!(
        agent.metric("kube_iptables_tailer_lines_skipped_total{reason=\"not_a_drop\"}"),
        1.0
    );
    assert_eq!(
        agent.metric("packet_drops_count{dst=\"unknown\",src=\"unknown\"}"),
        2.0
    );
}

#[test]
fn expired_and_malformed_drops_are_counted_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    let agent = start(dir.path(), &[]);
    let old = (Utc::now() - chrono::Duration::minutes(11))
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    append(&log, &udp_line(&old, 53));
    append(
        &log,
        &udp_line(&now_syslog(), 53).replace("SRC=10.0.3.7", "SRC=10.0.3.777"),
    );
    append(&log, &udp_line(&now_syslog(), 54));
    let records = agent.expect_records(1);
    assert_eq!(records[0]["dpt"], 54);
    assert_eq!(
        agent.metric("kube_iptables_tailer_lines_skipped_total{reason=\"expired\"}"),
        1.0
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_lines_skipped_total{reason=\"bad_field\"}"),
        1.0
    );
}

#[test]
fn sigterm_checkpoints_and_exits_0_within_2_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    let agent = start(dir.path(), &[]);
    for port in 1..=5 {
        append(&log, &udp_line(&now_syslog(), port));
    }
    agent.expect_records(5);
    let (status, took) = agent.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state/file.checkpoint.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(checkpoint["offset"], std::fs::metadata(&log).unwrap().len());
}

#[test]
fn restart_after_kill_9_resumes_exactly_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    let checkpoint = dir.path().join("state/file.checkpoint.json");
    let agent = start(dir.path(), &[]);
    for port in 1..=100 {
        append(&log, &udp_line(&now_syslog(), port));
    }
    agent.expect_records(100);
    let size = std::fs::metadata(&log).unwrap().len();
    wait_until(
        "the checkpoint to reach the end of the file",
        Duration::from_secs(10),
        || {
            std::fs::read(&checkpoint)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some_and(|value| value["offset"] == size)
        },
    );
    agent.kill9();

    for port in 101..=150 {
        append(&log, &udp_line(&now_syslog(), port));
    }
    // Rotated while the agent was down: the rest of the old file is read before the new one.
    std::fs::rename(&log, dir.path().join("kern.log.1")).unwrap();
    for port in 151..=160 {
        append(&log, &udp_line(&now_syslog(), port));
    }
    let agent = start(dir.path(), &[]);
    let ports: Vec<u64> = agent
        .expect_records(60)
        .iter()
        .map(|r| r["dpt"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, (101..=160).collect::<Vec<u64>>());
}

#[test]
fn probes_report_readiness_once_the_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(dir.path(), &[]);
    assert_eq!(agent.get("/healthz").unwrap(), (200, "ok\n".to_string()));
    assert_eq!(agent.get("/readyz").unwrap().0, 503);
    assert_eq!(agent.metric("kube_iptables_tailer_source_ready"), 0.0);
    append(&dir.path().join("kern.log"), &udp_line(&now_syslog(), 7));
    assert_eq!(agent.expect_records(1)[0]["dpt"], 7);
    wait_ready(&agent);
    assert_eq!(agent.metric("kube_iptables_tailer_source_ready"), 1.0);
    assert_eq!(agent.get("/nothing").unwrap().0, 404);
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    let cases = [
        (
            vec![("METRICS_SERVER_PORT", "70000")],
            "invalid METRICS_SERVER_PORT=\"70000\": must be a whole number from 1 to 65535",
        ),
        (
            vec![("LOG_LEVEL", "loud")],
            "invalid LOG_LEVEL=\"loud\": must be error, warn, info, debug or trace",
        ),
        (
            vec![("IPTABLES_LOG_PATH", "")],
            "invalid IPTABLES_LOG_PATH=\"\": required when LOG_SOURCE=file",
        ),
    ];
    for (env, message) in cases {
        let output = Command::new(BINARY)
            .env_clear()
            .env("IPTABLES_LOG_PATH", "/var/log/kit-test.log")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("kube-iptables-tailer: {message}\n")
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn help_documents_every_variable() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "LOG_SOURCE",
        "IPTABLES_LOG_PATH",
        "IPTABLES_LOG_PREFIX",
        "PACKET_DROP_LOG_TIME_LAYOUT",
        "PACKET_DROP_EXPIRATION_MINUTES",
        "PACKET_DROP_CHANNEL_BUFFER_SIZE",
        "WATCH_LOGS_INTERVAL_SECONDS",
        "FILE_POLL_INTERVAL_MS",
        "FROM_BEGINNING",
        "MAX_LINE_BYTES",
        "STATE_DIRECTORY",
        "EVENT_SINK",
        "METRICS_SERVER_PORT",
        "METRICS_SERVER_ADDRESS",
        "LOG_LEVEL",
        "NODE_NAME",
        "KUBECONFIG",
        "KUBE_API_SERVER",
        "POD_RESYNC_MINUTES",
        "POD_IDENTIFIER",
        "POD_IDENTIFIER_LABEL",
        "DNS_LOOKUP",
        "KUBE_EVENT_DISPLAY_REASON",
        "KUBE_EVENT_SOURCE_COMPONENT_NAME",
        "REPEATED_EVENTS_INTERVAL_MINUTES",
        "EVENTS_QPS",
        "EVENTS_BURST",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "--help does not mention {variable}:\n{help}"
        );
    }
}

#[test]
fn lines_written_while_a_freshly_started_agent_was_down_are_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    append(&log, &udp_line(&now_syslog(), 1)); // history: not reported
    let agent = start(dir.path(), &[]);
    wait_ready(&agent);
    // No line was read yet, but where reading started is checkpointed already.
    wait_until(
        "the start position checkpointed",
        Duration::from_secs(10),
        || dir.path().join("state/file.checkpoint.json").exists(),
    );
    agent.kill9();
    append(&log, &udp_line(&now_syslog(), 2));
    let agent = start(dir.path(), &[]);
    let records = agent.expect_records(1);
    assert_eq!(records[0]["dpt"], 2);
}
