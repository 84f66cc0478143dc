//! The text of an Event, word for word as the original agent wrote it: `Packet dropped when sending
//! traffic to NAME (IP) on port DPT/PROTO` on the sending pod, `... when receiving traffic from ...` on
//! the receiving one. Users grep for these words and alert on them, so they are a contract. Where the
//! log names the policy that dropped the packet, the text goes on after those words: `... on port
//! 80/TCP by NetworkPolicy shop/deny-all`; where it names none and NetworkPolicies isolate the pod,
//! they are named after a semicolon (`...; isolated by NetworkPolicy shop/default-deny`); without
//! either it is exactly the original's.

use std::net::IpAddr;

use crate::model::{Direction, Endpoint, PodIdentifier, Policy, Protocol, Transport};

/// `message` followed by the policy that dropped the packet, if the log named one.
pub fn with_policy(message: String, policy: Option<&Policy>) -> String {
    match policy {
        Some(policy) => format!(
            "{message} by {} {}",
            policy.kind.name(),
            policy.qualified_name()
        ),
        None => message,
    }
}

/// The most NetworkPolicy names an Event lists (a namespace may have dozens); the rest are counted.
const MAX_NAMED_POLICIES: usize = 3;

/// `message` followed by the NetworkPolicies of `namespace` that isolate the pod in the drop's
/// direction, where the log named no policy: `...; isolated by NetworkPolicy shop/default-deny`.
pub fn with_isolation(message: String, namespace: &str, policies: &[String]) -> String {
    let named: Vec<String> = policies
        .iter()
        .take(MAX_NAMED_POLICIES)
        .map(|name| format!("{namespace}/{name}"))
        .collect();
    match policies.len() {
        0 => message,
        1 => format!("{message}; isolated by NetworkPolicy {}", named[0]),
        n if n <= MAX_NAMED_POLICIES => {
            format!(
                "{message}; isolated by NetworkPolicies {}",
                named.join(", ")
            )
        }
        n => format!(
            "{message}; isolated by NetworkPolicies {} and {} more",
            named.join(", "),
            n - MAX_NAMED_POLICIES
        ),
    }
}

/// The message of the Event about one side of a drop: `peer` is the other end, `peer_ip` its IP as the
/// packet carried it.
pub fn event_message(
    direction: Direction,
    peer: &Endpoint,
    peer_ip: IpAddr,
    protocol: Protocol,
    transport: Transport,
    identifier: PodIdentifier,
) -> String {
    let (verb, preposition) = match direction {
        Direction::Sending => ("sending", "to"),
        Direction::Receiving => ("receiving", "from"),
    };
    let name = peer_name(peer, identifier);
    let ip = peer_ip.to_string();
    let peer = if name == ip {
        name
    } else {
        format!("{name} ({ip})")
    };
    let on = on_text(protocol, transport);
    format!("Packet dropped when {verb} traffic {preposition} {peer} on {on}")
}

/// What a drop was sent to, after "on": `port 80/TCP`, `ICMP type 8 code 0`, `protocol GRE`.
pub fn on_text(protocol: Protocol, transport: Transport) -> String {
    let proto = protocol.name();
    match transport {
        Transport::Ports { dst, .. } => format!("port {dst}/{proto}"),
        Transport::Icmp { kind, code } => format!("{proto} type {kind} code {code}"),
        Transport::None => format!("protocol {proto}"),
    }
}

/// How many distinct things a roll-up Event stands for; past what is counted, "more than".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    Exactly(usize),
    MoreThan(usize),
}

