//! A group another listener holds: ulogd2 (Debian's NFLOG logger) binds it first, and the agent, and
//! `--check-config` before it, exit 2 at once with one line that names the group and ulogd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::agent::{BINARY, free_port};
use crate::support::netns::NetnsPair;
use crate::support::{kernel_lock, privileged, run, wait_until, which};

const GROUP: u16 = 11;

#[test]
fn a_group_ulogd_holds_is_an_error_at_start_naming_ulogd() {
    if !privileged("NFLOG group held by ulogd2", &["ip", "ulogd"]) {
        return;
    }
    let _serial = kernel_lock();
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let ulogd = Ulogd::start(&pair.server, dir.path(), GROUP);
    wait_until("ulogd to bind its group", Duration::from_secs(10), || {
        let groups = run(
            "ip",
            &[
                "netns",
                "exec",
                &pair.server,
                "cat",
                "/proc/net/netfilter/nfnetlink_log",
            ],
        );
        groups
            .lines()
            .any(|line| line.split_whitespace().next() == Some(&GROUP.to_string()))
    });
    let expected = format!(
        "kube-iptables-tailer: NFLOG group {GROUP} is already bound by another listener: ulogd (pid {}, netlink port ",
        ulogd.pid()
    );

    for check in [true, false] {
        let output = agent_in(&pair.server, check);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "check {check}: {stderr}");
        let line = stderr
            .lines()
            .find(|line| line.starts_with("kube-iptables-tailer: "))
            .unwrap_or_else(|| panic!("no error line: {stderr}"));
        assert!(line.starts_with(&expected), "{line}");
        assert!(
            line.ends_with("); stop it, or choose other groups with NFLOG_GROUPS"),
            "{line}"
        );
        assert!(output.stdout.is_empty());
    }
}

/// The agent (or its `--check-config`) in `netns`, bound to GROUP, run to its exit.
fn agent_in(netns: &str, check: bool) -> Output {
    let mut command = Command::new(which("ip").unwrap());
    command.args(["netns", "exec", netns, BINARY]);
    if check {
        command.arg("--check-config");
    }
    command
        .env_clear()
        .env("LOG_SOURCE", "nflog")
        .env("NFLOG_GROUPS", GROUP.to_string())
        .env("EVENT_SINK", "stdout")
        .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
        .env("METRICS_SERVER_PORT", free_port().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// ulogd2 in the foreground in a namespace, logging one NFLOG group to a file; killed on drop.
struct Ulogd(Child);

impl Ulogd {
    fn start(netns: &str, dir: &Path, group: u16) -> Ulogd {
        let plugins = plugin_directory();
        let plugin = |name: &str| format!("plugin=\"{}\"\n", plugins.join(name).display());
        let config = dir.join("ulogd.conf");
        std::fs::write(
            &config,
            format!(
                "[global]\nlogfile=\"{log}\"\nloglevel=3\n{a}{b}{c}{d}{e}{f}\
                 stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,print1:PRINTPKT,emu1:LOGEMU\n\n\
                 [log1]\ngroup={group}\n\n[emu1]\nfile=\"{packets}\"\nsync=1\n",
                log = dir.join("ulogd.log").display(),
                packets = dir.join("packets.log").display(),
                a = plugin("ulogd_inppkt_NFLOG.so"),
                b = plugin("ulogd_raw2packet_BASE.so"),
                c = plugin("ulogd_filter_IFINDEX.so"),
                d = plugin("ulogd_filter_IP2STR.so"),
                e = plugin("ulogd_filter_PRINTPKT.so"),
                f = plugin("ulogd_output_LOGEMU.so"),
            ),
        )
        .unwrap();
        let child = Command::new(which("ip").unwrap())
            .args(["netns", "exec", netns])
            .arg(which("ulogd").unwrap())
            .args(["-c", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ulogd");
        Ulogd(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Ulogd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where Debian keeps ulogd's plugins (/usr/lib/<multiarch>/ulogd).
fn plugin_directory() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("ulogd"))
        .find(|path| path.join("ulogd_inppkt_NFLOG.so").is_file())
        .expect("ulogd's plugins in /usr/lib/*/ulogd")
}
