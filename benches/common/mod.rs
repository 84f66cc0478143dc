//! What the `harness = false` benches share: the agent binary started with its JSON records on a piped
//! stdout and timed as they appear, its metrics server asked over plain HTTP, latency percentiles, and
//! memory read from /proc. Each bench includes it with `mod common;` and uses a part of it.

// Each bench compiles its own copy and uses only some of it.
#![allow(dead_code)]

pub mod journal;
pub mod kube_agent;
pub mod list_server;
pub mod pods;

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

pub const AGENT: &str = env!("CARGO_BIN_EXE_kube-iptables-tailer");

/// A free TCP port on loopback, for the agent's metrics server.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` on a loopback HTTP server: (status, body), or None when it does not answer.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// Whether the agent inherits the bench's environment or starts from an empty one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Inherited,
    Empty,
}

/// The agent binary as a child process printing JSON records (the stdout sink) to a pipe, its metrics
/// server on a free loopback port, logging errors only. Killed when dropped.
pub struct JsonAgent {
    child: Child,
    pub port: u16,
}

impl JsonAgent {
    /// Starts the agent; `configure` adds the settings of the bench (its source, paths).
    pub fn start(environment: Environment, configure: impl FnOnce(&mut Command)) -> JsonAgent {
        let port = free_port();
        // `KIT_AGENT=path` runs another build of the agent (an older one, to compare).
        let agent = std::env::var("KIT_AGENT").unwrap_or_else(|_| AGENT.to_string());
        let mut command = Command::new(agent);
        if environment == Environment::Empty {
            command.env_clear();
        }
        configure(&mut command);
        command
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", port.to_string())
            .env("LOG_LEVEL", "error")
            .stdout(Stdio::piped());
        let child = command.spawn().expect("start the agent");
        JsonAgent { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's stdout; there is one, taken by the first call.
    pub fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout not yet taken")
    }

    /// Each printed record's destination port, with the instant its line was read, from a thread
    /// that reads stdout until the agent ends. The benches number their drops by port.
    pub fn printed_ports(&mut self) -> Receiver<(u32, Instant)> {
        let stdout = self.stdout();
        let (sender, received) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let record: serde_json::Value = serde_json::from_str(&line).expect("JSON record");
                let port = record["dpt"].as_u64().expect("a port") as u32;
                if sender.send((port, Instant::now())).is_err() {
                    break;
                }
            }
        });
        received
    }

    /// Waits until `/readyz` answers 200: the source is open and positioned where it starts reading.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while http_get(self.port, "/readyz").map(|(status, _)| status) != Some(200) {
            assert!(Instant::now() < deadline, "the agent did not become ready");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for JsonAgent {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Receives `count` printed ports and returns, for each, the time from `sent_at(port)` to its printing;
/// panics when one takes longer than 10 s (`what`: "line", "record", ...).
pub fn latencies(
    printed: &Receiver<(u32, Instant)>,
    count: usize,
    what: &str,
    sent_at: impl Fn(u32) -> Instant,
) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let (port, at) = printed
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("every {what} is printed"));
            at.duration_since(sent_at(port))
        })
        .collect()
}

/// p50, p99 and the maximum of a set of latencies. Displayed as `p50 1.2 ms, p99 3.4 ms, max 5.6 ms`,
/// with the formatter's precision (1 digit unless given).
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(mut latencies: Vec<Duration>) -> Percentiles {
        assert!(!latencies.is_empty(), "percentiles of no latencies");
        latencies.sort();
        let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        Percentiles {
            p50: percentile(50),
            p99: percentile(99),
            max: latencies[latencies.len() - 1],
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = f.precision().unwrap_or(1);
        write!(
            f,
            "p50 {:.digits$} ms, p99 {:.digits$} ms, max {:.digits$} ms",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The process whose /proc/PID/status to read.
#[derive(Clone, Copy, Debug)]
pub enum Process {
    /// The bench itself (/proc/self).
    Current,
    Id(u32),
}

/// A `kB` field of /proc/PID/status (`VmRSS:`, `VmHWM:`), in KiB.
pub fn status_kib(process: Process, field: &str) -> u64 {
    let path = match process {
        Process::Current => "/proc/self/status".to_string(),
        Process::Id(id) => format!("/proc/{id}/status"),
    };
    let status = std::fs::read_to_string(&path).unwrap_or_else(|why| panic!("{path}: {why}"));
    (status.lines())
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {path}"))
}

/// CPU time of each live thread of process `pid`, by thread name (threads of one name summed).
pub fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, Duration> {
    let mut threads = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let (Ok(name), Ok(schedstat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("schedstat")),
        ) else {
            continue;
        };
        let nanoseconds = (schedstat.split_whitespace().next())
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0);
        *threads.entry(name.trim().to_string()).or_default() += Duration::from_nanos(nanoseconds);
    }
    threads
}

/// CPU time process `pid` has used, all its live threads summed, in nanoseconds from each thread's
/// /proc/PID/task/TID/schedstat (its first field: time on a CPU); /proc/PID/stat counts in clock
/// ticks of 10 ms, too coarse for an idle agent.
pub fn cpu_time(pid: u32) -> Duration {
    let mut nanoseconds = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanoseconds += schedstat
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(nanoseconds)
}
