//! The agent binary with `LOG_SOURCE=journald` on a journal directory: what it prints, where it starts,
//! how it resumes after `kill -9`, and rotation and vacuum of journal files under it.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{PREFIX, journal_dir, udp_drop};
use crate::support::agent::Agent;
use crate::support::journald::{self, Entry, JournalWriter, kernel, write_file};
use crate::support::wait_until;

fn start(root: &Path) -> Agent {
    start_in(root, &root.join("journal"), PREFIX)
}

/// The agent reading the journal in `journal`, with its state in `root/state`.
pub(super) fn start_in(root: &Path, journal: &Path, prefix: &str) -> Agent {
    let state = root.join("state");
    Agent::start(
        root,
        &[
            ("LOG_SOURCE", "journald"),
            ("JOURNAL_DIRECTORY", journal.to_str().unwrap()),
            ("STATE_DIRECTORY", state.to_str().unwrap()),
            ("IPTABLES_LOG_PREFIX", prefix),
        ],
    )
}

pub(super) fn wait_ready(agent: &Agent) {
    wait_until("/readyz to answer 200", Duration::from_secs(10), || {
        agent
            .get("/readyz")
            .is_some_and(|(status, _)| status == 200)
    });
}

fn drops(ports: std::ops::RangeInclusive<u16>) -> Vec<Entry> {
    ports.map(|port| kernel(&udp_drop(port))).collect()
}

pub(super) fn ports(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|record| record["dpt"].as_u64().unwrap())
        .collect()
}

/// Waits until the agent's checkpoint holds the cursor of the newest kernel entry in the journal.
fn wait_checkpointed(root: &Path) {
    let expected = json!({
        "source": "journald",
        "cursor": journald::last_kernel_cursor(&root.join("journal")),
    });
    let checkpoint = root.join("state/journald.checkpoint.json");
    wait_until(
        "the checkpoint to hold the last cursor",
        Duration::from_secs(10),
        || {
            std::fs::read(&checkpoint)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .is_some_and(|value| value == expected)
        },
    );
}

const VANISHED: &str = "kube_iptables_tailer_source_lost_total{reason=\"vanished_cursor\"}";

#[test]
fn kernel_drops_are_printed_with_the_entry_time_and_other_transports_ignored() {
    if !journald::available("kernel_drops_are_printed_with_the_entry_time") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, active) = journal_dir(root.path());
    let agent = start(root.path());
    wait_ready(&agent);

    // A time unlike the time of reading: the record must carry the entry's own.
    // Journal timestamps are in microseconds.
    let time = DateTime::from_timestamp_micros(
        (Utc::now() - chrono::Duration::milliseconds(2_345)).timestamp_micros(),
    )
    .unwrap();
    let at = |transport, message: String| Entry {
        transport,
        message: message.into_bytes(),
        time,
    };
    let mut writer = JournalWriter::start(&active);
    writer.write(&[
        at(
            "kernel",
            format!(
                "{PREFIX} IN=cali1a2b OUT=eth0 MAC=ee:ee:ee:ee:ee:ee:8a:e3:5a:9a:33:d3:08:00 \
                 SRC=10.0.1.5 DST=10.0.2.9 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=62275 DF PROTO=TCP SPT=51234 \
                 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 "
            ),
        ),
        // The same text from other transports is not the kernel's: not read at all.
        at("syslog", udp_drop(7)),
        at("stdout", udp_drop(8)),
        at(
            "kernel",
            "IPv6: ADDRCONF(NETDEV_CHANGE): cali1a2b: link becomes ready".to_string(),
        ),
        at(
            "kernel",
            format!(
                "{PREFIX} IN= OUT=eth0 SRC=fd00:0000:0000:0000:0000:0000:0001:0005 \
                 DST=fd00:0000:0000:0000:0000:0000:0002:0009 LEN=84 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 \
                 TYPE=128 CODE=0 ID=7 SEQ=1 "
            ),
        ),
    ]);
    let records = agent.expect_records(2);
    let expected_time = time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    assert_eq!(
        records[0],
        json!({
            "time": expected_time, "hostname": null, "prefix": PREFIX, "in": "cali1a2b", "out": "eth0",
            "mac": "ee:ee:ee:ee:ee:ee:8a:e3:5a:9a:33:d3:08:00", "src": "10.0.1.5", "dst": "10.0.2.9",
            "proto": "TCP", "spt": 51234, "dpt": 80, "len": 60, "ttl": 63, "flags": ["DF", "SYN"],
        })
    );
    assert_eq!(
        records[1],
        json!({
            "time": expected_time, "hostname": null, "prefix": PREFIX, "in": "", "out": "eth0",
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
    assert_eq!(agent.metric("kube_iptables_tailer_source_ready"), 1.0);
    let lag = agent.metric("kube_iptables_tailer_source_lag_seconds");
    assert!((2.3..60.0).contains(&lag), "lag {lag}");
    writer.close();
}

#[test]
fn without_a_checkpoint_reading_starts_at_the_tail() {
    if !journald::available("without_a_checkpoint_reading_starts_at_the_tail") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, active) = journal_dir(root.path());
    write_file(&active, &drops(1..=3)); // history: written before the agent started
    let agent = start(root.path());
    wait_ready(&agent);
    // The place it starts is kept at once: killed before any new entry, it resumes there.
    wait_checkpointed(root.path());
    agent.kill9();
    write_file(&active, &drops(4..=5));
    let agent = start(root.path());
    assert_eq!(ports(&agent.expect_records(2)), [4, 5]);
    assert_eq!(agent.metric("kube_iptables_tailer_lines_read_total"), 2.0);
}

#[test]
fn restart_after_kill_9_resumes_after_the_checkpointed_cursor() {
    if !journald::available("restart_after_kill_9_resumes_after_the_checkpointed_cursor") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, active) = journal_dir(root.path());
    let mut writer = JournalWriter::start(&active);
    let agent = start(root.path());
    wait_ready(&agent);
    writer.write(&drops(1..=50));
    assert_eq!(
        ports(&agent.expect_records(50)),
        (1..=50).collect::<Vec<_>>()
    );
    wait_checkpointed(root.path());
    agent.kill9();

    // Written while the agent is down, into the same (still open) journal file, with entries of other
    // transports in between.
    for port in 51..=80 {
        writer.write(&[
            kernel(&udp_drop(port)),
            Entry {
                transport: "syslog",
                ..kernel(&udp_drop(9))
            },
        ]);
    }
    let agent = start(root.path());
    assert_eq!(
        ports(&agent.expect_records(30)),
        (51..=80).collect::<Vec<_>>()
    );
    assert_eq!(agent.metric(VANISHED), 0.0);
    writer.close();
}

