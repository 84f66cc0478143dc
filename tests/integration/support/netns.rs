//! Two network namespaces joined by a veth pair (198.18.0.1 ↔ 198.18.0.2, fd00::1 ↔ fd00::2), made by
//! the test and deleted when it ends. Firewall rules only ever go inside them.

use super::{run, unique};

pub use super::fake_api::enter_netns::in_netns;

pub struct NetnsPair {
    pub client: String,
    pub server: String,
}

pub const CLIENT_V4: &str = "198.18.0.1";
pub const SERVER_V4: &str = "198.18.0.2";
pub const CLIENT_V6: &str = "fd00::1";
pub const SERVER_V6: &str = "fd00::2";

impl NetnsPair {
    pub fn new() -> NetnsPair {
        let pair = NetnsPair {
            client: unique("kitc"),
            server: unique("kits"),
        };
        run("ip", &["netns", "add", &pair.client]);
        run("ip", &["netns", "add", &pair.server]);
        run(
            "ip",
            &[
                "-n",
                &pair.client,
                "link",
                "add",
                "kitc0",
                "type",
                "veth",
                "peer",
                "name",
                "kits0",
                "netns",
                &pair.server,
            ],
        );
        for (ns, device, v4, v6) in [
            (&pair.client, "kitc0", CLIENT_V4, CLIENT_V6),
            (&pair.server, "kits0", SERVER_V4, SERVER_V6),
        ] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", device],
            );
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "-6",
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    device,
                    "nodad",
                ],
            );
            run("ip", &["-n", ns, "link", "set", device, "up"]);
        }
        pair
    }

    /// Runs a command inside the server namespace (where the rules are).
    pub fn in_server(&self, program: &str, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.server, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Sends one UDP datagram from the client namespace to `address:port`.
    pub fn send_udp(&self, address: &str, port: u16) {
        let script = format!("echo -n x > /dev/udp/{address}/{port}");
        run(
            "ip",
            &["netns", "exec", &self.client, "bash", "-c", &script],
        );
    }

    /// One ICMP echo request from the client namespace to `address` (the rule drops it: no answer is
    /// waited for).
    pub fn ping(&self, address: &str) {
        let _ = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                "ping",
                "-c",
                "1",
                "-W",
                "0.2",
                address,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run ping");
    }

    /// Opens a TCP connection from the client namespace; the server's rule rejects the SYN, so exactly
    /// one packet is logged and the connect fails at once.
    pub fn connect_tcp(&self, address: &str, port: u16) {
        let script = format!("exec 3<>/dev/tcp/{address}/{port}");
        let status = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                "timeout",
                "5",
                "bash",
                "-c",
                &script,
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run bash");
        assert_eq!(
            status.code(),
            Some(1),
            "the connection must be refused by the rule, not time out"
        );
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

/// `net.netfilter.nf_log_all_netns=1` while held: without it the kernel does not log from namespaces
/// other than the initial one. The old value is restored on drop.
pub struct LogAllNetns {
    old: String,
}

const LOG_ALL_NETNS: &str = "/proc/sys/net/netfilter/nf_log_all_netns";

impl LogAllNetns {
    pub fn enable() -> LogAllNetns {
        let old = std::fs::read_to_string(LOG_ALL_NETNS).expect("read nf_log_all_netns");
        std::fs::write(LOG_ALL_NETNS, "1").expect("set nf_log_all_netns");
        LogAllNetns {
            old: old.trim().to_string(),
        }
    }
}

impl Drop for LogAllNetns {
    fn drop(&mut self) {
        let _ = std::fs::write(LOG_ALL_NETNS, &self.old);
    }
}
