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
//! 1 and 2 use the integration tests' fake API server. 3 serves the pod list from pages serialized
//! in advance (a small server below): the fake keeps the rest of a paged list under each continue
//! token, so a list of n pods in pages of 500 holds about n²/1000 pod objects (10 million, many
//! gigabytes, for 100,000 pods).

#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
const NAMESPACES: u32 = 50;
const NODES: u32 = 1_000;
/// The agent's list page size (`POD_LIST_PAGE_SIZE`).
const PAGE: usize = 500;

const APPS: [&str; 16] = [
    "frontend",
    "checkout",
    "payments-api",
    "search-indexer",
    "cart",
    "recommendations",
    "image-resizer",
    "auth-gateway",
    "inventory-sync",
    "notifications-worker",
    "ledger",
    "catalog",
    "session-store",
    "metrics-exporter",
    "shipping",
    "pricing-engine",
];

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
    let agent = Agent::start(dir.path(), &api.url(), &[]);
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
    let mut latencies: Vec<Duration> = (0..LATENCY_LINES)
        .map(|i| {
            let (received, _) = first_post[&(FIRST_PORT + i)];
            received.saturating_duration_since(appended[i as usize])
        })
        .collect();
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "events: append→Event latency over {LATENCY_LINES} new Events ({LATENCY_PODS} pods, 50 ms poll, \
         EVENTS_QPS 20, one line per {} ms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        LATENCY_PACE.as_millis(),
        ms(percentile(50)),
        ms(percentile(99)),
        ms(*latencies.last().unwrap())
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
    let agent = Agent::start(dir.path(), &api.url(), extra);
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
    let server = ListServer::start(INDEX_PODS);
    let built_in = built.elapsed();
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let agent = Agent::start(dir.path(), &server.url(), &[]);
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

/// The agent binary as a child process with the Kubernetes sink, its log file in `dir`.
struct Agent {
    child: Child,
    metrics_port: u16,
    log: PathBuf,
    stderr: PathBuf,
}

impl Agent {
    fn start(dir: &Path, api_url: &str, extra: &[(&str, &str)]) -> Agent {
        let log = dir.join("kern.log");
        // The log exists (empty) before the agent starts, as on a node: the agent begins at its end.
        std::fs::write(&log, b"").expect("create the log");
        let stderr = dir.join("agent.stderr");
        let metrics_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kube-iptables-tailer"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IPTABLES_LOG_PATH", &log)
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", metrics_port.to_string())
            .env("LOG_LEVEL", "warn")
            .env("EVENT_SINK", "kubernetes")
            .env("KUBE_API_SERVER", api_url)
            .env("NODE_NAME", "node-1")
            // Reverse lookups of test addresses would ask the machine's DNS server: loopback only.
            .env("DNS_LOOKUP", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the agent");
        Agent {
            child,
            metrics_port,
            log,
            stderr,
        }
    }

