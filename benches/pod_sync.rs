//! `make bench`: what the pod index costs the agent (the real binary, Kubernetes sink) to fill from an
//! API server on loopback. Prints one line per number:
//!
//! 1. Cluster mode, 100,000 full pods (about 7 KB of JSON each, as a real API server sends them:
//!    `common::list_server`, pages serialized in advance): the agent's CPU time and memory from start
//!    until its index synced (`/readyz` 200).
//! 2. `POD_INDEX=node` against `cluster`: two agents, one of each, for node-0 of a cluster of 150,000
//!    pods on 5,000 nodes (the integration tests' fake API, one per agent), during the same
//!    `KIT_POD_SYNC_SECONDS` (600: the first 10 minutes) of the same life: 20 pod changes a second
//!    across the cluster, and drops between node-0's pods and 50 pods of other nodes and 10 external
//!    addresses, 10 lines a second. Requests and bytes each agent pulled from the API (pod lists,
//!    watches and lookups; Event writes apart), and its memory.
//!
//! Run alone with `cargo bench --bench pod_sync`; `KIT_POD_SYNC_SECONDS=60` for a shorter part 2, 0
//! for none; `KIT_AGENT=path` measures another build of the agent (an older one).

mod common;
#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::list_server::{ListServer, PodShape};
use common::{Environment, JsonAgent, Process};
use fake_api::{FakeApi, FakePod, Recorded};

/// Part 1: pods in the cluster, and the agent's list page size.
const SYNC_PODS: u32 = 100_000;
const PAGE: usize = 500;

/// Part 2: the cluster, and what happens in it.
const CLUSTER_PODS: u32 = 150_000;
const CLUSTER_NODES: u32 = 5_000;
/// The agents' node: pods 0, 5,000, 10,000, ... (30 of them).
const NODE: &str = "node-0";
const REMOTE_PEERS: u32 = 50;
const EXTERNAL_PEERS: u32 = 10;
/// Pod changes a second across the cluster, and drop lines a second on node-0.
const CHANGES_PER_SECOND: u32 = 20;
const LINES_PER_SECOND: u32 = 10;

