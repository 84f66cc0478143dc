//! Reverse DNS: answers that arrive later, misses, a resolver that never answers, the queue bound
//! and the TTLs, with an injected resolver.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

const IP: &str = "192.0.2.10";
/// Long enough for a loaded machine; every wait that reaches it is a failure.
const PATIENCE: Duration = Duration::from_secs(10);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A resolver that answers `answer` and counts its calls.
fn resolver(answer: fn(IpAddr) -> io::Result<Option<String>>) -> (Resolver, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver: Resolver = Arc::new(move |ip| {
        counter.fetch_add(1, Ordering::SeqCst);
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

/// Asks for `ip`'s name until it is answered (the lookup is done and cached); its last answer.
fn settled(dns: &ReverseDns, metrics: &Metrics, ip: IpAddr) -> Option<String> {
    let deadline = Instant::now() + PATIENCE;
    let answered = || {
        ["found", "not_found", "error"]
            .map(|r| lookups(metrics, r))
            .iter()
            .sum::<u64>()
    };
    while answered() == 0 {
        assert!(Instant::now() < deadline, "no answer for {ip}");
        assert_eq!(dns.name_now(ip), None);
        std::thread::sleep(Duration::from_millis(5));
    }
    dns.name_now(ip)
}

#[test]
fn the_first_ask_queues_a_lookup_and_its_name_is_answered_from_the_cache_once_found() {
    let (resolver, calls) = resolver(named);
    let (dns, metrics) = dns(DnsSettings::defaults(true), resolver);
    assert_eq!(
        settled(&dns, &metrics, ip(IP)).as_deref(),
        Some("web-1.example.net")
    );
    assert_eq!(dns.name_now(ip(IP)).as_deref(), Some("web-1.example.net"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(lookups(&metrics, "found"), 1);
    assert_eq!(metrics.dns_cache_hits.get(), 2);
}

#[test]
fn no_name_a_numeric_answer_and_an_error_are_cached_as_no_name() {
    fn numeric(ip: IpAddr) -> io::Result<Option<String>> {
        Ok(Some(ip.to_string()))
    }
    fn none(_: IpAddr) -> io::Result<Option<String>> {
        Ok(None)
    }
    fn failing(_: IpAddr) -> io::Result<Option<String>> {
        Err(io::Error::other("SERVFAIL"))
    }
    for (answer, result) in [
        (numeric as fn(_) -> _, "not_found"),
        (none, "not_found"),
        (failing, "error"),
    ] {
        let (resolver, calls) = resolver(answer);
        let (dns, metrics) = dns(DnsSettings::defaults(true), resolver);
        assert_eq!(settled(&dns, &metrics, ip(IP)), None);
        assert_eq!(dns.name_now(ip(IP)), None);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{result}");
        assert_eq!(lookups(&metrics, result), 1);
    }
}

#[test]
fn a_resolver_that_never_answers_costs_the_asker_nothing_and_bounds_the_queue() {
    let (release, hold) = crossbeam_channel::bounded::<()>(0);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver: Resolver = Arc::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        // Blocks until the test ends (the sender is dropped).
        let _ = hold.recv();
        Ok(None)
    });
    let settings = DnsSettings {
        workers: 2,
        queue: 8,
        ..DnsSettings::defaults(true)
    };
    let (dns, metrics) = dns(settings, resolver);
    let started = Instant::now();
    for n in 0..10_000u32 {
        let ip = IpAddr::from(std::net::Ipv4Addr::from(0xC612_0000 + n));
        assert_eq!(dns.name_now(ip), None);
        assert_eq!(dns.name_now(ip), None);
    }
    // No wait on the resolver: 20,000 asks take far less than one lookup timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Eight queued (asked once each), and the two the workers took off the queue may have let two
    // more in before it filled; every other IP found the queue full, twice.
    let busy = lookups(&metrics, "busy");
    assert!((19_980..=19_984).contains(&busy), "busy {busy}");
    assert!(calls.load(Ordering::SeqCst) <= 2);
    drop(release);
}

#[test]
fn an_ip_asked_again_while_its_lookup_runs_is_not_looked_up_twice() {
    let (release, hold) = crossbeam_channel::bounded::<()>(0);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver: Resolver = Arc::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = hold.recv();
        Ok(Some("late.example.net".to_string()))
    });
    let (dns, metrics) = dns(DnsSettings::defaults(true), resolver);
    for _ in 0..100 {
        assert_eq!(dns.name_now(ip(IP)), None);
    }
    release.send(()).unwrap();
    assert_eq!(
        settled(&dns, &metrics, ip(IP)).as_deref(),
        Some("late.example.net")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(lookups(&metrics, "busy"), 0);
}

#[test]
fn no_name_is_asked_again_after_the_negative_ttl() {
    fn none(_: IpAddr) -> io::Result<Option<String>> {
        Ok(None)
    }
    let (resolver, calls) = resolver(none);
    let settings = DnsSettings {
        negative_ttl: Duration::from_millis(50),
        ..DnsSettings::defaults(true)
    };
    let (dns, metrics) = dns(settings, resolver);
    assert_eq!(settled(&dns, &metrics, ip(IP)), None);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(dns.name_now(ip(IP)), None);
    let deadline = Instant::now() + PATIENCE;
    while calls.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "not asked again");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn disabled_lookups_never_call_the_resolver() {
    let (resolver, calls) = resolver(named);
    let (dns, metrics) = dns(DnsSettings::defaults(false), resolver);
    assert_eq!(dns.name_now(ip(IP)), None);
    assert_eq!(dns.name_now(ip(IP)), None);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(lookups(&metrics, "disabled"), 2);
}
