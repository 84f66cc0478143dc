//! The journald source against real journal files written by `systemd-journal-remote` (see
//! `support/journald.rs`): the agent binary reading them (`agent.rs`: what it prints, where it starts,
//! resuming, rotation and vacuum), the source function on its own thread (`source.rs`: batches, bytes
//! that are not UTF-8, a directory that disappears), and, as a check of those files against the real
//! thing, the agent on a private systemd-journald reading the kernel log (`real_journald.rs`).
//!
//! This module holds what both share: the drop lines, and the layout of a test's directory.

mod agent;
mod real_journald;
mod source;

use std::path::{Path, PathBuf};

const PREFIX: &str = "calico-drop:";

/// A kernel netfilter LOG message for a UDP drop to `dpt`, as journald stores it in `MESSAGE` (no
/// syslog header; the kernel's trailing space kept).
fn udp_drop(dpt: u16) -> String {
    format!(
        "{PREFIX} IN=eth0 OUT= MAC=8a:e3:5a:9a:33:d3:16:f8:da:93:4e:72:08:00 SRC=10.0.3.7 DST=10.0.1.5 \
         LEN=29 TOS=0x00 PREC=0x00 TTL=64 ID=43077 DF PROTO=UDP SPT=34393 DPT={dpt} LEN=9 "
    )
}

/// A test's journal directory (created), with the active journal file's path in it.
fn journal_dir(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let active = dir.join("system.journal");
    (dir, active)
}
