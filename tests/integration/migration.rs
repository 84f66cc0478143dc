//! Switching over from the original Go agent with its environment unchanged: each setting whose meaning
//! a migrated deployment relies on, run on the real binary.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Utc};

use crate::support::agent::{Agent, BINARY, free_port};
use crate::support::wait_until;

const PREFIX: &str = "calico-drop:";

/// A TCP drop as rsyslog writes it, after `time` (a timestamp and the host name).
fn drop_line(time: &str, dpt: u16) -> String {
    format!(
        "{time} node-1 kernel: {PREFIX} IN=eth0 OUT= SRC=10.0.3.7 DST=10.0.1.5 LEN=60 TOS=0x00 \
         PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    )
}

fn write(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn journal_directory_alone_reads_the_journal_as_the_original_did() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().to_str().unwrap();
    // The original's journald deployment: JOURNAL_DIRECTORY and nothing that names a source. A
    // leftover IPTABLES_LOG_PATH does not change that (the original read the journal).
    for leftover in [None, Some("/var/log/iptables.log")] {
        let mut command = Command::new(BINARY);
        command
            .arg("--check-config")
            .env_clear()
            .env("JOURNAL_DIRECTORY", journal);
        if let Some(path) = leftover {
            command.env("IPTABLES_LOG_PATH", path);
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!(
                "configuration OK: source journald {journal}, sink stdout, metrics on 0.0.0.0:9090\n"
            )
        );
    }
}

#[test]
fn packet_drop_channel_buffer_size_counts_drops_not_batches() {
    // The pod index cannot sync (nothing listens at the API's address), so no drop goes past the
    // resolve stage: the agent reads ahead only as far as its queues hold, and stops.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let lines: String = (0..20_000).map(|n| drop_line(&now, n as u16)).collect();
    write(&log, &lines);
    let api = format!("http://127.0.0.1:{}", free_port());
    let agent = Agent::start(
        dir.path(),
        &[
            ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
            ("FROM_BEGINNING", "true"),
            ("KUBE_API_SERVER", &api),
            ("NODE_NAME", "node-1"),
            ("DNS_LOOKUP", "false"),
            ("PACKET_DROP_CHANNEL_BUFFER_SIZE", "100"),
        ],
    );
    let read = || agent.metric("kube_iptables_tailer_lines_read_total");
    wait_until("the first lines read", Duration::from_secs(10), || {
        read() > 0.0
    });
    // Until reading has stood still for a second.
    let (mut last, mut since) = (read(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let now = read();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    // Held: 100 drops in the drop queue, and lines in batches of 100 (the drop queue's), each on
    // its way: 16 batches queued for the parser, one being parsed, one being filled by the source.
    // Counted in batches of 1,024, the original's 100 would have let all 20,000 lines through.
    assert!(
        last <= f64::from(100 + (16 + 2) * 100),
        "{last} lines read ahead\n{}",
        agent.stderr()
    );
}

/// The latest `month`/`day` 12:00 in New York (UTC−5 in winter, UTC−4 in summer) that is at most a
/// day after `now`: where the agent puts a line without a year.
fn new_york_noon(month: u32, day: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let offset_hours = if (4..=10).contains(&month) { 4 } else { 5 };
    let years = [1, 0, -1, -2].map(|back| now.year() + back);
    years
        .into_iter()
        .map(|year| {
            NaiveDate::from_ymd_opt(year, month, day)
                .unwrap()
                .and_hms_opt(12 + offset_hours, 0, 0)
                .unwrap()
                .and_utc()
        })
        .find(|time| *time <= now + TimeDelta::days(1))
        .unwrap()
}

#[test]
fn rfc3164_lines_are_read_in_tz_with_the_offset_of_their_own_date() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    write(&log, &drop_line("Jan 15 12:00:00", 1));
    write(&log, &drop_line("Jul 15 12:00:00", 2));
    let agent = Agent::start(
        dir.path(),
        &[
            ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
            ("FROM_BEGINNING", "true"),
            ("TZ", "America/New_York"),
            // A year: both lines are within it, whenever the test runs.
            ("PACKET_DROP_EXPIRATION_MINUTES", "525600"),
        ],
    );
    let now = Utc::now();
    let records = agent.expect_records(2);
    let times: Vec<&str> = records
        .iter()
        .map(|record| record["time"].as_str().unwrap())
        .collect();
    let expected = [new_york_noon(1, 15, now), new_york_noon(7, 15, now)]
        .map(|time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    assert_eq!(times, expected);
}

#[test]
fn a_bad_kubeconfig_or_api_server_stops_the_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("kubeconfig");
    let port = free_port().to_string();
    let cases = [
        (
            ("KUBECONFIG", missing.to_str().unwrap()),
            format!(
                "invalid KUBECONFIG={:?}: cannot be read: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
        (
            ("KUBE_API_SERVER", "https://api example:6443"),
            "invalid KUBE_API_SERVER=\"https://api example:6443\": must be an http:// or https:// URL"
                .to_string(),
        ),
    ];
    for ((variable, value), message) in cases {
        // Without --check-config: the agent itself, as a DaemonSet or unit starts it.
        let output = Command::new(BINARY)
            .env_clear()
            .env("IPTABLES_LOG_PATH", dir.path().join("kern.log"))
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", &port)
            .env("NODE_NAME", "node-1")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("kube-iptables-tailer: {message}\n")
        );
    }
}
