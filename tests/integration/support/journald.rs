//! Real journal files, written by `systemd-journal-remote` from journal export format on its stdin,
//! and read back with `journalctl` (a reader independent of the agent's).
//!
//! The export format lets a test set what journald itself would: `_TRANSPORT=kernel` (or another
//! transport), `MESSAGE`, the realtime and monotonic timestamps and the boot id. Entries carry this
//! boot's id and the real monotonic clock, as journald's would, so that sd-journal orders entries of
//! different files (after a rotation) the way it orders a real journal's.
//!
//! A rotation is done the way journald does it: the active file is renamed to its archive name while
//! its writer still has it open, the writer closes it, and a new writer starts a new active file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::REQUIRE_PRIVILEGED;

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Whether journal files can be written here (no root needed). Without the tools it says why the test
/// skips, unless CI requires every test to run.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = [JOURNAL_REMOTE, "journalctl"]
        .into_iter()
        .filter(|tool| super::which(tool).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{test}: needs {} (Debian packages systemd-journal-remote, systemd)",
        missing.join(", ")
    );
    let required =
        std::env::var_os(REQUIRE_PRIVILEGED).is_some_and(|value| !value.is_empty() && value != "0");
    if required {
        panic!("{reason}, and {REQUIRE_PRIVILEGED} is set: this test must run here");
    }
    eprintln!("skipped: {reason} (run `make deps`)");
    false
}

/// One journal entry as the test writes it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `_TRANSPORT`: `kernel` for the kernel's log lines.
    pub transport: &'static str,
    /// `MESSAGE`, as bytes: it need not be UTF-8.
    pub message: Vec<u8>,
    /// `__REALTIME_TIMESTAMP`.
    pub time: DateTime<Utc>,
}

/// A kernel entry with `message`, timestamped now.
pub fn kernel(message: &str) -> Entry {
    Entry {
        transport: "kernel",
        message: message.as_bytes().to_vec(),
        time: Utc::now(),
    }
}

impl Entry {
    /// The entry in journal export format (binary-safe for `MESSAGE`).
    fn export(&self) -> Vec<u8> {
        let mut out = format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={}\n_TRANSPORT={}\n\
             PRIORITY=4\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\n",
            self.time.timestamp_micros(),
            monotonic_usec(),
            boot_id(),
            self.transport
        )
        .into_bytes();
        out.extend_from_slice(b"MESSAGE\n");
        out.extend_from_slice(&(self.message.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.message);
        out.extend_from_slice(b"\n\n");
        out
    }
}

/// A running `systemd-journal-remote` writing one journal file: entries are appended as written to
/// it, while the file stays open ("online"), as journald's active file is.
pub struct JournalWriter {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl JournalWriter {
    /// Starts a writer of `path` (appending if the file exists; its directory must exist).
    pub fn start(path: &Path) -> JournalWriter {
        let mut child = Command::new(JOURNAL_REMOTE)
            .arg(format!("--output={}", path.display()))
            .arg("--compress=no")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {JOURNAL_REMOTE}: {error}"));
        let stdin = child.stdin.take();
        JournalWriter { child, stdin }
    }

    pub fn write(&mut self, entries: &[Entry]) {
        let stdin = self.stdin.as_mut().expect("writer open");
        for entry in entries {
            stdin.write_all(&entry.export()).unwrap();
        }
        stdin.flush().unwrap();
    }

