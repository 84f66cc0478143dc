//! `make bench`: the CPU the agent with the Kubernetes sink spends (all its threads, from schedstat),
//! following a real file against the fake API server. Prints one line per number:
//!
//! 1. Idle: 10 s with the pod index synced and no line.
//! 2. 100,000 drop lines over 1,000 pod pairs appended at once, with the default `EVENTS_QPS=20`:
//!    the CPU until every Event's count added up (~100 s: the rate limit), and with
//!    `EVENTS_QPS=1000 EVENTS_BURST=1000`.

mod common;
#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::kube_agent::KubeAgent;
use common::{cpu_by_thread, cpu_time};
use fake_api::{FakeApi, FakePod};

const IDLE: Duration = Duration::from_secs(10);
const PAIRS: u32 = 1_000;
const LINES_PER_PAIR: u32 = 100;

fn main() {
    idle();
    job("default EVENTS_QPS=20 EVENTS_BURST=100", &[]);
    job(
        "EVENTS_QPS=1000 EVENTS_BURST=1000",
        &[("EVENTS_QPS", "1000"), ("EVENTS_BURST", "1000")],
    );
}

/// Pod `n`: `10.2.x.y`.
fn pod_ip(n: u32) -> String {
    Ipv4Addr::from(0x0A02_0000 + n).to_string()
}

fn cluster(pods: u32) -> FakeApi {
    let api = FakeApi::start();
    for n in 0..pods {
        api.add_pod(
            FakePod::new("bench", &format!("pod-{n}"))
                .uid(&format!("uid-{n}"))
                .ip(&pod_ip(n)),
        );
    }
    api
}

/// Part 1.
fn idle() {
    let api = cluster(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = KubeAgent::start(dir.path(), &api.url(), None, &[]);
    agent.wait_ready(Duration::from_secs(30));
    // Settled: the first seconds hold the start's own work.
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_time(agent.pid());
    std::thread::sleep(IDLE);
    let spent = cpu_time(agent.pid()).saturating_sub(before);
    println!(
        "kube_cpu: idle with the Kubernetes sink, {} s without a line: {:.1} ms CPU ({:.3} % of a core)",
        IDLE.as_secs(),
        spent.as_secs_f64() * 1e3,
        spent.as_secs_f64() * 100.0 / IDLE.as_secs_f64()
    );
}

/// Part 2.
fn job(label: &str, extra: &[(&str, &str)]) {
    let api = cluster(PAIRS * 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = KubeAgent::start(dir.path(), &api.url(), None, extra);
    agent.wait_ready(Duration::from_secs(30));
    let stamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    let mut lines = String::new();
    for _ in 0..LINES_PER_PAIR {
        for pair in 0..PAIRS {
            lines.push_str(&format!(
                "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={} DST={} LEN=60 \
                 TOS=0x00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT=8080 WINDOW=64240 \
                 RES=0x00 SYN URGP=0 \n",
                pod_ip(2 * pair),
                pod_ip(2 * pair + 1)
            ));
        }
    }
    let before = cpu_time(agent.pid());
    let threads_before = cpu_by_thread(agent.pid());
    let started = Instant::now();
    agent
        .log_file()
        .write_all(lines.as_bytes())
        .expect("append");
    let expected = u64::from(2 * PAIRS * LINES_PER_PAIR);
    let deadline = started + Duration::from_secs(300);
    loop {
        let counted: u64 = (api.events().iter())
            .map(|event| event["count"].as_u64().unwrap_or(0))
            .sum();
        if counted == expected {
            break;
        }
        if Instant::now() > deadline {
            agent.fail(&format!(
                "{label}: {counted} of {expected} counted after 300 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let spent = cpu_time(agent.pid()).saturating_sub(before);
    let by_thread: Vec<String> = cpu_by_thread(agent.pid())
        .into_iter()
        .map(|(name, cpu)| {
            let before = threads_before.get(&name).copied().unwrap_or_default();
            format!("{name} {:.2}", cpu.saturating_sub(before).as_secs_f64())
        })
        .collect();
    println!(
        "kube_cpu: {} drop lines over {PAIRS} pod pairs, {label}: counts added up after {:.1} s; \
         agent CPU {:.2} s ({:.1} µs a line; by thread, s: {})",
        PAIRS * LINES_PER_PAIR,
        started.elapsed().as_secs_f64(),
        spent.as_secs_f64(),
        spent.as_secs_f64() * 1e6 / f64::from(PAIRS * LINES_PER_PAIR),
        by_thread.join(", ")
    );
}
