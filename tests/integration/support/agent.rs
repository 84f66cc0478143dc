//! The agent binary as a child process: environment in, JSON records and metrics out.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_kube-iptables-tailer");

pub struct Agent {
    child: Option<Child>,
    records: Receiver<Value>,
    pub metrics_port: u16,
    stderr_path: PathBuf,
    /// The network namespace the agent runs in, when not the test's own.
    netns: Option<String>,
}

/// A port that was free a moment ago, on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Agent {
    /// Starts the agent with `env` (on top of a loopback metrics address on a free port); its stderr goes
    /// to `log_dir/agent.stderr`.
    pub fn start(log_dir: &Path, env: &[(&str, &str)]) -> Agent {
        Agent::start_in(None, log_dir, env)
    }

    /// Starts the agent inside the network namespace `netns` (`ip netns exec`), where its metrics
    /// server is reached from a thread that enters the namespace.
    pub fn start_in_netns(netns: &str, log_dir: &Path, env: &[(&str, &str)]) -> Agent {
        Agent::start_in(Some(netns.to_string()), log_dir, env)
    }

    fn start_in(netns: Option<String>, log_dir: &Path, env: &[(&str, &str)]) -> Agent {
        let metrics_port = free_port();
        let stderr_path = log_dir.join("agent.stderr");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .unwrap();
        let mut command = match &netns {
            Some(netns) => {
                let mut command = Command::new(super::which("ip").expect("ip"));
                command.args(["netns", "exec", netns, BINARY]);
                command
            }
            None => Command::new(BINARY),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", metrics_port.to_string())
            .env("FILE_POLL_INTERVAL_MS", "10")
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the agent");
        let stdout = child.stdout.take().unwrap();
        let (sender, records) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let record: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                if sender.send(record).is_err() {
                    break;
                }
            }
        });
        let agent = Agent {
            child: Some(child),
            records,
            metrics_port,
            stderr_path,
            netns,
        };
        super::wait_until(
            "the agent's metrics server",
            Duration::from_secs(20),
            || agent.get("/healthz").is_some(),
        );
        agent
    }

    /// Exactly `count` records: waits for them, then checks that no more follow within a short while.
    pub fn expect_records(&self, count: usize) -> Vec<Value> {
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while records.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.records.recv_timeout(left) {
                Ok(record) => records.push(record),
                Err(_) => panic!(
                    "expected {count} records, got {}: {records:#?}\nagent stderr:\n{}",
                    records.len(),
                    self.stderr()
                ),
            }
        }
        if let Ok(extra) = self.records.recv_timeout(Duration::from_millis(300)) {
            panic!("expected {count} records, got one more: {extra}\nbefore it: {records:#?}");
        }
        records
    }

    /// Every record printed so far and within a short quiet while after it (for a test that cannot
    /// know the number beforehand, such as one whose drops the kernel partly dropped).
    pub fn drain_records(&self) -> Vec<Value> {
        let mut records = Vec::new();
        while let Ok(record) = self.records.recv_timeout(Duration::from_millis(500)) {
            records.push(record);
        }
        records
    }

    /// Sends a signal to the agent (SIGSTOP and SIGCONT to stall it).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill on the PID of our own child, which we have not reaped yet.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// `GET path` on the metrics server: (status, body), or None when it does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let connect = || TcpStream::connect(("127.0.0.1", self.metrics_port));
        let mut stream = match &self.netns {
            Some(netns) => super::netns::in_netns(netns, connect),
            None => connect(),
        }
        .ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())?;
        Some((status, body))
    }

    /// The value of one metric line (`name{labels}` exactly as rendered), or 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").expect("metrics answer");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|child| child.id() as i32)
            .expect("running")
    }

    /// Sends SIGTERM and waits for the exit; returns the status and how long the exit took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        // SAFETY: kill on the PID of our own child, which we have not reaped yet.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let mut child = self.child.take().unwrap();
        let status = wait_with_timeout(&mut child, Duration::from_secs(10));
        (status, started.elapsed())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the agent did not exit within {timeout:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}
