//! The host service as systemd sees it: `systemd-analyze verify` finds nothing wrong with the unit,
//! `systemd-analyze security` rates its exposure 2.0 or lower, the nflog drop-in its header shows adds
//! CAP_NET_ADMIN and netlink sockets and nothing else, and `make install` puts the binary, the unit and
//! the environment file where systemd looks, DESTDIR- and PREFIX-aware.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{have, repo};
use crate::support::agent::BINARY;

const UNIT: &str = "systemd/kube-iptables-tailer.service";
/// Where the unit expects the binary (`make install`'s default PREFIX).
const INSTALLED_BINARY: &str = "/usr/local/bin/kube-iptables-tailer";
/// The exposure the issue asks for, at most.
const MAX_EXPOSURE: f64 = 2.0;

/// `systemd-analyze verify` on `unit`: it must exit 0 and say nothing (it exits 0 on unknown keys,
/// which it only warns about).
fn verify(unit: &Path) {
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}",
        unit.display(),
        output.status
    );
}

/// A copy of the unit in `dir` that runs the binary under test (verify checks that ExecStart's binary
/// exists, and it is not installed here), with `drop_ins` (file name, text) in its `.d` directory,
/// where systemd-analyze reads them as systemd would.
fn unit_copy(dir: &Path, drop_ins: &[(&str, &str)]) -> PathBuf {
    let unit = std::fs::read_to_string(repo().join(UNIT)).unwrap();
    assert!(unit.contains(&format!("ExecStart={INSTALLED_BINARY}\n")));
    assert!(unit.contains(&format!("ExecStartPre={INSTALLED_BINARY} --check-config\n")));
    let copy = dir.join("kube-iptables-tailer.service");
    std::fs::write(&copy, unit.replace(INSTALLED_BINARY, BINARY)).unwrap();
    let drop_in_dir = dir.join("kube-iptables-tailer.service.d");
    for (name, text) in drop_ins {
        std::fs::create_dir_all(&drop_in_dir).unwrap();
        std::fs::write(drop_in_dir.join(name), text).unwrap();
    }
    copy
}

/// The drop-in the unit's header shows for LOG_SOURCE=nflog: its run of `#   ` lines, uncommented.
pub(super) fn nflog_drop_in() -> String {
    let unit = std::fs::read_to_string(repo().join(UNIT)).unwrap();
    let mut runs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in unit.lines() {
        match line.strip_prefix("#   ") {
            Some(text) => runs.last_mut().unwrap().push(text),
            None => runs.push(Vec::new()),
        }
    }
    let run = runs
        .into_iter()
        .find(|run| run.iter().any(|line| line.contains("CAP_NET_ADMIN")))
        .expect("the unit's header shows the nflog drop-in");
    assert_eq!(run.first(), Some(&"[Service]"), "{run:?}");
    run.join("\n") + "\n"
}

