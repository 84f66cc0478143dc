//! The containers' root file system: a Debian bookworm built once with mmdebstrap and cached under
//! the target directory (it matches the libraries the test binary links), named by a checksum of its
//! recipe so that a changed recipe builds a new one.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use kube_iptables_tailer::checksum::checksum;

/// The root file system's recipe; its hash names the cached copy, so a change builds a new one.
const SUITE: &str = "bookworm";
const PACKAGES: &str =
    "systemd,systemd-sysv,dbus,libsystemd0,iproute2,iptables,curl,ca-certificates";
/// The point release with its updates, as on the machine that built the test binary.
const SOURCES: [&str; 3] = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

/// The directory cargo builds into (`target/`, or CARGO_TARGET_DIR).
pub(super) fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// The cached root file system, built on first use. A build goes to a temporary directory that is
/// renamed when mmdebstrap succeeds, so an interrupted build is never taken for a finished one; a file
/// lock keeps concurrent test runs from building it twice.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(build_or_reuse)
}

fn build_or_reuse() -> PathBuf {
    let cache = target_dir().join("nspawn-rootfs");
    std::fs::create_dir_all(&cache).unwrap();
    let recipe = format!("{SUITE} {PACKAGES} {}", SOURCES.join(" "));
    let name = format!("{SUITE}-{:016x}", checksum(recipe.as_bytes()));
    let rootfs = cache.join(&name);

    let _lock = lock(&cache.join("lock"));
    if rootfs.is_dir() {
        return rootfs;
    }
    // Leftovers of interrupted builds (the lock holder is the only builder, though the mmdebstrap of a
    // killed test run may still be writing its own). `--one-file-system`: an interrupted mmdebstrap
    // can leave /proc or /sys mounted in its chroot.
    for entry in std::fs::read_dir(&cache).unwrap().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".building-")
        {
            let removed = Command::new("rm")
                .args(["-rf", "--one-file-system"])
                .arg(entry.path())
                .status();
            if !removed.is_ok_and(|status| status.success()) {
                eprintln!("could not remove {}", entry.path().display());
            }
        }
    }
    let building = cache.join(format!(".building-{name}-{}", std::process::id()));
    let log_path = cache.join("build.log");
    let log = File::create(&log_path).unwrap();
    let started = Instant::now();
    eprintln!(
        "building the container root {} with mmdebstrap (about a minute, once)",
        rootfs.display()
    );
    let status = Command::new(crate::support::which("mmdebstrap").expect("mmdebstrap"))
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&building)
        .args(SOURCES)
        // Without a terminal on stdin mmdebstrap would read its sources from it.
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .expect("run mmdebstrap");
    assert!(
        status.success(),
        "mmdebstrap failed ({status}); {}:\n{}",
        log_path.display(),
        super::tail(&std::fs::read_to_string(&log_path).unwrap_or_default())
    );
    std::fs::rename(&building, &rootfs).unwrap();
    eprintln!("built {} in {:?}", rootfs.display(), started.elapsed());
    rootfs
}

/// An exclusive lock on `path` (created if need be), held until the file is dropped. Each call opens the
/// file anew, so it excludes other threads of this process as well as other processes.
pub(super) fn lock(path: &Path) -> File {
    let file = File::create(path).unwrap();
    // SAFETY: flock on a descriptor owned here; the lock goes with the descriptor.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}
