//! Exactly once under chaos: a writer appends drops at a steady rate while, at seeded random
//! moments, the agent is killed with SIGKILL and started again at once, the log is rotated the ways
//! its source knows (sometimes while the agent is down, sometimes twice within one poll interval),
//! and the fake API answers 500 for a while, drops connections or loses answers. At the end every
//! Event's count adds up to exactly two per drop (one on each pod), for each kind of source:
//! `file.rs`, `journald.rs`, `kmsg.rs`.
//!
//! The seed is printed and in every failure message; `KIT_CHAOS_SEED=N` runs that seed again.
//! `KIT_CHAOS_NO_KILL` (`_NO_ROTATE`, `_NO_FAULTS`) leaves one kind of fault out,
//! `KIT_CHAOS_SECONDS` writes for that long (`make soak`), `KIT_CHAOS_KEEP` keeps the test's directory (with `events.json`), and
//! `KIT_CHAOS_PORT_PER_STEP` gives every step its own port (so its own Events: a shortfall names the
//! lines it is in).

mod file;
mod journald;
mod kmsg;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::fake_api::{FakeApi, FakePod, Fault};

/// Drops written in a step (where the source kind does not say), and the pause after each step:
/// ~250 drops/s.
const STEP_LINES: usize = 20;
const STEP: Duration = Duration::from_millis(80);
/// Pod pairs the drops are spread over (drop k: from pair k's sender to its receiver).
const PAIRS: usize = 10;
/// Ports each pair's drops go to in turn: distinct Events, more than the agent's `EVENTS_PER_POD`.
const PORTS: usize = 8;

/// SplitMix64: small, seedable, the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Whether a `KIT_CHAOS_*` knob is set.
pub fn knob(name: &str) -> bool {
    std::env::var_os(format!("KIT_CHAOS_{name}")).is_some()
}

fn seed() -> u64 {
    std::env::var("KIT_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64 % 1_000_000)
        })
}

/// Drops a run writes: as many as `KIT_CHAOS_SECONDS` take at the steady rate (`make soak`), or
/// `default`.
fn lines(default: usize, step_lines: usize) -> usize {
    let steps_per_second = 1_000 / STEP.as_millis() as usize;
    std::env::var("KIT_CHAOS_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse::<usize>().ok())
        .map_or(default, |seconds| seconds * steps_per_second * step_lines)
}

/// The agent's settings every kind adds: a high Event rate (the drops come fast), a low storm bound
/// (each pod sees `PORTS` Events' worth of peers per window: most of its drops roll up, and the
/// roll-ups must stay exact through the chaos too), and debug logs unless soaking (30 minutes of
/// them would be gigabytes).
pub fn agent_env() -> [(&'static str, &'static str); 4] {
    let level = if std::env::var_os("KIT_CHAOS_SECONDS").is_some() {
        "info"
    } else {
        "debug"
    };
    [
        ("EVENTS_QPS", "500"),
        ("EVENTS_BURST", "1000"),
        ("EVENTS_PER_POD", "3"),
        ("LOG_LEVEL", level),
    ]
}

/// The kernel's LOG text of drop `number` (without any syslog header): unique by its IP id and
/// source port, from pair `number % PAIRS`'s sender to its receiver, on one of `PORTS` ports.
pub fn drop_message(prefix: &str, number: usize) -> String {
    let pair = number % PAIRS + 1;
    let port = if knob("PORT_PER_STEP") {
        8080 + number / STEP_LINES
    } else {
        8080 + (number / PAIRS) % PORTS
    };
    format!(
        "{prefix} IN=eth0 OUT=cali1 SRC=10.1.0.{pair} DST=10.2.0.{pair} LEN=60 TOS=0x00 \
         PREC=0x00 TTL=63 ID={} DF PROTO=TCP SPT={} DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0 ",
        number % 65_536,
        1024 + number % 60_000
    )
}

/// A log under chaos, as its source kind rotates it.
pub trait ChaosLog {
    /// Appends drops `from..to`.
    fn append(&mut self, from: usize, to: usize);
    /// One rotation, of a kind drawn from `rng` (the agent may be running or not).
    fn rotate(&mut self, rng: &mut Rng);
    /// What a rotation may throw away (journald's vacuum), where the agent is sure to have counted it.
    fn vacuum(&mut self) {}
}

/// The run's parameters for a source kind.
pub struct Chaos<'a> {
    pub kind: &'static str,
    pub dir: &'a Path,
    pub api: &'a FakeApi,
    /// Drops written when `KIT_CHAOS_SECONDS` does not say, and in each step.
    pub lines: usize,
    pub step_lines: usize,
    /// Per mille per step: a kill, a rotation.
    pub kill: u64,
    pub rotate: u64,
}

/// The fake cluster: PAIRS senders (10.1.0.k) and receivers (10.2.0.k).
pub fn cluster(api: &FakeApi) {
    for pair in 0..PAIRS {
        api.add_pod(
            FakePod::new("senders", &format!("sender-{pair}"))
                .uid(&format!("uid-sender-{pair}"))
                .ip(&format!("10.1.0.{}", pair + 1)),
        );
        api.add_pod(
            FakePod::new("receivers", &format!("receiver-{pair}"))
                .uid(&format!("uid-receiver-{pair}"))
                .ip(&format!("10.2.0.{}", pair + 1)),
        );
    }
}

