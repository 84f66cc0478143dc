//! `make bench`: the journald source on real journal files written by `systemd-journal-remote`.
//!
//! 1. Latency: the agent binary (`LOG_SOURCE=journald`) follows a journal directory while a running
//!    journal-remote appends numbered kernel drop entries at a steady pace; each is timed from being
//!    handed to journal-remote until its JSON record appears on the agent's stdout (p50, p99, max).
//! 2. Read throughput, in entries per second, over 200,000 kernel entries written beforehand:
//!    - of the source function alone (the library's `sources::journald::run` on a thread, resuming
//!      after the first entry's cursor, its batches received and dropped), and
//!    - of the whole agent (source, parse, stdout sink), resuming from a checkpoint file that holds the
//!      first entry's cursor, until the last record is printed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::journal::{self, close_writer, first_cursor, start_writer};
use common::{Environment, JsonAgent, Percentiles};

use kube_iptables_tailer::health::Health;
use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::JournalPosition;
use kube_iptables_tailer::sources::journald::{self, JournaldSettings};

const LATENCY_ENTRIES: u32 = 300;
const PACE: Duration = Duration::from_millis(10);
const THROUGHPUT_ENTRIES: u32 = 200_000;

fn main() {
    if !journal::available("journald bench") {
        return;
    }
    latency();
    throughput();
}

fn latency() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let mut writer = start_writer(&journal.join("system.journal"));
    let mut agent = start_agent(&journal, None);
    let printed = agent.printed_ports();
    // Its journal is open and positioned at the tail.
    agent.wait_ready(Duration::from_secs(10));

    let stdin = writer.stdin.as_mut().unwrap();
    let mut appended = vec![Instant::now(); LATENCY_ENTRIES as usize + 1];
    for sequence in 1..=LATENCY_ENTRIES {
        stdin.write_all(&export(sequence)).unwrap();
        stdin.flush().unwrap();
        appended[sequence as usize] = Instant::now();
        std::thread::sleep(PACE);
    }
    let latencies = common::latencies(&printed, LATENCY_ENTRIES as usize, "entry", |sequence| {
        appended[sequence as usize]
    });
    drop(agent);
    close_writer(writer);
    println!(
        "journald append→stdout latency over {LATENCY_ENTRIES} entries (agent binary, journal-remote writer, \
         {} ms apart): {:.2}",
        PACE.as_millis(),
        Percentiles::of(latencies)
    );
}

fn throughput() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let started = Instant::now();
    let mut writer = start_writer(&journal.join("system.journal"));
    let stdin = writer.stdin.as_mut().unwrap();
    let mut buffer = Vec::new();
    for sequence in 1..=THROUGHPUT_ENTRIES {
        buffer.extend_from_slice(&export(sequence));
        if buffer.len() > 1 << 20 {
            stdin.write_all(&buffer).unwrap();
            buffer.clear();
        }
    }
    stdin.write_all(&buffer).unwrap();
    close_writer(writer);
    let size: u64 = std::fs::read_dir(&journal)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "wrote {THROUGHPUT_ENTRIES} kernel entries with journal-remote in {:.1} s ({} MiB of journal files)",
        started.elapsed().as_secs_f64(),
        size >> 20
    );
    let first = first_cursor(&journal);
    let expected = u64::from(THROUGHPUT_ENTRIES - 1);

    // The source function alone.
    let (out, batches) = crossbeam_channel::bounded(16);
    let (trigger, stop_signal) = kube_iptables_tailer::stop::new();
    let metrics = Arc::new(Metrics::new());
    let settings = JournaldSettings {
        directory: Some(journal.clone()),
        start: Some(JournalPosition {
            cursor: first.clone(),
        }),
        max_batch_lines: 1024,
    };
    let started = Instant::now();
    let source = {
        let metrics = metrics.clone();
        std::thread::spawn(move || {
            journald::run(settings, out, stop_signal, metrics, Health::new())
        })
    };
    let mut lines = 0u64;
    while lines < expected {
        let batch = batches
            .recv_timeout(Duration::from_secs(30))
            .expect("batches keep coming");
        lines += batch.items.len() as u64;
    }
    let took = started.elapsed();
    trigger.trigger();
    source.join().unwrap();
    println!(
        "journald source read {lines} entries in {:.2} s: {:.0} entries/s (source function alone)",
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64()
    );

    // The whole agent, resuming from a checkpoint.
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("journald.checkpoint.json"),
        serde_json::json!({"source": "journald", "cursor": first}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let mut agent = start_agent(&journal, Some(&state));
    let mut records = 0u64;
    for line in BufReader::new(agent.stdout()).lines() {
        line.expect("stdout");
        records += 1;
        if records == expected {
            break;
        }
    }
    let took = started.elapsed();
    drop(agent);
    println!(
        "agent printed {records} records in {:.2} s from its start: {:.0} entries/s (journald source, \
         parse, stdout sink)",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );
}

/// A kernel drop entry to port `sequence` (wrapped into 1..=65535), timestamped now, in journal export
/// format.
fn export(sequence: u32) -> Vec<u8> {
    let port = (sequence - 1) % 65_535 + 1;
    journal::export_kernel(
        format!(
        "calico-drop: IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 \
         DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=34393 DPT={port} LEN=9 "
        )
        .as_bytes(),
    )
}

fn start_agent(journal: &Path, state: Option<&Path>) -> JsonAgent {
    JsonAgent::start(Environment::Empty, |command| {
        command
            .env("LOG_SOURCE", "journald")
            .env("JOURNAL_DIRECTORY", journal)
            .env("IPTABLES_LOG_PREFIX", "calico-drop:");
        if let Some(state) = state {
            command.env("STATE_DIRECTORY", state);
        }
    })
}
