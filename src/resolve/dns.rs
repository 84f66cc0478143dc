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
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const IP: &str = "192.0.2.10";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn settings() -> DnsSettings {
        DnsSettings {
            timeout: Duration::from_millis(100),
            ..DnsSettings::defaults(true)
        }
    }

    /// A resolver that answers `answer` (after `delay`) and counts its calls.
    fn resolver(
        delay: Duration,
        answer: fn(IpAddr) -> io::Result<Option<String>>,
    ) -> (Resolver, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let resolver: Resolver = Arc::new(move |ip| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(delay);
            answer(ip)
        });
        (resolver, calls)
    }

    fn named(_: IpAddr) -> io::Result<Option<String>> {
        Ok(Some("web-1.example.net".to_string()))
    }

    fn lookups(metrics: &Metrics, result: &str) -> u64 {
        metrics.dns_lookups.with_label_values(&[result]).get()
    }

    fn dns(settings: DnsSettings, resolver: Resolver) -> (ReverseDns, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (
            ReverseDns::with_resolver(settings, metrics.clone(), resolver),
            metrics,
        )
    }

    #[test]
    fn a_found_name_is_returned_and_cached() {
        let (resolver, calls) = resolver(Duration::ZERO, named);
        let (dns, metrics) = dns(settings(), resolver);
        assert_eq!(dns.name_of(ip(IP)), "web-1.example.net");
        assert_eq!(dns.name_of(ip(IP)), "web-1.example.net");
        assert_eq!(dns.name_of(ip(IP)), "web-1.example.net");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(lookups(&metrics, "found"), 1);
        assert_eq!(metrics.dns_cache_hits.get(), 2);
    }

    #[test]
    fn a_numeric_answer_is_not_found() {
        let (resolver, _) = resolver(Duration::ZERO, |ip| Ok(Some(ip.to_string())));
        let (dns, metrics) = dns(settings(), resolver);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(dns.name_of(ip("2001:db8::1")), "2001:db8::1");
        assert_eq!(lookups(&metrics, "not_found"), 2);
        assert_eq!(lookups(&metrics, "found"), 0);
    }

    #[test]
    fn no_name_is_not_found() {
        let (resolver, _) = resolver(Duration::ZERO, |_| Ok(None));
        let (dns, metrics) = dns(settings(), resolver);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(lookups(&metrics, "not_found"), 1);
    }

    #[test]
    fn a_resolver_error_names_the_ip_by_itself_and_is_cached() {
        let (resolver, calls) = resolver(Duration::ZERO, |_| {
            Err(io::Error::other("temporary failure in name resolution"))
        });
        let (dns, metrics) = dns(settings(), resolver);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(lookups(&metrics, "error"), 1);
        assert_eq!(metrics.dns_cache_hits.get(), 1);
    }

    #[test]
    fn a_slow_lookup_times_out_and_its_late_answer_is_used_next_time() {
        let (resolver, calls) = resolver(Duration::from_millis(600), named);
        let (dns, metrics) = dns(settings(), resolver);

        let started = Instant::now();
        assert_eq!(dns.name_of(ip(IP)), IP);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(450),
            "waited {waited:?}"
        );
        assert_eq!(lookups(&metrics, "timeout"), 1);
        // Until the answer comes, the timeout is cached: no second lookup.
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(metrics.dns_cache_hits.get(), 1);

        let deadline = Instant::now() + Duration::from_secs(5);
        while dns.cached(ip(IP)) != Some(Some("web-1.example.net".to_string())) {
            assert!(Instant::now() < deadline, "the late answer never came");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(dns.name_of(ip(IP)), "web-1.example.net");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(metrics.dns_cache_hits.get(), 2);
        assert_eq!(lookups(&metrics, "found"), 0);
    }

    #[test]
    fn past_max_in_flight_an_ip_is_answered_at_once_as_busy() {
        let (release, blocked) = crossbeam_channel::bounded::<()>(0);
        let resolver: Resolver = Arc::new(move |_| {
            // Blocks until the test drops `release` (or 10 s pass).
            let _ = blocked.recv_timeout(Duration::from_secs(10));
            Ok(Some("late.example.net".to_string()))
        });
        let settings = DnsSettings {
            max_in_flight: 1,
            timeout: Duration::from_millis(200),
            ..settings()
        };
        let (dns, metrics) = dns(settings, resolver);

        assert_eq!(dns.name_of(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(lookups(&metrics, "timeout"), 1);
        let started = Instant::now();
        assert_eq!(dns.name_of(ip("192.0.2.2")), "192.0.2.2");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "waited {:?}",
            started.elapsed()
        );
        assert_eq!(lookups(&metrics, "busy"), 1);
        // A busy answer is not cached: once the slot is free, the IP is looked up.
        drop(release);
        let deadline = Instant::now() + Duration::from_secs(5);
        while dns.shared.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(Instant::now() < deadline, "the blocked lookup never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dns.name_of(ip("192.0.2.2")), "late.example.net");
        assert_eq!(lookups(&metrics, "found"), 1);
    }

    #[test]
    fn a_negative_answer_expires_after_the_negative_ttl() {
        let (resolver, calls) = resolver(Duration::ZERO, |_| Ok(None));
        let settings = DnsSettings {
            negative_ttl: Duration::from_millis(50),
            ..settings()
        };
        let (dns, metrics) = dns(settings, resolver);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(lookups(&metrics, "not_found"), 2);
        assert_eq!(metrics.dns_cache_hits.get(), 1);
    }

    #[test]
    fn disabled_lookups_never_call_the_resolver() {
        let (resolver, calls) = resolver(Duration::ZERO, named);
        let (dns, metrics) = dns(DnsSettings::defaults(false), resolver);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(dns.name_of(ip(IP)), IP);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(lookups(&metrics, "disabled"), 2);
        assert_eq!(metrics.dns_cache_hits.get(), 0);
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_entry() {
        let (resolver, calls) = resolver(Duration::ZERO, named);
        let settings = DnsSettings {
            cache_capacity: 2,
            ..settings()
        };
        let (dns, _) = dns(settings, resolver);
        for address in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            dns.name_of(ip(address));
        }
        assert_eq!(dns.cached(ip("192.0.2.1")), None);
        assert!(dns.cached(ip("192.0.2.2")).is_some());
        assert!(dns.cached(ip("192.0.2.3")).is_some());
        assert_eq!(dns.shared.cache().entries.len(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_system_resolver_names_127_0_0_1_from_etc_hosts() {
        // Only the loopback address is looked up for real: any other could query a DNS server. The
        // expected name is the first one /etc/hosts gives 127.0.0.1 (`localhost` on this machine).
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let Some(expected) = hosts.lines().find_map(|line| {
            let mut fields = line.split('#').next().unwrap_or("").split_whitespace();
            (fields.next() == Some("127.0.0.1"))
                .then(|| fields.next())
                .flatten()
        }) else {
            eprintln!("skipped: /etc/hosts does not name 127.0.0.1");
            return;
        };
        let metrics = Arc::new(Metrics::new());
        let dns = ReverseDns::new(
            DnsSettings {
                timeout: Duration::from_secs(5),
                ..DnsSettings::defaults(true)
            },
            metrics.clone(),
        );
        assert_eq!(dns.name_of(ip("127.0.0.1")), expected);
        assert_eq!(lookups(&metrics, "found"), 1);
    }
}