    fn log_file(&self) -> std::fs::File {
        (std::fs::OpenOptions::new().append(true).open(&self.log)).expect("open the log")
    }

    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.get("/readyz").map(|(status, _)| status) != Some(200) {
            if Instant::now() > deadline {
                self.fail(&format!("/readyz not 200 within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `GET path` on the metrics server: (status, body), or None when it does not answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        Some((status, body.to_string()))
    }

    fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").expect("metrics answer");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// A `kB` field of /proc/PID/status (VmRSS:, VmHWM:), in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status of the agent");
        (status.lines())
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    fn fail(&self, what: &str) -> ! {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{what}\nagent stderr (last lines):\n{}", tail.join("\n"));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A pod with a realistic name (`app-xxxxxxxxxx-xxxxx` in `team-NN-production`), uid and node, IPv4
/// `base + n`, and an IPv6 address too for every other pod.
fn fake_pod(n: u32, base: u32) -> FakePod {
    let mut random = Random(u64::from(n) + 1);
    let name = pod_name(n, &mut random);
    let pod = FakePod::new(&namespace(n), &name)
        .uid(&random.uuid())
        .node(&node(n))
        .ip(&Ipv4Addr::from(base + n).to_string());
    if n % 2 == 0 { pod.ip(&ipv6(n)) } else { pod }
}

fn namespace(n: u32) -> String {
    format!("team-{:02}-production", n % NAMESPACES)
}

fn pod_name(n: u32, random: &mut Random) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let app = APPS[n as usize % APPS.len()];
    format!(
        "{app}-{}-{}",
        random.word(10, ALPHABET),
        random.word(5, ALPHABET)
    )
}

fn node(n: u32) -> String {
    format!("ip-10-0-{}-{}.ec2.internal", n % NODES / 250, n % 250)
}

fn ipv6(n: u32) -> String {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16).to_string()
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

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Serves `GET /api/v1/pods` in pages of [`PAGE`] serialized in advance (`continue` is the page
/// number), and a watch that stays open without events; anything else is 404.
struct ListServer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// When the first list request and the last page's request arrived.
    times: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    acceptor: Option<JoinHandle<()>>,
}

impl ListServer {
    fn start(pods: u32) -> ListServer {
        let pages = Arc::new(pod_pages(pods));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let stopping = Arc::new(AtomicBool::new(false));
        let times = Arc::new(Mutex::new((None, None)));
        let acceptor = {
            let (stopping, times) = (stopping.clone(), times.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (pages, stopping, times) = (pages.clone(), stopping.clone(), times.clone());
                    std::thread::spawn(move || serve_pages(stream, &pages, &stopping, &times));
                }
            })
        };
        ListServer {
            address,
            stopping,
            times,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn list_times(&self) -> (Option<Instant>, Option<Instant>) {
        *self.times.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ListServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Every page of the pod list as the API serves it: a PodList with `continue` while more remain.
fn pod_pages(pods: u32) -> Vec<Vec<u8>> {
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pages = (pods as usize).div_ceil(PAGE);
    (0..pages)
        .map(|page| {
            let first = page * PAGE;
            let last = (first + PAGE).min(pods as usize);
            let items: Vec<Value> = (first..last)
                .map(|n| pod_object(n as u32, &created))
                .collect();
            let mut metadata = json!({"resourceVersion": "200000"});
            if last < pods as usize {
                metadata["continue"] = json!(format!("page-{}", page + 1));
                metadata["remainingItemCount"] = json!(pods as usize - last);
            }
            let list = json!({
                "apiVersion": "v1", "kind": "PodList", "metadata": metadata, "items": items,
            });
            serde_json::to_vec(&list).expect("serialize a page")
        })
        .collect()
}

/// The Pod object of pod `n`, shaped as the fake API serves its pods.
fn pod_object(n: u32, created: &str) -> Value {
    let pod = fake_pod(n, 0x0A00_0000);
    let ips: Vec<Value> = pod.ips.iter().map(|ip| json!({"ip": ip})).collect();
    let host_ip = format!("10.0.{}.{}", n % NODES / 250, n % 250);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": (100_000 + n).to_string(),
            "creationTimestamp": created,
            "labels": {"app": APPS[n as usize % APPS.len()]},
        },
        "spec": {
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": pod.node,
        },
        "status": {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod.ips[0],
            "podIPs": ips,
            "startTime": created,
        },
    })
}

/// One keep-alive connection of [`ListServer`].
fn serve_pages(
    stream: TcpStream,
    pages: &[Vec<u8>],
    stopping: &AtomicBool,
    times: &Mutex<(Option<Instant>, Option<Instant>)>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |key: &str| {
            (query.split('&'))
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .filter(|value| !value.is_empty())
        };
        let written = if path != "/api/v1/pods" {
            eprintln!("events bench: list server: no {target}");
            respond(&mut writer, 404, &failure("NotFound", 404))
        } else if matches!(param("watch"), Some("true" | "1")) {
            // A watch with nothing to say, open until the bench ends.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\n";
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
            while !stopping.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        } else {
            let page = param("continue")
                .and_then(|token| token.strip_prefix("page-")?.parse::<usize>().ok())
                .unwrap_or(0);
            let now = Instant::now();
            {
                let mut times = times.lock().unwrap_or_else(PoisonError::into_inner);
                if page == 0 && times.0.is_none() {
                    times.0 = Some(now);
                }
                if page + 1 == pages.len() {
                    times.1 = Some(now);
                }
            }
            match pages.get(page) {
                Some(bytes) => respond(&mut writer, 200, bytes),
                None => respond(&mut writer, 410, &failure("Expired", 410)),
            }
        };
        if written.is_err() || stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// A `Status` body as the API server answers a failure.
fn failure(reason: &str, code: u16) -> Vec<u8> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": reason, "code": code,
    });
    serde_json::to_vec(&status).expect("serialize a Status")
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        if code == 200 { "OK" } else { "Error" },
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// splitmix64: deterministic, so every run builds the same pods.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let (high, low) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xfff,
            (low >> 48) & 0x3fff | 0x8000,
            low & 0xffff_ffff_ffff
        )
    }
}
