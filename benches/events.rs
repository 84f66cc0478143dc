//! `make bench`: the real agent binary with the Kubernetes sink, following a real file, against a
//! fake API server on loopback. Prints one line per number:
//!
//! 1. append → Event latency: 300 drop lines, each for a new Event, paced below the default rate
//!    limit; each is timed from its append to the arrival of the first POST that creates its Event.
//! 2. 100,000 drop lines over 1,000 pod pairs appended at once: the time until the last Event write
//!    was accepted (every count exact), with the default EVENTS_QPS and EVENTS_BURST and with
//!    1000/1000, and the agent's peak RSS.
//! 3. The agent's RSS after its pod index synced 100,000 pods, and how long the sync took.
//!
//! 1 and 2 use the integration tests' fake API server; 3 serves the pod list from pages serialized in
//! advance (`common::list_server`: the fake would hold many gigabytes of list continuations).

mod common;
#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::kube_agent::KubeAgent;
use common::list_server::{ListServer, PodShape};
use common::pods::{NAMESPACES, SyntheticPod};
use common::{Percentiles, ms};
use fake_api::{FakeApi, FakePod, Recorded};

/// Part 1: pods in the fake, lines, and the pace (each line makes one Event: 16.7 writes/s < 20/s).
const LATENCY_PODS: u32 = 300;
const LATENCY_LINES: u32 = 300;
const LATENCY_PACE: Duration = Duration::from_millis(60);
const FIRST_PORT: u32 = 20_000;

/// Part 2: pairs of pods (each pod in one pair) and lines per pair.
const PAIRS: u32 = 1_000;
const LINES_PER_PAIR: u32 = 100;

/// Part 3.
const INDEX_PODS: u32 = 100_000;
/// The agent's list page size (`POD_LIST_PAGE_SIZE`).
const PAGE: usize = 500;

fn main() {
    append_to_event_latency();
    many_drops("default EVENTS_QPS=20 EVENTS_BURST=100", &[]);
    many_drops(
        "EVENTS_QPS=1000 EVENTS_BURST=1000",
        &[("EVENTS_QPS", "1000"), ("EVENTS_BURST", "1000")],
    );
    memory_with_many_pods();
}

