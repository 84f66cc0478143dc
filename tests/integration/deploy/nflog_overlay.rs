//! The nflog overlay: the pod joins the host's network namespace, whose NFLOG groups the drops are
//! logged to, and holds CAP_NET_ADMIN alone (binding a group is a netfilter configuration request).
//! Checked as rendered, and then tried for real: a process in a network namespace of its own (standing
//! in for the node's), as uid 0 with CAP_NET_ADMIN and nothing else and no new privileges (the
//! container's security context), with the overlay's environment and no state directory, answers its
//! probes on the overlay's metrics port and reports the drop a rule there logs to the overlay's group.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use serde_json::Value;

use super::manifests::{AGENT, render};
use super::probes::{DEFAULT_PORT, metrics_port, probe_ports};
use crate::support::agent::BINARY;
use crate::support::{privileged, run, unique};

/// What kube-router's rules put on a policy drop (`--nflog-prefix`). The group selects the drops, not
/// the prefix: it is kept on the record, whatever IPTABLES_LOG_PREFIX says.
const KUBE_ROUTER_PREFIX: &str = "DROP by policy shop/deny-all";

/// The capability sets of a process holding CAP_NET_ADMIN (bit 12) alone.
const NET_ADMIN_ONLY: &str = "0000000000001000";

/// A network namespace made for the test (`ip netns add`), deleted when it ends.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let netns = Netns(unique("kitn"));
        run("ip", &["netns", "add", &netns.0]);
        run("ip", &["-n", &netns.0, "link", "set", "lo", "up"]);
        netns
    }

    fn iptables(&self, rule: &[&str]) {
        let mut args = vec!["netns", "exec", &self.0, "iptables"];
        args.extend_from_slice(rule);
        run("ip", &args);
    }

    /// Runs `work` on a thread inside the namespace: the test's own sockets, there.
    fn enter<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        crate::support::netns::in_netns(&self.0, work)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The agent's process, killed if the test ends before it is stopped.
struct Running(Option<Child>);

impl Running {
    fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Whether it has exited (it should not have).
    fn exited(&mut self) -> Option<ExitStatus> {
        self.0.as_mut()?.try_wait().unwrap()
    }

    fn terminate(mut self) -> ExitStatus {
        let mut child = self.0.take().expect("running");
        // SAFETY: kill() has no memory effects; the pid is our unreaped child's (the agent, exec'd).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET path` on 127.0.0.1:`port`: (status, body), or None when nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

/// The `Name:` line of /proc/`pid`/status, without the name.
fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn the_nflog_overlay_joins_the_host_network_with_net_admin_alone() {
    let Some(rendered) = render("nflog lockdown", "nflog") else {
        return;
    };
    let pod = rendered.pod();
    assert_eq!(pod.host_network, Some(true), "the host's NFLOG groups");
    // On the host network the pod would otherwise get the node's resolv.conf, and reverse lookups
    // of cluster addresses would miss the cluster's DNS.
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(rendered.env("LOG_SOURCE"), Some("nflog"));
    // kube-router's (k3s's) policy drops.
    assert_eq!(rendered.env("NFLOG_GROUPS"), Some("100"));
    assert_eq!(
        rendered.env("STATE_DIRECTORY"),
        None,
        "NFLOG has no history"
    );

    let names: Vec<&str> = rendered.containers().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [AGENT],
        "no init container: no state directory to hand over"
    );
    assert!(
        pod.volumes
            .iter()
            .flatten()
            .all(|volume| volume.host_path.is_none()),
        "no hostPath volume"
    );
    assert_eq!(rendered.agent().volume_mounts.iter().flatten().count(), 0);

    let security = rendered.agent().security_context.as_ref().unwrap();
    assert_ne!(security.privileged, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_user, Some(0));
    let capabilities = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        capabilities.add.as_deref(),
        Some(&["NET_ADMIN".to_string()][..])
    );

