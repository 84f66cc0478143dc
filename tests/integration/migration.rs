//! Switching over from the original Go agent with its environment unchanged: each setting whose meaning
//! a migrated deployment relies on, run on the real binary.

use std::process::Command;

use crate::support::agent::BINARY;

#[test]
fn journal_directory_alone_reads_the_journal_as_the_original_did() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().to_str().unwrap();
    // The original's journald deployment: JOURNAL_DIRECTORY and nothing that names a source. A
    // leftover IPTABLES_LOG_PATH does not change that (the original read the journal).
    for leftover in [None, Some("/var/log/iptables.log")] {
        let mut command = Command::new(BINARY);
        command
            .arg("--check-config")
            .env_clear()
            .env("JOURNAL_DIRECTORY", journal);
        if let Some(path) = leftover {
            command.env("IPTABLES_LOG_PATH", path);
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!(
                "configuration OK: source journald {journal}, sink stdout, metrics on 0.0.0.0:9090\n"
            )
        );
    }
}
