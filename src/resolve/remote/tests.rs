//! The remote pods' cache: fresh answers used, stale ones looked up again (IP reuse), misses kept
//! briefly, and the resolve stage's wait bounded by the batch, by the IP and by the ration.

use super::*;
use crate::model::PodInfo;
use std::sync::mpsc;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pod(name: &str) -> Endpoint {
    Endpoint::Pod(Arc::new(PodInfo {
        namespace: "shop".to_string(),
        name: name.to_string(),
        uid: format!("uid-{name}"),
        node: "node-2".to_string(),
        host_network: false,
        identifier_label: None,
        labels: Default::default(),
    }))
}

fn settings(ttl_ms: u64, max_wait_ms: u64) -> RemoteSettings {
    RemoteSettings {
        ttl: Duration::from_millis(ttl_ms),
        negative_ttl: Duration::from_millis(ttl_ms / 4),
        capacity: NonZeroUsize::new(16).unwrap(),
        max_wait: Duration::from_millis(max_wait_ms),
    }
}

/// A cache whose lookups arrive on the returned channel (as the Kubernetes thread's queue would get
/// them); `accept` says whether the queue takes them.
fn remote(settings: RemoteSettings, accept: bool) -> (Arc<RemotePods>, mpsc::Receiver<IpAddr>) {
    let (asked, lookups) = mpsc::channel();
    let ask: AskFn = Box::new(move |ip| accept && asked.send(ip).is_ok());
    let metrics = Arc::new(Metrics::new());
    (Arc::new(RemotePods::new(settings, ask, metrics)), lookups)
}

/// Answers every lookup from `answers` after `delay`, on a thread of its own.
fn answer_from(
    remote: &Arc<RemotePods>,
    lookups: mpsc::Receiver<IpAddr>,
    delay: Duration,
    answers: impl Fn(IpAddr) -> Lookup + Send + 'static,
) {
    let remote = remote.clone();
    std::thread::spawn(move || {
        for ip in lookups {
            std::thread::sleep(delay);
            remote.answer(ip, answers(ip));
        }
    });
}

#[test]
fn a_batch_waits_for_its_lookups_and_then_finds_the_pods() {
    let (remote, lookups) = remote(settings(60_000, 500), true);
    answer_from(&remote, lookups, Duration::from_millis(20), |ip| {
        Lookup::Found((ip == "10.0.2.9".parse::<IpAddr>().unwrap()).then(|| pod("cart-1")))
    });
    let started = Instant::now();
    remote.fetch([ip("10.0.2.9"), ip("203.0.113.5"), ip("10.0.2.9")], false);
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(remote.get(ip("10.0.2.9")), Some(Some(pod("cart-1"))));
    assert_eq!(remote.get(ip("203.0.113.5")), Some(None));
    assert_eq!(remote.len(), 2);
}

#[test]
fn a_fresh_answer_is_not_asked_for_again() {
    let (remote, lookups) = remote(settings(60_000, 500), true);
    remote.answer(ip("10.0.2.9"), Lookup::Found(Some(pod("cart-1"))));
    remote.fetch([ip("10.0.2.9")], false);
    assert!(lookups.try_recv().is_err(), "no lookup for a fresh answer");
}

#[test]
fn a_pod_past_its_ttl_names_no_peer_until_it_is_looked_up_again() {
    // The IP went from cart-1 to cart-2 after the first lookup (IP reuse).
    let (remote, lookups) = remote(settings(100, 500), true);
    remote.answer(ip("10.0.2.9"), Lookup::Found(Some(pod("cart-1"))));
    assert_eq!(remote.get(ip("10.0.2.9")), Some(Some(pod("cart-1"))));
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(remote.get(ip("10.0.2.9")), None, "stale: not used");
    answer_from(&remote, lookups, Duration::ZERO, |_| {
        Lookup::Found(Some(pod("cart-2")))
    });
    remote.fetch([ip("10.0.2.9")], false);
    assert_eq!(remote.get(ip("10.0.2.9")), Some(Some(pod("cart-2"))));
}