#[test]
fn a_vanished_cursor_continues_from_the_oldest_remaining_entry() {
    if !journald::available("a_vanished_cursor_continues_from_the_oldest_remaining_entry") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, active) = journal_dir(root.path());
    let mut writer = JournalWriter::start(&active);
    let agent = start(root.path());
    wait_ready(&agent);
    writer.write(&drops(1..=10));
    agent.expect_records(10);
    wait_checkpointed(root.path());
    agent.kill9();

    // While the agent is down: two more entries, then the file holding them and the checkpointed
    // cursor is rotated and vacuumed away; a new file holds what comes after.
    writer.write(&drops(11..=12));
    let archived = journald::archive(&active);
    writer.close();
    let mut writer = JournalWriter::start(&active);
    writer.write(&drops(13..=15));
    std::fs::remove_file(&archived).unwrap();
    wait_until(
        "the new journal file to hold its entries",
        Duration::from_secs(10),
        || journald::entries(&root.path().join("journal"), true).len() == 3,
    );

    let agent = start(root.path());
    assert_eq!(ports(&agent.expect_records(3)), [13, 14, 15]);
    assert_eq!(agent.metric(VANISHED), 1.0);
    writer.close();
}

#[test]
fn rotation_and_vacuum_under_a_running_agent_lose_and_repeat_nothing() {
    if !journald::available("rotation_and_vacuum_under_a_running_agent_lose_and_repeat_nothing") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, active) = journal_dir(root.path());
    // No journal file yet: every kernel entry that comes is new.
    let agent = start(root.path());
    wait_ready(&agent);

    // The agent reads the active file...
    let mut writer = JournalWriter::start(&active);
    writer.write(&drops(1..=30));
    assert_eq!(
        ports(&agent.expect_records(30)),
        (1..=30).collect::<Vec<_>>()
    );
    // ...when more is written in bursts without waiting for it, and the file is rotated meanwhile.
    for burst in 3..6 {
        writer.write(&drops(burst * 10 + 1..=burst * 10 + 10));
    }
    let archived = journald::archive(&active);
    writer.close();
    let mut writer = JournalWriter::start(&active);
    for burst in 6..10 {
        writer.write(&drops(burst * 10 + 1..=burst * 10 + 10));
    }
    assert_eq!(
        ports(&agent.expect_records(70)),
        (31..=100).collect::<Vec<_>>()
    );

    // Vacuum: the archived file is deleted under the reader; the active one goes on.
    std::fs::remove_file(&archived).unwrap();
    writer.write(&drops(101..=120));
    assert_eq!(
        ports(&agent.expect_records(20)),
        (101..=120).collect::<Vec<_>>()
    );
    assert_eq!(agent.metric("kube_iptables_tailer_lines_read_total"), 120.0);
    assert_eq!(
        agent.metric("kube_iptables_tailer_source_errors_total"),
        0.0
    );
    assert_eq!(agent.metric(VANISHED), 0.0);
    writer.close();
}
