//! `make bench`: what the pod index costs the agent (the real binary, Kubernetes sink) to fill from an
//! API server on loopback. Prints one line per number:
//!
//! 1. Cluster mode, 100,000 full pods (about 7 KB of JSON each, as a real API server sends them:
//!    `common::list_server`, pages serialized in advance): the agent's CPU time and memory from start
//!    until its index synced (`/readyz` 200).
//!
//! Run alone with `cargo bench --bench pod_sync`; `KIT_AGENT=path` measures another build of the agent
//! (an older one).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::list_server::{ListServer, PodShape};
use common::{Environment, JsonAgent, Process};

/// Part 1: pods in the cluster, and the agent's list page size.
const SYNC_PODS: u32 = 100_000;
const PAGE: usize = 500;

fn main() {
    cluster_sync_cpu();
}

/// Part 1: CPU and memory to sync 100,000 full pods in cluster mode.
fn cluster_sync_cpu() {
    let prepared = Instant::now();
    let server = ListServer::start(SYNC_PODS, PAGE, PodShape::Full);
    let prepared_in = prepared.elapsed();
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let agent = start_agent(dir.path(), &server.url(), &[("POD_INDEX", "cluster")]);
    agent.wait_ready(Duration::from_secs(300));
    let ready_in = started.elapsed();
    let cpu = common::cpu_time(agent.pid());
    let rss = common::status_kib(Process::Id(agent.pid()), "VmRSS:");
    let hwm = common::status_kib(Process::Id(agent.pid()), "VmHWM:");
    println!(
        "pod_sync: cluster mode, {SYNC_PODS} full pods ({:.0} MiB of JSON, {:.1} KB a pod, pages of \
         {PAGE}): agent CPU {:.2} s until synced, ready {:.2} s after start; VmRSS {:.1} MiB, VmHWM \
         {:.1} MiB (pages prepared in {:.1} s)",
        server.list_bytes() as f64 / (1024.0 * 1024.0),
        server.list_bytes() as f64 / f64::from(SYNC_PODS) / 1000.0,
        cpu.as_secs_f64(),
        ready_in.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        prepared_in.as_secs_f64()
    );
}

/// The agent with the Kubernetes sink against `api_url`, following an empty file in `dir`.
fn start_agent(dir: &Path, api_url: &str, extra: &[(&str, &str)]) -> JsonAgent {
    let log = dir.join("kern.log");
    std::fs::write(&log, b"").expect("create the log");
    JsonAgent::start(Environment::Empty, |command| {
        command
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IPTABLES_LOG_PATH", &log)
            .env("EVENT_SINK", "kubernetes")
            .env("KUBE_API_SERVER", api_url)
            .env("NODE_NAME", "node-1")
            // Reverse lookups of test addresses would ask the machine's DNS server: loopback only.
            .env("DNS_LOOKUP", "false");
        for (name, value) in extra {
            command.env(name, value);
        }
    })
}