#[test]
fn a_miss_is_kept_a_quarter_of_the_ttl() {
    let (remote, _lookups) = remote(settings(400, 500), true);
    remote.answer(ip("10.0.9.9"), Lookup::Found(None));
    assert_eq!(remote.get(ip("10.0.9.9")), Some(None));
    std::thread::sleep(Duration::from_millis(110));
    assert_eq!(remote.get(ip("10.0.9.9")), None);
}

#[test]
fn a_slow_lookup_is_waited_for_once_and_no_longer_than_the_batch_may_wait() {
    let (remote, lookups) = remote(settings(60_000, 300), true);
    answer_from(&remote, lookups, Duration::from_millis(900), |_| {
        Lookup::Found(Some(pod("cart-1")))
    });
    let started = Instant::now();
    remote.fetch([ip("10.0.2.9")], false);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(800),
        "{waited:?}"
    );
    assert_eq!(remote.get(ip("10.0.2.9")), None);
    // Its lookup is still out: the next batch does not wait for it again.
    let started = Instant::now();
    remote.fetch([ip("10.0.2.9")], false);
    assert!(started.elapsed() < Duration::from_millis(150));
    let slow = remote
        .metrics
        .remote_pods_unresolved
        .with_label_values(&["slow"])
        .get();
    assert_eq!(slow, 1);
    // The answer arrives later and serves the drops after it.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(remote.get(ip("10.0.2.9")), Some(Some(pod("cart-1"))));
}

#[test]
fn not_answered_is_not_kept_and_a_full_queue_is_not_waited_for() {
    let (remote, lookups) = remote(settings(60_000, 500), true);
    answer_from(&remote, lookups, Duration::ZERO, |_| Lookup::NotAnswered);
    remote.fetch([ip("10.0.2.9")], false);
    assert_eq!(remote.get(ip("10.0.2.9")), None);
    assert!(remote.is_empty());

    let (full, _lookups) = self::remote(settings(60_000, 500), false);
    let started = Instant::now();
    full.fetch([ip("10.0.2.9"), ip("10.0.2.10")], false);
    assert!(started.elapsed() < Duration::from_millis(150));
    let turned_away = full
        .metrics
        .remote_pods_unresolved
        .with_label_values(&["queue_full"])
        .get();
    assert_eq!(turned_away, 2);
}

#[test]
fn with_batches_queued_the_wait_is_rationed_and_without_it_is_not() {
    let (remote, lookups) = remote(settings(60_000, 300), true);
    answer_from(&remote, lookups, Duration::from_millis(250), |_| {
        Lookup::Found(None)
    });
    // Queued: the saved second pays for 250 ms waits, then the ration is spent.
    let mut waited = Vec::new();
    for n in 0..6 {
        let started = Instant::now();
        remote.fetch([ip(&format!("203.0.113.{n}"))], true);
        waited.push(started.elapsed());
    }
    assert!(waited[0] >= Duration::from_millis(200), "{waited:?}");
    assert!(waited[5] < Duration::from_millis(150), "{waited:?}");
    // Nothing queued: the whole wait (once the lookups still out are answered).
    std::thread::sleep(Duration::from_millis(600));
    let started = Instant::now();
    remote.fetch([ip("203.0.113.99")], false);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(remote.get(ip("203.0.113.99")), Some(None));
}

#[test]
fn waiting_is_rationed_to_a_tenth_of_the_time() {
    let start = Instant::now();
    let mut budget = WaitBudget::new(start);
    assert_eq!(budget.available(start), Duration::from_secs(1));
    budget.spend(Duration::from_secs(1));
    assert_eq!(budget.available(start), Duration::ZERO);
    // Two seconds later, two tenths of them may be waited.
    let later = start + Duration::from_secs(2);
    assert_eq!(budget.available(later), Duration::from_millis(200));
    budget.spend(Duration::from_millis(50));
    assert_eq!(budget.available(later), Duration::from_millis(150));
    // Never more than a second saved.
    assert_eq!(
        budget.available(later + Duration::from_secs(60)),
        Duration::from_secs(1)
    );
}
