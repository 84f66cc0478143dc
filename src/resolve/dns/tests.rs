//! Reverse DNS: answers, misses, timeouts, the in-flight bound and the cache, with an injected resolver.

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
