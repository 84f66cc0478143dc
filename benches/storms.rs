//! `make bench`: the Kubernetes side under a scan and with a DNS server that never answers; the real
//! agent binary, a real file, the fake API server. Prints one line per number:
//!
//! 1. A scan: 100,000 drop lines from 100,000 distinct external addresses to one pod: how many
//!    Events the pod got, how long until their counts added up to 100,000, and the agent's CPU time.
//! 2. Reverse DNS off the data path: 100,000 drop lines over 10,000 distinct external addresses to
//!    100 pods, timed until the resolve stage has counted them all (`packet_drops_count`), with
//!    `DNS_LOOKUP=false` and with a DNS server that never answers. Both runs are in a network
//!    namespace the bench makes, whose resolv.conf (`/etc/netns/NAME/resolv.conf`) names 127.0.0.1,
//!    where a UDP socket reads nothing. Needs root; skipped without.

mod common;
#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use std::io::Write;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cpu_time;
use common::kube_agent::{InNetns, KubeAgent};
use fake_api::{FakeApi, FakePod};

const SCAN_LINES: u32 = 100_000;
const DNS_LINES: u32 = 100_000;
const DNS_PEERS: u32 = 10_000;
const DNS_PODS: u32 = 100;
const RUNS: usize = 5;

fn main() {
    scan();
    black_hole_dns();
}

/// Part 1.
fn scan() {
    let api = FakeApi::start();
    api.add_pod(FakePod::new("shop", "web-1").uid("uid-web").ip("10.0.0.1"));
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = KubeAgent::start(dir.path(), &api.url(), None, &[]);
    agent.wait_ready(Duration::from_secs(30));
    let time = stamp();
    let lines: String = (0..SCAN_LINES)
        .map(|n| {
            drop_line(
                &time,
                &Ipv4Addr::from(0xC612_0000 + n).to_string(),
                "10.0.0.1",
            )
        })
        .collect();
    let cpu_before = cpu_time(agent.pid());
    let started = Instant::now();
    agent
        .log_file()
        .write_all(lines.as_bytes())
        .expect("append");
    let deadline = started + Duration::from_secs(120);
    loop {
        let counted: u64 = (api.events().iter())
            .map(|event| event["count"].as_u64().unwrap_or(0))
            .sum();
        if counted == u64::from(SCAN_LINES) {
            break;
        }
        if Instant::now() > deadline {
            agent.fail(&format!(
                "part 1: {counted} of {SCAN_LINES} counted after 120 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let cpu = cpu_time(agent.pid()).saturating_sub(cpu_before);
    println!(
        "storms: a scan of {SCAN_LINES} drop lines from {SCAN_LINES} addresses to one pod: {} Events \
         (EVENTS_PER_POD=10), counts added up {:.2} s after the append; agent CPU {:.2} s ({:.1} µs \
         per line); peak RSS (VmHWM) {:.1} MiB",
        api.events().len(),
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / f64::from(SCAN_LINES),
        agent.status_kib("VmHWM:") as f64 / 1024.0
    );
}

/// Part 2.
fn black_hole_dns() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("storms: black-holed DNS: skipped (needs root for a network namespace)");
        return;
    }
    let netns = Netns::new();
    // Bound, never read: every query waits until the resolver gives up.
    let _black_hole = fake_api::enter_netns::in_netns(&netns.name, || {
        UdpSocket::bind("127.0.0.1:53").expect("bind the black hole")
    });
    // Alternating runs, the median of each: a single half-second run is at the mercy of the machine.
    let (mut without, mut with, mut answered) = (Vec::new(), Vec::new(), 0.0);
    for _ in 0..RUNS {
        without.push(drops_per_second(&netns.name, "false").0);
        let (rate, answers) = drops_per_second(&netns.name, "true");
        with.push(rate);
        answered += answers;
    }
    let (without, with) = (median(without), median(with));
    println!(
        "storms: {DNS_LINES} drop lines over {DNS_PEERS} external addresses to {DNS_PODS} pods through \
         the resolve stage: {without:.0} drops/s with DNS_LOOKUP=false, {with:.0} drops/s with a DNS \
         server that never answers ({:+.1} %; medians of {RUNS} runs each; {answered} lookups \
         answered meanwhile)",
        (with / without - 1.0) * 100.0
    );
}

/// How fast the resolve stage counts the drops, with `DNS_LOOKUP=lookup`; and how many lookups
/// were answered (found, not found or failed) by then.
fn drops_per_second(netns: &str, lookup: &str) -> (f64, f64) {
    let api = FakeApi::start_in_netns(netns);
    for n in 0..DNS_PODS {
        api.add_pod(
            FakePod::new("shop", &format!("web-{n}"))
                .uid(&format!("uid-web-{n}"))
                .ip(&Ipv4Addr::from(0x0A00_0000 + n).to_string()),
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let enter: InNetns = |netns, body| fake_api::enter_netns::in_netns(netns, body);
    let agent = KubeAgent::start(
        dir.path(),
        &api.url(),
        Some((netns, enter)),
        &[("DNS_LOOKUP", lookup)],
    );
    agent.wait_ready(Duration::from_secs(30));
    let time = stamp();
    let lines: String = (0..DNS_LINES)
        .map(|n| {
            let peer = Ipv4Addr::from(0xC613_0000 + n % DNS_PEERS).to_string();
            let pod = Ipv4Addr::from(0x0A00_0000 + n % DNS_PODS).to_string();
            drop_line(&time, &peer, &pod)
        })
        .collect();
    let started = Instant::now();
    agent
        .log_file()
        .write_all(lines.as_bytes())
        .expect("append");
    let deadline = started + Duration::from_secs(120);
    while agent.metric_sum("packet_drops_count") < f64::from(DNS_LINES) {
        if Instant::now() > deadline {
            agent.fail("part 2: the drops were not all counted within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rate = f64::from(DNS_LINES) / started.elapsed().as_secs_f64();
    let answered = ["found", "not_found", "error"]
        .iter()
        .map(|result| {
            agent.metric(&format!(
                "kube_iptables_tailer_dns_lookups_total{{result=\"{result}\"}}"
            ))
        })
        .sum();
    (rate, answered)
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// A network namespace with its loopback up and a resolv.conf naming 127.0.0.1; removed on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!("kitbench{}", std::process::id());
        run(&["netns", "add", &name]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        let etc = Path::new("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).expect("/etc/netns");
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").expect("resolv.conf");
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}: {status}");
}

fn stamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// A TCP drop line to port 80 in RSYSLOG_FileFormat, as the integration tests write them.
fn drop_line(stamp: &str, src: &str, dst: &str) -> String {
    format!(
        "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC={src} DST={dst} LEN=60 TOS=0x00 \
         PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 \n"
    )
}
