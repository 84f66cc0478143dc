//! The pod index: IP → pod, filled by the Kubernetes watch (in `kube.rs`), read by the resolve stage.
//!
//! Several pods may claim one IP at once: a finished or terminating pod keeps its IP in its status
//! after the IP was handed to a new pod, and hostNetwork pods all share their node's IP. The index keeps
//! every claim and answers with the one most likely to have sent or received the packet (see `Rank`).
//!
//! Readers take a read lock for one hash lookup and an `Arc` clone; a watch event holds the write lock
//! for a few map operations, and a full relist builds its new map outside the lock and only swaps it in.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::metrics::Metrics;
use crate::model::{Endpoint, PodInfo};
use crate::stop::Stop;

/// A pod's lifecycle phase, reduced to what decides who owns an IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PodPhase {
    Pending,
    Running,
    /// `Succeeded`, `Failed` or `Unknown`: the pod may still list an IP that now belongs to another.
    Finished,
}

impl PodPhase {
    /// The phase for the API's `status.phase`; a pod without one yet is `Pending`.
    pub fn from_status(phase: Option<&str>) -> PodPhase {
        match phase {
            None | Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some(_) => PodPhase::Finished,
        }
    }
}

/// A pod as the watch reports it: what the index keeps, plus what decides who owns a shared IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRecord {
    pub info: PodInfo,
    /// `status.podIPs` (and `status.podIP`); duplicates are ignored.
    pub ips: Vec<IpAddr>,
    pub phase: PodPhase,
    /// `metadata.deletionTimestamp` is set: the pod is terminating.
    pub deleting: bool,
}

/// The IP → pod map, shared by the watch (writer) and the resolve stage (reader).
pub struct PodIndex {
    state: RwLock<State>,
    synced: AtomicBool,
    /// Dropped by `mark_synced`, which disconnects `synced_rx` and so wakes every `wait_synced`.
    synced_tx: Mutex<Option<Sender<()>>>,
    synced_rx: Receiver<()>,
    metrics: Arc<Metrics>,
}

impl PodIndex {
    pub fn new(metrics: Arc<Metrics>) -> PodIndex {
        let (synced_tx, synced_rx) = bounded(0);
        metrics.pod_index_size.set(0);
        metrics.pod_index_synced.set(0);
        PodIndex {
            state: RwLock::new(State::default()),
            synced: AtomicBool::new(false),
            synced_tx: Mutex::new(Some(synced_tx)),
            synced_rx,
            metrics,
        }
    }

    /// Adds a pod or replaces what the index knew of it (by uid), including its IPs.
    pub fn upsert(&self, record: PodRecord) {
        let entry = PodEntry::from(record);
        let mut state = self.write();
        state.upsert(entry);
        self.metrics.pod_index_size.set(gauge(state.by_ip.len()));
    }

    /// Forgets a pod (by uid); its IPs go to the pods that still claim them, if any.
    pub fn remove(&self, uid: &str) {
        let mut state = self.write();
        state.remove(uid);
        self.metrics.pod_index_size.set(gauge(state.by_ip.len()));
    }

    /// Replaces the whole index with a full list of pods (a relist), then marks it synced. Readers see
    /// either the old index or the new one, never a mix, and are not held up while the new one is built.
    pub fn replace_all(&self, records: Vec<PodRecord>) {
        let mut fresh = State::with_capacity(&records);
        for record in records {
            fresh.upsert(PodEntry::from(record));
        }
        let size = fresh.by_ip.len();
        let old = {
            let mut state = self.write();
            std::mem::replace(&mut *state, fresh)
        };
        self.metrics.pod_index_size.set(gauge(size));
        // Freeing 100,000 pods takes a while: not under the lock.
        drop(old);
        self.mark_synced();
    }

    /// Declares the index complete (the initial list has been applied). It stays synced.
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
        self.metrics.pod_index_synced.set(1);
        self.synced_tx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Blocks until the index is synced (true) or the stop is triggered first (false).
    pub fn wait_synced(&self, stop: &Stop) -> bool {
        if self.is_synced() {
            return true;
        }
        // Nothing is ever sent on either channel: each becomes ready only by disconnection.
        crossbeam_channel::select! {
            recv(self.synced_rx) -> _ => {}
            recv(stop.receiver()) -> _ => {}
        }
        self.is_synced()
    }

