//! What a roll-up Event stands for (see `events/storm.rs`): the distinct peers and ports of the drops
//! it counts, and the policy when they all name the same one. Its message says so.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::events::message::{Tally, on_text, rollup_message, with_isolation, with_policy};
use crate::model::{Direction, Policy, Protocol, Transport};

/// Distinct peers a roll-up counts by address, at most (~40 bytes each); past that its message says
/// "more than". A scan from the whole internet must not cost memory without bound.
const MAX_COUNTED_PEERS: usize = 10_000;
/// Distinct ports (or ICMP types, protocols) counted, at most.
const MAX_COUNTED_PORTS: usize = 1_000;

#[derive(Debug, Default)]
pub struct RollUp {
    peers: HashSet<IpAddr>,
    more_peers: bool,
    /// The "on" part of each drop's text (`port 22/TCP`).
    ports: HashSet<String>,
    more_ports: bool,
    policy: PolicySeen,
}

/// The policy the rolled-up drops' logs name.
#[derive(Debug, Default)]
enum PolicySeen {
    #[default]
    Nothing,
    /// Every drop named this one (or none did).
    Same(Option<Policy>),
    /// Different drops named different policies (or some none).
    Mixed,
}

impl RollUp {
    /// One more drop from (or to) `peer`.
    pub fn add(
        &mut self,
        peer: IpAddr,
        protocol: Protocol,
        transport: Transport,
        policy: Option<&Policy>,
    ) {
        if !self.peers.contains(&peer) {
            if self.peers.len() < MAX_COUNTED_PEERS {
                self.peers.insert(peer);
            } else {
                self.more_peers = true;
            }
        }
        let port = on_text(protocol, transport);
        if !self.ports.contains(&port) {
            if self.ports.len() < MAX_COUNTED_PORTS {
                self.ports.insert(port);
            } else {
                self.more_ports = true;
            }
        }
        self.policy = match std::mem::take(&mut self.policy) {
            PolicySeen::Nothing => PolicySeen::Same(policy.cloned()),
            PolicySeen::Same(seen) if same_policy(seen.as_ref(), policy) => PolicySeen::Same(seen),
            PolicySeen::Same(_) | PolicySeen::Mixed => PolicySeen::Mixed,
        };
    }

    /// The Event's text: how many other peers, on which port or how many, by which policy if one;
    /// then the NetworkPolicies of `namespace` that isolate the pod, where the logs named none.
    pub fn message(&self, direction: Direction, namespace: &str, isolating: &[String]) -> String {
        let peers = tally(self.peers.len(), self.more_peers);
        let one_port = self.ports.iter().next().filter(|_| self.ports.len() == 1);
        let on = match one_port {
            Some(port) if !self.more_ports => Ok(port.as_str()),
            _ => Err(tally(self.ports.len(), self.more_ports)),
        };
        let message = rollup_message(direction, peers, on);
        match &self.policy {
            PolicySeen::Same(Some(policy)) => with_policy(message, Some(policy)),
            PolicySeen::Same(None) => with_isolation(message, namespace, isolating),
            PolicySeen::Nothing | PolicySeen::Mixed => message,
        }
    }
}

fn tally(counted: usize, more: bool) -> Tally {
    if more {
        Tally::MoreThan(counted)
    } else {
        Tally::Exactly(counted)
    }
}

/// The same policy as far as an Event says: kind, namespace and name (not the rule).
fn same_policy(a: Option<&Policy>, b: Option<&Policy>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.kind == b.kind && a.namespace == b.namespace && a.name == b.name,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PolicyKind;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0xC612_0000 + n))
    }

    fn tcp(port: u16) -> Transport {
        Transport::Ports {
            src: 40000,
            dst: port,
        }
    }

    fn policy(name: &str) -> Policy {
        Policy {
            kind: PolicyKind::NetworkPolicy,
            namespace: "shop".to_string(),
            name: name.to_string(),
            rule: None,
            direction: None,
        }
    }

    #[test]
    fn counts_distinct_peers_on_one_port() {
        let mut rollup = RollUp::default();
        for n in 0..2980 {
            rollup.add(ip(n), Protocol::Tcp, tcp(22), None);
            rollup.add(ip(n), Protocol::Tcp, tcp(22), None);
        }
        assert_eq!(
            rollup.message(Direction::Receiving, "shop", &[]),
            "Packet dropped when receiving traffic from 2,980 other sources on port 22/TCP"
        );
    }

    #[test]
    fn many_ports_and_peers_past_the_cap_are_told_as_more_than() {
        let mut rollup = RollUp::default();
        for n in 0..(MAX_COUNTED_PEERS as u32 + 5) {
            rollup.add(ip(n), Protocol::Udp, tcp(1 + (n % 2000) as u16), None);
        }
        assert_eq!(
            rollup.message(Direction::Sending, "shop", &[]),
            "Packet dropped when sending traffic to more than 10,000 other destinations on more \
             than 1,000 ports/protocols"
        );
    }

    #[test]
    fn one_policy_for_all_is_named_and_mixed_policies_are_not() {
        let mut rollup = RollUp::default();
        rollup.add(ip(1), Protocol::Tcp, tcp(22), Some(&policy("deny-ssh")));
        rollup.add(ip(2), Protocol::Tcp, tcp(22), Some(&policy("deny-ssh")));
        assert_eq!(
            rollup.message(Direction::Receiving, "shop", &[]),
            "Packet dropped when receiving traffic from 2 other sources on port 22/TCP by \
             NetworkPolicy shop/deny-ssh"
        );
        rollup.add(ip(3), Protocol::Tcp, tcp(22), None);
        assert_eq!(
            rollup.message(Direction::Receiving, "shop", &["default-deny".to_string()]),
            "Packet dropped when receiving traffic from 3 other sources on port 22/TCP"
        );
    }

    #[test]
    fn isolation_is_named_where_no_log_named_a_policy() {
        let mut rollup = RollUp::default();
        rollup.add(ip(1), Protocol::Tcp, tcp(22), None);
        assert_eq!(
            rollup.message(Direction::Receiving, "shop", &["default-deny".to_string()]),
            "Packet dropped when receiving traffic from 1 other source on port 22/TCP; isolated \
             by NetworkPolicy shop/default-deny"
        );
    }
}
