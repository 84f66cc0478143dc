//! `make bench`: write → stdout latency of the real agent binary reading the real /dev/kmsg
//! (`LOG_SOURCE=kmsg`). Writes numbered drop records to the kernel log at a steady pace and times each
//! until its JSON record appears on the agent's stdout; prints p50, p99 and max. Needs root (only root
//! may write to /dev/kmsg); without it, says so and skips.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RECORDS: u16 = 300;
/// Slow enough that the ~650-line kernel buffer never holds more than a few of ours at once.
const PACE: Duration = Duration::from_millis(10);

fn main() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("kmsg latency: skipped (writing to /dev/kmsg needs root)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("KITBENCH{}:", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_kube-iptables-tailer"))
        .env("LOG_SOURCE", "kmsg")
        .env("IPTABLES_LOG_PREFIX", &prefix)
        .env("STATE_DIRECTORY", dir.path().join("state"))
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
            let sequence = record["dpt"].as_u64().expect("a port") as u16;
            if sender.send((sequence, Instant::now())).is_err() {
                break;
            }
        }
    });
    wait_ready(port);

    let mut written = HashMap::new();
    for sequence in 1..=RECORDS {
        let record = format!(
            "<4>{prefix} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 \
             DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=34393 DPT={sequence} LEN=9 \n"
        );
        // A file per record: the kernel rate-limits writes per open file.
        let mut kmsg = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        kmsg.write_all(record.as_bytes()).expect("write a record");
        written.insert(sequence, Instant::now());
        drop(kmsg);
        std::thread::sleep(PACE);
    }
    let mut latencies = Vec::new();
    while latencies.len() < usize::from(RECORDS) {
        let (sequence, at) = received
            .recv_timeout(Duration::from_secs(10))
            .expect("every record is printed");
        latencies.push(at.duration_since(written[&sequence]));
    }
    agent.kill().ok();
    agent.wait().ok();
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "write→stdout latency over {RECORDS} records (kmsg source, /dev/kmsg): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(50).as_secs_f64() * 1e3,
        percentile(99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}

/// Waits until `/readyz` answers 200: /dev/kmsg is open and positioned at its end.
fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut stream| {
                write!(stream, "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
                let mut response = String::new();
                stream.read_to_string(&mut response)?;
                Ok(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "the agent never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}