    /// Who uses `ip`: the pod with the strongest claim on it, or its node when that is a hostNetwork pod.
    pub fn lookup(&self, ip: IpAddr) -> Option<Endpoint> {
        let state = self.read();
        Some(state.by_ip.get(ip)?.best().endpoint(ip))
    }

    /// The number of IPs indexed.
    pub fn len(&self) -> usize {
        self.read().by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic under the write lock leaves at most one pod half-updated: keep serving.
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Who uses `ip` among `records` (the pods an on-demand lookup found with it), ranked as the index
/// ranks the pods claiming one IP.
pub fn best_claim(records: Vec<PodRecord>, ip: IpAddr) -> Option<Endpoint> {
    let mut state = State::default();
    for record in records {
        state.upsert(PodEntry::from(record));
    }
    Some(state.by_ip.get(ip)?.best().endpoint(ip))
}

fn gauge(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

#[derive(Default)]
struct State {
    /// Every indexed pod, found by uid (the entry's own uid is the key: no second copy of it).
    pods: HashSet<PodEntry>,
    by_ip: ByIp,
}

impl State {
    /// Room for `records` without rehashing while they are added.
    fn with_capacity(records: &[PodRecord]) -> State {
        let v4 = records
            .iter()
            .flat_map(|record| &record.ips)
            .filter(|ip| ip.is_ipv4())
            .count();
        let v6 = records.iter().map(|record| record.ips.len()).sum::<usize>() - v4;
        State {
            pods: HashSet::with_capacity(records.len()),
            by_ip: ByIp {
                v4: HashMap::with_capacity(v4),
                v6: HashMap::with_capacity(v6),
            },
        }
    }

    fn upsert(&mut self, entry: PodEntry) {
        self.remove(&entry.pod.uid);
        if entry.ips.is_empty() {
            return;
        }
        let claim = Claim {
            pod: entry.pod.clone(),
            rank: entry.rank,
        };
        for ip in entry.ips.iter() {
            self.by_ip.add(*ip, claim.clone());
        }
        self.pods.insert(entry);
    }

    fn remove(&mut self, uid: &str) {
        let Some(old) = self.pods.take(uid) else {
            return;
        };
        for ip in old.ips.iter() {
            self.by_ip.remove(*ip, &old.pod);
        }
    }
}

/// IP → the pods claiming it, in one map per family: an `IpAddr` key takes 17 bytes (24 with padding)
/// where an IPv4 address needs 4, and most pod IPs are IPv4.
#[derive(Default)]
struct ByIp {
    v4: HashMap<Ipv4Addr, Claims>,
    v6: HashMap<Ipv6Addr, Claims>,
}

impl ByIp {
    fn get(&self, ip: IpAddr) -> Option<&Claims> {
        match ip {
            IpAddr::V4(ip) => self.v4.get(&ip),
            IpAddr::V6(ip) => self.v6.get(&ip),
        }
    }

    fn add(&mut self, ip: IpAddr, claim: Claim) {
        match ip {
            IpAddr::V4(ip) => add_claim(&mut self.v4, ip, claim),
            IpAddr::V6(ip) => add_claim(&mut self.v6, ip, claim),
        }
    }

    /// Removes `pod`'s claim on `ip`, and `ip` when no claim is left.
    fn remove(&mut self, ip: IpAddr, pod: &Arc<PodInfo>) {
        match ip {
            IpAddr::V4(ip) => remove_claim(&mut self.v4, ip, pod),
            IpAddr::V6(ip) => remove_claim(&mut self.v6, ip, pod),
        }
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

fn add_claim<K: Hash + Eq>(map: &mut HashMap<K, Claims>, ip: K, claim: Claim) {
    match map.entry(ip) {
        Entry::Occupied(mut claims) => claims.get_mut().push(claim),
        Entry::Vacant(place) => {
            place.insert(Claims::One(claim));
        }
    }
}

fn remove_claim<K: Hash + Eq>(map: &mut HashMap<K, Claims>, ip: K, pod: &Arc<PodInfo>) {
    if let Entry::Occupied(mut claims) = map.entry(ip) {
        if claims.get_mut().remove(pod) {
            claims.remove();
        }
    }
}

/// A pod in the index. Hashed and compared by uid, and borrowable as it, so that the set of entries is
/// also the map from uid to entry.
struct PodEntry {
    pod: Arc<PodInfo>,
    ips: Box<[IpAddr]>,
    rank: Rank,
}

impl From<PodRecord> for PodEntry {
    fn from(record: PodRecord) -> PodEntry {
        let mut ips = record.ips;
        ips.sort_unstable();
        ips.dedup();
        let mut info = record.info;
        // Kept for the pod's lifetime: spare capacity would be paid 100,000 times over.
        for text in [
            &mut info.namespace,
            &mut info.name,
            &mut info.uid,
            &mut info.node,
        ] {
            text.shrink_to_fit();
        }
        if let Some(label) = &mut info.identifier_label {
            label.shrink_to_fit();
        }
        PodEntry {
            rank: Rank::new(record.phase, record.deleting, info.host_network),
            pod: Arc::new(info),
            ips: ips.into_boxed_slice(),
        }
    }
}

impl Borrow<str> for PodEntry {
    fn borrow(&self) -> &str {
        &self.pod.uid
    }
}

impl Hash for PodEntry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash as the `str` it borrows as.
        self.pod.uid.as_str().hash(state);
    }
}

impl PartialEq for PodEntry {
    fn eq(&self, other: &PodEntry) -> bool {
        self.pod.uid == other.pod.uid
    }
}

impl Eq for PodEntry {}

/// How strong a pod's claim on its IPs is; lower wins. Liveness first: a pod that is running and not
/// terminating, then one that is starting, then any other (finished, terminating). Among equally live
/// claims a pod with an IP of its own beats hostNetwork pods, whose IP is really the node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank(u8);

impl Rank {
    fn new(phase: PodPhase, deleting: bool, host_network: bool) -> Rank {
        let liveness = match (deleting, phase) {
            (false, PodPhase::Running) => 0,
            (false, PodPhase::Pending) => 1,
            _ => 2,
        };
        Rank(liveness << 1 | u8::from(host_network))
    }

    fn host_network(self) -> bool {
        self.0 & 1 == 1
    }
}

#[derive(Clone)]
struct Claim {
    pod: Arc<PodInfo>,
    rank: Rank,
}

impl Claim {
    /// The pod, or its node when the pod is a hostNetwork one (the IP is the node's).
    fn endpoint(&self, ip: IpAddr) -> Endpoint {
        if self.rank.host_network() {
            Endpoint::Node {
                ip,
                node: self.pod.node.clone(),
            }
        } else {
            Endpoint::Pod(self.pod.clone())
        }
    }
}

/// The pods claiming one IP, in the order they were last added or updated. Nearly always one: kept inline, without a `Vec`.
enum Claims {
    One(Claim),
    Many(Vec<Claim>),
}

impl Claims {
    fn push(&mut self, claim: Claim) {
        match self {
            Claims::One(first) => *self = Claims::Many(vec![first.clone(), claim]),
            Claims::Many(claims) => claims.push(claim),
        }
    }

    /// Removes `pod`'s claim; returns true when no claim is left.
    fn remove(&mut self, pod: &Arc<PodInfo>) -> bool {
        match self {
            Claims::One(claim) => Arc::ptr_eq(&claim.pod, pod),
            Claims::Many(claims) => {
                claims.retain(|claim| !Arc::ptr_eq(&claim.pod, pod));
                match claims.as_slice() {
                    [] => true,
                    [only] => {
                        *self = Claims::One(only.clone());
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    /// The strongest claim; on a tie the one updated last, most likely the pod the IP went to last.
    fn best(&self) -> &Claim {
        match self {
            Claims::One(claim) => claim,
            Claims::Many(claims) => claims
                .iter()
                .rev()
                .min_by_key(|claim| claim.rank)
                .expect("an IP with several claims has at least one"),
        }
    }
}

#[cfg(test)]
mod tests;
