//! Exactly once under chaos, for the file source: a writer appends drop lines at a steady rate while,
//! at seeded random moments, the agent is killed with SIGKILL and started again at once (the log
//! sometimes rotated while it is down), the log is rotated by rename (sometimes twice within one
//! poll interval) or by copytruncate, and the fake API answers 500 for a while, drops connections or
//! loses answers. At the end every Event's count adds up to exactly two per line (one on each pod).
//!
//! The seed is printed and in every failure message; `KIT_CHAOS_SEED=N` runs that seed again, and
//! `KIT_CHAOS_NO_KILL` (`_NO_ROTATE`, `_NO_COPYTRUNCATE`, `_NO_FAULTS`) leaves one kind of fault out.
//!
//! Not in the CI run yet: each kind of fault alone, and kills with API faults and rotations by
//! rename, add up on the seeds tried, but some seeds of the full mix still lose or add a few dozen
//! drops (seen: seeds 1, 3, 8-11; kills with copytruncate, and seed 10's mix, which adds ~400).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::kubernetes::start_agent;
use crate::support::agent::Agent;
use crate::support::fake_api::{FakeApi, FakePod, Fault};

/// Lines written in all, in steps of `STEP_LINES` every `STEP`.
const LINES: usize = 3_000;
const STEP_LINES: usize = 20;
const STEP: Duration = Duration::from_millis(80);
/// Pod pairs the lines are spread over (each line: one drop from pair k's sender to its receiver).
const PAIRS: usize = 10;

/// SplitMix64: small, seedable, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn seed() -> u64 {
    std::env::var("KIT_CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        })
}

