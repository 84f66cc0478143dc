//! Lines per second of the parser on one core, for the mixes a node's kern.log holds: mostly lines that
//! are no drop (which must stay cheap), and drop lines in each timestamp format. Run with
//! `cargo bench --bench parse`; each case runs for about 1.5 s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube_iptables_tailer::parse::{LocalZone, Parser, TimeLayout};

const NOISE: &str = include_str!("../tests/fixtures/parse/kern-noise.log");
const KERNEL_MESSAGES: &str = include_str!("../tests/fixtures/parse/kernel-messages.log");
const RUN_FOR: Duration = Duration::from_millis(1500);

fn main() {
    let parser = Parser::new(
        vec![
            "calico-drop:".into(),
            "KITCHK:".into(),
            "KITCHK-UDP:".into(),
            "KITCHK-ICMP:".into(),
            "KITCHK-OUT:".into(),
        ],
        TimeLayout::Auto,
        LocalZone::utc(),
    );
    let now: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().expect("now");

    let noise: Vec<String> = NOISE.lines().map(str::to_string).collect();
    let messages: Vec<&str> = KERNEL_MESSAGES.lines().collect();
    let rfc3339: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            format!(
                "2026-11-25T21:05:35.{:06}+00:00 node-7 kernel: {message}",
                429037 + i
            )
        })
        .collect();
    let rfc3164: Vec<String> = messages
        .iter()
        .map(|message| {
            format!(
                "Nov 25 21:05:35 node-7 kernel: [ 5128.3247{}] {message}",
                message.len() % 10
            )
        })
        .collect();
    let ipv6: Vec<String> = rfc3339
        .iter()
        .filter(|line| line.contains("SRC=0000:"))
        .cloned()
        .collect();
    let mix: Vec<String> = (0..100)
        .map(|i| match i % 10 {
            0 => rfc3339[i / 10 % rfc3339.len()].clone(),
            _ => noise[i % noise.len()].clone(),
        })
        .collect();

    for line in rfc3339.iter().chain(&rfc3164) {
        parser
            .parse_line(line, now)
            .unwrap_or_else(|why| panic!("{why}: {line}"));
    }
    for line in &noise {
        assert!(parser.parse_line(line, now).is_err(), "{line}");
    }

    println!("parse, one core, {} ms per case", RUN_FOR.as_millis());
    run("non-matching kern.log lines", &parser, &noise, now);
    run("matching RFC 3339 lines", &parser, &rfc3339, now);
    run("matching RFC 3164 lines", &parser, &rfc3164, now);
    run("matching IPv6 lines", &parser, &ipv6, now);
    run("mix: 90% non-matching, 10% matching", &parser, &mix, now);
}

fn run(name: &str, parser: &Parser, lines: &[String], now: DateTime<Utc>) {
    let start = Instant::now();
    let mut count = 0u64;
    let mut drops = 0u64;
    while start.elapsed() < RUN_FOR {
        for _ in 0..100 {
            for line in lines {
                if black_box(parser.parse_line(black_box(line), now)).is_ok() {
                    drops += 1;
                }
            }
        }
        count += 100 * lines.len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name:<40} {:>12.0} lines/s  ({:>6.0} ns/line, {:.0}% drops)",
        count as f64 / seconds,
        seconds * 1e9 / count as f64,
        100.0 * drops as f64 / count as f64
    );
}
