//! The journald source under chaos: kernel entries written into real journal files by
//! `systemd-journal-remote`, rotated as journald rotates (the active file renamed to its archive
//! name, a new active file), archived files vacuumed once the agent's checkpoint is past them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Chaos, ChaosLog, Rng};
use crate::kubernetes::start_agent;
use crate::support::fake_api::FakeApi;
use crate::support::journald::{self, JournalWriter, kernel};

const PREFIX: &str = "calico-drop:";

struct JournalLog {
    active: PathBuf,
    writer: Option<JournalWriter>,
    /// Archived files, oldest first, with the seqnum id and last seqnum of their entries.
    archives: Vec<(PathBuf, String, u64)>,
    checkpoint: PathBuf,
}

impl ChaosLog for JournalLog {
    fn append(&mut self, from: usize, to: usize) {
        let entries: Vec<_> = (from..to)
            .map(|number| kernel(&super::drop_message(PREFIX, number)))
            .collect();
        let active = &self.active;
        self.writer
            .get_or_insert_with(|| JournalWriter::start(active))
            .write(&entries);
    }

    fn rotate(&mut self, _: &mut Rng) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let archived = journald::archive(&self.active);
        writer.close();
        let last = journald::journalctl(&["--file", archived.to_str().unwrap(), "-n", "1"]);
        let (seqnum_id, seqnum) = cursor_fields(last[0]["__CURSOR"].as_str().unwrap());
        self.archives.push((archived, seqnum_id, seqnum));
    }

    /// Removes the archived files before the one the agent's checkpoint is in (all of them when
    /// it is in the active file): as journald's vacuum does, but only with what was counted.
    fn vacuum(&mut self) {
        let Some(cursor) = checkpointed_cursor(&self.checkpoint) else {
            return;
        };
        let (seqnum_id, seqnum) = cursor_fields(&cursor);
        let current = self
            .archives
            .iter()
            .position(|(_, id, last)| *id == seqnum_id && seqnum <= *last)
            .unwrap_or(self.archives.len());
        for (path, _, _) in self.archives.drain(..current) {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// A cursor's seqnum id (`s=`) and seqnum (`i=`, hex).
fn cursor_fields(cursor: &str) -> (String, u64) {
    let field = |key: &str| {
        cursor
            .split(';')
            .find_map(|field| field.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in cursor {cursor}"))
            .to_string()
    };
    let seqnum = u64::from_str_radix(&field("i="), 16).unwrap();
    (field("s="), seqnum)
}

fn checkpointed_cursor(checkpoint: &Path) -> Option<String> {
    let bytes = std::fs::read(checkpoint).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(value["cursor"].as_str()?.to_string())
}

#[test]
fn journald_event_counts_add_up_exactly_through_kills_rotations_vacuum_and_api_faults() {
    if !journald::available("journald_event_counts_add_up_exactly") {
        return;
    }
    let api = FakeApi::start();
    super::cluster(&api);
    let dir = super::directory();
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let mut log = JournalLog {
        active: journal.join("system.journal"),
        writer: None,
        archives: Vec::new(),
        checkpoint: dir.path().join("state/journald.checkpoint.json"),
    };
    let start = || {
        start_agent(
            dir.path(),
            &api,
            &[
                &[
                    ("LOG_SOURCE", "journald"),
                    ("JOURNAL_DIRECTORY", journal.to_str().unwrap()),
                    ("IPTABLES_LOG_PREFIX", PREFIX),
                ][..],
                &super::agent_env(),
            ]
            .concat(),
        )
    };
    // Installed and running before the chaos, its first position kept: a kernel entry that is no
    // drop, read and checkpointed.
    log.writer
        .get_or_insert_with(|| JournalWriter::start(&log.active))
        .write(&[kernel("chaos begins")]);
    let first = start();
    crate::support::wait_until("the first checkpoint", Duration::from_secs(20), || {
        log.checkpoint.exists()
    });
    let (status, _) = first.terminate();
    assert!(status.success());
    let chaos = Chaos {
        kind: "journald",
        dir: dir.path(),
        api: &api,
        lines: 3_000,
        step_lines: super::STEP_LINES,
        kill: 80,
        rotate: 60,
    };
    super::run(&chaos, &mut log, &start);
    if let Some(writer) = log.writer.take() {
        writer.close();
    }
}
