//! The kmsg source against the real /dev/kmsg: the agent binary with `LOG_SOURCE=kmsg` prints records a
//! test writes to the kernel log and real netfilter LOG lines, resumes after kill -9 at the sequence
//! number it checkpointed, and reads the whole buffer when its checkpoint is of another boot.
//!
//! The kernel log is shared with everything else on the machine (other tests, other runs): every test
//! uses a prefix of its own and looks only at records that carry it.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::agent::Agent;
use crate::support::netns::{CLIENT_V4, LogAllNetns, NetnsPair, SERVER_V4};
use crate::support::{kernel_lock, privileged, unique, wait_until};

const KMSG: &str = "/dev/kmsg";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Writes one record to the kernel log, as `echo "<4>TEXT" > /dev/kmsg` does. A file is opened per
/// record: the kernel rate-limits writes per open file (10 per 5 s unless `printk_devkmsg=on`).
fn write_kmsg(text: &str) {
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open(KMSG)
        .expect("open /dev/kmsg for writing");
    // One write is one record; its final newline ends it (without one the kernel waits for more).
    kmsg.write_all(format!("<4>{text}\n").as_bytes())
        .expect("write a record to /dev/kmsg");
}

/// A UDP drop to port `dpt` as a netfilter LOG rule with `prefix` prints it.
fn udp_drop(prefix: &str, dpt: u16) -> String {
    format!(
        "{prefix} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 DST=10.0.1.5 \
         LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=43077 DF PROTO=UDP SPT=1 DPT={dpt} LEN=9 "
    )
}

fn expected_udp_drop(prefix: &str, dpt: u16) -> Value {
    json!({
        "hostname": null, "prefix": prefix, "in": "eth0", "out": "",
        "mac": "8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00", "src": "10.0.3.7", "dst": "10.0.1.5",
        "proto": "UDP", "spt": 1, "dpt": dpt, "len": 29, "ttl": 64, "flags": ["DF"],
    })
}

/// The record without its time, after checking that the time is within a few seconds of now.
fn without_recent_time(record: &Value) -> Value {
    let time = chrono::DateTime::parse_from_rfc3339(record["time"].as_str().expect("a time"))
        .expect("an RFC 3339 time");
    let age = chrono::Utc::now().signed_duration_since(time);
    assert!(
        age < chrono::Duration::seconds(5) && age > chrono::Duration::seconds(-1),
        "time {time} is {age} old: {record}"
    );
    let mut rest = record.clone();
    rest.as_object_mut().unwrap().remove("time");
    rest
}

fn start_agent(dir: &Path, prefix: &str) -> Agent {
    let agent = Agent::start(
        dir,
        &[
            ("LOG_SOURCE", "kmsg"),
            ("IPTABLES_LOG_PREFIX", prefix),
            ("STATE_DIRECTORY", dir.join("state").to_str().unwrap()),
        ],
    );
    // Ready once /dev/kmsg is open and positioned: records written from now on are read.
    wait_until("/readyz to answer 200", Duration::from_secs(10), || {
        agent
            .get("/readyz")
            .is_some_and(|(status, _)| status == 200)
    });
    agent
}

/// The sequence number of the newest record in the kernel log whose message contains `marker`.
fn sequence_of_last(marker: &str) -> u64 {
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(KMSG)
        .expect("open /dev/kmsg for reading");
    let mut buffer = vec![0; 16 * 1024];
    let mut found = None;
    loop {
        match kmsg.read(&mut buffer) {
            Ok(read) => {
                let record = String::from_utf8_lossy(&buffer[..read]);
                let (header, message) = record.split_once(';').expect("a record header");
                if message.contains(marker) {
                    found = Some(header.split(',').nth(1).unwrap().parse().unwrap());
                }
            }
            Err(error) if error.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => panic!("reading /dev/kmsg: {error}"),
        }
    }
    found.unwrap_or_else(|| panic!("no record with {marker:?} in the kernel log"))
}

fn this_boot() -> String {
    std::fs::read_to_string(BOOT_ID).unwrap().trim().to_string()
}

fn dpts(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["dpt"].as_u64().unwrap()).collect()
}

