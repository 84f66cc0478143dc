//! Memory and speed of the pod index at the size of a large cluster: 100,000 pods with realistic names
//! (50 namespaces, UUID uids, one IPv4 address each and an IPv6 one for every other pod) and labels
//! (a Deployment's four, shared by its ReplicaSet's 20 pods; one pod in 20 a StatefulSet's, whose
//! `statefulset.kubernetes.io/pod-name` makes its set its own). Prints the
//! process's resident memory (VmRSS) before and after filling the index, then lookups per second on one
//! core. Run with `cargo bench --bench pod_index`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_iptables_tailer::metrics::Metrics;
use kube_iptables_tailer::model::{Endpoint, PodInfo};
use kube_iptables_tailer::resolve::labels::LabelSets;
use kube_iptables_tailer::resolve::pods::{PodIndex, PodPhase, PodRecord};

use common::Process;
use common::pods::{self, Random, SyntheticPod};

const PODS: usize = 100_000;
const RUN_FOR: Duration = Duration::from_millis(1500);
/// 10.0.0.0: pod `n` has IPv4 10.0.0.0 + n.
const BASE: u32 = 0x0A00_0000;

/// Counts the bytes the program has allocated and not freed: the index's own size, apart from what the
/// allocator keeps around it (which VmRSS includes).
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let before = rss_kib();
    let live_before = LIVE_BYTES.load(Ordering::Relaxed);
    let started = Instant::now();
    let index = PodIndex::new(Arc::new(Metrics::new()));
    let mut label_sets = LabelSets::default();
    index.replace_all((0..PODS).map(|n| record(n, &mut label_sets)).collect());
    let filled_in = started.elapsed();
    let after = rss_kib();
    let live = LIVE_BYTES.load(Ordering::Relaxed) - live_before;
    println!(
        "pod_index: {PODS} pods, {} IPs, {} label sets indexed in {:.0} ms",
        index.len(),
        label_sets.len(),
        filled_in.as_secs_f64() * 1e3
    );
    println!(
        "pod_index: VmRSS before {} KiB, after {} KiB, difference {} KiB ({:.1} MiB, {} bytes/pod)",
        before,
        after,
        after - before,
        (after - before) as f64 / 1024.0,
        (after - before) * 1024 / PODS as u64
    );
    println!(
        "pod_index: heap allocated and live {} KiB ({:.1} MiB, {} bytes/pod, before malloc overhead)",
        live / 1024,
        live as f64 / (1024.0 * 1024.0),
        live / PODS
    );

    // Every indexed IP, in an order that defeats the CPU caches' help from sequential access.
    let mut hits: Vec<IpAddr> = (0..PODS).flat_map(ips_of).collect();
    shuffle(&mut hits);
    let misses: Vec<IpAddr> = (0..hits.len() as u32)
        .map(|n| IpAddr::V4(Ipv4Addr::from(0xC633_6400 + n)))
        .collect();
    let found = |ip| matches!(index.lookup(ip), Some(Endpoint::Pod(_)));
    report("lookups (hit, all 150,000 IPs)", &hits, |ip| {
        assert!(found(ip))
    });
    // A node's drops come from and go to far fewer IPs: the index's hot part stays in cache.
    report("lookups (hit, 1,000 hot IPs)", &hits[..1000], |ip| {
        assert!(found(ip))
    });
    report("lookups (miss)", &misses, |ip| {
        assert!(index.lookup(ip).is_none())
    });

    // Watch events: every pod updated once (same IPs, now terminating).
    let started = Instant::now();
    for n in 0..PODS {
        let mut updated = record(n, &mut label_sets);
        updated.deleting = true;
        index.upsert(updated);
    }
    let elapsed = started.elapsed();
    println!(
        "pod_index: {:>10.0} upserts/s; VmRSS after them {} KiB",
        PODS as f64 / elapsed.as_secs_f64(),
        rss_kib()
    );
}

fn report(label: &str, ips: &[IpAddr], mut lookup: impl FnMut(IpAddr)) {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < RUN_FOR {
        for ip in ips {
            lookup(black_box(*ip));
        }
        done += ips.len() as u64;
    }
    let per_second = done as f64 / started.elapsed().as_secs_f64();
    println!("pod_index: {per_second:>10.0} {label}/s");
}

fn record(n: usize, label_sets: &mut LabelSets) -> PodRecord {
    let pod = SyntheticPod::new(n as u32, BASE);
    let workload = n / 20;
    let mut labels: BTreeMap<String, String> = [
        ("app", pods::app(workload as u32).to_string()),
        (
            "app.kubernetes.io/part-of",
            format!("system-{}", workload % 40),
        ),
        ("pod-template-hash", format!("{:010x}", workload * 7919)),
        ("team", format!("team-{:02}", workload % 50)),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    if n.is_multiple_of(20) {
        labels.insert(
            "statefulset.kubernetes.io/pod-name".to_string(),
            pod.name.clone(),
        );
    }
    PodRecord {
        info: PodInfo {
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
            node: pod.node,
            host_network: false,
            identifier_label: None,
            labels: label_sets.share(Some(&labels)),
        },
        ips: ips_of(n),
        phase: PodPhase::Running,
        deleting: false,
    }
}

fn ips_of(n: usize) -> Vec<IpAddr> {
    let n = n as u32;
    let v4 = IpAddr::V4(pods::ipv4(n, BASE));
    match pods::ipv6(n) {
        Some(v6) => vec![v4, IpAddr::V6(v6)],
        None => vec![v4],
    }
}

fn rss_kib() -> u64 {
    common::status_kib(Process::Current, "VmRSS:")
}

fn shuffle(items: &mut [IpAddr]) {
    let mut random = Random(0x5eed);
    for i in (1..items.len()).rev() {
        let j = (random.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
