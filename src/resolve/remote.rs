//! Pods on other nodes, looked up one IP at a time (`POD_INDEX=node`): the answers the Kubernetes
//! thread found, kept in a bounded cache for a while, and the bounded wait of the resolve stage for
//! the lookups it asked for.
//!
//! In node mode the pod index holds only this node's pods, so memory does not grow with the cluster.
//! An IP it does not know may be a pod elsewhere: the resolve stage asks for it (`fetch`) before it
//! locates a batch, and waits a little for the answers, because a drop between two pods is worth
//! naming right. The waiting is bounded, so that a slow or down API server, or a scan from thousands
//! of addresses, cannot stall the pipeline:
//! - a batch waits at most `max_wait` for all its lookups together (they run concurrently);
//! - while more batches are queued behind it, waiting is rationed to a tenth of the time, so batch
//!   after batch of new IPs against a stalled API server slows the stage by 10 % at worst; with
//!   nothing queued, waiting delays no other drop and is not rationed;
//! - an IP is waited for once: while its lookup is still out, later drops do not wait for it again.
//!
//! Lookups the Kubernetes side turns away (its QPS limit, a full queue) answer at once. A drop whose
//! IP has no answer yet is located as an external address (named by its IP): never as a pod that
//! may no longer own it. That is also why an answer is used only while it is fresh: a pod found
//! `ttl` ago is looked up again before it names a peer, since its IP may have gone to another pod
//! meanwhile (IP reuse); an IP that was no pod is asked again after `negative_ttl`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::model::Endpoint;

/// Waiting is rationed to this share of the time (1/10).
const WAIT_SHARE: u32 = 10;
/// The most waiting saved up while nothing was waited for.
const MAX_SAVED_WAIT: Duration = Duration::from_secs(1);
/// A lookup still out after this long is forgotten (its answer lost): the IP may be asked again.
const LOOKUP_LOST_AFTER: Duration = Duration::from_secs(30);

/// How long answers are trusted and how long a batch may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteSettings {
    /// A pod found is trusted this long, then looked up again before it is used.
    pub ttl: Duration,
    /// "No pod has this IP" is trusted this long.
    pub negative_ttl: Duration,
    /// IPs whose answers are kept (pods and misses together).
    pub capacity: NonZeroUsize,
    /// The longest a batch waits for its lookups.
    pub max_wait: Duration,
}

/// What the Kubernetes side found for an IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The pod (or node, for hostNetwork pods) that has the IP; `None`: no pod has it.
    Found(Option<Endpoint>),
    /// Not looked up (rate limit) or failed: nothing is cached, a later drop asks again.
    NotAnswered,
}

/// Hands an IP to the Kubernetes side to look up; false when it cannot take it now (queue full).
pub type AskFn = Box<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The remote pods' cache, shared by the resolve stage (reader, asker) and the Kubernetes thread
/// (answerer).
pub struct RemotePods {
    settings: RemoteSettings,
    state: Mutex<State>,
    /// Notified on every answer.
    answered: Condvar,
    ask: AskFn,
    metrics: Arc<Metrics>,
}

struct State {
    cache: quick_cache::unsync::Cache<IpAddr, Cached>,
    /// IPs asked for and not answered yet, with when they were asked.
    pending: HashMap<IpAddr, Instant>,
    budget: WaitBudget,
}

#[derive(Clone)]
struct Cached {
    endpoint: Option<Endpoint>,
    at: Instant,
}

impl RemotePods {
    pub fn new(settings: RemoteSettings, ask: AskFn, metrics: Arc<Metrics>) -> RemotePods {
        RemotePods {
            settings,
            state: Mutex::new(State {
                cache: quick_cache::unsync::Cache::new(settings.capacity.get()),
                pending: HashMap::new(),
                budget: WaitBudget::new(Instant::now()),
            }),
            answered: Condvar::new(),
            ask,
            metrics,
        }
    }