fn cluster(api: &FakeApi) {
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

/// Appends lines `from..to`, each unique (its number is in the IP id and the source port).
fn append_lines(log: &Path, from: usize, to: usize) {
    let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
    let mut text = String::new();
    let by_step = std::env::var_os("KIT_CHAOS_PORT_PER_STEP").is_some();
    for number in from..to {
        let pair = number % PAIRS + 1;
        let port = if by_step {
            8080 + number / STEP_LINES
        } else {
            8080
        };
        text.push_str(&format!(
            "{stamp} node-1 kernel: calico-drop: IN=eth0 OUT=cali1 SRC=10.1.0.{pair} DST=10.2.0.{pair} \
             LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID={number} DF PROTO=TCP SPT={} DPT={port} WINDOW=64240 \
             RES=0x00 SYN URGP=0 \n",
            1024 + number % 60_000
        ));
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// logrotate `create`: `.k` → `.k+1`, the log → `.1`, a new empty log. No rotated file is removed
/// (`rotate` large enough): a file removed before it was read would lose lines by design.
fn rotate_by_rename(log: &Path) {
    shift_rotated(log);
    fs::rename(log, log.with_extension("log.1")).unwrap();
    fs::File::create(log).unwrap();
}

/// Renames every `.k` to `.k+1`, the highest first.
fn shift_rotated(log: &Path) {
    let rotated = |k: usize| log.with_extension(format!("log.{k}"));
    let highest = (1..)
        .take_while(|&k| rotated(k).exists())
        .last()
        .unwrap_or(0);
    for k in (1..=highest).rev() {
        fs::rename(rotated(k), rotated(k + 1)).unwrap();
    }
}

/// logrotate `copytruncate` (the writer waits meanwhile, as with rsyslog's own locking).
fn copytruncate(log: &Path) {
    shift_rotated(log);
    fs::copy(log, log.with_extension("log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn total_count(api: &FakeApi) -> u64 {
    api.events()
        .iter()
        .map(|event| event["count"].as_u64().unwrap_or(0))
        .sum()
}

fn agent(dir: &Path, api: &FakeApi) -> Agent {
    start_agent(dir, api, &[("EVENTS_QPS", "500"), ("EVENTS_BURST", "1000")])
}

#[test]
#[ignore = "not yet exact for every seed (issue 10): run with `cargo test --test integration chaos -- --ignored`"]
fn event_counts_add_up_exactly_through_kills_rotations_and_api_faults() {
    let seed = seed();
    eprintln!("chaos seed {seed} (KIT_CHAOS_SEED={seed} runs it again)");
    let mut rng = Rng(seed);
    let api = FakeApi::start();
    cluster(&api);
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("KIT_CHAOS_KEEP").is_some() {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    let log = dir.path().join("kern.log");
    let mut running = agent(dir.path(), &api);
    // Installed and running before the chaos: its first position is kept (a first start with no
    // checkpoint begins at the log's end, so lines written before it are not the agent's to read).
    crate::support::wait_until("the first checkpoint", Duration::from_secs(20), || {
        dir.path().join("state/file.checkpoint.json").exists()
    });
    let (mut kills, mut rotations, mut outages) = (0, 0, 0);

    let mut written = 0;
    while written < LINES {
        let next = (written + STEP_LINES).min(LINES);
        append_lines(&log, written, next);
        written = next;
        // KIT_CHAOS_NO_KILL, _NO_ROTATE, _NO_COPYTRUNCATE, _NO_FAULTS leave a kind of fault out.
        let knob = |name: &str| std::env::var_os(format!("KIT_CHAOS_{name}")).is_none();
        if rng.chance(8) && knob("NO_KILL") {
            kills += 1;
            running.kill9();
            if rng.chance(50) {
                rotations += 1;
                rotate_by_rename(&log);
                append_lines(&log, written, written + 5);
                written += 5;
                if rng.chance(50) {
                    rotations += 1;
                    rotate_by_rename(&log);
                }
            }
            running = agent(dir.path(), &api);
        }
        if rng.chance(6) && knob("NO_ROTATE") {
            rotations += 1;
            rotate_by_rename(&log);
            if rng.chance(40) {
                // A second rotation before the agent's next poll: the middle file is read too.
                append_lines(&log, written, written + 3);
                written += 3;
                rotations += 1;
                rotate_by_rename(&log);
            }
        }
        if rng.chance(4) && knob("NO_COPYTRUNCATE") {
            rotations += 1;
            copytruncate(&log);
        }
        if rng.chance(5) && knob("NO_FAULTS") {
            outages += 1;
            let length = Duration::from_millis(300 + rng.below(2_000));
            api.fault_for("*", "/api/v1/namespaces/", length, Fault::status(500));
        }
        if rng.chance(4) && knob("NO_FAULTS") {
            api.fault("POST", "/api/v1/namespaces/", 2, Fault::Drop);
            api.fault("PATCH", "/api/v1/namespaces/", 1, Fault::LoseAnswer);
        }
        std::thread::sleep(STEP);
    }
    api.clear_faults();
    eprintln!(
        "chaos seed {seed}: {written} lines, {kills} kills, {rotations} rotations, {outages} outages"
    );

    let expected = 2 * written as u64;
    let settled = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while total_count(&api) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Nothing more may come: a count above the lines would show now.
        std::thread::sleep(Duration::from_millis(500));
        if std::env::var_os("KIT_CHAOS_KEEP").is_some() {
            let events = serde_json::to_string(&api.events()).unwrap();
            fs::write(dir.path().join("events.json"), events).unwrap();
        }
        assert_eq!(
            total_count(&api),
            expected,
            "seed {seed}: {what}: the Events' counts against twice the {written} lines \
             ({kills} kills, {rotations} rotations, {outages} outages)"
        );
    };
    settled("after the chaos");
    // A clean stop and one more start replay what was not acknowledged: still exact.
    let (status, _) = running.terminate();
    assert!(status.success(), "seed {seed}: {status}");
    let again = agent(dir.path(), &api);
    std::thread::sleep(Duration::from_secs(2));
    settled("after a clean restart");
    drop(again);
}
