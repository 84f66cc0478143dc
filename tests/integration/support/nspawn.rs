//! A real systemd as PID 1 of a `systemd-nspawn` container, to run the host unit the way a host runs
//! it: installed by `make install`, started by `systemctl`, its output in `journalctl`.
//!
//! The container's root is a Debian bookworm built once with mmdebstrap and cached under the target
//! directory (it matches the libraries the test binary links). Each container writes to an overlay on
//! top of it, which is thrown away, so the cache never changes. The container has a network namespace
//! of its own (`--private-network`): its firewall rules and NFLOG groups are not the machine's.
//! Commands run inside through `nsenter` (machinectl needs a registered machine, which needs a system
//! bus the machine does not have).
//!
//! Containers run one at a time, across test threads and test runs (a file lock): without a unit of
//! its own (`--keep-unit`), nspawn splits the cgroup it is started in into `payload/` (the container)
//! and `supervisor/` (itself), so two containers started from one process share their cgroups, and
//! one's systemd fails to place the other's services (status 219/CGROUP). Those cgroups outlive the
//! container; they are removed when it has powered off.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{run, unique, wait_until};

mod rootfs;

use rootfs::{lock, rootfs, target_dir};

/// What a container test needs on the machine, besides root.
pub const TOOLS: &[&str] = &["systemd-nspawn", "mmdebstrap", "nsenter", "mount", "make"];

/// How long a boot, a poweroff or a build step may take before the test gives up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(30);

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The root of a container that has not booted yet: the cached root file system under an overlay
/// (mounted, so that files written here get the modes an installation gives them), with the agent
/// installed by `make install`. Unmounted and removed when dropped.
pub struct Root {
    merged: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Root {
    /// A fresh root with `make -o build install` done into it (DESTDIR), installing the binary under
    /// test: the binary, the unit and the environment file go where the Makefile puts them.
    pub fn with_agent_installed() -> Root {
        let lower = rootfs();
        let dir = tempfile::Builder::new()
            .prefix("nspawn-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let [upper, work, merged] = ["upper", "work", "root"].map(|name| dir.path().join(name));
        for path in [&upper, &work, &merged] {
            std::fs::create_dir(path).unwrap();
        }
        let paths = [lower, &upper, &work].map(|path| path.to_str().unwrap().to_string());
        assert!(
            paths.iter().all(|path| !path.contains([',', ':'])),
            "overlay options cannot hold {paths:?}"
        );
        run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    paths[0], paths[1], paths[2]
                ),
                merged.to_str().unwrap(),
            ],
        );
        let root = Root {
            merged,
            dir: Some(dir),
        };
        let output = Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--no-print-directory", "-o", "build", "install"])
            .arg(format!("BINARY={}", super::agent::BINARY))
            .arg(format!("DESTDIR={}", root.merged.display()))
            .output()
            .expect("run make");
        assert!(
            output.status.success(),
            "make install: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        root
    }

    /// Where `path` (absolute, as the container sees it) is from here.
    pub fn path(&self, path: &str) -> PathBuf {
        self.merged.join(path.trim_start_matches('/'))
    }

    /// Writes `contents` to `path` with `mode`, making its directories (0755) as needed.
    pub fn write(&self, path: &str, contents: &str, mode: u32) {
        let file = self.path(path);
        let parent = file.parent().unwrap();
        if !parent.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .create(parent)
                .unwrap();
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(&file, contents).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path(path))
            .unwrap_or_else(|error| panic!("{path} in the container: {error}"))
    }

    /// Boots systemd in it, once no other container runs, and waits until the system is up.
    pub fn boot(self) -> Container {
        let lock = lock(&target_dir().join("nspawn-rootfs").join("containers.lock"));
        let name = unique("kit");
        let log = self.dir.as_ref().unwrap().path().join("nspawn.log");
        let output = File::create(&log).unwrap();
        let mut command = Command::new(super::which("systemd-nspawn").expect("systemd-nspawn"));
        command
            .arg("--directory")
            .arg(&self.merged)
            // `--register=no --keep-unit`: there is no system bus (nor machined) to register with.
            .args([
                "--boot",
                "--private-network",
                "--register=no",
                "--keep-unit",
            ])
            .args(["--machine", &name, "--console=read-only"])
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output);
        // SAFETY: setsid is async-signal-safe. A session of its own keeps nspawn off the terminal the
        // tests may run on.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::setsid();
                Ok(())
            });
        }
        let nspawn = command.spawn().expect("start systemd-nspawn");
        let mut container = Container {
            init: 0,
            name,
            log,
            nspawn,
            root: self,
            _lock: lock,
        };
        container.init = container.wait_for_init();
        container.wait_until_running();
        container
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let merged = self.merged.to_str().unwrap();
        let unmounted = Command::new("umount").arg(merged).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Busy still: detach it. Removing the directory through a mounted overlay would only
            // write whiteouts to the upper directory, but leave nothing to chance.
            let detached = Command::new("umount").args(["--lazy", merged]).status();
            if !detached.is_ok_and(|status| status.success()) {
                eprintln!("cannot unmount {merged}: leaving it in place");
                if let Some(dir) = self.dir.take() {
                    let _ = dir.keep();
                }
            }
        }
    }
}

/// A booted container: systemd is PID 1 inside. Powered off (and its root removed) when dropped.
pub struct Container {
    /// The container's systemd, as this machine numbers it: what nsenter enters.
    init: i32,
    name: String,
    log: PathBuf,
    nspawn: Child,
    root: Root,
    /// Held until the container is gone (fields drop in order, after `drop` ran).
    _lock: File,
}

