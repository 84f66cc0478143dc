//! Change notices: with a poll interval far longer than the test waits (60 s), every change is seen
//! because the kernel says so (inotify): a new line, a rotation by rename whose new log is written
//! only later, a copytruncate, a log that appears after the start.

use std::fs;
use std::time::Duration;

use kube_iptables_tailer::sources::file::FileSourceSettings;

use super::{Tailer, append, from_beginning, lines, log_path};

fn asleep(path: &std::path::Path) -> FileSourceSettings {
    FileSourceSettings {
        poll_interval: Duration::from_secs(60),
        ..from_beginning(path)
    }
}

#[test]
fn lines_rotations_and_truncations_wake_the_source_without_a_poll() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    fs::write(&path, "a1\n").unwrap();
    let mut tailer = Tailer::start(asleep(&path));
    assert_eq!(tailer.take(1), lines(&["a1"]));

    append(&path, "a2\n");
    assert_eq!(tailer.take(1), lines(&["a2"]));

    // Rename + create; the new log gets its line a moment later (the old one might still be
    // written until then, so the source waits for the new one's data).
    fs::rename(&path, path.with_extension("log.1")).unwrap();
    fs::write(&path, "").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    append(&path, "b1\n");
    assert_eq!(tailer.take(1), lines(&["b1"]));

    // copytruncate.
    fs::copy(&path, path.with_extension("log.2")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    append(&path, "c1\n");
    assert_eq!(tailer.take(1), lines(&["c1"]));
    tailer.assert_no_more_lines();
}

#[test]
fn a_log_that_appears_after_the_start_wakes_the_source() {
    let directory = tempfile::tempdir().unwrap();
    let path = log_path(&directory);
    let mut tailer = Tailer::start(asleep(&path));
    std::thread::sleep(Duration::from_millis(100));
    fs::write(&path, "first\n").unwrap();
    assert_eq!(tailer.take(1), lines(&["first"]));
}
