//! The file source under chaos: lines appended to `kern.log` as rsyslog writes them, rotated by
//! rename (logrotate's `create`) or by `copytruncate`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::{Chaos, ChaosLog, Rng};
use crate::kubernetes::start_agent;
use crate::support::fake_api::FakeApi;

struct FileLog {
    path: PathBuf,
}

impl ChaosLog for FileLog {
    fn append(&mut self, from: usize, to: usize) {
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00");
        let mut text = String::new();
        for number in from..to {
            let message = super::drop_message("calico-drop:", number);
            text.push_str(&format!("{stamp} node-1 kernel: {message}\n"));
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn rotate(&mut self, rng: &mut Rng) {
        if rng.chance(600) {
            rotate_by_rename(&self.path);
        } else {
            copytruncate(&self.path);
        }
    }
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

/// Rotated files of long ago (an hour old, no drops): every rotation renames them all, one by one,
/// as logrotate does with a large `rotate`, which takes a while; an agent looking for the files that
/// came between while a second rotation renames them must still find the one it needs.
const OLD_ROTATED_FILES: usize = 1_500;

fn old_rotated_files(log: &Path) {
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for k in 1..=OLD_ROTATED_FILES {
        let path = log.with_extension(format!("log.{k}"));
        fs::write(&path, format!("old line {k}\n")).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
}

#[test]
fn file_event_counts_add_up_exactly_through_kills_rotations_and_api_faults() {
    let api = FakeApi::start();
    super::cluster(&api);
    let dir = super::directory();
    let path = dir.path().join("kern.log");
    old_rotated_files(&path);
    let start = || start_agent(dir.path(), &api, &super::agent_env());
    // Installed and running before the chaos: its first position is kept (a first start with no
    // checkpoint begins at the log's end, so lines written before it are not the agent's to read).
    let first = start();
    crate::support::wait_until(
        "the first checkpoint",
        std::time::Duration::from_secs(20),
        || dir.path().join("state/file.checkpoint.json").exists(),
    );
    let (status, _) = first.terminate();
    assert!(status.success());
    let chaos = Chaos {
        kind: "file",
        dir: dir.path(),
        api: &api,
        lines: 3_000,
        step_lines: super::STEP_LINES,
        kill: 80,
        rotate: 40,
    };
    super::run(&chaos, &mut FileLog { path }, &start);
}