impl Container {
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// A command that runs `args` inside: in all the container's namespaces, as its root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(super::which("nsenter").expect("nsenter"));
        command
            .args(["--target", &self.init.to_string(), "--all", "--"])
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null());
        command
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|error| panic!("nsenter {args:?}: {error}"))
    }

    /// Runs `args` inside, panicking with the output when it fails; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "{args:?} in {} failed ({}): {}{}",
            self.name,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `args` inside with `input` on its stdin, panicking when it fails.
    pub fn run_with_input(&self, args: &[&str], input: &str) {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("nsenter {args:?}: {error}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{args:?} in {} failed ({status})",
            self.name
        );
    }

    /// What `unit` logged, without metadata (`journalctl -u UNIT -o cat`): systemd's lines about it and
    /// everything its processes wrote to stdout and stderr.
    pub fn journal(&self, unit: &str) -> String {
        self.run(&[
            "journalctl",
            "--no-pager",
            "--unit",
            unit,
            "--output",
            "cat",
        ])
    }

    /// What the processes of `unit` named `identifier` wrote (the agent's own lines, not systemd's).
    pub fn journal_of(&self, unit: &str, identifier: &str) -> Vec<String> {
        let output = self.run(&[
            "journalctl",
            "--no-pager",
            "--unit",
            unit,
            "--identifier",
            identifier,
            "--output",
            "cat",
        ]);
        output.lines().map(str::to_string).collect()
    }

    /// One property of `unit` (`systemctl show --property NAME --value`).
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.run(&["systemctl", "show", "--property", property, "--value", unit])
            .trim_end()
            .to_string()
    }

    /// A field of /proc/PID/status inside (`CapEff`, `Uid`, …), trimmed.
    pub fn proc_status(&self, pid: &str, field: &str) -> String {
        let status = self.run(&["cat", &format!("/proc/{pid}/status")]);
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
            .trim()
            .to_string()
    }

    /// The container's systemd: the child of nspawn whose name is `systemd`.
    fn wait_for_init(&mut self) -> i32 {
        let nspawn = self.nspawn.id();
        let children = format!("/proc/{nspawn}/task/{nspawn}/children");
        let mut init = None;
        wait_until("the container's systemd", BOOT_TIMEOUT, || {
            self.assert_nspawn_runs();
            init = std::fs::read_to_string(&children)
                .unwrap_or_default()
                .split_whitespace()
                .find(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim_end() == "systemd")
                })
                .and_then(|pid| pid.parse().ok());
            init.is_some()
        });
        init.unwrap()
    }

    /// Until `systemctl is-system-running --wait` says the boot is over (it fails until the container's
    /// bus is up). A degraded system is reported with its failed units, but is not the test's concern.
    fn wait_until_running(&mut self) {
        let mut state = String::new();
        wait_until("the container's boot", BOOT_TIMEOUT, || {
            self.assert_nspawn_runs();
            let output = self.output(&["systemctl", "is-system-running", "--wait"]);
            state = String::from_utf8_lossy(&output.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded")
        });
        if state == "degraded" {
            eprintln!(
                "container {} booted degraded:\n{}",
                self.name,
                self.run(&["systemctl", "--failed", "--no-legend"])
            );
        }
    }

    fn assert_nspawn_runs(&mut self) {
        if let Ok(Some(status)) = self.nspawn.try_wait() {
            panic!(
                "systemd-nspawn exited ({status}):\n{}",
                tail(&std::fs::read_to_string(&self.log).unwrap_or_default())
            );
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.init > 0 {
            let _ = self
                .command(&["systemctl", "poweroff", "--no-block"])
                .output();
        } else {
            // The boot failed before systemd was found: nspawn shuts its container down on SIGTERM.
            // SAFETY: kill has no memory-safety preconditions; the PID is nspawn's, a child not yet
            // reaped.
            unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + POWEROFF_TIMEOUT;
        while !matches!(self.nspawn.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                eprintln!(
                    "container {} did not power off in {POWEROFF_TIMEOUT:?}: killing it",
                    self.name
                );
                if self.init > 0 {
                    // SAFETY: as above. Killing the PID namespace's init ends every process in it.
                    unsafe { libc::kill(self.init, libc::SIGKILL) };
                }
                let _ = self.nspawn.kill();
                let _ = self.nspawn.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        remove_nspawn_cgroups();
    }
}

/// The cgroups nspawn made in this process's cgroup, in each hierarchy systemd uses (the named
/// `systemd` one of cgroup v1, and v2), once empty: `rmdir` from the leaves up, which the kernel refuses
/// for a cgroup that still has processes.
fn remove_nspawn_cgroups() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    // 40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    let mount_point = |v2: bool| {
        mountinfo.lines().find_map(|line| {
            let (mount, file_system) = line.split_once(" - ")?;
            let mut file_system = file_system.split_whitespace();
            let (kind, options) = (file_system.next()?, file_system.nth(1)?);
            let fits = if v2 {
                kind == "cgroup2"
            } else {
                kind == "cgroup" && options.split(',').any(|option| option == "name=systemd")
            };
            let mut mount = mount.split_whitespace().skip(3);
            if fits && mount.next()? == "/" {
                mount.next().map(PathBuf::from)
            } else {
                None
            }
        })
    };
    // 9:name=systemd:/        0::/
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = match (fields.next(), fields.next(), fields.next()) {
            (Some(id), Some(controllers), Some(path)) => (id, controllers, path),
            _ => continue,
        };
        let v2 = match controllers {
            "" => true,
            "name=systemd" => false,
            _ => continue,
        };
        let Some(mount) = mount_point(v2) else {
            continue;
        };
        let own = mount.join(path.trim_start_matches('/'));
        for made in ["payload", "supervisor"] {
            remove_empty_cgroups(&own.join(made));
        }
    }
}

fn remove_empty_cgroups(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_empty_cgroups(&entry.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
}
