//! Antrea's NetworkPolicy audit log (`/var/log/antrea/networkpolicy/np.log`), one line per logged
//! connection (antrea-io/antrea `pkg/agent/controller/networkpolicy/audit_logging.go`,
//! `buildLogMsg`; samples in `docs/cni-drop-logs.md`):
//!
//! ```text
//! 2023/07/04 12:33:26.221413 IngressDefaultRule K8sNetworkPolicy <nil> Ingress Drop <nil> default/nettool 10.10.1.13 <nil> 10.10.1.7 <nil> ICMP 84 <nil>
//! DATE TIME TABLE POLICY RULE DIRECTION DISPOSITION PRIORITY APPLIED-TO SRC SPORT DST DPORT PROTO LEN LABEL [N packets in D]
//! ```
//!
//! The time is the Antrea agent's local time without a zone (Go's `log.Ldate|log.Lmicroseconds`).
//! `<nil>` stands for what is not known (ports of ICMP, the rule of Kubernetes' default isolation).
//! Antrea holds back repeats of a non-Allow line for a second and writes it once with
//! `[N packets in D]`: the line stands for N drops. `Drop` and `Reject` lines are drops; `Allow`,
//! `Pass` and `Redirect` lines are not.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::NotDrop;
use super::time::LocalZone;
use crate::model::{
    Packet, PacketDrop, Policy, PolicyDirection, PolicyKind, Protocol, Transport, Verdict,
};

const NIL: &str = "<nil>";
/// Tokens of a line without the repeat suffix: date, time and the 14 fields.
const TOKENS: usize = 16;

/// Whether `line` has the shape of an Antrea audit line: a `YYYY/MM/DD HH:MM:SS` start and a
/// disposition where Antrea writes it. Cheap enough to ask of every line that is no netfilter drop.
pub fn looks_like(line: &str) -> bool {
    let bytes = line.as_bytes();
    let date_shape = bytes.len() > 20
        && bytes[4] == b'/'
        && bytes[7] == b'/'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && bytes[..4].iter().all(u8::is_ascii_digit);
    date_shape
        && line.split(' ').nth(6).is_some_and(|disposition| {
            matches!(
                disposition,
                "Allow" | "Drop" | "Reject" | "Pass" | "Redirect"
            )
        })
}

/// Parses one audit line; `zone` is the zone its time is in (the node's: Antrea's agent writes its
/// local time without a zone), `now` settles the hour a clock set back shows twice.
pub fn parse(line: &str, zone: &LocalZone, now: DateTime<Utc>) -> Result<PacketDrop, NotDrop> {
    let (fields, repeats) = split_repeats(line)?;
    let tokens: Vec<&str> = fields.split_whitespace().collect();
    if tokens.len() != TOKENS {
        return Err(NotDrop::MissingField("antrea"));
    }
    let [
        date,
        clock,
        table,
        reference,
        rule,
        direction,
        disposition,
        _priority,
        _applied_to,
        src,
        src_port,
        dst,
        dst_port,
        protocol,
        length,
        _label,
    ] = tokens[..]
    else {
        return Err(NotDrop::MissingField("antrea"));
    };
    let verdict = match disposition {
        "Drop" => Verdict::Drop,
        "Reject" => Verdict::Reject,
        _ => return Err(NotDrop::NotDropped),
    };
    let time = NaiveDateTime::parse_from_str(&format!("{date} {clock}"), "%Y/%m/%d %H:%M:%S%.f")
        .ok()
        .and_then(|naive| zone.instant(naive, now))
        .ok_or(NotDrop::BadTimestamp)?;
    let protocol = match protocol {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        "ICMP" => Protocol::Icmp,
        "IPv6-ICMP" => Protocol::Icmpv6,
        _ => return Err(NotDrop::BadField("PROTO")),
    };
    let port = |text: &str| text.parse::<u16>().map_err(|_| NotDrop::BadField("port"));
    let transport = match (src_port, dst_port) {
        (NIL, NIL) => Transport::None,
        (src, dst) => Transport::Ports {
            src: port(src)?,
            dst: port(dst)?,
        },
    };
    let address = |text: &str, field| text.parse::<IpAddr>().map_err(|_| NotDrop::BadField(field));
    let direction = match direction {
        "Ingress" => Some(PolicyDirection::Ingress),
        "Egress" => Some(PolicyDirection::Egress),
        _ => None,
    };
    Ok(PacketDrop {
        time,
        hostname: None,
        count: repeats,
        verdict: Some(verdict),
        prefix: table.to_string(),
        packet: Packet {
            length: length.parse().ok(),
            ..Packet::flow(
                address(src, "SRC")?,
                address(dst, "DST")?,
                protocol,
                transport,
            )
        },
        mark: None,
        policy: policy(reference, rule, direction),
    })
}

