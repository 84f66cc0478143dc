//! Reverse DNS for IPs that are no pod: bounded, cached, with a timeout.
//!
//! `getnameinfo` blocks, for as long as the resolver configuration lets it, and cannot be cancelled. So
//! each lookup runs on a short-lived thread of its own while the resolve stage waits at most `timeout`
//! for it; an answer that comes later still goes into the cache for the next drop. At most
//! `max_in_flight` such threads exist at once: past that, an IP is answered with itself at once, so a
//! slow DNS server can neither pile up threads nor stall the pipeline for more than `timeout` per IP.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};

use crate::metrics::Metrics;

/// Finds the host name of an IP: `Ok(None)` when it has none.
pub type Resolver = Arc<dyn Fn(IpAddr) -> io::Result<Option<String>> + Send + Sync>;

/// How reverse lookups behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// When false, every IP is named by itself and no lookup is made.
    pub enabled: bool,
    /// The longest the resolve stage waits for one lookup.
    pub timeout: Duration,
    /// How long a found name is reused.
    pub positive_ttl: Duration,
    /// How long "no name" (not found, error, timeout) is reused.
    pub negative_ttl: Duration,
    /// Lookups running at once, at most.
    pub max_in_flight: usize,
    /// IPs remembered, at most.
    pub cache_capacity: usize,
}

impl DnsSettings {
    pub fn defaults(enabled: bool) -> DnsSettings {
        DnsSettings {
            enabled,
            timeout: Duration::from_millis(500),
            positive_ttl: Duration::from_secs(5 * 60),
            negative_ttl: Duration::from_secs(60),
            max_in_flight: 8,
            cache_capacity: 10_000,
        }
    }
}

/// Names IPs by reverse DNS. Cheap to clone: clones share the cache and the in-flight limit.
#[derive(Clone)]
pub struct ReverseDns {
    shared: Arc<Shared>,
}

struct Shared {
    settings: DnsSettings,
    metrics: Arc<Metrics>,
    resolver: Resolver,
    cache: Mutex<Cache>,
    in_flight: AtomicUsize,
}

/// What a lookup came to; the names are the `dns_lookups{result}` label values.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Found(String),
    NotFound,
    Error,
    Timeout,
}

impl Outcome {
    fn result(&self) -> &'static str {
        match self {
            Outcome::Found(_) => "found",
            Outcome::NotFound => "not_found",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            Outcome::Found(name) => Some(name),
            _ => None,
        }
    }
}

impl ReverseDns {
    /// Looks names up with the system resolver (`getnameinfo`: /etc/hosts, then DNS, as nsswitch says).
    pub fn new(settings: DnsSettings, metrics: Arc<Metrics>) -> ReverseDns {
        ReverseDns::with_resolver(settings, metrics, Arc::new(system_resolver))
    }

    /// Looks names up with `resolver` (tests inject one that makes no network traffic).
    pub fn with_resolver(
        settings: DnsSettings,
        metrics: Arc<Metrics>,
        resolver: Resolver,
    ) -> ReverseDns {
        ReverseDns {
            shared: Arc::new(Shared {
                cache: Mutex::new(Cache::new(settings.cache_capacity)),
                settings,
                metrics,
                resolver,
                in_flight: AtomicUsize::new(0),
            }),
        }
    }

    /// The host name of `ip`, or the IP's text when lookups are disabled, it has none, or none came in
    /// time.
    pub fn name_of(&self, ip: IpAddr) -> String {
        let shared = &self.shared;
        if !shared.settings.enabled {
            shared.count("disabled");
            return ip.to_string();
        }
        if let Some(name) = shared.cache().get(ip, Instant::now()) {
            shared.metrics.dns_cache_hits.inc();
            return name.unwrap_or_else(|| ip.to_string());
        }
        if !shared.reserve() {
            shared.count("busy");
            return ip.to_string();
        }
        let outcome = self.look_up(ip);
        shared.count(outcome.result());
        match outcome {
            Outcome::Found(name) => name,
            _ => ip.to_string(),
        }
    }

    /// Runs one lookup on its own thread (a slot is reserved) and waits for it at most `timeout`.
    fn look_up(&self, ip: IpAddr) -> Outcome {
        let (answer_tx, answer_rx) = bounded(1);
        let worker = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("dns-lookup".to_string())
            .spawn(move || worker.run_lookup(ip, answer_tx));
        if let Err(error) = spawned {
            self.shared.release();
            log::warn!("cannot start a DNS lookup thread: {error}");
            return Outcome::Error;
        }
        match answer_rx.recv_timeout(self.shared.settings.timeout) {
            Ok(outcome) => outcome,
            Err(RecvTimeoutError::Disconnected) => Outcome::Error,
            Err(RecvTimeoutError::Timeout) => {
                let mut cache = self.shared.cache();
                // The lookup thread caches and answers under the cache lock: if it has not answered
                // by now, it has not cached either, and its late answer will replace this entry.
                match answer_rx.try_recv() {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        let expires = Instant::now() + self.shared.settings.negative_ttl;
                        cache.insert(ip, None, expires);
                        Outcome::Timeout
                    }
                }
            }
        }
    }

    /// What the cache holds for `ip`, without counting a hit (for tests).
    #[cfg(test)]
    fn cached(&self, ip: IpAddr) -> Option<Option<String>> {
        self.shared.cache().get(ip, Instant::now())
    }
}

