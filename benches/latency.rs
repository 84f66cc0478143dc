//! `make bench`: append → stdout latency of the real agent binary following a real file with its default
//! poll interval. Appends numbered drop lines at a steady pace and times each until its JSON record
//! appears on the agent's stdout; prints p50, p99 and max.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: u32 = 1000;
const PACE: Duration = Duration::from_millis(7);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kern.log");
    std::fs::write(&log, b"").expect("create log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_kube-iptables-tailer"))
        .env("IPTABLES_LOG_PATH", &log)
        .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
        .env("METRICS_SERVER_PORT", port.to_string())
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let stdout = agent.stdout.take().unwrap();
    let (sender, received) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let record: serde_json::Value = serde_json::from_str(&line).expect("JSON record");
            let sequence = record["dpt"].as_u64().expect("a port") as u32;
            if sender.send((sequence, Instant::now())).is_err() {
                break;
            }
        }
    });
    // Let the agent open the (empty) file before the first line, as a running agent would have.
    std::thread::sleep(Duration::from_millis(500));

    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut appended = HashMap::new();
    for sequence in 1..=LINES {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        let line = format!(
            "{now} node-1 kernel: calico-drop: IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 \
             SRC=10.0.3.7 DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=34393 DPT={sequence} LEN=9 \n"
        );
        file.write_all(line.as_bytes()).unwrap();
        appended.insert(sequence, Instant::now());
        std::thread::sleep(PACE);
    }
    let mut latencies = Vec::new();
    while latencies.len() < LINES as usize {
        let (sequence, at) = received
            .recv_timeout(Duration::from_secs(10))
            .expect("every line is printed");
        latencies.push(at.duration_since(appended[&sequence]));
    }
    agent.kill().ok();
    agent.wait().ok();
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "append→stdout latency over {LINES} lines (file source, 50 ms poll): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(50).as_secs_f64() * 1e3,
        percentile(99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}