/// The line without its ` [N packets in D]` suffix, and N (1 without one).
fn split_repeats(line: &str) -> Result<(&str, u32), NotDrop> {
    let line = line.trim_end();
    let Some(open) = line.rfind(" [") else {
        return Ok((line, 1));
    };
    let suffix = &line[open + 2..];
    let Some(count) = suffix
        .strip_suffix(']')
        .and_then(|inner| inner.split_once(" packets in "))
        .map(|(count, _)| count)
    else {
        return Ok((line, 1));
    };
    match count.parse::<u32>() {
        Ok(count) if count > 0 => Ok((&line[..open], count)),
        _ => Err(NotDrop::BadField("packets")),
    }
}

/// `TYPE:NAMESPACE/NAME` or `TYPE:NAME` (cluster-wide kinds); the bare `K8sNetworkPolicy` of
/// Kubernetes' default isolation names no policy.
fn policy(reference: &str, rule: &str, direction: Option<PolicyDirection>) -> Option<Policy> {
    let (kind, named) = reference.split_once(':')?;
    let kind = match kind {
        "K8sNetworkPolicy" => PolicyKind::NetworkPolicy,
        "AntreaNetworkPolicy" => PolicyKind::AntreaNetworkPolicy,
        "AntreaClusterNetworkPolicy" => PolicyKind::AntreaClusterNetworkPolicy,
        "AdminNetworkPolicy" => PolicyKind::AdminNetworkPolicy,
        "BaselineAdminNetworkPolicy" => PolicyKind::BaselineAdminNetworkPolicy,
        _ => return None,
    };
    let (namespace, name) = named.split_once('/').unwrap_or(("", named));
    if name.is_empty() {
        return None;
    }
    let mut policy = Policy::new(kind, namespace, name);
    policy.rule = (rule != NIL).then(|| rule.to_string());
    policy.direction = direction;
    Some(policy)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn utc() -> LocalZone {
        LocalZone::utc()
    }

    /// Any time: only a clock set back needs `now`, and UTC never is.
    fn now() -> DateTime<Utc> {
        at("2026-12-02 12:00:00")
    }

    fn at(text: &str) -> DateTime<Utc> {
        Utc.from_utc_datetime(&NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap())
    }

    // antrea-io/antrea docs/antrea-network-policy.md ("Audit logging"), lines as published.
    const K8S_DEFAULT_DROP: &str = "2023/07/04 12:33:26.221413 IngressDefaultRule K8sNetworkPolicy <nil> Ingress Drop <nil> default/nettool 10.10.1.13 <nil> 10.10.1.7 <nil> ICMP 84 <nil>";
    const ANP_REJECT: &str = "2023/07/04 12:45:21.804416 IngressDefaultRule AntreaNetworkPolicy:default/reject-tcp-policy RejectTCPRequest Ingress Reject 16 default/nettoolv3 10.10.1.7 53646 10.10.1.14 80 TCP 60 tcp-log-label";
    const ANP_REPEATED: &str = "2023/07/03 23:24:37.424024 AntreaPolicyEgressRule AntreaNetworkPolicy:default/reject-icmp-policy RejectICMPRequest Egress Reject 14500 default/nettool 10.10.1.7 <nil> 10.10.2.3 <nil> ICMP 84 icmp-log-label [2 packets in 1.000855539s]";
    const K8S_ALLOW: &str = "2023/07/04 12:31:02.801442 IngressRule K8sNetworkPolicy:default/allow-tcp-80 <nil> Ingress Allow 190 default/nettool 10.10.1.13 57050 10.10.1.7 80 TCP 60 <nil>";

    #[test]
    fn a_reject_by_an_antrea_policy_names_it_its_rule_and_direction() {
        let drop = parse(ANP_REJECT, &utc(), now()).unwrap();
        assert_eq!(drop.verdict, Some(Verdict::Reject));
        assert_eq!(drop.time, at("2023-07-04 12:45:21.804416"));
        assert_eq!(drop.count, 1);
        assert_eq!(drop.prefix, "IngressDefaultRule");
        assert_eq!(drop.packet.src, "10.10.1.7".parse::<IpAddr>().unwrap());
        assert_eq!(drop.packet.dst, "10.10.1.14".parse::<IpAddr>().unwrap());
        assert_eq!(drop.packet.protocol, Protocol::Tcp);
        assert_eq!(
            drop.packet.transport,
            Transport::Ports {
                src: 53646,
                dst: 80
            }
        );
        assert_eq!(drop.packet.length, Some(60));
        let mut expected = Policy::new(
            PolicyKind::AntreaNetworkPolicy,
            "default",
            "reject-tcp-policy",
        );
        expected.rule = Some("RejectTCPRequest".to_string());
        expected.direction = Some(PolicyDirection::Ingress);
        assert_eq!(drop.policy, Some(expected));
    }

    #[test]
    fn kubernetes_default_isolation_is_a_drop_without_a_policy_name() {
        let drop = parse(K8S_DEFAULT_DROP, &utc(), now()).unwrap();
        assert_eq!(drop.verdict, Some(Verdict::Drop));
        assert_eq!(drop.policy, None);
        assert_eq!(drop.packet.protocol, Protocol::Icmp);
        assert_eq!(drop.packet.transport, Transport::None);
        assert_eq!(drop.packet.dst, "10.10.1.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_held_back_repeat_stands_for_its_packets() {
        let drop = parse(ANP_REPEATED, &utc(), now()).unwrap();
        assert_eq!(drop.count, 2);
        assert_eq!(drop.packet.protocol, Protocol::Icmp);
        assert_eq!(
            drop.policy.unwrap().direction,
            Some(PolicyDirection::Egress)
        );
        let many = ANP_REJECT.to_string() + " [120 packets in 1.2s]";
        assert_eq!(parse(&many, &utc(), now()).unwrap().count, 120);
    }

    #[test]
    fn allowed_connections_are_no_drops() {
        assert_eq!(parse(K8S_ALLOW, &utc(), now()), Err(NotDrop::NotDropped));
        assert!(looks_like(K8S_ALLOW));
    }

    #[test]
    fn cluster_wide_policies_ipv6_and_the_agent_zone() {
        let line = "2026/12/02 10:00:00.000001 AntreaPolicyIngressRule AntreaClusterNetworkPolicy:isolate-all DropAll Ingress Drop 44900 shop/web-0 fd00::1 40000 fd00::2 443 UDP 48 <nil>";
        let drop = parse(line, &LocalZone::fixed(3600), now()).unwrap();
        assert_eq!(drop.time, at("2026-12-02 09:00:00.000001"));
        assert_eq!(drop.packet.src, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(drop.packet.protocol, Protocol::Udp);
        let policy = drop.policy.unwrap();
        assert_eq!(policy.kind, PolicyKind::AntreaClusterNetworkPolicy);
        assert_eq!(policy.qualified_name(), "isolate-all");
        let sctp = line
            .replace("UDP", "SCTP")
            .replace("40000 fd00::2 443", "<nil> fd00::2 <nil>");
        assert_eq!(
            parse(&sctp, &utc(), now()).unwrap().packet.transport,
            Transport::None
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let missing = ANP_REJECT.replace(" tcp-log-label", "");
        assert_eq!(
            parse(&missing, &utc(), now()),
            Err(NotDrop::MissingField("antrea"))
        );
        let port = ANP_REJECT.replace("53646", "x");
        assert_eq!(parse(&port, &utc(), now()), Err(NotDrop::BadField("port")));
        let address = ANP_REJECT.replace("10.10.1.14", "10.10.1");
        assert_eq!(
            parse(&address, &utc(), now()),
            Err(NotDrop::BadField("DST"))
        );
        let protocol = ANP_REJECT.replace(" TCP ", " UnknownProtocol ");
        assert_eq!(
            parse(&protocol, &utc(), now()),
            Err(NotDrop::BadField("PROTO"))
        );
        let time = ANP_REJECT.replace("12:45:21", "25:45:21");
        assert_eq!(parse(&time, &utc(), now()), Err(NotDrop::BadTimestamp));
        let repeats = ANP_REJECT.to_string() + " [0 packets in 1s]";
        assert_eq!(
            parse(&repeats, &utc(), now()),
            Err(NotDrop::BadField("packets"))
        );
    }

    #[test]
    fn other_lines_do_not_look_like_antrea() {
        for line in [
            "2026-12-02T10:00:00.000000+00:00 node-1 kernel: calico-drop: IN=eth0",
            "Dec  2 10:00:00 node-1 kernel: x",
            "2026/12/02 10:00:00.000001 only a few tokens",
            "",
        ] {
            assert!(!looks_like(line), "{line:?}");
        }
        assert!(looks_like(ANP_REJECT));
    }

    proptest! {
        #[test]
        fn no_line_panics(line in ".{0,200}") {
            let _ = looks_like(&line);
            let _ = parse(&line, &utc(), now());
        }

        #[test]
        fn no_mutation_of_a_real_line_panics(cut in 0usize..300, junk in ".{0,20}") {
            let mut line = ANP_REPEATED.to_string();
            let cut = cut.min(line.len());
            if line.is_char_boundary(cut) {
                line.insert_str(cut, &junk);
            }
            let _ = parse(&line, &utc(), now());
        }
    }
}