    // The metrics server listens on the node's addresses: its own port, declared and probed.
    let port = metrics_port(&rendered);
    assert_ne!(port, DEFAULT_PORT, "9090 is Prometheus's on many nodes");
    let (declared, liveness, readiness) = probe_ports(&rendered);
    assert_eq!(declared, port, "containerPort named metrics");
    assert_eq!(liveness, port, "liveness probe");
    assert_eq!(readiness, port, "readiness probe");
}

#[test]
fn the_nflog_overlays_settings_report_a_drop_with_net_admin_alone_on_its_metrics_port() {
    let test = "nflog overlay run";
    if !privileged(test, &["ip", "iptables", "setpriv"]) {
        return;
    }
    let Some(rendered) = render(test, "nflog") else {
        return;
    };
    let groups = rendered.env("NFLOG_GROUPS").expect("NFLOG_GROUPS");
    let group = groups.split(',').next().unwrap().trim();
    let port = u16::try_from(metrics_port(&rendered)).expect("a port");

    let netns = Netns::new();
    for target in [
        vec![
            "-j",
            "NFLOG",
            "--nflog-group",
            group,
            "--nflog-prefix",
            KUBE_ROUTER_PREFIX,
        ],
        vec!["-j", "DROP"],
    ] {
        let mut rule = vec!["-A", "INPUT", "-p", "udp", "--dport", "5353"];
        rule.extend(target);
        netns.iptables(&rule);
    }

    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("agent.stderr");
    let mut command = Command::new("ip");
    // `ip netns exec` and setpriv exec in place: the child's pid is the agent's.
    command
        .args(["netns", "exec", &netns.0, "setpriv"])
        .args(["--reuid=0", "--regid=0", "--clear-groups", "--no-new-privs"])
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all,+net_admin",
        ])
        .args(["--", BINARY])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for variable in rendered.agent().env.iter().flatten() {
        match (&variable.value, &variable.value_from) {
            (Some(value), None) => command.env(&variable.name, value),
            // NODE_NAME, from the downward API.
            (None, Some(_)) => command.env(&variable.name, "node-1"),
            _ => panic!("{variable:?}"),
        };
    }
    // No API server in the namespace: the drop is printed instead.
    command.env("EVENT_SINK", "stdout");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start the agent");
    let stdout = child.stdout.take().unwrap();
    let mut agent = Running(Some(child));
    let (sender, records) = unbounded::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(record) = serde_json::from_str(&line) {
                let _ = sender.send(record);
            }
        }
    });
    let agent_stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    let record = netns.enter(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(port, "/readyz").map(|(status, _)| status) != Some(200) {
            let exited = agent.exited();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "not ready on port {port} ({exited:?}); agent stderr:\n{}",
                agent_stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(get(port, "/healthz").map(|(status, _)| status), Some(200));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(b"x", "127.0.0.1:5353").unwrap();
        let record = records.recv_timeout(Duration::from_secs(20));
        let (status, _) = get(port, "/metrics").expect("the metrics answer");
        assert_eq!(status, 200);
        record
    });
    // What the agent ran with, as the kernel sees it: root, NET_ADMIN alone, no new privileges.
    let pid = agent.pid();
    assert_eq!(
        status_field(pid, "Uid").split_whitespace().next(),
        Some("0")
    );
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(pid, set), NET_ADMIN_ONLY, "{set}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");

    let status = agent.terminate();
    let record = record.unwrap_or_else(|_| {
        panic!(
            "no record of the drop logged to NFLOG group {group}; agent stderr:\n{}",
            agent_stderr()
        )
    });
    assert_eq!(record["prefix"], KUBE_ROUTER_PREFIX, "{record}");
    assert_eq!(record["proto"], "UDP", "{record}");
    assert_eq!(record["dpt"], 5353, "{record}");
    assert_eq!(record["src"], "127.0.0.1", "{record}");
    assert_eq!(record["dst"], "127.0.0.1", "{record}");
    assert!(
        status.success(),
        "{status}; agent stderr:\n{}",
        agent_stderr()
    );
}