/// A test directory, kept when `KIT_CHAOS_KEEP` is set.
pub fn directory() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().unwrap();
    if knob("KEEP") {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}

/// Writes the log under chaos with `start` starting the agent, then checks that the Events' counts
/// add up, after the chaos and again after a clean stop and one more start.
pub fn run(chaos: &Chaos, log: &mut dyn ChaosLog, start: &dyn Fn() -> Agent) {
    let seed = seed();
    let kind = chaos.kind;
    eprintln!("{kind} chaos seed {seed} (KIT_CHAOS_SEED={seed} runs it again)");
    let mut rng = Rng(seed);
    let api = chaos.api;
    let lines = lines(chaos.lines, chaos.step_lines);
    let mut running = start();
    let (mut kills, mut rotations, mut outages) = (0, 0, 0);
    let mut written = 0;
    while written < lines {
        let next = (written + chaos.step_lines).min(lines);
        log.append(written, next);
        written = next;
        if rng.chance(chaos.kill) && !knob("NO_KILL") {
            kills += 1;
            running.kill9();
            // While it is down: a rotation, sometimes two, with drops in between.
            if chaos.rotate > 0 && rng.chance(500) && !knob("NO_ROTATE") {
                rotations += 1;
                log.rotate(&mut rng);
                log.append(written, written + 5);
                written += 5;
                if rng.chance(500) {
                    rotations += 1;
                    log.rotate(&mut rng);
                }
            }
            running = start();
        }
        if rng.chance(chaos.rotate) && !knob("NO_ROTATE") {
            rotations += 1;
            log.rotate(&mut rng);
            if rng.chance(400) {
                // A second rotation before the agent's next look: the middle one is read too.
                log.append(written, written + 3);
                written += 3;
                rotations += 1;
                log.rotate(&mut rng);
            }
            log.vacuum();
        }
        if rng.chance(50) && !knob("NO_FAULTS") {
            outages += 1;
            let length = Duration::from_millis(300 + rng.below(2_000));
            api.fault_for("*", "/api/v1/namespaces/", length, Fault::status(500));
        }
        if rng.chance(40) && !knob("NO_FAULTS") {
            api.fault("POST", "/api/v1/namespaces/", 2, Fault::Drop);
            api.fault("PATCH", "/api/v1/namespaces/", 1, Fault::LoseAnswer);
        }
        std::thread::sleep(STEP);
    }
    api.clear_faults();
    let what = format!(
        "{kind} chaos seed {seed}: {written} drops, {kills} kills, {rotations} rotations, \
         {outages} outages"
    );
    eprintln!("{what}");
    let expected = 2 * written as u64;
    settled(
        api,
        chaos.dir,
        expected,
        &format!("{what}: after the chaos"),
    );
    // A clean stop and one more start replay what was not acknowledged: still exact.
    let (status, _) = running.terminate();
    assert!(status.success(), "{what}: the agent's clean stop: {status}");
    let again = start();
    std::thread::sleep(Duration::from_secs(2));
    settled(
        api,
        chaos.dir,
        expected,
        &format!("{what}: after a clean restart"),
    );
    drop(again);
}

fn counts(api: &FakeApi) -> BTreeMap<String, u64> {
    api.events()
        .iter()
        .map(|event| {
            let name = event["metadata"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            (name, event["count"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// Waits until the Events add up to `expected` (or more: then it cannot come back), or their counts
/// stop changing short of it for longer than a write's longest retry delay (30 s: after many
/// outages a write may wait that long); then asserts, naming each Event's count on failure.
fn settled(api: &FakeApi, dir: &Path, expected: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut last, mut changed) = (counts(api), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = counts(api);
        let total: u64 = now.values().sum();
        if total >= expected
            || changed.elapsed() > Duration::from_secs(40)
            || Instant::now() > deadline
        {
            break;
        }
        if now != last {
            (last, changed) = (now, Instant::now());
        }
    }
    // Nothing more may come: a count above the drops would show now.
    std::thread::sleep(Duration::from_millis(500));
    let counts = counts(api);
    if knob("KEEP") {
        let events = serde_json::to_string(&api.events()).unwrap();
        std::fs::write(dir.join("events.json"), events).unwrap();
    }
    let total: u64 = counts.values().sum();
    assert_eq!(
        total,
        expected,
        "{what}: the Events' counts against twice the drops; per Event: {counts:?}; the agents' \
         warnings (CI keeps no directory: these are what is left to go on):\n{}",
        agent_warnings(dir)
    );
}

/// The warnings and errors the agents logged, but the API errors the chaos itself causes: the last
/// 40 of them.
fn agent_warnings(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("agent.stderr")).unwrap_or_default();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .filter(|line| !line.contains("kube_client") && !line.contains("API request failed"))
        .collect();
    warnings[warnings.len().saturating_sub(40)..].join("\n")
}
