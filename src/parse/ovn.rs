//! OVN-Kubernetes' ACL audit log (`/var/log/ovn/acl-audit-log.log`), written by ovn-controller
//! (ovn-org/ovn `lib/acl-log.c`) through OVS's vlog, one line per logged packet:
//!
//! ```text
//! 2023-11-02T16:28:54.139Z|00004|acl_log(ovn_pinctrl0)|INFO|name="NP:shop:Ingress", verdict=drop, severity=alert, direction=to-lport: tcp,vlan_tci=0x0000,dl_src=..,dl_dst=..,nw_src=10.131.0.39,nw_dst=10.129.2.35,nw_tos=0,nw_ecn=0,nw_ttl=62,nw_frag=no,tp_src=58496,tp_dst=8080,tcp_flags=syn
//! ```
//!
//! The time is UTC. `verdict=drop` and `verdict=reject` are drops. The ACL's name is ovn-kubernetes'
//! (`GetACLName`): `NP:NS:Ingress|Egress` is a namespace's default deny (no policy named: the
//! NetworkPolicies of the namespace isolate the pod, none allowed this), `NP:NS:NAME:DIR:IDX` a
//! NetworkPolicy's rule, `ANP:NAME:DIR:IDX` and `BANP:NAME:DIR:IDX` (Baseline)AdminNetworkPolicy
//! rules, `EF:NS:IDX` an EgressFirewall rule; older releases name a policy `NS_NAME`. Names are cut
//! at 63 characters. The packet is an OVS flow: the protocol word (`tcp`, `udp6`, `icmp`, ...),
//! then `key=value` fields (`nw_src`/`ipv6_src`, `tp_dst`, `icmp_type`, ...).

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::NotDrop;
use crate::model::{
    Flags, Packet, PacketDrop, Policy, PolicyDirection, PolicyKind, Protocol, Transport, Verdict,
};

const MARKER: &str = "|acl_log(";

/// Whether `line` is an OVN ACL log line.
pub fn looks_like(line: &str) -> bool {
    memchr::memmem::find(line.as_bytes(), MARKER.as_bytes()).is_some()
}

/// Parses one ACL log line; `time` is the time the source knows for it (journald), else the line's.
pub fn parse(line: &str, time: Option<DateTime<Utc>>) -> Result<PacketDrop, NotDrop> {
    let marker =
        memchr::memmem::find(line.as_bytes(), MARKER.as_bytes()).ok_or(NotDrop::NoPrefix)?;
    let time = match time {
        Some(time) => time,
        None => line_time(&line[..marker])?,
    };
    let rest = &line[marker..];
    let name_start = rest.find("name=").ok_or(NotDrop::MissingField("name"))? + "name=".len();
    let (name, after_name) = quoted(&rest[name_start..]).ok_or(NotDrop::BadField("name"))?;
    let (meta, flow) = after_name
        .split_once(": ")
        .ok_or(NotDrop::MissingField("verdict"))?;
    let verdict = meta
        .split(", ")
        .find_map(|field| field.trim().strip_prefix("verdict="))
        .ok_or(NotDrop::MissingField("verdict"))?;
    let verdict = match verdict {
        "drop" => Verdict::Drop,
        "reject" => Verdict::Reject,
        _ => return Err(NotDrop::NotDropped),
    };
    Ok(PacketDrop {
        time,
        hostname: None,
        count: 1,
        verdict: Some(verdict),
        prefix: "acl_log".to_string(),
        packet: packet(flow)?,
        mark: None,
        policy: policy(&name),
    })
}

/// The vlog time at the start of the line: `2023-11-02T16:28:54.139Z`.
fn line_time(before_marker: &str) -> Result<DateTime<Utc>, NotDrop> {
    let stamp = before_marker
        .split('|')
        .next()
        .and_then(|stamp| stamp.rsplit(' ').next())
        .ok_or(NotDrop::BadTimestamp)?;
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map(|naive| naive.and_utc())
        .map_err(|_| NotDrop::BadTimestamp)
}

/// A JSON string at the start of `text` (`"..."`, escapes allowed), and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut escaped = false;
    for (at, byte) in body.bytes().enumerate() {
        match byte {
            b'\\' if !escaped => escaped = true,
            b'"' if !escaped => {
                let name = serde_json::from_str(&text[..at + 2]).ok()?;
                return Some((name, &body[at + 1..]));
            }
            _ => escaped = false,
        }
    }
    None
}