impl Shared {
    /// The body of a lookup thread: resolve, cache, answer the waiting caller if it still waits.
    fn run_lookup(&self, ip: IpAddr, answer: Sender<Outcome>) {
        let _slot = Slot(self);
        let outcome = match (self.resolver)(ip) {
            // getnameinfo answers with the address itself when it finds no name.
            Ok(Some(name)) if name.is_empty() || name.parse::<IpAddr>().is_ok() => {
                Outcome::NotFound
            }
            Ok(Some(name)) => Outcome::Found(name),
            Ok(None) => Outcome::NotFound,
            Err(error) => {
                log::debug!("reverse lookup of {ip} failed: {error}");
                Outcome::Error
            }
        };
        let ttl = match outcome {
            Outcome::Found(_) => self.settings.positive_ttl,
            _ => self.settings.negative_ttl,
        };
        let mut cache = self.cache();
        cache.insert(ip, outcome.name().map(str::to_string), Instant::now() + ttl);
        // Fails only when the caller gave up waiting; the cache has the answer for next time.
        let _ = answer.send(outcome);
    }

    /// Takes an in-flight slot if one is free.
    fn reserve(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |running| {
                (running < self.settings.max_in_flight).then_some(running + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn count(&self, result: &str) {
        self.metrics.dns_lookups.with_label_values(&[result]).inc();
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Frees an in-flight slot when a lookup thread ends, also when the resolver panicked.
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

fn system_resolver(ip: IpAddr) -> io::Result<Option<String>> {
    match dns_lookup::lookup_addr(&ip) {
        Ok(name) => Ok(Some(name)),
        Err(error) => match error.kind() {
            dns_lookup::LookupErrorKind::NoName | dns_lookup::LookupErrorKind::NoData => Ok(None),
            _ => Err(error.into()),
        },
    }
}

const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Answers by IP with an expiry, at most `capacity` of them; when full, the oldest entry goes.
struct Cache {
    capacity: usize,
    entries: HashMap<IpAddr, Entry>,
    /// IPs in the order they were inserted, with the insertion's number; an IP inserted again has a
    /// stale earlier item here, skipped on eviction and dropped by `compact`.
    order: VecDeque<(IpAddr, u64)>,
    inserted: u64,
    /// When expired entries were last swept out (a sweep reads every entry: not on every insert).
    swept: Instant,
}

struct Entry {
    /// `None`: the IP has no name (or none could be found).
    name: Option<String>,
    expires: Instant,
    number: u64,
}

impl Cache {
    fn new(capacity: usize) -> Cache {
        Cache {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
            swept: Instant::now(),
        }
    }

    /// `Some(answer)` when an unexpired answer for `ip` is cached.
    fn get(&mut self, ip: IpAddr, now: Instant) -> Option<Option<String>> {
        let entry = self.entries.get(&ip)?;
        if entry.expires <= now {
            self.entries.remove(&ip);
            return None;
        }
        Some(entry.name.clone())
    }

    fn insert(&mut self, ip: IpAddr, name: Option<String>, expires: Instant) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&ip) {
            self.make_room(Instant::now());
        }
        self.inserted += 1;
        let number = self.inserted;
        self.entries.insert(
            ip,
            Entry {
                name,
                expires,
                number,
            },
        );
        self.order.push_back((ip, number));
        if self.order.len() > 2 * self.capacity {
            self.compact();
        }
    }

    /// Frees one place when full: expired entries go first (swept at most once a second), then the
    /// oldest inserted.
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.capacity {
            return;
        }
        if now.duration_since(self.swept) >= SWEEP_INTERVAL {
            self.swept = now;
            self.entries.retain(|_, entry| entry.expires > now);
        }
        while self.entries.len() >= self.capacity {
            let Some((ip, number)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&ip)
                .is_some_and(|entry| entry.number == number)
            {
                self.entries.remove(&ip);
            }
        }
    }

    /// Drops the order items of IPs inserted again since, or evicted.
    fn compact(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(ip, number)| entries.get(ip).is_some_and(|entry| entry.number == *number));
    }
}

#[cfg(test)]
mod tests;
