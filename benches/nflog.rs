//! `make bench`: the NFLOG source against the real kernel. In a network namespace of its own, an
//! iptables rule logs UDP packets to an NFLOG group and drops them; the agent runs in that namespace
//! (`LOG_SOURCE=nflog`, default buffer) and prints a record per drop. Measured:
//!
//! - throughput: packets sent at a steady rate for a few seconds each, at several rates; for each, what
//!   the rule logged, what the agent read and what the kernel dropped (overflow), and the agent's CPU
//!   time per drop and as a share of one core;
//! - idle: the agent's CPU time over 10 s without a packet (it waits in poll(2), no timer);
//! - latency: one packet every 5 ms, from its send to its record on the agent's stdout.
//!
//! Needs root (namespaces, iptables); without it, says so and skips.

mod common;

#[path = "../tests/integration/support/enter_netns.rs"]
mod enter_netns;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{AGENT, Percentiles, free_port, http_get};
use enter_netns::in_netns;

const GROUP: &str = "100";
/// Rates tried, in drops per second, each for `RATE_WINDOW`.
const RATES: [u64; 4] = [25_000, 50_000, 100_000, 150_000];
const RATE_WINDOW: Duration = Duration::from_secs(3);
const LATENCY_SAMPLES: u16 = 300;
const LATENCY_PACE: Duration = Duration::from_millis(5);
/// The throughput packets' port; latency packets are numbered by port from `LATENCY_BASE_PORT`.
const FLOOD_PORT: u16 = 9000;
const LATENCY_BASE_PORT: u16 = 20_000;

fn main() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("nflog: skipped (network namespaces and iptables need root)");
        return;
    }
    let netns = Netns::new();
    netns.iptables(&[
        "-A",
        "INPUT",
        "-p",
        "udp",
        "--dport",
        "9000:30000",
        "-j",
        "NFLOG",
        "--nflog-group",
        GROUP,
    ]);
    netns.iptables(&[
        "-A",
        "INPUT",
        "-p",
        "udp",
        "--dport",
        "9000:30000",
        "-j",
        "DROP",
    ]);
    let agent = Agent::start(&netns);

    println!(
        "NFLOG throughput (default NFLOG_BUFFER_BYTES, stdout sink, {RATE_WINDOW:?} per rate):"
    );
    for rate in RATES {
        let before = agent.counts(&netns);
        let cpu_before = agent.cpu_time();
        let sent = send_at_rate(&netns, rate, RATE_WINDOW);
        // Every logged packet read or counted lost, then the printing caught up.
        let deadline = Instant::now() + Duration::from_secs(30);
        let after = loop {
            let now = agent.counts(&netns);
            let settled = now.received + now.lost == now.logged
                && agent.printed.load(Ordering::SeqCst) >= now.received;
            if settled || Instant::now() > deadline {
                break now;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let cpu = agent.cpu_time() - cpu_before;
        let logged = after.logged - before.logged;
        let received = after.received - before.received;
        let lost = after.lost - before.lost;
        println!(
            "  {rate:>7}/s offered: sent {sent}, logged {logged}, read {received}, overflow {lost}; \
             agent CPU {:.0} % of a core, {:.1} µs per drop",
            cpu.as_secs_f64() / RATE_WINDOW.as_secs_f64() * 100.0,
            cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
        );
    }

    let cpu_before = agent.cpu_time();
    std::thread::sleep(Duration::from_secs(10));
    let idle = agent.cpu_time() - cpu_before;
    println!(
        "NFLOG idle: agent CPU {:.1} ms over 10 s ({:.3} %)",
        idle.as_secs_f64() * 1e3,
        idle.as_secs_f64() / 10.0 * 100.0
    );

    let (sender, printed) = crossbeam_channel::unbounded();
    *agent.latency.lock().unwrap() = Some(sender);
    let mut sent_at = HashMap::new();
    in_netns(&netns.0, || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for sequence in 0..LATENCY_SAMPLES {
            let port = LATENCY_BASE_PORT + sequence;
            sent_at.insert(u32::from(port), Instant::now());
            socket.send_to(b"x", ("127.0.0.1", port)).unwrap();
            std::thread::sleep(LATENCY_PACE);
        }
    });
    let latencies = common::latencies(&printed, usize::from(LATENCY_SAMPLES), "drop", |port| {
        sent_at[&port]
    });
    println!(
        "NFLOG send→stdout latency over {LATENCY_SAMPLES} drops: {:.2}",
        Percentiles::of(latencies)
    );
}

