//! One pod end of a drop, and what it makes of it: the name of its Event (stable across runs: a
//! replay must raise the same Event), of its roll-up, and its Event's text.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Aggregator, MAX_POD_NAME_CHARS};
use crate::checksum::checksum;
use crate::events::message::{event_message, with_isolation, with_policy};
use crate::events::storm::Group;
use crate::model::{Direction, Endpoint, Located, PodIdentifier, PodInfo, Transport};

impl Aggregator {
    /// The start of the time bucket of the side's drop, in milliseconds since the Unix epoch.
    pub(super) fn bucket_start(&self, side: &Side) -> i64 {
        let millis = side.located.drop.time.timestamp_millis();
        millis.div_euclid(self.interval_ms) * self.interval_ms
    }

    /// The roll-up Event of `group`: `{pod name}.{checksum}` like any other, over what makes a group.
    pub(super) fn rollup_name(&self, side: &Side, group: &Group) -> String {
        let direction = match group.direction {
            Direction::Sending => "sending",
            Direction::Receiving => "receiving",
        };
        let key = format!(
            "{}\0{}\0{direction}\0rollup\0{}",
            self.node_name, group.pod_uid, group.bucket_start_ms
        );
        event_name_from(&side.pod.name, checksum(key.as_bytes()))
    }

    /// `{pod name}.{checksum}`, the checksum over everything that makes drops the same Event.
    pub(super) fn event_name(&self, side: &Side) -> String {
        let packet = &side.located.drop.packet;
        let bucket_start = self.bucket_start(side);
        let direction = match side.direction {
            Direction::Sending => "sending",
            Direction::Receiving => "receiving",
        };
        let transport = match packet.transport {
            Transport::Ports { dst, .. } => dst.to_string(),
            Transport::Icmp { kind, code } => format!("{kind}/{code}"),
            Transport::None => String::new(),
        };
        let mut key = format!(
            "{}\0{}\0{direction}\0{}\0{transport}\0{}\0{bucket_start}",
            self.node_name,
            side.pod.uid,
            side.peer_ip,
            packet.protocol.name(),
        );
        // Drops by different policies are different Events; without a policy the name is the one
        // earlier versions gave (a restart across an upgrade raises the same Events).
        if let Some(policy) = &side.located.drop.policy {
            let kind = policy.kind.name();
            key.push_str(&format!("\0{kind}\0{}\0{}", policy.namespace, policy.name));
        }
        event_name_from(&side.pod.name, checksum(key.as_bytes()))
    }
}

/// The text of the side's own Event (not a roll-up).
pub(super) fn own_message(side: &Side, identifier: PodIdentifier) -> String {
    let packet = &side.located.drop.packet;
    let message = with_policy(
        event_message(
            side.direction,
            side.peer,
            side.peer_ip,
            packet.protocol,
            packet.transport,
            identifier,
        ),
        side.located.drop.policy.as_ref(),
    );
    // Not part of the Event's name: a replay after the policies changed must still find the Event
    // that counted it.
    with_isolation(message, &side.pod.namespace, side.isolating())
}

/// Whether `peer` is an external IP named by itself (no name found, or not yet).
pub(super) fn named_by_its_ip(peer: &Endpoint) -> bool {
    match peer {
        Endpoint::External { ip, name } => name.parse::<IpAddr>().ok() == Some(*ip),
        _ => false,
    }
}

/// `{pod name}.{hash}`, the pod name cut to fit a name's 253 characters.
fn event_name_from(pod_name: &str, hash: u64) -> String {
    let pod_name: String = pod_name.chars().take(MAX_POD_NAME_CHARS).collect();
    // A cut name may end in '-' or '.', which would make "x-.hash" or "x..hash": not a valid name.
    let pod_name = pod_name.trim_end_matches(['-', '.']);
    format!("{pod_name}.{hash:016x}")
}

/// One pod end of a drop.
pub(super) struct Side<'a> {
    pub(super) direction: Direction,
    pub(super) pod: &'a Arc<PodInfo>,
    pub(super) peer: &'a Endpoint,
    pub(super) peer_ip: IpAddr,
    pub(super) located: &'a Located,
}

impl Side<'_> {
    /// The NetworkPolicies that isolate the pod in this direction.
    pub(super) fn isolating(&self) -> &Vec<String> {
        match self.direction {
            Direction::Sending => &self.located.isolation.sender,
            Direction::Receiving => &self.located.isolation.receiver,
        }
    }
}

impl<'a> Side<'a> {
    pub(super) fn new(
        direction: Direction,
        pod: &'a Arc<PodInfo>,
        peer: &'a Endpoint,
        peer_ip: IpAddr,
        located: &'a Located,
    ) -> Side<'a> {
        Side {
            direction,
            pod,
            peer,
            peer_ip,
            located,
        }
    }
}