#[test]
fn records_written_to_dev_kmsg_after_the_start_are_printed_with_their_fields_and_time() {
    if !privileged("kmsg records written by the test", &[]) {
        return;
    }
    let _serial = kernel_lock();
    let prefix = format!("{}:", unique("KITKMW"));
    let dir = tempfile::tempdir().unwrap();
    write_kmsg(&udp_drop(&prefix, 1)); // history: before the agent started, not printed
    let agent = start_agent(dir.path(), &prefix);

    for dpt in 2..=4 {
        write_kmsg(&udp_drop(&prefix, dpt));
    }
    let records = agent.expect_records(3);
    assert_eq!(dpts(&records), [2, 3, 4]);
    for (record, dpt) in records.iter().zip(2..=4) {
        assert_eq!(without_recent_time(record), expected_udp_drop(&prefix, dpt));
    }
    assert_eq!(agent.metric("kube_iptables_tailer_source_ready"), 1.0);
    assert!(agent.metric("kube_iptables_tailer_lines_read_total") >= 3.0);
    let lag = agent.metric("kube_iptables_tailer_source_lag_seconds");
    assert!((0.0..5.0).contains(&lag), "lag {lag}");
    let (status, took) = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn a_real_netfilter_log_line_is_printed() {
    if !privileged("kmsg netfilter LOG line", &["ip", "bash", "iptables"]) {
        return;
    }
    let _serial = kernel_lock();
    let _log_all = LogAllNetns::enable();
    let pair = NetnsPair::new();
    let prefix = format!("{}:", unique("KITKMN"));
    let log_prefix = format!("{prefix} ");
    for target in [
        vec!["-j", "LOG", "--log-prefix", &log_prefix],
        vec!["-j", "DROP"],
    ] {
        let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "9995"];
        rule.extend(target);
        pair.in_server("iptables", &rule);
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &prefix);

    pair.send_udp(SERVER_V4, 9995);
    let records = agent.expect_records(1);
    let mut record = without_recent_time(&records[0]);
    let mac = record.as_object_mut().unwrap().remove("mac").unwrap();
    let spt = record.as_object_mut().unwrap().remove("spt").unwrap();
    assert_eq!(
        record,
        json!({
            "hostname": null, "prefix": prefix, "in": "kits0", "out": "", "src": CLIENT_V4,
            "dst": SERVER_V4, "proto": "UDP", "dpt": 9995, "len": 29, "ttl": 64, "flags": ["DF"],
        })
    );
    assert!(mac.as_str().unwrap().ends_with(":08:00"), "{mac}");
    assert!(spt.as_u64().unwrap() > 0, "{spt}");
}

#[test]
fn restart_after_kill_9_prints_exactly_the_records_written_meanwhile() {
    if !privileged("kmsg resume after kill -9", &[]) {
        return;
    }
    let _serial = kernel_lock();
    let prefix = format!("{}:", unique("KITKMR"));
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("state/kmsg.checkpoint.json");
    let agent = start_agent(dir.path(), &prefix);
    for dpt in 1..=5 {
        write_kmsg(&udp_drop(&prefix, dpt));
    }
    assert_eq!(dpts(&agent.expect_records(5)), [1, 2, 3, 4, 5]);
    let last = sequence_of_last(&prefix);
    let boot = this_boot();
    wait_until(
        "the checkpoint to hold the last record",
        Duration::from_secs(10),
        || {
            std::fs::read(&checkpoint)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                .is_some_and(|saved| {
                    saved["source"] == "kmsg"
                        && saved["boot_id"] == boot.as_str()
                        && saved["sequence"].as_u64().is_some_and(|seq| seq >= last)
                })
        },
    );
    agent.kill9();

    for dpt in 6..=8 {
        write_kmsg(&udp_drop(&prefix, dpt));
    }
    let agent = start_agent(dir.path(), &prefix);
    assert_eq!(dpts(&agent.expect_records(3)), [6, 7, 8]);
    assert_eq!(
        agent.metric("kube_iptables_tailer_source_lost_total{reason=\"overwritten\"}"),
        0.0
    );
}

#[test]
fn a_checkpoint_of_another_boot_reads_this_boots_buffer_from_its_start() {
    if !privileged("kmsg checkpoint of another boot", &[]) {
        return;
    }
    let _serial = kernel_lock();
    let prefix = format!("{}:", unique("KITKMB"));
    let dir = tempfile::tempdir().unwrap();
    for dpt in 1..=3 {
        write_kmsg(&udp_drop(&prefix, dpt));
    }
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/kmsg.checkpoint.json"),
        json!({"source": "kmsg", "boot_id": "00000000-0000-4000-8000-000000000000", "sequence": 5})
            .to_string(),
    )
    .unwrap();
    let agent = start_agent(dir.path(), &prefix);
    let records = agent.expect_records(3);
    assert_eq!(dpts(&records), [1, 2, 3]);
    for (record, dpt) in records.iter().zip(1..=3) {
        assert_eq!(without_recent_time(record), expected_udp_drop(&prefix, dpt));
    }
    // Every record of the real buffer, whatever wrote it, is a record the source understands.
    assert_eq!(
        agent.metric("kube_iptables_tailer_source_errors_total"),
        0.0
    );
    assert!(agent.metric("kube_iptables_tailer_lines_read_total") >= 3.0);
}