/// Part 1: each line is a pod → external drop on its own port: one new Event (on the sending pod)
/// per line.
fn append_to_event_latency() {
    let api = FakeApi::start();
    let pods: Vec<FakePod> = (0..LATENCY_PODS)
        .map(|n| fake_pod(n, 0x0A01_0000))
        .collect();
    for pod in &pods {
        api.add_pod(pod.clone());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = start_agent(dir.path(), &api.url(), &[]);
    agent.wait_ready(Duration::from_secs(30));

    let mut file = agent.log_file();
    let mut appended = Vec::new();
    let start = Instant::now();
    for i in 0..LATENCY_LINES {
        sleep_until(start + LATENCY_PACE * i);
        let src = &pods[(i % LATENCY_PODS) as usize].ips[0];
        // 203.0.113.0/24 (TEST-NET-3): no pod; with DNS_LOOKUP=false the Event names it by its IP.
        let dst = Ipv4Addr::from(0xCB00_7101 + i % 250);
        let line = drop_line(
            &stamp(chrono::Utc::now()),
            src,
            &dst.to_string(),
            FIRST_PORT + i,
        );
        file.write_all(line.as_bytes()).expect("append");
        appended.push(Instant::now());
    }

    let mut first_post: HashMap<u32, (Instant, Option<u16>)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first_post.len() < LATENCY_LINES as usize {
        if Instant::now() > deadline {
            agent.fail(&format!(
                "part 1: a POST for {} of {LATENCY_LINES} lines within 30 s of the last append",
                first_post.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
        first_post.clear();
        for request in api.requests_to("POST", "/api/v1/namespaces/") {
            if let Some(port) = port_of(&request) {
                (first_post.entry(port)).or_insert((request.received, request.status));
            }
        }
    }
    let not_created = (first_post.values())
        .filter(|(_, status)| *status != Some(201))
        .count();
    let latencies = Percentiles::of(
        (0..LATENCY_LINES)
            .map(|i| {
                let (received, _) = first_post[&(FIRST_PORT + i)];
                received.saturating_duration_since(appended[i as usize])
            })
            .collect(),
    );
    println!(
        "events: append→Event latency over {LATENCY_LINES} new Events ({LATENCY_PODS} pods, 50 ms poll, \
         EVENTS_QPS 20, one line per {} ms): {latencies:.1}",
        LATENCY_PACE.as_millis(),
    );
    if not_created > 0 {
        println!("events:   note: {not_created} first POSTs were not answered 201");
    }
}

/// Part 2: 100 drop lines for each of 1,000 pod pairs, interleaved, all with one timestamp: one
/// Event per pod whose count must reach 100.
fn many_drops(label: &str, extra: &[(&str, &str)]) {
    let api = FakeApi::start();
    let pods: Vec<FakePod> = (0..PAIRS * 2).map(|n| fake_pod(n, 0x0A02_0000)).collect();
    for pod in &pods {
        api.add_pod(pod.clone());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = start_agent(dir.path(), &api.url(), extra);
    agent.wait_ready(Duration::from_secs(30));

    let time = stamp(chrono::Utc::now());
    let mut lines = String::new();
    for _ in 0..LINES_PER_PAIR {
        for pair in 0..PAIRS as usize {
            let (sender, receiver) = (&pods[2 * pair], &pods[2 * pair + 1]);
            lines.push_str(&drop_line(&time, &sender.ips[0], &receiver.ips[0], 8080));
        }
    }
    let mut file = agent.log_file();
    let started = Instant::now();
    file.write_all(lines.as_bytes()).expect("append");
    let appended_in = started.elapsed();

    let expected = u64::from(PAIRS * LINES_PER_PAIR);
    let deadline = started + Duration::from_secs(300);
    let (sending, receiving) = loop {
        let (sending, receiving) = count_by_direction(&api.events());
        if sending.values().sum::<u64>() >= expected && receiving.values().sum::<u64>() >= expected
        {
            break (sending, receiving);
        }
        if Instant::now() > deadline {
            agent.fail(&format!(
                "part 2 ({label}): counts {} sending, {} receiving of {expected} after 300 s",
                sending.values().sum::<u64>(),
                receiving.values().sum::<u64>()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let peak_kib = agent.status_kib("VmHWM:");

    // Exact: one Event per pod and direction it has, each counting its pair's 100 drops.
    let events = api.events();
    let mut wrong = Vec::new();
    for pair in 0..PAIRS as usize {
        let sender = &pods[2 * pair];
        let receiver = &pods[2 * pair + 1];
        let key = |pod: &FakePod| (pod.namespace.clone(), pod.name.clone());
        let sent = sending.get(&key(sender)).copied();
        let received = receiving.get(&key(receiver)).copied();
        if sent != Some(u64::from(LINES_PER_PAIR)) || received != Some(u64::from(LINES_PER_PAIR)) {
            wrong.push(format!(
                "pair {pair}: sending {sent:?}, receiving {received:?}"
            ));
        }
    }
    let (sent, received) = (
        sending.values().sum::<u64>(),
        receiving.values().sum::<u64>(),
    );
    if !wrong.is_empty()
        || sent != expected
        || received != expected
        || events.len() != 2 * PAIRS as usize
    {
        agent.fail(&format!(
            "part 2 ({label}): {} Events, {sent} sending and {received} receiving drops (expected {} \
             Events, {expected} each); first pairs wrong: {:?}",
            events.len(),
            2 * PAIRS,
            &wrong[..wrong.len().min(5)]
        ));
    }

    let writes: Vec<Recorded> = (api.requests_to("*", "/api/v1/namespaces/").into_iter())
        .filter(|request| request.path.contains("/events"))
        .collect();
    let accepted = |request: &&Recorded| request.status.is_some_and(|code| code < 300);
    let last = (writes.iter().filter(accepted))
        .map(|request| request.received)
        .max()
        .expect("accepted writes");
    let count = |method: &str| {
        (writes.iter())
            .filter(|request| request.method == method && accepted(request))
            .count()
    };
    let (creates, patches) = (count("POST"), count("PATCH"));
    let refused = writes.iter().filter(|request| !accepted(request)).count();
    let took = last.saturating_duration_since(started);
    println!(
        "events: {} drop lines over {PAIRS} pod pairs, {label}: last Event write accepted {:.2} s after \
         the first append ({creates} creates + {patches} patches = {:.0} writes/s, {refused} refused; \
         appended in {:.0} ms); counts exact ({expected} sending, {expected} receiving in {} Events); \
         agent peak RSS (VmHWM) {:.1} MiB",
        PAIRS * LINES_PER_PAIR,
        took.as_secs_f64(),
        (creates + patches) as f64 / took.as_secs_f64(),
        ms(appended_in),
        events.len(),
        peak_kib as f64 / 1024.0
    );
}

/// Sum of `count` per pod (namespace, name), for Events about sending and about receiving.
type Counts = HashMap<(String, String), u64>;

fn count_by_direction(events: &[Value]) -> (Counts, Counts) {
    let (mut sending, mut receiving) = (Counts::new(), Counts::new());
    for event in events {
        let pod = &event["involvedObject"];
        let key = (
            pod["namespace"].as_str().unwrap_or_default().to_string(),
            pod["name"].as_str().unwrap_or_default().to_string(),
        );
        let message = event["message"].as_str().unwrap_or_default();
        let counts = if message.contains(" when sending ") {
            &mut sending
        } else {
            &mut receiving
        };
        *counts.entry(key).or_default() += event["count"].as_u64().unwrap_or(0);
    }
    (sending, receiving)
}

/// Part 3: resident memory once the pod index holds 100,000 pods (150,000 IPs).
fn memory_with_many_pods() {
    let built = Instant::now();
    let server = ListServer::start(INDEX_PODS, PAGE, PodShape::Small);
    let built_in = built.elapsed();
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let agent = start_agent(dir.path(), &server.url(), &[]);
    agent.wait_ready(Duration::from_secs(120));
    let ready_in = started.elapsed();
    let (rss, hwm) = (agent.status_kib("VmRSS:"), agent.status_kib("VmHWM:"));
    let ips = agent.metric("kube_iptables_tailer_pod_index_size");
    let (first_list, last_page) = server.list_times();
    if ips != f64::from(INDEX_PODS + INDEX_PODS / 2) {
        agent.fail(&format!("part 3: pod index size {ips}, expected 150000"));
    }
    println!(
        "events: pod index of {INDEX_PODS} pods ({ips} IPs, {NAMESPACES} namespaces, pages of {PAGE}): \
         ready {:.2} s after start (list: first page to last {:.2} s); agent VmRSS {:.1} MiB, \
         VmHWM {:.1} MiB (pages prepared in {:.0} ms)",
        ready_in.as_secs_f64(),
        last_page.zip(first_list).map_or(0.0, |(last, first)| last
            .duration_since(first)
            .as_secs_f64()),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        ms(built_in)
    );
}

/// The agent with the Kubernetes sink on `dir/kern.log`, holding every pod (`POD_INDEX=cluster`:
/// the numbers are the whole index's).
fn start_agent(dir: &Path, api_url: &str, extra: &[(&str, &str)]) -> KubeAgent {
    let mut env = vec![("POD_INDEX", "cluster")];
    env.extend_from_slice(extra);
    KubeAgent::start(dir, api_url, None, &env)
}

/// [`SyntheticPod`] `n` with IPv4 `base + n`, as the fake API serves it.
fn fake_pod(n: u32, base: u32) -> FakePod {
    let synthetic = SyntheticPod::new(n, base);
    let pod = FakePod::new(&synthetic.namespace, &synthetic.name)
        .uid(&synthetic.uid)
        .node(&synthetic.node)
        .ip(&synthetic.ipv4.to_string());
    match synthetic.ipv6 {
        Some(ipv6) => pod.ip(&ipv6.to_string()),
        None => pod,
    }
}

/// A TCP drop line in RSYSLOG_FileFormat, as the integration tests write them.
fn drop_line(stamp: &str, src: &str, dst: &str, dpt: u32) -> String {
    format!(
        "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={src} DST={dst} LEN=60 TOS=0x00 \
         PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    )
}

fn stamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// The port of an Event create's message (`... on port 20017/TCP`).
fn port_of(request: &Recorded) -> Option<u32> {
    if !request.path.ends_with("/events") {
        return None;
    }
    let message = request.body.as_ref()?["message"].as_str()?;
    let (_, rest) = message.split_once(" on port ")?;
    rest.split('/').next()?.parse().ok()
}

fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}
