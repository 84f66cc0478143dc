//! `make bench`: append → stdout latency of the real agent binary following a real file with its
//! defaults (change notices, inotify). Appends numbered drop lines at a steady pace and times each
//! until its JSON record appears on the agent's stdout; prints p50, p99 and max, the agent's CPU time
//! over 10 idle seconds before, and per line during the run.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Environment, JsonAgent, Percentiles};

const LINES: u32 = 1000;
const PACE: Duration = Duration::from_millis(7);
const IDLE: Duration = Duration::from_secs(10);

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
    let idle_from = common::cpu_time(agent.pid());
    std::thread::sleep(IDLE);
    let idle = common::cpu_time(agent.pid()) - idle_from;
    let busy_from = common::cpu_time(agent.pid());

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
    let busy = common::cpu_time(agent.pid()) - busy_from;
    drop(agent);
    println!(
        "append→stdout latency over {LINES} lines (file source, change notices): {:.1}",
        Percentiles::of(latencies)
    );
    println!(
        "file source idle: agent CPU {:.2} ms over {} s ({:.3} %); during the run {:.1} µs per line \
         (all threads, at one line per {} ms)",
        idle.as_secs_f64() * 1e3,
        IDLE.as_secs(),
        idle.as_secs_f64() / IDLE.as_secs_f64() * 100.0,
        busy.as_secs_f64() * 1e6 / f64::from(LINES),
        PACE.as_millis()
    );
}
