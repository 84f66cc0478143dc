//! `make bench`: write → stdout latency of the real agent binary reading the real /dev/kmsg
//! (`LOG_SOURCE=kmsg`). Writes numbered drop records to the kernel log at a steady pace and times each
//! until its JSON record appears on the agent's stdout; prints p50, p99 and max. Needs root (only root
//! may write to /dev/kmsg); without it, says so and skips.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Environment, JsonAgent, Percentiles};

const RECORDS: u16 = 300;
/// Slow enough that the ~650-line kernel buffer never holds more than a few of ours at once.
const PACE: Duration = Duration::from_millis(10);

fn main() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("kmsg latency: skipped (writing to /dev/kmsg needs root)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("KITBENCH{}:", std::process::id());
    let mut agent = JsonAgent::start(Environment::Inherited, |command| {
        command
            .env("LOG_SOURCE", "kmsg")
            .env("IPTABLES_LOG_PREFIX", &prefix)
            .env("STATE_DIRECTORY", dir.path().join("state"));
    });
    let printed = agent.printed_ports();
    // /dev/kmsg is open and positioned at its end.
    agent.wait_ready(Duration::from_secs(20));

    let mut written = HashMap::new();
    for sequence in 1..=RECORDS {
        let record = format!(
            "<4>{prefix} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 \
             DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=34393 DPT={sequence} LEN=9 \n"
        );
        // A file per record: the kernel rate-limits writes per open file.
        let mut kmsg = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        kmsg.write_all(record.as_bytes()).expect("write a record");
        written.insert(u32::from(sequence), Instant::now());
        drop(kmsg);
        std::thread::sleep(PACE);
    }
    let latencies = common::latencies(&printed, usize::from(RECORDS), "record", |sequence| {
        written[&sequence]
    });
    drop(agent);
    println!(
        "write→stdout latency over {RECORDS} records (kmsg source, /dev/kmsg): {:.1}",
        Percentiles::of(latencies)
    );
}
