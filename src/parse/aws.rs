//! The AWS VPC CNI network policy agent's flow log (`/var/log/aws-routed-eni/network-policy-agent.log`
//! with `--enable-policy-event-logs=true`): zap JSON lines, of which those with a `msg` starting
//! `Flow Info:` are packets (aws/aws-network-policy-agent `pkg/ebpf/events/events.go`; samples in
//! `docs/cni-drop-logs.md`). Three generations of the same record:
//!
//! ```text
//! {"level":"info","ts":"2023-10-18T09:52:23.319Z","logger":"ebpf-client","msg":"Flow Info:  ","Src IP":"10.255.7.42","Src Port":7979,"Dest IP":"10.255.7.152","Dest Port":33140,"Proto":"TCP","Verdict":"DENY"}
//! {"level":"info","ts":"2026-04-13T21:18:46.888Z","msg":"Flow Info: Src IP: 10.0.1.28 Src Port: 55484 Dest IP: 10.0.1.132 Dest Port: 80 Proto TCP Verdict DENY Direction egress"}
//! {"level":"info","ts":"2026-05-31T21:57:47.020Z","msg":"Flow Info: Src IP: 172.20.0.1 Src Port: 443 Dest IP: 10.0.0.5 Dest Port: 42188 Proto: TCP Verdict: DENY Direction: ingress Tier: NETWORK_POLICY"}
//! ```
//!
//! `Verdict DENY` is a drop; `ACCEPT` and `EXPIRED/DELETED` are not. The agent does not name the
//! policy (its issue #664): such drops get the NetworkPolicies that isolate the pod, like a plain
//! LOG line.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NotDrop;
use crate::model::{Packet, PacketDrop, Protocol, Transport, Verdict};

const FLOW_INFO: &str = "Flow Info:";

/// Whether `line` may be a flow record: a JSON object with `Flow Info:` in it.
pub fn looks_like(line: &str) -> bool {
    line.starts_with('{') && memchr::memmem::find(line.as_bytes(), FLOW_INFO.as_bytes()).is_some()
}

/// The fields of a flow record, from the JSON fields (first generation) or the message's text.
#[derive(Default)]
struct Flow {
    src: Option<String>,
    src_port: Option<String>,
    dst: Option<String>,
    dst_port: Option<String>,
    protocol: Option<String>,
    verdict: Option<String>,
}