/// The message of a roll-up Event (`events/storm.rs`), which counts the drops of the peers a pod
/// has no Event of its own for: `Packet dropped when receiving traffic from 2,980 other sources on
/// port 22/TCP`; `on` is the one port (or ICMP type, protocol) they went to, or how many.
pub fn rollup_message(direction: Direction, peers: Tally, on: Result<&str, Tally>) -> String {
    let (verb, preposition, noun) = match direction {
        Direction::Sending => ("sending", "to", "destination"),
        Direction::Receiving => ("receiving", "from", "source"),
    };
    let peers = match peers {
        Tally::Exactly(1) => format!("1 other {noun}"),
        Tally::Exactly(n) => format!("{} other {noun}s", thousands(n)),
        Tally::MoreThan(n) => format!("more than {} other {noun}s", thousands(n)),
    };
    let on = match on {
        Ok(one) => one.to_string(),
        Err(Tally::Exactly(n)) => format!("{} ports/protocols", thousands(n)),
        Err(Tally::MoreThan(n)) => format!("more than {} ports/protocols", thousands(n)),
    };
    format!("Packet dropped when {verb} traffic {preposition} {peers} on {on}")
}

/// `2980` as `2,980`: counts in messages people read.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// How the other end of a drop is named in the text (`POD_IDENTIFIER` for pods).
pub fn peer_name(peer: &Endpoint, identifier: PodIdentifier) -> String {
    match peer {
        Endpoint::Pod(pod) => match identifier {
            PodIdentifier::Namespace => pod.namespace.clone(),
            PodIdentifier::Name => pod.name.clone(),
            PodIdentifier::Label => pod
                .identifier_label
                .clone()
                .unwrap_or_else(|| pod.name.clone()),
            PodIdentifier::NameWithNamespace => format!("{}/{}", pod.namespace, pod.name),
        },
        Endpoint::Node { node, .. } => node.clone(),
        Endpoint::External { name, .. } => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PodInfo;
    use std::sync::Arc;

    fn web() -> Endpoint {
        Endpoint::Pod(Arc::new(PodInfo {
            namespace: "shop".to_string(),
            name: "web-7d4f9".to_string(),
            uid: "uid-web".to_string(),
            node: "node-1".to_string(),
            host_network: false,
            identifier_label: Some("web".to_string()),
            labels: Default::default(),
        }))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const HTTP: Transport = Transport::Ports {
        src: 40000,
        dst: 80,
    };

    #[test]
    fn sender_and_receiver_texts_match_the_original() {
        let peer = web();
        assert_eq!(
            event_message(
                Direction::Sending,
                &peer,
                ip("10.1.2.3"),
                Protocol::Tcp,
                HTTP,
                PodIdentifier::Namespace
            ),
            "Packet dropped when sending traffic to shop (10.1.2.3) on port 80/TCP"
        );
        assert_eq!(
            event_message(
                Direction::Receiving,
                &peer,
                ip("10.1.2.3"),
                Protocol::Udp,
                Transport::Ports { src: 53, dst: 5353 },
                PodIdentifier::Name
            ),
            "Packet dropped when receiving traffic from web-7d4f9 (10.1.2.3) on port 5353/UDP"
        );
    }

    #[test]
    fn pods_are_named_by_the_configured_identifier() {
        let peer = web();
        let name = |identifier| peer_name(&peer, identifier);
        assert_eq!(name(PodIdentifier::Namespace), "shop");
        assert_eq!(name(PodIdentifier::Name), "web-7d4f9");
        assert_eq!(name(PodIdentifier::Label), "web");
        assert_eq!(name(PodIdentifier::NameWithNamespace), "shop/web-7d4f9");
        let Endpoint::Pod(pod) = &peer else {
            unreachable!()
        };
        let unlabelled = Endpoint::Pod(Arc::new(PodInfo {
            identifier_label: None,
            labels: Default::default(),
            ..(**pod).clone()
        }));
        assert_eq!(peer_name(&unlabelled, PodIdentifier::Label), "web-7d4f9");
    }

    #[test]
    fn the_ip_is_left_out_when_the_name_is_the_ip() {
        let unresolved = Endpoint::External {
            ip: ip("2001:db8::1"),
            name: "2001:db8::1".to_string(),
        };
        assert_eq!(
            event_message(
                Direction::Sending,
                &unresolved,
                ip("2001:0db8:0000:0000:0000:0000:0000:0001"),
                Protocol::Tcp,
                Transport::Ports { src: 1, dst: 443 },
                PodIdentifier::Namespace
            ),
            "Packet dropped when sending traffic to 2001:db8::1 on port 443/TCP"
        );
    }

    #[test]
    fn nodes_and_resolved_externals_are_named_with_their_ip() {
        let node = Endpoint::Node {
            ip: ip("192.168.0.7"),
            node: "node-7".to_string(),
        };
        assert_eq!(
            event_message(
                Direction::Receiving,
                &node,
                ip("192.168.0.7"),
                Protocol::Sctp,
                Transport::Ports { src: 1, dst: 9 },
                PodIdentifier::Namespace
            ),
            "Packet dropped when receiving traffic from node-7 (192.168.0.7) on port 9/SCTP"
        );
        let external = Endpoint::External {
            ip: ip("93.184.216.34"),
            name: "example.com".to_string(),
        };
        assert_eq!(
            event_message(
                Direction::Sending,
                &external,
                ip("93.184.216.34"),
                Protocol::Tcp,
                HTTP,
                PodIdentifier::Name
            ),
            "Packet dropped when sending traffic to example.com (93.184.216.34) on port 80/TCP"
        );
    }

    #[test]
    fn icmp_and_portless_drops_name_type_code_or_protocol() {
        let peer = web();
        let text = |protocol, transport| {
            event_message(
                Direction::Sending,
                &peer,
                ip("10.1.2.3"),
                protocol,
                transport,
                PodIdentifier::Namespace,
            )
        };
        assert_eq!(
            text(Protocol::Icmp, Transport::Icmp { kind: 8, code: 0 }),
            "Packet dropped when sending traffic to shop (10.1.2.3) on ICMP type 8 code 0"
        );
        assert_eq!(
            text(Protocol::Icmpv6, Transport::Icmp { kind: 128, code: 0 }),
            "Packet dropped when sending traffic to shop (10.1.2.3) on ICMPv6 type 128 code 0"
        );
        assert_eq!(
            text(Protocol::Number(47), Transport::None),
            "Packet dropped when sending traffic to shop (10.1.2.3) on protocol 47"
        );
    }

    #[test]
    fn isolating_network_policies_follow_the_original_words() {
        let original = "Packet dropped when receiving traffic from shop (10.0.1.5) on port 80/TCP";
        let names = |n: usize| -> Vec<String> { (1..=n).map(|k| format!("p{k}")).collect() };
        assert_eq!(with_isolation(original.to_string(), "db", &[]), original);
        assert_eq!(
            with_isolation(original.to_string(), "db", &names(1)),
            format!("{original}; isolated by NetworkPolicy db/p1")
        );
        assert_eq!(
            with_isolation(original.to_string(), "db", &names(3)),
            format!("{original}; isolated by NetworkPolicies db/p1, db/p2, db/p3")
        );
        assert_eq!(
            with_isolation(original.to_string(), "db", &names(5)),
            format!("{original}; isolated by NetworkPolicies db/p1, db/p2, db/p3 and 2 more")
        );
    }

    #[test]
    fn a_rollup_message_says_how_many_other_peers_and_where_they_went() {
        assert_eq!(
            rollup_message(
                Direction::Receiving,
                Tally::Exactly(2980),
                Ok("port 22/TCP")
            ),
            "Packet dropped when receiving traffic from 2,980 other sources on port 22/TCP"
        );
        assert_eq!(
            rollup_message(
                Direction::Sending,
                Tally::Exactly(1),
                Ok("ICMP type 8 code 0")
            ),
            "Packet dropped when sending traffic to 1 other destination on ICMP type 8 code 0"
        );
        assert_eq!(
            rollup_message(
                Direction::Receiving,
                Tally::MoreThan(10_000),
                Err(Tally::Exactly(1_234_567))
            ),
            "Packet dropped when receiving traffic from more than 10,000 other sources on \
             1,234,567 ports/protocols"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
    }
}
