//! The agent binary with the Kubernetes sink, following a log file in a directory of the bench's,
//! against an API server the bench runs; optionally inside a network namespace the bench made (its
//! metrics server is then reached from a thread that entered it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A metrics request, answered.
pub type Answer = Option<(u16, String)>;

/// Runs a request on a thread inside the named network namespace: the fake API's `in_netns`, which
/// the benches that use a namespace include (a second copy of it here would be one too many).
pub type InNetns = fn(&str, Box<dyn FnOnce() -> Answer + Send + '_>) -> Answer;

pub struct KubeAgent {
    child: Child,
    metrics_port: u16,
    log: PathBuf,
    stderr: PathBuf,
    netns: Option<(String, InNetns)>,
}

impl KubeAgent {
    /// Starts the agent on `dir/kern.log` (created empty: the agent begins at its end), in `netns`
    /// when given (`ip netns exec`, which also mounts `/etc/netns/NAME/*` over `/etc`).
    pub fn start(
        dir: &Path,
        api_url: &str,
        netns: Option<(&str, InNetns)>,
        extra: &[(&str, &str)],
    ) -> KubeAgent {
        let log = dir.join("kern.log");
        std::fs::write(&log, b"").expect("create the log");
        let stderr = dir.join("agent.stderr");
        let metrics_port = super::free_port();
        let mut command = match netns {
            Some((netns, _)) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, super::AGENT]);
                command
            }
            None => Command::new(super::AGENT),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IPTABLES_LOG_PATH", &log)
            .env("METRICS_SERVER_ADDRESS", "127.0.0.1")
            .env("METRICS_SERVER_PORT", metrics_port.to_string())
            .env("LOG_LEVEL", "warn")
            .env("EVENT_SINK", "kubernetes")
            .env("KUBE_API_SERVER", api_url)
            .env("NODE_NAME", "node-1")
            // Reverse lookups of test addresses would ask the machine's DNS server: loopback only.
            .env("DNS_LOOKUP", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the agent");
        KubeAgent {
            child,
            metrics_port,
            log,
            stderr,
            netns: netns.map(|(name, enter)| (name.to_string(), enter)),
        }
    }

    pub fn log_file(&self) -> std::fs::File {
        (std::fs::OpenOptions::new().append(true).open(&self.log)).expect("open the log")
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.get("/readyz").map(|(status, _)| status) != Some(200) {
            if Instant::now() > deadline {
                self.fail(&format!("/readyz not 200 within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The value of one metric line (`name{labels}` exactly as rendered), or 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").expect("metrics answer");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The sum of every line of a metric family (`name{...} value`).
    pub fn metric_sum(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics").expect("metrics answer");
        body.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn get(&self, path: &str) -> Answer {
        let port = self.metrics_port;
        match &self.netns {
            Some((netns, enter)) => enter(netns, Box::new(move || super::http_get(port, path))),
            None => super::http_get(port, path),
        }
    }

    /// The agent's process: under `ip netns exec` the agent is the same process (exec), so the
    /// child's PID is the agent's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of the agent's /proc/PID/status (VmRSS:, VmHWM:), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        super::status_kib(super::Process::Id(self.pid()), field)
    }

    pub fn fail(&self, what: &str) -> ! {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{what}\nagent stderr (last lines):\n{}", tail.join("\n"));
    }
}

impl Drop for KubeAgent {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