/// Sends UDP packets to FLOOD_PORT at `rate` per second for `window`, in 1 ms slices; returns how
/// many were sent.
fn send_at_rate(netns: &Netns, rate: u64, window: Duration) -> u64 {
    in_netns(&netns.0, || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < window {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                // A full socket buffer would only slow the sender down: the kernel logs what is sent.
                if socket.send_to(b"x", ("127.0.0.1", FLOOD_PORT)).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        sent
    })
}

/// A network namespace of the bench's own, deleted at the end.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let netns = Netns(format!("kitbench{}", std::process::id()));
        run(&["ip", "netns", "add", &netns.0]);
        run(&["ip", "-n", &netns.0, "link", "set", "lo", "up"]);
        netns
    }

    fn iptables(&self, rule: &[&str]) {
        let mut command = vec!["ip", "netns", "exec", &self.0, "iptables"];
        command.extend_from_slice(rule);
        run(&command);
    }

    /// Packets the NFLOG rule logged so far.
    fn logged(&self) -> u64 {
        let rules = run(&[
            "ip", "netns", "exec", &self.0, "iptables", "-L", "INPUT", "-v", "-x", "-n",
        ]);
        rules
            .lines()
            .find(|line| line.contains("NFLOG"))
            .and_then(|line| line.split_whitespace().next())
            .and_then(|packets| packets.parse().ok())
            .expect("the NFLOG rule's counter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(command: &[&str]) -> String {
    let output = Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Where each printed record's port and time go while latency is measured (none before).
type LatencyTap = Arc<std::sync::Mutex<Option<crossbeam_channel::Sender<(u32, Instant)>>>>;

/// The agent in the namespace, its records counted (and timed by port for latency) as they appear.
struct Agent {
    child: Child,
    port: u16,
    netns: String,
    printed: Arc<AtomicU64>,
    latency: LatencyTap,
}

struct Counts {
    logged: u64,
    received: u64,
    lost: u64,
}

impl Agent {
    fn start(netns: &Netns) -> Agent {
        let port = free_port();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns.0, AGENT])
            .env_clear()
            .env("LOG_SOURCE", "nflog")
            .env("NFLOG_GROUPS", GROUP)
            .env("EVENT_SINK", "stdout")
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", port.to_string())
            .env("LOG_LEVEL", "error")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let stdout = child.stdout.take().unwrap();
        let printed = Arc::new(AtomicU64::new(0));
        let latency = LatencyTap::default();
        let (counter, timed) = (printed.clone(), latency.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                counter.fetch_add(1, Ordering::SeqCst);
                if let Some(sender) = timed.lock().unwrap().as_ref() {
                    let record: serde_json::Value = serde_json::from_str(&line).expect("JSON");
                    let port = record["dpt"].as_u64().expect("a port") as u32;
                    let _ = sender.send((port, Instant::now()));
                }
            }
        });
        let agent = Agent {
            child,
            port,
            netns: netns.0.clone(),
            printed,
            latency,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get("/readyz").map(|(status, _)| status) != Some(200) {
            assert!(Instant::now() < deadline, "the agent did not become ready");
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        in_netns(&self.netns, || http_get(self.port, path))
    }

    fn metric(&self, series: &str) -> u64 {
        let (_, body) = self.get("/metrics").expect("metrics");
        body.lines()
            .find_map(|line| {
                line.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0) as u64
    }

    fn counts(&self, netns: &Netns) -> Counts {
        Counts {
            logged: netns.logged(),
            received: self.metric("kube_iptables_tailer_nflog_messages_received_total"),
            lost: self.metric("kube_iptables_tailer_source_lost_total{reason=\"overflow\"}"),
        }
    }

    /// User plus system CPU time the agent has used (all its threads).
    fn cpu_time(&self) -> Duration {
        common::cpu_time(self.child.id())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