/// `systemd-analyze security` on `unit`: the overall exposure, and the checks it fails (`✗ NAME`).
fn security(unit: &Path) -> (f64, BTreeSet<String>) {
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // → Overall exposure level for kube-iptables-tailer.service: 1.3 OK 🙂
    let exposure: f64 = stdout
        .lines()
        .find_map(|line| line.split_once("Overall exposure level for "))
        .and_then(|(_, rest)| rest.split_once(": "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        exposure <= MAX_EXPOSURE,
        "{}: exposure {exposure} > {MAX_EXPOSURE}:\n{stdout}",
        unit.display()
    );
    // ✗ CapabilityBoundingSet=~CAP_NET_ADMIN    Service has network configuration privileges   0.2
    let failed = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("✗ "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect();
    (exposure, failed)
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze verify", "systemd-analyze") {
        return;
    }
    // The installed unit is verified the same way by `make_install_...` below.
    let dir = tempfile::tempdir().unwrap();
    verify(&unit_copy(dir.path(), &[]));
}

#[test]
fn the_units_security_exposure_is_2_0_or_lower() {
    if !have("systemd-analyze security", "systemd-analyze") {
        return;
    }
    security(&repo().join(UNIT));
}

#[test]
fn the_nflog_drop_in_passes_verify_and_adds_net_admin_and_netlink_alone() {
    if !have("nflog drop-in", "systemd-analyze") {
        return;
    }
    let drop_in = nflog_drop_in();
    let base = tempfile::tempdir().unwrap();
    let with = tempfile::tempdir().unwrap();
    let nflog = unit_copy(with.path(), &[("nflog.conf", &drop_in)]);
    verify(&nflog);

    // Read the way systemd merges it with the unit: exactly three checks fail that the unit alone
    // passes, and the exposure stays within the bound.
    let (_, before) = security(&unit_copy(base.path(), &[]));
    let (exposure, after) = security(&nflog);
    let added: Vec<&str> = after.difference(&before).map(String::as_str).collect();
    assert_eq!(
        added,
        [
            "AmbientCapabilities=",
            "CapabilityBoundingSet=~CAP_NET_ADMIN",
            "RestrictAddressFamilies=~AF_NETLINK",
        ],
        "what the drop-in opens, at exposure {exposure}:\n{drop_in}"
    );
}

/// `make -o build install` with `args`: installs the binary under test without building.
fn make_install(args: &[String]) -> String {
    let output = Command::new("make")
        .current_dir(repo())
        .args(["--no-print-directory", "-o", "build", "install"])
        .arg(format!("BINARY={BINARY}"))
        .args(args)
        .output()
        .expect("run make");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "make install {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn make_install_stages_under_destdir_and_keeps_an_edited_environment_file() {
    if !have("make install", "make") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    let args = [
        format!("DESTDIR={}", stage.display()),
        "PREFIX=/usr".to_string(),
    ];
    make_install(&args);

    let binary = stage.join("usr/bin/kube-iptables-tailer");
    assert_eq!(mode(&binary), 0o755);
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(BINARY).unwrap()
    );
    let unit = stage.join("usr/lib/systemd/system/kube-iptables-tailer.service");
    assert_eq!(mode(&unit), 0o644);
    let text = std::fs::read_to_string(&unit).unwrap();
    // The unit runs the binary where PREFIX put it, and names no staging path.
    assert!(
        text.contains("\nExecStart=/usr/bin/kube-iptables-tailer\n"),
        "{text}"
    );
    assert!(!text.contains(INSTALLED_BINARY) && !text.contains(stage.to_str().unwrap()));
    let environment = stage.join("etc/default/kube-iptables-tailer");
    assert_eq!(
        std::fs::read_to_string(&environment).unwrap(),
        std::fs::read_to_string(repo().join("systemd/kube-iptables-tailer.env")).unwrap()
    );
    assert_eq!(mode(&stage.join("etc/kube-iptables-tailer")), 0o700);

    // A second install (an upgrade) keeps the administrator's settings.
    std::fs::write(&environment, "LOG_SOURCE=journald\n").unwrap();
    let said = make_install(&args);
    assert!(said.contains("keeping"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&environment).unwrap(),
        "LOG_SOURCE=journald\n"
    );
}

#[test]
fn make_install_with_a_prefix_gives_a_unit_systemd_accepts() {
    if !have("make install verify", "make") || !have("make install verify", "systemd-analyze") {
        return;
    }
    // Installed for real (no DESTDIR) into a temporary prefix: ExecStart then names a binary that
    // exists, which `systemd-analyze verify` requires.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr");
    make_install(&[
        format!("PREFIX={}", prefix.display()),
        format!("SYSCONFDIR={}", dir.path().join("etc").display()),
    ]);
    let unit = prefix.join("lib/systemd/system/kube-iptables-tailer.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let etc = dir.path().join("etc");
    assert!(text.contains(&format!(
        "EnvironmentFile=-{}/default/kube-iptables-tailer",
        etc.display()
    )));
    assert!(text.contains(&format!(
        "LoadCredential=kubeconfig:{}/kube-iptables-tailer/kubeconfig",
        etc.display()
    )));
    verify(&unit);
}
