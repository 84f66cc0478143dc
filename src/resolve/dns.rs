//! Reverse DNS for IPs that are no pod, off the resolve thread.
//!
//! `getnameinfo` blocks for as long as the resolver configuration lets it (a black-holed server:
//! timeout × attempts, ~10 s) and cannot be cancelled. So the resolve stage never waits for it: it
//! asks [`ReverseDns::name_now`], which answers from the cache at once, and queues a lookup for an
//! IP it has no answer for to a fixed pool of named worker threads (`dns-0`, ...). A drop whose name
//! is not known yet carries its IP; the Event writes after the name arrived carry the name.
//!
//! Each IP is looked up at most once per TTL: an IP queued or being looked up is not queued again,
//! and every answer (a name, none, an error) is cached with its TTL (moka: bounded, expiring). When
//! the queue is full a lookup is not queued (counted as `busy`) and asked again at the IP's next drop.

use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use moka::sync::Cache;

use crate::metrics::Metrics;

/// Finds the host name of an IP: `Ok(None)` when it has none.
pub type Resolver = Arc<dyn Fn(IpAddr) -> io::Result<Option<String>> + Send + Sync>;

/// How reverse lookups behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// When false, every IP is named by itself and no lookup is made.
    pub enabled: bool,
    /// How long a found name is reused.
    pub positive_ttl: Duration,
    /// How long "no name" (not found, error) is reused.
    pub negative_ttl: Duration,
    /// Lookups running at once: the worker threads.
    pub workers: usize,
    /// Lookups waiting for a worker, at most.
    pub queue: usize,
    /// IPs remembered, at most.
    pub cache_capacity: u64,
}

impl DnsSettings {
    pub fn defaults(enabled: bool) -> DnsSettings {
        DnsSettings {
            enabled,
            positive_ttl: Duration::from_secs(5 * 60),
            negative_ttl: Duration::from_secs(60),
            workers: 4,
            queue: 1024,
            cache_capacity: 10_000,
        }
    }
}

/// The answer cached for an IP: its name, or `None` when it has none (or none could be found).
type Answer = Option<Arc<str>>;

/// Names IPs by reverse DNS. Cheap to clone: clones share the cache and the workers. The workers end
/// once every clone is gone and their lookup in progress returned (they are not joined: a lookup
/// cannot be cut short, and a stop must not wait ~10 s for a black-holed server).
#[derive(Clone)]
pub struct ReverseDns {
    shared: Arc<Shared>,
    /// `None` when lookups are disabled.
    requests: Option<Sender<IpAddr>>,
}

/// What the resolve stage and the workers share.
struct Shared {
    settings: DnsSettings,
    metrics: Arc<Metrics>,
    cache: Cache<IpAddr, Answer>,
    /// IPs queued or being looked up.
    asked: Mutex<HashSet<IpAddr>>,
}

/// What a lookup came to; the names are the `dns_lookups{result}` label values.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Found(String),
    NotFound,
    Error,
}

impl Outcome {
    fn result(&self) -> &'static str {
        match self {
            Outcome::Found(_) => "found",
            Outcome::NotFound => "not_found",
            Outcome::Error => "error",
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
        let (positive, negative) = (settings.positive_ttl, settings.negative_ttl);
        let cache = Cache::builder()
            .max_capacity(settings.cache_capacity)
            .expire_after(Ttl { positive, negative })
            .build();
        let shared = Arc::new(Shared {
            cache,
            metrics,
            asked: Mutex::new(HashSet::new()),
            settings,
        });
        let requests = shared.settings.enabled.then(|| {
            let (requests, queue) = bounded(shared.settings.queue.max(1));
            for number in 0..shared.settings.workers.max(1) {
                let (shared, queue, resolver) = (shared.clone(), queue.clone(), resolver.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("dns-{number}"))
                    .spawn(move || shared.work(&queue, &resolver));
                if let Err(error) = spawned {
                    // Fewer workers, or none: lookups then wait, or stay queued (names stay IPs).
                    log::warn!("cannot start DNS worker {number}: {error}");
                }
            }
            requests
        });
        ReverseDns { shared, requests }
    }

    /// The host name of `ip` if it is known now; `None` when lookups are disabled, it has none, or
    /// it is not known yet (a lookup is then queued, unless one is already).
    pub fn name_now(&self, ip: IpAddr) -> Option<String> {
        let shared = &self.shared;
        let Some(requests) = &self.requests else {
            shared.count("disabled");
            return None;
        };
        if let Some(answer) = shared.cache.get(&ip) {
            shared.metrics.dns_cache_hits.inc();
            return answer.map(|name| name.to_string());
        }
        let mut asked = shared.asked();
        // Looked at again under the lock: a worker caches its answer before it lets go of the IP,
        // so an IP neither cached nor asked now has no lookup running.
        if asked.contains(&ip) || shared.cache.contains_key(&ip) {
            return None;
        }
        match requests.try_send(ip) {
            Ok(()) => {
                asked.insert(ip);
            }
            Err(TrySendError::Full(_)) => shared.count("busy"),
            // No worker could be started.
            Err(TrySendError::Disconnected(_)) => shared.count("error"),
        }
        None
    }
}

impl Shared {
    /// A worker's body: look up each queued IP, cache the answer, until the queue is gone.
    fn work(&self, queue: &Receiver<IpAddr>, resolver: &Resolver) {
        for ip in queue {
            let started = Instant::now();
            let outcome = match resolver(ip) {
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
            log::trace!(
                "reverse lookup of {ip}: {outcome:?} in {:?}",
                started.elapsed()
            );
            self.count(outcome.result());
            let answer = match outcome {
                Outcome::Found(name) => Some(Arc::from(name)),
                Outcome::NotFound | Outcome::Error => None,
            };
            // Cached before it is no longer asked: a drop in between finds one or the other.
            self.cache.insert(ip, answer);
            self.asked().remove(&ip);
        }
    }

    fn count(&self, result: &str) {
        self.metrics.dns_lookups.with_label_values(&[result]).inc();
    }

    fn asked(&self) -> MutexGuard<'_, HashSet<IpAddr>> {
        self.asked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A found name lives `positive`, "no name" `negative`.
struct Ttl {
    positive: Duration,
    negative: Duration,
}

impl moka::Expiry<IpAddr, Answer> for Ttl {
    fn expire_after_create(
        &self,
        _ip: &IpAddr,
        answer: &Answer,
        _created: Instant,
    ) -> Option<Duration> {
        Some(match answer {
            Some(_) => self.positive,
            None => self.negative,
        })
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

#[cfg(test)]
mod tests;
