//! The pods of a large synthetic cluster, the same on every run: realistic names
//! (`app-xxxxxxxxxx-xxxxx` in `team-NN-production`, 50 namespaces), UUID uids, 1,000 nodes, one IPv4
//! address each and an IPv6 one for every other pod.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const NAMESPACES: u32 = 50;
pub const NODES: u32 = 1_000;

pub const APPS: [&str; 16] = [
    "frontend",
    "checkout",
    "payments-api",
    "search-indexer",
    "cart",
    "recommendations",
    "image-resizer",
    "auth-gateway",
    "inventory-sync",
    "notifications-worker",
    "ledger",
    "catalog",
    "session-store",
    "metrics-exporter",
    "shipping",
    "pricing-engine",
];

/// Pod `n` of the cluster.
pub struct SyntheticPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// `base + n`: the benches keep their pods' addresses apart by base.
    pub ipv4: Ipv4Addr,
    /// For every other pod (even `n`).
    pub ipv6: Option<Ipv6Addr>,
}

impl SyntheticPod {
    pub fn new(n: u32, base: u32) -> SyntheticPod {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut random = Random(u64::from(n) + 1);
        // Allocated in this order: the pod_index bench measures the resident memory they take.
        SyntheticPod {
            namespace: format!("team-{:02}-production", n % NAMESPACES),
            name: format!(
                "{}-{}-{}",
                app(n),
                random.word(10, ALPHABET),
                random.word(5, ALPHABET)
            ),
            uid: random.uuid(),
            node: format!("ip-10-0-{}-{}.ec2.internal", n % NODES / 250, n % 250),
            ipv4: ipv4(n, base),
            ipv6: ipv6(n),
        }
    }
}

/// The IPv4 address of pod `n`: `base + n`.
pub fn ipv4(n: u32, base: u32) -> Ipv4Addr {
    Ipv4Addr::from(base + n)
}

/// The IPv6 address of pod `n`, which even pods have: `fd00::` with `n` in the last 32 bits.
pub fn ipv6(n: u32) -> Option<Ipv6Addr> {
    n.is_multiple_of(2)
        .then(|| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16))
}

/// The `app` of pod `n`, the first part of its name.
pub fn app(n: u32) -> &'static str {
    APPS[n as usize % APPS.len()]
}

/// The IPv4 address of the node of pod `n`.
pub fn host_ip(n: u32) -> String {
    format!("10.0.{}.{}", n % NODES / 250, n % 250)
}

/// splitmix64: deterministic, so every run builds the same pods.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let (high, low) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xfff,
            (low >> 48) & 0x3fff | 0x8000,
            low & 0xffff_ffff_ffff
        )
    }
}
