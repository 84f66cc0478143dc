//! The real parts the integration tests drive: the agent binary as a process, network namespaces with
//! firewall rules, rsyslog and logrotate, a container booting a real systemd.

pub mod agent;
pub mod fake_api;
pub mod journald;
pub mod netns;
pub mod nspawn;
pub mod rsyslog;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set by CI: a test that would skip for lack of root (or of a tool) fails instead.
pub const REQUIRE_PRIVILEGED: &str = "KIT_REQUIRE_PRIVILEGED";

/// Whether a privileged test can run here. Without root it says why it skips, unless CI requires it.
pub fn privileged(test: &str, tools: &[&str]) -> bool {
    let required =
        std::env::var_os(REQUIRE_PRIVILEGED).is_some_and(|value| !value.is_empty() && value != "0");
    let mut missing: Vec<String> = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    for tool in tools {
        if which(tool).is_none() {
            missing.push(format!("the command {tool}"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{test}: needs {}", missing.join(", "));
    if required {
        panic!("{reason}, and {REQUIRE_PRIVILEGED} is set: this test must run here");
    }
    eprintln!("skipped: {reason} (run `make test` as root)");
    false
}

/// The full path of a command on PATH or in the sbin directories.
pub fn which(command: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| std::path::Path::new(dir).join(command))
        .find(|candidate| candidate.is_file())
}

/// A name no other test of this run (or a concurrent run) uses.
pub fn unique(stem: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{stem}{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Kernel-level tests share global state (nf_log_all_netns, the kernel log that every imkmsg replays):
/// they take this lock to run one at a time.
pub fn kernel_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(which(program).unwrap_or_else(|| program.into()))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until `condition` holds, polling; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
