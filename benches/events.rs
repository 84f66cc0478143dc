#[allow(dead_code)]
#[path = "../tests/integration/support/fake_api/mod.rs"]
mod fake_api;

use fake_api::{FakeApi, FakePod};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss(pid: &str, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    r.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n: u32 = std::env::var("N").unwrap().parse().unwrap();
    let api = FakeApi::start();
    let t = Instant::now();
    for i in 0..n {
        api.add_pod(
            FakePod::new(
                &format!("team-{:02}", i % 50),
                &format!("pod-{i}-abcdefghij-klmno"),
            )
            .ip(&std::net::Ipv4Addr::from(0x0A00_0000 + i).to_string()),
        );
        if (i + 1) % 20000 == 0 {
            println!("{} pods added in {:?}", i + 1, t.elapsed());
        }
    }
    println!(
        "added {n} in {:?}; bench VmRSS {} kB",
        t.elapsed(),
        rss("self", "VmRSS:")
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    std::fs::write(&log, b"").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_kube-iptables-tailer"))
        .env_clear()
        .env("IPTABLES_LOG_PATH", &log)
        .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
        .env("METRICS_SERVER_PORT", port.to_string())
        .env("LOG_LEVEL", "info")
        .env("EVENT_SINK", "kubernetes")
        .env("KUBE_API_SERVER", api.url())
        .env("NODE_NAME", "node-1")
        .env("DNS_LOOKUP", "false")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while get(port, "/readyz") != Some(200) {
        std::thread::sleep(Duration::from_millis(20));
        if t.elapsed() > Duration::from_secs(300) {
            panic!("timeout")
        }
    }
    println!(
        "ready in {:?}; bench VmHWM {} kB; agent VmRSS {} VmHWM {}",
        t.elapsed(),
        rss("self", "VmHWM:"),
        rss(&agent.id().to_string(), "VmRSS:"),
        rss(&agent.id().to_string(), "VmHWM:")
    );
    for r in api.requests() {
        println!(
            "{} {} {:?} {:?}",
            r.method,
            r.path,
            r.query.get("limit"),
            r.status
        );
        break;
    }
    println!("{} requests", api.requests().len());
    agent.kill().ok();
    agent.wait().ok();
}
