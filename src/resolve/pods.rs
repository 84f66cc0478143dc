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
        let claim = state.by_ip.get(ip)?.best();
        Some(if claim.rank.host_network() {
            Endpoint::Node {
                ip,
                node: claim.pod.node.clone(),
            }
        } else {
            Endpoint::Pod(claim.pod.clone())
        })
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
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(namespace: &str, name: &str, uid: &str, host_network: bool) -> PodInfo {
        PodInfo {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            node: "node-7".to_string(),
            host_network,
            identifier_label: None,
        }
    }

    fn record(name: &str, uid: &str, ips: &[&str], phase: PodPhase) -> PodRecord {
        PodRecord {
            info: info("shop", name, uid, false),
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            phase,
            deleting: false,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn index() -> (PodIndex, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (PodIndex::new(metrics.clone()), metrics)
    }

    fn pod_named(index: &PodIndex, address: &str) -> Option<String> {
        match index.lookup(ip(address)) {
            Some(Endpoint::Pod(pod)) => Some(pod.name.clone()),
            other => panic!("{address}: expected a pod, got {other:?}"),
        }
    }

    #[test]
    fn a_pod_is_found_by_its_ipv4_and_its_ipv6_address() {
        let (index, metrics) = index();
        index.upsert(record(
            "frontend-7d9f8c6b5d-x2x9q",
            "uid-1",
            &["10.1.2.3", "fd00::1:2:3"],
            PodPhase::Running,
        ));
        let expected = Endpoint::Pod(Arc::new(info(
            "shop",
            "frontend-7d9f8c6b5d-x2x9q",
            "uid-1",
            false,
        )));
        assert_eq!(index.lookup(ip("10.1.2.3")), Some(expected.clone()));
        assert_eq!(index.lookup(ip("fd00::1:2:3")), Some(expected));
        assert_eq!(index.lookup(ip("10.1.2.4")), None);
        assert_eq!(index.len(), 2);
        assert_eq!(metrics.pod_index_size.get(), 2);
    }

    #[test]
    fn lookups_share_the_stored_pod_instead_of_copying_it() {
        let (index, _) = index();
        index.upsert(record("api-0", "uid-1", &["10.1.2.3"], PodPhase::Running));
        let (Some(Endpoint::Pod(first)), Some(Endpoint::Pod(second))) =
            (index.lookup(ip("10.1.2.3")), index.lookup(ip("10.1.2.3")))
        else {
            panic!("expected the pod twice");
        };
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_host_network_pod_is_its_node() {
        let (index, _) = index();
        index.upsert(PodRecord {
            info: info("kube-system", "kube-proxy-8xk2p", "uid-1", true),
            ips: vec![ip("192.168.0.7")],
            phase: PodPhase::Running,
            deleting: false,
        });
        assert_eq!(
            index.lookup(ip("192.168.0.7")),
            Some(Endpoint::Node {
                ip: ip("192.168.0.7"),
                node: "node-7".to_string()
            })
        );
    }

    #[test]
    fn a_pod_wins_over_a_host_network_pod_on_the_same_ip() {
        for pod_first in [true, false] {
            let (index, _) = index();
            let pod = record("api-0", "uid-pod", &["10.1.2.3"], PodPhase::Running);
            let host = PodRecord {
                info: info("kube-system", "kube-proxy-8xk2p", "uid-host", true),
                ips: vec![ip("10.1.2.3")],
                phase: PodPhase::Running,
                deleting: false,
            };
            if pod_first {
                index.upsert(pod);
                index.upsert(host);
            } else {
                index.upsert(host);
                index.upsert(pod);
            }
            assert_eq!(pod_named(&index, "10.1.2.3"), Some("api-0".to_string()));
            assert_eq!(index.len(), 1);
        }
    }

    #[test]
    fn a_reused_ip_belongs_to_the_running_pod_not_the_finished_one() {
        for finished_first in [true, false] {
            let (index, _) = index();
            let finished = record("job-28f9x", "uid-old", &["10.1.2.3"], PodPhase::Finished);
            let running = record("api-0", "uid-new", &["10.1.2.3"], PodPhase::Running);
            if finished_first {
                index.upsert(finished);
                index.upsert(running);
            } else {
                index.upsert(running);
                index.upsert(finished);
            }
            assert_eq!(pod_named(&index, "10.1.2.3"), Some("api-0".to_string()));
        }
    }

    #[test]
    fn a_deleting_pod_loses_to_a_live_one() {
        for deleting_first in [true, false] {
            let (index, _) = index();
            let mut deleting = record("api-0", "uid-old", &["10.1.2.3"], PodPhase::Running);
            deleting.deleting = true;
            let pending = record("api-1", "uid-new", &["10.1.2.3"], PodPhase::Pending);
            if deleting_first {
                index.upsert(deleting);
                index.upsert(pending);
            } else {
                index.upsert(pending);
                index.upsert(deleting);
            }
            assert_eq!(pod_named(&index, "10.1.2.3"), Some("api-1".to_string()));
        }
    }

    #[test]
    fn the_last_claim_left_on_an_ip_wins_whatever_its_phase() {
        let (index, _) = index();
        index.upsert(record(
            "job-28f9x",
            "uid-old",
            &["10.1.2.3"],
            PodPhase::Finished,
        ));
        index.upsert(record("api-0", "uid-new", &["10.1.2.3"], PodPhase::Running));
        index.remove("uid-new");
        assert_eq!(pod_named(&index, "10.1.2.3"), Some("job-28f9x".to_string()));
    }

    #[test]
    fn upsert_with_changed_ips_drops_the_old_ones() {
        let (index, metrics) = index();
        index.upsert(record(
            "api-0",
            "uid-1",
            &["10.1.2.3", "fd00::3"],
            PodPhase::Running,
        ));
        index.upsert(record("api-0", "uid-1", &["10.1.9.9"], PodPhase::Running));
        assert_eq!(index.lookup(ip("10.1.2.3")), None);
        assert_eq!(index.lookup(ip("fd00::3")), None);
        assert_eq!(pod_named(&index, "10.1.9.9"), Some("api-0".to_string()));
        assert_eq!(index.len(), 1);
        assert_eq!(metrics.pod_index_size.get(), 1);
    }

    #[test]
    fn a_pod_without_ips_is_not_indexed() {
        let (index, _) = index();
        index.upsert(record("api-0", "uid-1", &["10.1.2.3"], PodPhase::Running));
        index.upsert(record("api-0", "uid-1", &[], PodPhase::Finished));
        assert_eq!(index.lookup(ip("10.1.2.3")), None);
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn remove_forgets_the_pod_and_its_ips() {
        let (index, metrics) = index();
        index.upsert(record(
            "api-0",
            "uid-1",
            &["10.1.2.3", "fd00::3"],
            PodPhase::Running,
        ));
        index.upsert(record("api-1", "uid-2", &["10.1.2.4"], PodPhase::Running));
        index.remove("uid-1");
        index.remove("uid-unknown");
        assert_eq!(index.lookup(ip("10.1.2.3")), None);
        assert_eq!(index.lookup(ip("fd00::3")), None);
        assert_eq!(pod_named(&index, "10.1.2.4"), Some("api-1".to_string()));
        assert_eq!(index.len(), 1);
        assert_eq!(metrics.pod_index_size.get(), 1);
    }

    #[test]
    fn replace_all_drops_pods_missing_from_the_snapshot_and_marks_synced() {
        let (index, metrics) = index();
        index.upsert(record(
            "gone-0",
            "uid-gone",
            &["10.1.2.3"],
            PodPhase::Running,
        ));
        index.upsert(record("api-0", "uid-1", &["10.1.2.4"], PodPhase::Running));
        assert!(!index.is_synced());
        assert_eq!(metrics.pod_index_synced.get(), 0);

        index.replace_all(vec![
            record("api-0", "uid-1", &["10.1.2.5"], PodPhase::Running),
            record("db-0", "uid-2", &["10.1.2.6", "fd00::6"], PodPhase::Pending),
        ]);

        assert_eq!(index.lookup(ip("10.1.2.3")), None);
        assert_eq!(index.lookup(ip("10.1.2.4")), None);
        assert_eq!(pod_named(&index, "10.1.2.5"), Some("api-0".to_string()));
        assert_eq!(pod_named(&index, "fd00::6"), Some("db-0".to_string()));
        assert_eq!(index.len(), 3);
        assert!(index.is_synced());
        assert_eq!(metrics.pod_index_synced.get(), 1);
        assert_eq!(metrics.pod_index_size.get(), 3);
        // Later watch events apply to the new snapshot.
        index.remove("uid-2");
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn wait_synced_returns_false_when_stopped_first() {
        let (index, _) = index();
        let (trigger, stop) = crate::stop::new();
        let index = Arc::new(index);
        let waiter = {
            let index = index.clone();
            std::thread::spawn(move || index.wait_synced(&stop))
        };
        std::thread::sleep(Duration::from_millis(20));
        trigger.trigger();
        assert!(!waiter.join().unwrap());
    }

    #[test]
    fn wait_synced_returns_true_after_mark_synced_from_another_thread() {
        let (index, _) = index();
        let (_trigger, stop) = crate::stop::new();
        let index = Arc::new(index);
        let waiter = {
            let index = index.clone();
            let stop = stop.clone();
            std::thread::spawn(move || index.wait_synced(&stop))
        };
        std::thread::sleep(Duration::from_millis(20));
        index.mark_synced();
        assert!(waiter.join().unwrap());
        // Once synced, it does not wait at all.
        assert!(index.wait_synced(&stop));
    }

    #[test]
    fn phases_from_the_api() {
        assert_eq!(PodPhase::from_status(None), PodPhase::Pending);
        assert_eq!(PodPhase::from_status(Some("Pending")), PodPhase::Pending);
        assert_eq!(PodPhase::from_status(Some("Running")), PodPhase::Running);
        for finished in ["Succeeded", "Failed", "Unknown"] {
            assert_eq!(PodPhase::from_status(Some(finished)), PodPhase::Finished);
        }
    }
}