/// The packet of an OVS flow string.
fn packet(flow: &str) -> Result<Packet, NotDrop> {
    let mut fields = flow.trim().split(',');
    let word = fields.next().unwrap_or_default();
    let protocol = match word.trim_end_matches('6') {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        "icmp" if word == "icmp6" => Some(Protocol::Icmpv6),
        "icmp" => Some(Protocol::Icmp),
        // `ip`/`ipv6` with `nw_proto=N`.
        "ip" | "ipv" => None,
        _ => return Err(NotDrop::BadField("protocol")),
    };
    let (mut src, mut dst, mut number) = (None, None, None);
    let (mut tp_src, mut tp_dst, mut icmp_type, mut icmp_code, mut ttl) =
        (None, None, None, None, None);
    let mut flags = Flags::default();
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let address = |field| {
            value
                .parse::<IpAddr>()
                .map_err(|_| NotDrop::BadField(field))
        };
        let number_of = |field| value.parse::<u16>().map_err(|_| NotDrop::BadField(field));
        match key {
            "nw_src" | "ipv6_src" => src = Some(address("nw_src")?),
            "nw_dst" | "ipv6_dst" => dst = Some(address("nw_dst")?),
            "nw_proto" => {
                number = Some(
                    value
                        .parse::<u8>()
                        .map_err(|_| NotDrop::BadField("nw_proto"))?,
                )
            }
            "nw_ttl" => ttl = value.parse().ok(),
            "tp_src" => tp_src = Some(number_of("tp_src")?),
            "tp_dst" => tp_dst = Some(number_of("tp_dst")?),
            "icmp_type" | "icmpv6_type" => icmp_type = value.parse::<u8>().ok(),
            "icmp_code" | "icmpv6_code" => icmp_code = value.parse::<u8>().ok(),
            "tcp_flags" => {
                for flag in value.split('|') {
                    flags.insert(&flag.to_ascii_uppercase());
                }
            }
            _ => {}
        }
    }
    let protocol = match (protocol, number) {
        (Some(protocol), _) => protocol,
        (None, Some(number)) => Protocol::Number(number),
        (None, None) => return Err(NotDrop::MissingField("nw_proto")),
    };
    let transport = match (tp_src, tp_dst, icmp_type, icmp_code) {
        (Some(src), Some(dst), _, _) => Transport::Ports { src, dst },
        (_, _, Some(kind), Some(code)) => Transport::Icmp { kind, code },
        _ => Transport::None,
    };
    let src = src.ok_or(NotDrop::MissingField("nw_src"))?;
    let dst = dst.ok_or(NotDrop::MissingField("nw_dst"))?;
    Ok(Packet {
        ttl,
        flags,
        ..Packet::flow(src, dst, protocol, transport)
    })
}

fn direction(text: &str) -> Option<PolicyDirection> {
    match text {
        "Ingress" => Some(PolicyDirection::Ingress),
        "Egress" => Some(PolicyDirection::Egress),
        _ => None,
    }
}