    /// Ends the writer: every entry written is in the file, and the file is closed.
    pub fn close(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{JOURNAL_REMOTE} failed: {status}");
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Writes `entries` to the journal file `path` (created or appended to), and closes it.
pub fn write_file(path: &Path, entries: &[Entry]) {
    let mut writer = JournalWriter::start(path);
    writer.write(entries);
    writer.close();
}

/// Renames the active journal file to an archive name, as journald's rotation does
/// (`NAME@SEQNUM_ID-HEAD_SEQNUM-HEAD_REALTIME.journal`; readers go by the file's contents, not by these
/// numbers); returns the new path. A writer still writing keeps writing the renamed file.
pub fn archive(path: &Path) -> PathBuf {
    static ARCHIVED: AtomicU64 = AtomicU64::new(1);
    // journal-remote creates its file when the first entry has arrived.
    super::wait_until(
        "the journal file to exist",
        std::time::Duration::from_secs(10),
        || path.exists(),
    );
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let archived = path.with_file_name(format!(
        "{stem}@{:032x}-{:016x}-{:016x}.journal",
        std::process::id(),
        ARCHIVED.fetch_add(1, Ordering::SeqCst),
        Utc::now().timestamp_micros(),
    ));
    std::fs::rename(path, &archived).unwrap();
    archived
}

/// The entries of the journal in `dir` as `journalctl -o json` shows them (`__CURSOR`, `MESSAGE`,
/// `__REALTIME_TIMESTAMP`, ...), oldest first; only kernel ones when `kernel_only`.
pub fn entries(dir: &Path, kernel_only: bool) -> Vec<Value> {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--directory", dir];
    if kernel_only {
        args.push("_TRANSPORT=kernel");
    }
    journalctl(&args)
}

pub fn journalctl(args: &[&str]) -> Vec<Value> {
    let mut args = args.to_vec();
    args.extend(["--output=json", "--no-pager", "--all"]);
    super::run("journalctl", &args)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The cursor of the newest kernel entry in the journal in `dir`.
pub fn last_kernel_cursor(dir: &Path) -> String {
    let entries = entries(dir, true);
    let last = entries.last().expect("a kernel entry");
    last["__CURSOR"].as_str().unwrap().to_string()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "")
}

/// The monotonic clock, strictly increasing from one call to the next (entries written within the same
/// microsecond still have an order).
fn monotonic_usec() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or_default();
    now.max(previous + 1)
}

/// A private `systemd-journald` instance (namespace `name`) reading the kernel log, as on a node: its
/// journal is `/run/log/journal/MACHINE_ID.NAME`. Its configuration and runtime files are removed when
/// it is dropped. It reads the global /dev/kmsg: tests using it take `kernel_lock` and use prefixes of
/// their own.
pub struct PrivateJournald {
    child: Child,
    name: String,
    pub dir: PathBuf,
    /// Whether /run/log/journal was there before (else it is removed again, if empty).
    had_runtime_journal: bool,
}

const RUNTIME_JOURNAL: &str = "/run/log/journal";

impl PrivateJournald {
    pub const DAEMON: &str = "/lib/systemd/systemd-journald";

    pub fn start(name: &str) -> PrivateJournald {
        std::fs::write(
            Self::config(name),
            "[Journal]\nStorage=volatile\nReadKMsg=yes\n",
        )
        .unwrap();
        let machine_id = std::fs::read_to_string("/etc/machine-id").expect("/etc/machine-id");
        let dir = PathBuf::from(format!("{RUNTIME_JOURNAL}/{}.{name}", machine_id.trim()));
        let had_runtime_journal = Path::new(RUNTIME_JOURNAL).exists();
        // The daemon takes the namespace as its only argument.
        let child = Command::new(Self::DAEMON)
            .arg(name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", Self::DAEMON));
        let journald = PrivateJournald {
            child,
            name: name.to_string(),
            dir,
            had_runtime_journal,
        };
        super::wait_until(
            "journald's active journal file",
            std::time::Duration::from_secs(10),
            || journald.dir.join("system.journal").exists(),
        );
        journald
    }

    fn config(name: &str) -> PathBuf {
        PathBuf::from(format!("/etc/systemd/journald@{name}.conf"))
    }

    /// `journalctl --rotate`: journald archives its active file and starts a new one.
    pub fn rotate(&self) {
        super::run(
            "journalctl",
            &[&format!("--namespace={}", self.name), "--rotate"],
        );
    }

    /// `journalctl --vacuum-files=1`: deletes every archived file.
    pub fn vacuum(&self) {
        super::run(
            "journalctl",
            &[&format!("--namespace={}", self.name), "--vacuum-files=1"],
        );
    }
}

impl Drop for PrivateJournald {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_file(Self::config(&self.name)).ok();
        std::fs::remove_dir_all(&self.dir).ok();
        std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.name)).ok();
        if !self.had_runtime_journal {
            std::fs::remove_dir(RUNTIME_JOURNAL).ok();
        }
    }
}

/// Writes `message` to the kernel log as the kernel would log it (`<4>kernel: ` keeps the message's
/// own prefix in `MESSAGE`). The newline ends the record: without it the kernel holds the text back as
/// the start of a line that may continue.
pub fn kmsg(message: &str) {
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg");
    kmsg.write_all(format!("<4>kernel: {message}\n").as_bytes())
        .expect("write /dev/kmsg");
}
