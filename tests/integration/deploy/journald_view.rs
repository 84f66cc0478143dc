//! The journald overlay's premise, tried for real: a process that sees the host's journal only as
//! the overlay mounts it (the host's /var/log at /var/log, its /run/log/journal, its /etc/machine-id,
//! all read-only) and has no JOURNAL_DIRECTORY reads the host's kernel entries. A private mount
//! namespace stands in for the container; the "host" journal is written by systemd-journal-remote
//! into a machine-id directory, as journald's persistent journal is.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crossbeam_channel::unbounded;
use serde_json::Value;

use crate::support::agent::{BINARY, free_port};
use crate::support::journald::{self, JournalWriter, kernel};
use crate::support::{privileged, wait_until};

/// The host's machine id in this test: not this machine's, so that only the mounted one can match.
const HOST_MACHINE_ID: &str = "0123456789abcdef0123456789abcdef";

/// Mounts the overlay's view in a private mount namespace, then becomes the agent.
const ENTER_VIEW: &str = r#"
mount -o bind,ro "$HOST/var/log" /var/log
mount -t tmpfs tmpfs /run
mkdir -p /run/log/journal
mount -o bind,ro "$HOST/run/log/journal" /run/log/journal
mount -o bind,ro "$HOST/etc/machine-id" /etc/machine-id
exec "$AGENT"
"#;

fn status_of(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_journald_overlays_mounts_give_the_agent_the_hosts_kernel_entries() {
    let test = "journald overlay view";
    if !journald::available(test) || !privileged(test, &["unshare", "mount"]) {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    let journal = host.path().join("var/log/journal").join(HOST_MACHINE_ID);
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::create_dir_all(host.path().join("run/log/journal")).unwrap();
    std::fs::create_dir_all(host.path().join("etc")).unwrap();
    std::fs::write(
        host.path().join("etc/machine-id"),
        format!("{HOST_MACHINE_ID}\n"),
    )
    .unwrap();
    let mut writer = JournalWriter::start(&journal.join("system.journal"));
    writer.write(&[kernel("before the agent: not a drop")]);
    wait_until("the journal file", Duration::from_secs(10), || {
        journal.join("system.journal").exists()
    });

    let port = free_port();
    let stderr_path = host.path().join("agent.stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut agent = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-ec",
            ENTER_VIEW,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", host.path())
        .env("AGENT", BINARY)
        .env("LOG_SOURCE", "journald")
        .env("EVENT_SINK", "stdout")
        .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
        .env("METRICS_SERVER_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start unshare");
    let stdout = agent.stdout.take().unwrap();
    let (sender, records) = unbounded::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(record) = serde_json::from_str(&line) {
                let _ = sender.send(record);
            }
        }
    });
    wait_until("the agent to be ready", Duration::from_secs(20), || {
        status_of(port, "/readyz") == Some(200)
    });

    writer.write(&[kernel(
        "calico-drop: IN=eth0 OUT= SRC=10.0.3.7 DST=10.0.1.5 LEN=29 TOS=0x00 PREC=0x00 TTL=64 \
         ID=1 DF PROTO=UDP SPT=34393 DPT=5353 LEN=9 ",
    )]);
    let record = records.recv_timeout(Duration::from_secs(20));
    // SAFETY: kill() has no memory effects; the pid is our child's (unshare exec'd the agent).
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    writer.close();
    let record = record.unwrap_or_else(|_| {
        panic!(
            "no record of the drop written to the host's journal; agent stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        )
    });
    assert_eq!(record["dpt"], 5353);
    assert_eq!(record["src"], "10.0.3.7");
    assert!(status.success(), "{status}");
}