/// Parses one line of the agent's log.
pub fn parse(line: &str) -> Result<PacketDrop, NotDrop> {
    if !looks_like(line) {
        return Err(NotDrop::NoPrefix);
    }
    let record: Value = serde_json::from_str(line).map_err(|_| NotDrop::BadField("json"))?;
    let message = record["msg"].as_str().unwrap_or_default();
    let Some(text) = message.strip_prefix(FLOW_INFO) else {
        return Err(NotDrop::NoPrefix);
    };
    let field = |key: &str| match &record[key] {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let mut flow = Flow {
        src: field("Src IP"),
        src_port: field("Src Port"),
        dst: field("Dest IP"),
        dst_port: field("Dest Port"),
        protocol: field("Proto"),
        verdict: field("Verdict"),
    };
    if flow.src.is_none() {
        flow = from_text(text);
    }
    match flow.verdict.as_deref() {
        Some("DENY") => {}
        Some(_) => return Err(NotDrop::NotDropped),
        None => return Err(NotDrop::MissingField("Verdict")),
    }
    let time = record["ts"]
        .as_str()
        .and_then(|ts| DateTime::parse_from_rfc3339(ts).ok())
        .ok_or(NotDrop::BadTimestamp)?
        .with_timezone(&Utc);
    let address = |text: Option<String>, field| {
        text.ok_or(NotDrop::MissingField(field))?
            .parse::<IpAddr>()
            .map_err(|_| NotDrop::BadField(field))
    };
    let protocol = match flow.protocol.as_deref() {
        Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some("ICMP") => Protocol::Icmp,
        Some("ICMPv6") => Protocol::Icmpv6,
        Some(_) => return Err(NotDrop::BadField("Proto")),
        None => return Err(NotDrop::MissingField("Proto")),
    };
    let port = |text: Option<String>, field| {
        text.ok_or(NotDrop::MissingField(field))?
            .parse::<u16>()
            .map_err(|_| NotDrop::BadField(field))
    };
    let transport = match protocol {
        Protocol::Tcp | Protocol::Udp | Protocol::Sctp => Transport::Ports {
            src: port(flow.src_port, "Src Port")?,
            dst: port(flow.dst_port, "Dest Port")?,
        },
        _ => Transport::None,
    };
    Ok(PacketDrop {
        time,
        hostname: None,
        count: 1,
        // The agent's eBPF program drops what it denies.
        verdict: Some(Verdict::Drop),
        prefix: "Flow Info".to_string(),
        packet: Packet::flow(
            address(flow.src, "Src IP")?,
            address(flow.dst, "Dest IP")?,
            protocol,
            transport,
        ),
        mark: None,
        policy: None,
    })
}

/// The fields of the message text: `Src IP: A Src Port: N Dest IP: B Dest Port: M Proto[:] P
/// Verdict[:] V ...` (the colons after the last keys differ between IPv4 and IPv6 records).
fn from_text(text: &str) -> Flow {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|word| word.trim_end_matches([':', ',']))
        .collect();
    let mut flow = Flow::default();
    let mut at = 0;
    while at < words.len() {
        let value = |skip: usize| words.get(at + skip).map(|value| value.to_string());
        let taken = match (words[at], words.get(at + 1).copied()) {
            ("Src", Some("IP")) => (&mut flow.src, 2),
            ("Src", Some("Port")) => (&mut flow.src_port, 2),
            ("Dest", Some("IP")) => (&mut flow.dst, 2),
            ("Dest", Some("Port")) => (&mut flow.dst_port, 2),
            ("Proto", _) => (&mut flow.protocol, 1),
            ("Verdict", _) => (&mut flow.verdict, 1),
            _ => {
                at += 1;
                continue;
            }
        };
        let (slot, skip) = taken;
        *slot = value(skip);
        at += skip + 1;
    }
    flow
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const STRUCTURED: &str = r#"{"level":"info","ts":"2023-10-18T09:52:23.319Z","logger":"ebpf-client","msg":"Flow Info:  ","Src IP":"10.255.7.42","Src Port":7979,"Dest IP":"10.255.7.152","Dest Port":33140,"Proto":"TCP","Verdict":"DENY"}"#;
    const TEXT_V4: &str = r#"{"level":"info","ts":"2026-04-13T21:18:46.888Z","caller":"runtime/asm_amd64.s:1700","msg":"Flow Info: Src IP: 10.0.1.28 Src Port: 55484 Dest IP: 10.0.1.132 Dest Port: 80 Proto TCP Verdict DENY Direction egress, Tier NETWORK_POLICY"}"#;
    const TEXT_V6: &str = r#"{"level":"info","ts":"2026-05-31T21:57:47.020Z","msg":"Flow Info: Src IP: fd00::1 Src Port: 443 Dest IP: fd00::5 Dest Port: 42188 Proto: UDP Verdict: DENY Direction: ingress Tier: NETWORK_POLICY"}"#;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_three_generations_of_a_deny_record_are_drops() {
        let drop = parse(STRUCTURED).unwrap();
        assert_eq!(drop.time.to_rfc3339(), "2023-10-18T09:52:23.319+00:00");
        assert_eq!(
            (drop.packet.src, drop.packet.dst),
            (ip("10.255.7.42"), ip("10.255.7.152"))
        );
        assert_eq!(
            drop.packet.transport,
            Transport::Ports {
                src: 7979,
                dst: 33140
            }
        );
        assert_eq!(drop.policy, None);

        let drop = parse(TEXT_V4).unwrap();
        assert_eq!(
            (drop.packet.src, drop.packet.dst),
            (ip("10.0.1.28"), ip("10.0.1.132"))
        );
        assert_eq!(drop.packet.protocol, Protocol::Tcp);
        assert_eq!(
            drop.packet.transport,
            Transport::Ports {
                src: 55484,
                dst: 80
            }
        );

        let drop = parse(TEXT_V6).unwrap();
        assert_eq!(
            (drop.packet.src, drop.packet.dst),
            (ip("fd00::1"), ip("fd00::5"))
        );
        assert_eq!(drop.packet.protocol, Protocol::Udp);
        assert_eq!(
            drop.packet.transport,
            Transport::Ports {
                src: 443,
                dst: 42188
            }
        );
    }

    #[test]
    fn accepted_and_expired_flows_and_other_lines_are_no_drops() {
        assert_eq!(
            parse(&TEXT_V4.replace("DENY", "ACCEPT")),
            Err(NotDrop::NotDropped)
        );
        assert_eq!(
            parse(&STRUCTURED.replace("DENY", "EXPIRED/DELETED")),
            Err(NotDrop::NotDropped)
        );
        let operational =
            r#"{"level":"info","ts":"2026-05-31T21:57:47.020Z","msg":"Pod attached","pod":"web"}"#;
        assert_eq!(parse(operational), Err(NotDrop::NoPrefix));
        assert!(!looks_like(operational));
        assert!(looks_like(TEXT_V6));
    }

    #[test]
    fn icmp_has_no_ports_and_malformed_records_say_what_is_wrong() {
        let icmp = TEXT_V4.replace("Proto TCP", "Proto ICMP");
        assert_eq!(parse(&icmp).unwrap().packet.transport, Transport::None);
        let cases = [
            (
                TEXT_V4.replace("10.0.1.28", "10.0.1"),
                NotDrop::BadField("Src IP"),
            ),
            (
                TEXT_V4.replace("Dest Port: 80", "Dest Port: x"),
                NotDrop::BadField("Dest Port"),
            ),
            (
                TEXT_V4.replace("Proto TCP", "Proto GRE"),
                NotDrop::BadField("Proto"),
            ),
            (
                TEXT_V4.replace(" Verdict DENY", ""),
                NotDrop::MissingField("Verdict"),
            ),
            (
                TEXT_V4.replace("2026-04-13T", "2026-13-13T"),
                NotDrop::BadTimestamp,
            ),
            (TEXT_V4.replace("}", ""), NotDrop::BadField("json")),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(&line), Err(expected), "{line}");
        }
    }

    proptest! {
        #[test]
        fn no_line_panics(line in ".{0,200}") {
            let _ = parse(&line);
        }

        #[test]
        fn no_mutation_of_a_real_line_panics(cut in 0usize..260, junk in ".{0,20}") {
            let mut line = TEXT_V6.to_string();
            let cut = cut.min(line.len());
            if line.is_char_boundary(cut) {
                line.insert_str(cut, &junk);
            }
            let _ = parse(&line);
        }
    }
}
