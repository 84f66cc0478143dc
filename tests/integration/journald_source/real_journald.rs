//! The agent on the journal of a real, private `systemd-journald` reading the kernel log: lines
//! written to /dev/kmsg, the journal rotated and vacuumed by journald's own tools.

use std::time::Duration;

use super::agent::{ports, start_in, wait_ready};
use crate::support::journald::{self, PrivateJournald, kmsg};
use crate::support::{kernel_lock, privileged, unique};

/// A UDP drop to `dpt` with the test's own `prefix`.
fn drop_line(prefix: &str, dpt: u16) -> String {
    format!(
        "{prefix} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 DST=10.0.1.5 \
         LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=43077 DF PROTO=UDP SPT=34393 DPT={dpt} LEN=9 "
    )
}

/// Writes drops to ports `range`, paced: journald reads the kernel log in turns and a burst can be
/// reported as "missed" instead.
fn write_drops(prefix: &str, range: std::ops::RangeInclusive<u16>) {
    for dpt in range {
        kmsg(&drop_line(prefix, dpt));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_real_journald_rotated_and_vacuumed_under_the_agent_loses_and_repeats_nothing() {
    if !privileged(
        "a_real_journald_rotated_and_vacuumed_under_the_agent",
        &[PrivateJournald::DAEMON, "journalctl"],
    ) {
        return;
    }
    let _kernel = kernel_lock();
    let name = unique("kitj");
    let prefix = format!("{}:", name.to_uppercase());
    let journald = PrivateJournald::start(&name);
    let root = tempfile::tempdir().unwrap();
    let agent = start_in(root.path(), &journald.dir, &prefix);
    wait_ready(&agent);

    write_drops(&prefix, 1..=10);
    let records = agent.expect_records(10);
    assert_eq!(ports(&records), (1..=10).collect::<Vec<_>>());
    // The record's time is the entry's realtime timestamp, as journald stamped it.
    let entry = journald::entries(&journald.dir, true)
        .into_iter()
        .find(|entry| entry["MESSAGE"] == drop_line(&prefix, 10))
        .expect("the entry in the journal");
    let usec: i64 = entry["__REALTIME_TIMESTAMP"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let time = chrono::DateTime::from_timestamp_micros(usec).unwrap();
    assert_eq!(
        records[9]["time"],
        time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );

    // Rotated between writes, so that the agent is reading when it happens.
    write_drops(&prefix, 11..=15);
    journald.rotate();
    write_drops(&prefix, 16..=20);
    assert_eq!(
        ports(&agent.expect_records(10)),
        (11..=20).collect::<Vec<_>>()
    );
    journald.vacuum();
    let files: Vec<String> = std::fs::read_dir(&journald.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["system.journal"], "only the active file is left");
    write_drops(&prefix, 21..=30);
    assert_eq!(
        ports(&agent.expect_records(10)),
        (21..=30).collect::<Vec<_>>()
    );
    assert_eq!(
        agent.metric("kube_iptables_tailer_source_errors_total"),
        0.0
    );
}
