//! `make bench`: resource bounds under garbage (issue 10, part 4). The agent binary reads, from the
//! start, what is no netfilter log at all, then one real drop; its memory (VmRSS, sampled every
//! 100 ms, and the peak VmHWM) and `/readyz` are watched all along, and its CPU time is read at the end.
//!
//! 1. A 1 GiB log file: 768 MiB of random bytes (lines of every length, any bytes), then a 256 MiB
//!    line without a newline (over-long: skipped whole), then the drop.
//! 2. A journal of 300,000 kernel entries that are no drops (messages of 60 to 4,000 bytes, some of
//!    them not UTF-8), then the drop.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

use common::journal::{self, close_writer, first_cursor, start_writer};
use common::{Environment, JsonAgent, Process};

const RANDOM_BYTES: u64 = 768 << 20;
const LONG_LINE_BYTES: u64 = 256 << 20;
const JOURNAL_ENTRIES: u32 = 300_000;
const DROP: &str = "calico-drop: IN=eth0 OUT= SRC=10.0.3.7 DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 \
                    TTL=64 ID=1 DF PROTO=UDP SPT=34393 DPT=4242 LEN=9 ";

/// SplitMix64: fast, seeded garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn main() {
    file();
    if journal::available("garbage journal bench") {
        journal();
    }
}

fn file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kern.log");
    let started = Instant::now();
    let mut out = BufWriter::new(File::create(&log).unwrap());
    let mut rng = Rng(10);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..RANDOM_BYTES >> 20 {
        rng.fill(&mut chunk);
        out.write_all(&chunk).unwrap();
    }
    // Ends the random part's last line, then the long line (no newline within it), then the drop.
    out.write_all(b"\n").unwrap();
    let long = vec![b'x'; 1 << 20];
    for _ in 0..LONG_LINE_BYTES >> 20 {
        out.write_all(&long).unwrap();
    }
    // Stamped now: a drop older than PACKET_DROP_EXPIRATION_MINUTES is not reported.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    writeln!(out, "\n{now} node-1 kernel: {DROP}").unwrap();
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&log).unwrap().len();
    println!(
        "garbage file: wrote {} MiB in {:.1} s",
        size >> 20,
        started.elapsed().as_secs_f64()
    );
    let agent = JsonAgent::start(Environment::Empty, |command| {
        command
            .env("IPTABLES_LOG_PATH", &log)
            .env("FROM_BEGINNING", "true");
    });
    watch("garbage file (1 GiB: random bytes, a 256 MiB line)", agent);
}

fn journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let started = Instant::now();
    let mut writer = start_writer(&journal.join("system.journal"));
    let stdin = writer.stdin.as_mut().unwrap();
    let mut rng = Rng(11);
    let mut buffer = Vec::new();
    for sequence in 0..JOURNAL_ENTRIES {
        let length = 60 + (rng.next() % 3_940) as usize;
        let mut message = vec![0u8; length];
        rng.fill(&mut message);
        // Mostly text, as kernel messages are; every tenth keeps its random bytes (not UTF-8).
        if sequence % 10 != 0 {
            for byte in &mut message {
                *byte = b' ' + *byte % 95;
            }
        }
        buffer.extend_from_slice(&journal::export_kernel(&message));
        if buffer.len() > 1 << 20 {
            stdin.write_all(&buffer).unwrap();
            buffer.clear();
        }
    }
    buffer.extend_from_slice(&journal::export_kernel(DROP.as_bytes()));
    stdin.write_all(&buffer).unwrap();
    close_writer(writer);
    let size: u64 = std::fs::read_dir(&journal)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "garbage journal: wrote {JOURNAL_ENTRIES} kernel entries that are no drops ({} MiB of \
         journal files) in {:.1} s",
        size >> 20,
        started.elapsed().as_secs_f64()
    );
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("journald.checkpoint.json"),
        serde_json::json!({"source": "journald", "cursor": first_cursor(&journal)}).to_string(),
    )
    .unwrap();
    let agent = JsonAgent::start(Environment::Empty, |command| {
        command
            .env("LOG_SOURCE", "journald")
            .env("JOURNAL_DIRECTORY", &journal)
            .env("STATE_DIRECTORY", &state);
    });
    watch("garbage journal (300,000 entries that are no drops)", agent);
}

/// Samples the agent's memory and readiness until it prints the one drop; prints what it saw.
fn watch(what: &str, mut agent: JsonAgent) {
    let pid = agent.pid();
    let started = Instant::now();
    let stdout = agent.stdout();
    let (printed, record) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next();
        printed.send(line).ok();
    });
    let (mut samples, mut ready_samples, mut max_rss, mut rss) = (0u32, 0u32, 0u64, Vec::new());
    // Anonymous memory (the heap) apart: sd-journal maps journal files, whose pages count in RSS
    // but belong to the page cache (reclaimable, shared).
    let mut max_anon = 0u64;
    let line = loop {
        if let Ok(line) = record.recv_timeout(Duration::from_millis(100)) {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{what}: no drop after 10 minutes"
        );
        let now = common::status_kib(Process::Id(pid), "VmRSS:");
        max_rss = max_rss.max(now);
        rss.push(now);
        max_anon = max_anon.max(common::status_kib(Process::Id(pid), "RssAnon:"));
        samples += 1;
        if common::http_get(agent.port, "/readyz").is_some_and(|(status, _)| status == 200) {
            ready_samples += 1;
        }
    };
    let took = started.elapsed();
    let record = line.expect("a record").expect("stdout");
    assert!(
        record.contains("\"dpt\":4242"),
        "{what}: the drop: {record}"
    );
    let peak = common::status_kib(Process::Id(pid), "VmHWM:");
    let cpu = cpu_seconds(pid);
    let metrics = common::http_get(agent.port, "/metrics").map(|(_, body)| body);
    // Every series of the metric `name`, as `{labels} value` (or the value alone).
    let metric = |name: &str| {
        let series: Vec<String> = metrics
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_prefix(name))
            .map(|rest| rest.trim().to_string())
            .collect();
        series.join(", ")
    };
    let quartile = |q: usize| rss.get(rss.len() * q / 4).copied().unwrap_or(0);
    println!(
        "{what}: the drop printed after {:.1} s, {cpu:.1} s CPU; RSS {:.1} MiB after 25 %, {:.1} MiB \
         after 75 %, max sampled {:.1} MiB (anonymous {:.1} MiB), peak {:.1} MiB; ready in \
         {ready_samples} of {samples} samples; lines read {}, too long {}, skipped {}",
        took.as_secs_f64(),
        quartile(1) as f64 / 1024.0,
        quartile(3) as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        max_anon as f64 / 1024.0,
        peak as f64 / 1024.0,
        metric("kube_iptables_tailer_lines_read_total"),
        metric("kube_iptables_tailer_lines_too_long_total"),
        metric("kube_iptables_tailer_lines_skipped_total"),
    );
}

/// User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}
