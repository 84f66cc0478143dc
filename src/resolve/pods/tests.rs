//! The pod index: who wins a shared IP, hostNetwork, updates, relists, and waiting for the sync.

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
        labels: Default::default(),
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

#[test]
fn a_lookups_pods_are_ranked_as_the_index_ranks_them() {
    // An on-demand lookup by IP found the finished pod that had it and the running one that has it.
    let finished = record("job-28f9x", "uid-old", &["10.1.2.3"], PodPhase::Finished);
    let running = record("api-0", "uid-new", &["10.1.2.3"], PodPhase::Running);
    match best_claim(vec![running, finished], ip("10.1.2.3")) {
        Some(Endpoint::Pod(pod)) => assert_eq!(pod.name, "api-0"),
        other => panic!("expected api-0, got {other:?}"),
    }
    let mut proxy = record(
        "kube-proxy-x",
        "uid-proxy",
        &["192.0.2.10"],
        PodPhase::Running,
    );
    proxy.info.host_network = true;
    assert_eq!(
        best_claim(vec![proxy], ip("192.0.2.10")),
        Some(Endpoint::Node {
            ip: ip("192.0.2.10"),
            node: "node-7".to_string()
        })
    );
    assert_eq!(best_claim(Vec::new(), ip("192.0.2.10")), None);
}