    /// Asks for every IP of `ips` that has no fresh answer and no lookup out, then waits (bounded, see
    /// the module's doc) until those lookups are answered. `queued`: other batches wait behind this one.
    pub fn fetch(&self, ips: impl IntoIterator<Item = IpAddr>, queued: bool) {
        let now = Instant::now();
        let mut state = self.lock();
        let mut waiting = Vec::new();
        for ip in ips {
            if state.fresh(ip, now, &self.settings).is_some() || waiting.contains(&ip) {
                continue;
            }
            match state.pending.get(&ip) {
                Some(asked) if now.duration_since(*asked) < LOOKUP_LOST_AFTER => continue,
                _ => {}
            }
            if (self.ask)(ip) {
                state.pending.insert(ip, now);
                waiting.push(ip);
            } else {
                self.unresolved("queue_full");
            }
        }
        if waiting.is_empty() {
            return;
        }
        let allowed = if queued {
            state.budget.available(now).min(self.settings.max_wait)
        } else {
            self.settings.max_wait
        };
        let deadline = now + allowed;
        loop {
            let now = Instant::now();
            if waiting.iter().all(|ip| !state.pending.contains_key(ip)) {
                break;
            }
            if now >= deadline {
                let slow = waiting
                    .iter()
                    .filter(|ip| state.pending.contains_key(ip))
                    .count();
                self.metrics
                    .remote_pods_unresolved
                    .with_label_values(&["slow"])
                    .inc_by(slow as u64);
                break;
            }
            state = match self.answered.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        if queued {
            state.budget.spend(Instant::now().duration_since(now));
        }
    }

    /// The fresh answer for `ip`: `Some(Some(endpoint))` a pod, `Some(None)` no pod, `None` unknown
    /// (never asked, stale, or not answered).
    pub fn get(&self, ip: IpAddr) -> Option<Option<Endpoint>> {
        self.lock().fresh(ip, Instant::now(), &self.settings)
    }

    /// The Kubernetes side's answer for `ip`; wakes the resolve stage if it waits for it.
    pub fn answer(&self, ip: IpAddr, lookup: Lookup) {
        let mut state = self.lock();
        state.pending.remove(&ip);
        if let Lookup::Found(endpoint) = lookup {
            let at = Instant::now();
            state.cache.insert(ip, Cached { endpoint, at });
        }
        drop(state);
        self.answered.notify_all();
    }

    /// IPs with an answer kept (fresh or not).
    pub fn len(&self) -> usize {
        self.lock().cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn unresolved(&self, reason: &str) {
        self.metrics
            .remote_pods_unresolved
            .with_label_values(&[reason])
            .inc();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under this lock leaves at most one answer half-stored: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn fresh(
        &mut self,
        ip: IpAddr,
        now: Instant,
        settings: &RemoteSettings,
    ) -> Option<Option<Endpoint>> {
        let cached = self.cache.get(&ip)?;
        let ttl = match cached.endpoint {
            Some(_) => settings.ttl,
            None => settings.negative_ttl,
        };
        (now.duration_since(cached.at) < ttl).then(|| cached.endpoint.clone())
    }
}

/// The waiting allowance while batches are queued: a tenth of the time that passes is added to it (up
/// to a second saved), and what a batch waited with others queued is taken off.
struct WaitBudget {
    saved: Duration,
    at: Instant,
}

impl WaitBudget {
    fn new(now: Instant) -> WaitBudget {
        WaitBudget {
            saved: MAX_SAVED_WAIT,
            at: now,
        }
    }

    fn available(&mut self, now: Instant) -> Duration {
        let earned = now.saturating_duration_since(self.at) / WAIT_SHARE;
        self.saved = (self.saved + earned).min(MAX_SAVED_WAIT);
        self.at = now;
        self.saved
    }

    fn spend(&mut self, waited: Duration) {
        self.saved = self.saved.saturating_sub(waited);
    }
}

#[cfg(test)]
mod tests;