/// The policy an ACL name names (see the module's text); `None` for a namespace's default deny,
/// `<unnamed>` and names of other kinds.
fn policy(name: &str) -> Option<Policy> {
    let parts: Vec<&str> = name.split(':').collect();
    let with = |mut policy: Policy, direction_text: Option<&str>, rule: Option<&str>| {
        policy.direction = direction_text.and_then(direction);
        policy.rule = rule.filter(|rule| !rule.is_empty()).map(str::to_string);
        Some(policy)
    };
    match parts[..] {
        ["NP", namespace, policy, gress, index] if !policy.is_empty() => with(
            Policy::new(PolicyKind::NetworkPolicy, namespace, policy),
            Some(gress),
            Some(index),
        ),
        ["ANP", name, gress, index] => with(
            Policy::new(PolicyKind::AdminNetworkPolicy, "", name),
            Some(gress),
            Some(index),
        ),
        ["BANP", name, gress, index] => with(
            Policy::new(PolicyKind::BaselineAdminNetworkPolicy, "", name),
            Some(gress),
            Some(index),
        ),
        // An EgressFirewall is always named `default` (one per namespace).
        ["EF", namespace, index] => {
            let mut policy = Policy::new(PolicyKind::EgressFirewall, namespace, "default");
            policy.direction = Some(PolicyDirection::Egress);
            policy.rule = Some(index.to_string());
            Some(policy)
        }
        // Older releases: `NAMESPACE_POLICY` (neither may hold `_`).
        [legacy] => {
            let (namespace, policy) = legacy.split_once('_')?;
            let valid = |part: &str| !part.is_empty() && !part.contains(['_', ' ', '<', '>']);
            (valid(namespace) && valid(policy))
                .then(|| Policy::new(PolicyKind::NetworkPolicy, namespace, policy))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    // OpenShift's "Logging for egress firewall and network policy rules" and the ovn-kubernetes
    // AdminNetworkPolicy troubleshooting guide (docs/cni-drop-logs.md), as published.
    const NAMESPACE_DENY: &str = r#"2023-11-02T16:28:54.139Z|00004|acl_log(ovn_pinctrl0)|INFO|name="NP:verify-audit-logging:Ingress", verdict=drop, severity=alert, direction=to-lport: tcp,vlan_tci=0x0000,dl_src=0a:58:0a:81:02:01,dl_dst=0a:58:0a:81:02:23,nw_src=10.131.0.39,nw_dst=10.129.2.35,nw_tos=0,nw_ecn=0,nw_ttl=62,nw_frag=no,tp_src=58496,tp_dst=8080,tcp_flags=syn"#;
    const POLICY_ALLOW: &str = r#"2023-11-02T16:49:57.909Z|00029|acl_log(ovn_pinctrl0)|INFO|name="NP:verify-audit-logging:allow-from-same-namespace:Ingress:0", verdict=allow, severity=alert, direction=to-lport: icmp,vlan_tci=0x0000,dl_src=0a:58:0a:81:02:22,dl_dst=0a:58:0a:81:02:23,nw_src=10.129.2.34,nw_dst=10.129.2.35,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=8,icmp_code=0"#;
    const ANP_DROP: &str = r#"2024-06-10T16:43:05.287Z|00087|acl_log(ovn_pinctrl0)|INFO|name="ANP:anp-tenant-log:Egress:2", verdict=drop, severity=alert, direction=from-lport: tcp,vlan_tci=0x0000,dl_src=0a:58:0a:80:02:19,dl_dst=0a:58:0a:80:02:18,nw_src=10.128.2.25,nw_dst=10.128.2.24,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=51598,tp_dst=8080,tcp_flags=syn"#;
    const LEGACY_DROP: &str = r#"2021-06-13T19:33:11.590Z|00005|acl_log(ovn_pinctrl0)|INFO|name="verify-audit-logging_deny-all", verdict=drop, severity=alert: icmp,vlan_tci=0x0000,dl_src=0a:58:0a:80:02:39,dl_dst=0a:58:0a:80:02:37,nw_src=10.128.2.57,nw_dst=10.128.2.55,nw_tos=0,nw_ecn=0,nw_ttl=64,icmp_type=8,icmp_code=0"#;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_namespace_default_deny_is_a_drop_without_a_policy_name() {
        let drop = parse(NAMESPACE_DENY, None).unwrap();
        assert_eq!(drop.verdict, Some(Verdict::Drop));
        assert_eq!(drop.time.to_rfc3339(), "2023-11-02T16:28:54.139+00:00");
        assert_eq!(drop.packet.src, ip("10.131.0.39"));
        assert_eq!(drop.packet.dst, ip("10.129.2.35"));
        assert_eq!(drop.packet.protocol, Protocol::Tcp);
        assert_eq!(
            drop.packet.transport,
            Transport::Ports {
                src: 58496,
                dst: 8080
            }
        );
        assert_eq!(drop.packet.ttl, Some(62));
        assert!(drop.packet.flags.contains("SYN"));
        assert_eq!(drop.policy, None);
    }

    #[test]
    fn an_admin_network_policy_drop_names_the_policy_rule_and_direction() {
        let drop = parse(ANP_DROP, None).unwrap();
        let mut expected = Policy::new(PolicyKind::AdminNetworkPolicy, "", "anp-tenant-log");
        expected.direction = Some(PolicyDirection::Egress);
        expected.rule = Some("2".to_string());
        assert_eq!(drop.policy, Some(expected));
    }

    #[test]
    fn older_names_and_lines_without_a_direction() {
        let drop = parse(LEGACY_DROP, None).unwrap();
        assert_eq!(
            drop.policy,
            Some(Policy::new(
                PolicyKind::NetworkPolicy,
                "verify-audit-logging",
                "deny-all"
            ))
        );
        assert_eq!(drop.packet.transport, Transport::Icmp { kind: 8, code: 0 });
    }

    #[test]
    fn allowed_packets_are_no_drops() {
        assert_eq!(parse(POLICY_ALLOW, None), Err(NotDrop::NotDropped));
        let reject = POLICY_ALLOW.replace("verdict=allow", "verdict=reject");
        let drop = parse(&reject, None).unwrap();
        assert_eq!(drop.verdict, Some(Verdict::Reject));
        let policy = drop.policy.unwrap();
        assert_eq!(
            policy.qualified_name(),
            "verify-audit-logging/allow-from-same-namespace"
        );
        assert_eq!(policy.direction, Some(PolicyDirection::Ingress));
    }

    #[test]
    fn ipv6_flows_other_protocols_and_egress_firewalls() {
        let v6 = NAMESPACE_DENY
            .replace("tcp,", "udp6,")
            .replace(
                "nw_src=10.131.0.39,nw_dst=10.129.2.35",
                "ipv6_src=fd00::1,ipv6_dst=fd00::2",
            )
            .replace(",tcp_flags=syn", "");
        let drop = parse(&v6, None).unwrap();
        assert_eq!(drop.packet.protocol, Protocol::Udp);
        assert_eq!(drop.packet.src, ip("fd00::1"));
        let icmp6 = v6
            .replace("udp6,", "icmp6,")
            .replace("tp_src=58496,tp_dst=8080", "icmpv6_type=128,icmpv6_code=0");
        let drop = parse(&icmp6, None).unwrap();
        assert_eq!(drop.packet.protocol, Protocol::Icmpv6);
        assert_eq!(
            drop.packet.transport,
            Transport::Icmp { kind: 128, code: 0 }
        );
        let gre = NAMESPACE_DENY
            .replace("tcp,", "ip,")
            .replace("tp_src=58496,tp_dst=8080,tcp_flags=syn", "nw_proto=47");
        let drop = parse(&gre, None).unwrap();
        assert_eq!(drop.packet.protocol, Protocol::Number(47));
        assert_eq!(drop.packet.transport, Transport::None);
        let firewall = NAMESPACE_DENY.replace("NP:verify-audit-logging:Ingress", "EF:shop:3");
        let policy = parse(&firewall, None).unwrap().policy.unwrap();
        assert_eq!(policy.kind, PolicyKind::EgressFirewall);
        assert_eq!(policy.qualified_name(), "shop/default");
    }

    #[test]
    fn a_time_the_source_knows_wins_and_an_unnamed_acl_names_nothing() {
        let known = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let unnamed = NAMESPACE_DENY.replace("NP:verify-audit-logging:Ingress", "<unnamed>");
        let drop = parse(&unnamed, Some(known)).unwrap();
        assert_eq!(drop.time, known);
        assert_eq!(drop.policy, None);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases = [
            (
                NAMESPACE_DENY.replace("nw_dst=10.129.2.35,", ""),
                NotDrop::MissingField("nw_dst"),
            ),
            (
                NAMESPACE_DENY.replace("10.131.0.39", "10.131.0"),
                NotDrop::BadField("nw_src"),
            ),
            (
                NAMESPACE_DENY.replace("tp_dst=8080", "tp_dst=x"),
                NotDrop::BadField("tp_dst"),
            ),
            (
                NAMESPACE_DENY.replace("tcp,vlan", "arp,vlan"),
                NotDrop::BadField("protocol"),
            ),
            (
                NAMESPACE_DENY.replace("verdict=drop, ", ""),
                NotDrop::MissingField("verdict"),
            ),
            (
                NAMESPACE_DENY.replace("name=\"NP:verify-audit-logging:Ingress\"", "name=NP"),
                NotDrop::BadField("name"),
            ),
            (
                NAMESPACE_DENY.replace("2023-11-02T", "2023-13-02T"),
                NotDrop::BadTimestamp,
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(&line, None), Err(expected), "{line}");
        }
        assert!(!looks_like(
            "2026-12-02T10:00:00Z|00001|vconn|INFO|connected"
        ));
    }

    proptest! {
        #[test]
        fn no_line_panics(line in ".{0,200}") {
            let _ = parse(&line, None);
        }

        #[test]
        fn no_mutation_of_a_real_line_panics(cut in 0usize..400, junk in ".{0,20}") {
            let mut line = ANP_DROP.to_string();
            let cut = cut.min(line.len());
            if line.is_char_boundary(cut) {
                line.insert_str(cut, &junk);
            }
            let _ = parse(&line, None);
        }
    }
}