fn main() {
    cluster_sync_cpu();
    node_against_cluster();
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

/// Part 2: node mode against cluster mode, side by side.
fn node_against_cluster() {
    let seconds: u64 = std::env::var("KIT_POD_SYNC_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(600);
    if seconds == 0 {
        return;
    }
    let filled = Instant::now();
    let apis = [big_cluster(), big_cluster()];
    let filled_in = filled.elapsed();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let modes = ["cluster", "node"];
    let agents: Vec<JsonAgent> = (0..2)
        .map(|i| start_agent(dirs[i].path(), &apis[i].url(), &[("POD_INDEX", modes[i])]))
        .collect();
    let logs: Vec<PathBuf> = dirs.iter().map(|dir| dir.path().join("kern.log")).collect();
    let started = Instant::now();
    let mut ready_in = [None, None];
    let mut peak_kib = [0u64, 0u64];
    let tick = Duration::from_millis(100);
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep((started + tick * n).saturating_duration_since(Instant::now()));
        for i in 0..2 {
            if ready_in[i].is_none()
                && common::http_get(agents[i].port, "/readyz").map(|(status, _)| status)
                    == Some(200)
            {
                ready_in[i] = Some(started.elapsed());
            }
            peak_kib[i] =
                peak_kib[i].max(common::status_kib(Process::Id(agents[i].pid()), "VmRSS:"));
        }
        // The cluster changes: pods of other nodes are updated (a label moves on).
        for change in 0..CHANGES_PER_SECOND / 10 {
            let pod = 1 + (n * CHANGES_PER_SECOND / 10 + change) * 7 % (CLUSTER_PODS - 1);
            let pod = if pod.is_multiple_of(CLUSTER_NODES) {
                pod + 1
            } else {
                pod
            };
            for api in &apis {
                api.update_pod(cluster_pod(pod).label("generation", &n.to_string()));
            }
        }
        // Drops between node-0's pods and their peers (once both agents are ready).
        if ready_in.iter().all(Option::is_some) {
            for line in 0..LINES_PER_SECOND / 10 {
                let k = n * LINES_PER_SECOND / 10 + line;
                let local = cluster_ip(CLUSTER_NODES * (k % 30));
                let peer = match k % (REMOTE_PEERS + EXTERNAL_PEERS) {
                    p if p < REMOTE_PEERS => cluster_ip(1 + p * 13),
                    p => Ipv4Addr::new(203, 0, 113, (p - REMOTE_PEERS + 1) as u8),
                };
                let (src, dst) = if k.is_multiple_of(2) {
                    (local, peer)
                } else {
                    (peer, local)
                };
                for log in &logs {
                    append_line(log, &src.to_string(), &dst.to_string(), 8000 + k % 5);
                }
            }
        }
        n += 1;
    }
    for i in 0..2 {
        let pid = agents[i].pid();
        let (rss, hwm) = (
            common::status_kib(Process::Id(pid), "VmRSS:"),
            common::status_kib(Process::Id(pid), "VmHWM:"),
        );
        let requests = apis[i].requests();
        let pods: Vec<&Recorded> = (requests.iter())
            .filter(|request| request.path.ends_with("/pods"))
            .collect();
        let sum =
            |requests: &[&Recorded]| requests.iter().map(|request| request.bytes).sum::<u64>();
        let lookups: Vec<&Recorded> = (pods.iter().copied())
            .filter(|request| {
                (request.query("fieldSelector")).is_some_and(|s| s.starts_with("status.podIP="))
            })
            .collect();
        let lists = (pods.iter())
            .filter(|request| {
                !request.is_watch() && !lookups.iter().any(|l| std::ptr::eq(*l, **request))
            })
            .count();
        let watches = pods.iter().filter(|request| request.is_watch()).count();
        let events: Vec<&Recorded> = (requests.iter())
            .filter(|request| request.path.contains("/events"))
            .collect();
        println!(
            "pod_sync: POD_INDEX={:<7} {CLUSTER_PODS} pods on {CLUSTER_NODES} nodes, first {seconds} s \
             ({CHANGES_PER_SECOND} pod changes/s, {LINES_PER_SECOND} drop lines/s with {REMOTE_PEERS} \
             remote pods and {EXTERNAL_PEERS} external IPs): pods {} requests ({lists} lists, {watches} \
             watches, {} lookups), {:.2} MiB pulled (lookups {:.1} KiB); Events {} requests, {:.2} \
             MiB; ready {:.1} s; VmRSS {:.1} MiB (max sampled {:.1}), VmHWM {:.1} MiB",
            modes[i],
            pods.len(),
            lookups.len(),
            sum(&pods) as f64 / (1024.0 * 1024.0),
            sum(&lookups) as f64 / 1024.0,
            events.len(),
            sum(&events) as f64 / (1024.0 * 1024.0),
            ready_in[i].map_or(f64::NAN, |at| at.as_secs_f64()),
            rss as f64 / 1024.0,
            peak_kib[i] as f64 / 1024.0,
            hwm as f64 / 1024.0,
        );
    }
    // What node mode's lookups found, and the IPs it named by themselves for want of an answer.
    let (_, metrics) = common::http_get(agents[1].port, "/metrics").expect("metrics");
    let remote: Vec<&str> = (metrics.lines())
        .filter(|line| line.starts_with("kube_iptables_tailer_remote_pod"))
        .map(|line| line.trim_start_matches("kube_iptables_tailer_"))
        .collect();
    println!("pod_sync: node mode: {}", remote.join(", "));
    // How long the fake takes for one lookup (by an index of its pods' IPs, under its one lock; the
    // API server scans its watch cache): what the resolve stage waits for a new peer.
    let port = apis[1].address().port();
    let mut took: Vec<Duration> = (0..20)
        .map(|k| {
            let asked = Instant::now();
            let path = format!(
                "/api/v1/pods?fieldSelector=status.podIP%3D{}&resourceVersion=0",
                cluster_ip(1 + k * 13)
            );
            let (status, _) = common::http_get(port, &path).expect("a lookup answer");
            assert_eq!(status, 200);
            asked.elapsed()
        })
        .collect();
    took.sort();
    println!(
        "pod_sync: one lookup at the fake API: p50 {:.1} ms, max {:.1} ms",
        common::ms(took[10]),
        common::ms(took[19])
    );
    println!(
        "pod_sync: (each fake API filled in {:.1} s)",
        filled_in.as_secs_f64() / 2.0
    );
}

/// The fake API holding the 150,000 pods.
fn big_cluster() -> FakeApi {
    let api = FakeApi::start();
    for n in 0..CLUSTER_PODS {
        api.add_pod(cluster_pod(n));
    }
    api
}

/// Pod `n` of the big cluster: on node `n % 5,000`, IPv4 10.64.0.0 + n.
fn cluster_pod(n: u32) -> FakePod {
    FakePod::new(&format!("team-{:02}", n % 50), &format!("app-{n}"))
        .uid(&format!("uid-{n}"))
        .node(&format!("node-{}", n % CLUSTER_NODES))
        .label("app", &format!("app-{}", n / 20))
        .ip(&cluster_ip(n).to_string())
}

fn cluster_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A40_0000 + n)
}

/// Appends a TCP drop line in RSYSLOG_FileFormat, stamped now.
fn append_line(log: &Path, src: &str, dst: &str, dpt: u32) {
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let line = format!(
        "{stamp} node-0 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={src} DST={dst} LEN=60 TOS=0x00 \
         PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("open the log");
    file.write_all(line.as_bytes()).expect("append");
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
            .env("NODE_NAME", NODE)
            // Reverse lookups of test addresses would ask the machine's DNS server: loopback only.
            .env("DNS_LOOKUP", "false");
        for (name, value) in extra {
            command.env(name, value);
        }
    })
}
