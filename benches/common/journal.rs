//! Journal files for the benches: kernel entries in journal export format, handed to a running
//! `systemd-journal-remote` that writes them, and the cursor of a journal's first entry.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Whether journal files can be written here; says why not.
pub fn available(bench: &str) -> bool {
    let available = Path::new(JOURNAL_REMOTE).exists();
    if !available {
        println!(
            "{bench} skipped: {JOURNAL_REMOTE} is missing (Debian package systemd-journal-remote)"
        );
    }
    available
}

/// A kernel entry with `message` (any bytes), timestamped now, in journal export format.
pub fn export_kernel(message: &[u8]) -> Vec<u8> {
    let mut entry = format!(
        "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={}\n_TRANSPORT=kernel\n\
         PRIORITY=4\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\n",
        chrono::Utc::now().timestamp_micros(),
        monotonic_usec(),
        boot_id(),
    )
    .into_bytes();
    // The binary form of a field: any bytes, its length first.
    entry.extend_from_slice(b"MESSAGE\n");
    entry.extend_from_slice(&(message.len() as u64).to_le_bytes());
    entry.extend_from_slice(message);
    entry.extend_from_slice(b"\n\n");
    entry
}

/// A journal-remote writing the journal file `path` from its stdin.
pub fn start_writer(path: &Path) -> Child {
    Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", path.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start journal-remote")
}

/// Ends a writer: everything written is in its file.
pub fn close_writer(mut writer: Child) {
    drop(writer.stdin.take());
    assert!(writer.wait().unwrap().success(), "journal-remote failed");
}

/// The cursor of the first entry of the journal in `journal`.
pub fn first_cursor(journal: &Path) -> String {
    let mut reader = systemd::journal::OpenDirectoryOptions::default()
        .open_directory(journal.to_str().unwrap())
        .expect("open the journal");
    reader.seek_head().unwrap();
    assert_eq!(reader.next().unwrap(), 1, "the journal has entries");
    reader.cursor().unwrap()
}

fn boot_id() -> &'static str {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
            .replace('-', "")
    })
}

fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}
