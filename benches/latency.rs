//! `make bench`: append → stdout latency of the real agent binary following a real file with its default
//! poll interval. Appends numbered drop lines at a steady pace and times each until its JSON record
//! appears on the agent's stdout; prints p50, p99 and max.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Environment, JsonAgent, Percentiles};

const LINES: u32 = 1000;
const PACE: Duration = Duration::from_millis(7);

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kern.log");
    std::fs::write(&log, b"").expect("create log");
    let mut agent = JsonAgent::start(Environment::Inherited, |command| {
        command.env("IPTABLES_LOG_PATH", &log);
    });
    let printed = agent.printed_ports();
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
    let latencies = common::latencies(&printed, LINES as usize, "line", |sequence| {
        appended[&sequence]
    });
    drop(agent);
    println!(
        "append→stdout latency over {LINES} lines (file source, 50 ms poll): {:.1}",
        Percentiles::of(latencies)
    );
}
