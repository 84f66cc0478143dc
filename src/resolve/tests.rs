//! The resolve stage on a thread: exact `Located` values, positions passed on, the namespace label cap.

use super::*;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::bounded;

use crate::model::{
    FileIdentity, FilePosition, Fingerprint, Flags, Packet, PodInfo, Position, Protocol, Transport,
};
use dns::DnsSettings;
use pods::{PodIndex, PodPhase, PodRecord};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pod(namespace: &str, name: &str, host_network: bool) -> PodInfo {
    PodInfo {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: format!("uid-{namespace}-{name}"),
        node: "node-7".to_string(),
        host_network,
        identifier_label: None,
        labels: Default::default(),
    }
}

fn running(info: PodInfo, address: &str) -> PodRecord {
    PodRecord {
        info,
        ips: vec![ip(address)],
        phase: PodPhase::Running,
        deleting: false,
    }
}

fn drop_between(src: &str, dst: &str) -> PacketDrop {
    PacketDrop {
        time: "2026-11-25T21:05:35.429037Z".parse().unwrap(),
        hostname: Some("node-7".to_string()),
        count: 1,
        verdict: None,
        prefix: "calico-drop:".to_string(),
        mark: None,
        policy: None,
        packet: Packet {
            in_interface: "cali1234".to_string(),
            out_interface: "eth0".to_string(),
            mac: None,
            src: ip(src),
            dst: ip(dst),
            length: Some(60),
            ttl: Some(63),
            id: Some(54321),
            protocol: Protocol::Tcp,
            transport: Transport::Ports {
                src: 43512,
                dst: 8080,
            },
            flags: Flags::default(),
        },
    }
}

fn position(offset: u64) -> Position {
    Position::File(FilePosition {
        path: PathBuf::from("/var/log/kern.log"),
        identity: FileIdentity {
            device: 2049,
            inode: 131,
            fingerprint: Fingerprint {
                len: 256,
                checksum: 0xfeed,
            },
        },
        offset,
        written: 0,
    })
}

/// The stage on its thread, with a synced index and a resolver that names 203.0.113.5 only.
struct Stage {
    input: Sender<Batch<PacketDrop>>,
    output: Receiver<Batch<Located>>,
    thread: std::thread::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

fn start(records: Vec<PodRecord>) -> Stage {
    start_with_policies(records, Arc::default())
}

fn start_with_policies(records: Vec<PodRecord>, policies: Arc<PolicyIndex>) -> Stage {
    let metrics = Arc::new(Metrics::new());
    let index = Arc::new(PodIndex::new(metrics.clone()));
    index.replace_all(records);
    let dns = ReverseDns::with_resolver(
        DnsSettings::defaults(true),
        metrics.clone(),
        Arc::new(|ip: IpAddr| {
            Ok((ip == "203.0.113.5".parse::<IpAddr>().unwrap())
                .then(|| "mail.example.org".to_string()))
        }),
    );
    let (_trigger, stop) = crate::stop::new();
    let (input, stage_input) = bounded(4);
    let (stage_output, output) = bounded(4);
    let stage_metrics = metrics.clone();
    let thread = std::thread::spawn(move || {
        run(
            stage_input,
            stage_output,
            index,
            policies,
            dns,
            stop,
            stage_metrics,
        );
    });
    Stage {
        input,
        output,
        thread,
        metrics,
    }
}

impl Stage {
    fn pass(&self, items: Vec<PacketDrop>, offset: u64) -> Batch<Located> {
        self.input
            .send(Batch {
                items,
                end: Some(position(offset)),
            })
            .unwrap();
        self.output.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn finish(self) -> Arc<Metrics> {
        drop(self.input);
        self.thread.join().unwrap();
        self.metrics
    }
}

fn drops_counted(metrics: &Metrics, src: &str, dst: &str) -> u64 {
    metrics.packet_drops.with_label_values(&[src, dst]).get()
}

#[test]
fn drops_are_located_at_pods_nodes_and_external_names_once_looked_up() {
    let web = pod("shop", "web-7d9f8c6b5d-x2x9q", false);
    let db = pod("data", "db-0", false);
    let proxy = pod("kube-system", "kube-proxy-8xk2p", true);
    let stage = start(vec![
        running(web.clone(), "10.1.2.3"),
        running(db.clone(), "fd00::7"),
        running(proxy, "192.168.0.7"),
    ]);
    let drops = || {
        vec![
            drop_between("10.1.2.3", "fd00::7"),
            drop_between("10.1.2.3", "203.0.113.5"),
            drop_between("198.51.100.9", "10.1.2.3"),
            drop_between("192.168.0.7", "fd00::7"),
            // No pod end: no Event, so no name is looked up for either.
            drop_between("198.51.100.77", "203.0.113.66"),
        ]
    };
    let web = Endpoint::Pod(Arc::new(web));
    let db = Endpoint::Pod(Arc::new(db));
    let external = |address: &str, name: &str| Endpoint::External {
        ip: ip(address),
        name: name.to_string(),
    };
    let located = |mail_name: &str| -> Vec<Located> {
        let at = |drop, src, dst| Located {
            isolation: Default::default(),
            drop,
            src,
            dst,
        };
        vec![
            at(drop_between("10.1.2.3", "fd00::7"), web.clone(), db.clone()),
            at(
                drop_between("10.1.2.3", "203.0.113.5"),
                web.clone(),
                external("203.0.113.5", mail_name),
            ),
            at(
                drop_between("198.51.100.9", "10.1.2.3"),
                external("198.51.100.9", "198.51.100.9"),
                web.clone(),
            ),
            at(
                drop_between("192.168.0.7", "fd00::7"),
                Endpoint::Node {
                    ip: ip("192.168.0.7"),
                    node: "node-7".to_string(),
                },
                db.clone(),
            ),
            at(
                drop_between("198.51.100.77", "203.0.113.66"),
                external("198.51.100.77", "198.51.100.77"),
                external("203.0.113.66", "203.0.113.66"),
            ),
        ]
    };

    // The names are not known yet: the drops carry the IPs, and lookups are queued.
    let batch = stage.pass(drops(), 4096);
    assert_eq!(
        batch,
        Batch {
            items: located("203.0.113.5"),
            end: Some(position(4096)),
        }
    );
    let lookups = |result: &str| stage.metrics.dns_lookups.with_label_values(&[result]).get();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lookups("found") + lookups("not_found") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the lookups did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Once found, the name is there at once.
    let batch = stage.pass(drops(), 8192);
    assert_eq!(
        batch,
        Batch {
            items: located("mail.example.org"),
            end: Some(position(8192)),
        }
    );
    let metrics = stage.finish();
    assert_eq!(drops_counted(&metrics, "shop", "data"), 2);
    assert_eq!(drops_counted(&metrics, "shop", "external"), 2);
    assert_eq!(drops_counted(&metrics, "external", "shop"), 2);
    assert_eq!(drops_counted(&metrics, "node", "data"), 2);
    assert_eq!(drops_counted(&metrics, "external", "external"), 2);
    assert_eq!(metrics.dns_lookups.with_label_values(&["found"]).get(), 1);
    assert_eq!(
        metrics.dns_lookups.with_label_values(&["not_found"]).get(),
        1
    );
}

#[test]
fn an_empty_batch_is_passed_on_with_its_position() {
    let stage = start(Vec::new());
    assert_eq!(
        stage.pass(Vec::new(), 123),
        Batch {
            items: Vec::new(),
            end: Some(position(123)),
        }
    );
    stage.finish();
}

#[test]
fn the_201st_namespace_is_counted_as_other() {
    let namespaces: Vec<String> = (0..=200).map(|n| format!("team-{n:03}")).collect();
    let records = namespaces
        .iter()
        .enumerate()
        .map(|(n, namespace)| running(pod(namespace, "api-0", false), &format!("10.2.0.{n}")))
        .collect();
    let stage = start(records);
    // team-000 talks to itself, then every other namespace talks to team-000, team-200 last.
    let drops = (0..=200)
        .map(|n| drop_between(&format!("10.2.0.{n}"), "10.2.0.0"))
        .collect();
    assert_eq!(stage.pass(drops, 1).items.len(), 201);
    // A namespace counted before the cap keeps its label.
    stage.pass(vec![drop_between("10.2.0.199", "10.2.0.0")], 2);
    stage.pass(vec![drop_between("10.2.0.0", "10.2.0.200")], 3);
    let metrics = stage.finish();

    assert_eq!(drops_counted(&metrics, "team-000", "team-000"), 1);
    assert_eq!(drops_counted(&metrics, "team-001", "team-000"), 1);
    assert_eq!(drops_counted(&metrics, "team-199", "team-000"), 2);
    assert_eq!(drops_counted(&metrics, "other", "team-000"), 1);
    assert_eq!(drops_counted(&metrics, "team-000", "other"), 1);
    let text = metrics.render();
    assert!(!text.contains("team-200"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with("packet_drops_count{"))
            .count(),
        202
    );
}

#[test]
fn namespace_pairs_past_the_cap_are_counted_as_other_to_other() {
    // 60 namespaces, each talking to every one: 3,600 pairs, far fewer than 200 × 200.
    let namespaces: Vec<String> = (0..60).map(|n| format!("team-{n:02}")).collect();
    let records = namespaces
        .iter()
        .enumerate()
        .map(|(n, namespace)| running(pod(namespace, "api-0", false), &format!("10.3.0.{n}")))
        .collect();
    let stage = start(records);
    for src in 0..60 {
        let drops = (0..60)
            .map(|dst| drop_between(&format!("10.3.0.{src}"), &format!("10.3.0.{dst}")))
            .collect();
        stage.pass(drops, src);
    }
    // A pair counted before the cap keeps its labels.
    stage.pass(vec![drop_between("10.3.0.0", "10.3.0.1")], 60);
    let metrics = stage.finish();

    let text = metrics.render();
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("packet_drops_count{"))
        .collect();
    assert_eq!(series.len(), MAX_NAMESPACE_PAIRS + 1, "{text}");
    // The first 1,000 pairs in the order seen: team-00 to team-16 to every namespace (17 × 60 =
    // 1,020 pairs), less the last 20 of team-16.
    assert_eq!(drops_counted(&metrics, "team-00", "team-01"), 2);
    assert_eq!(drops_counted(&metrics, "team-16", "team-39"), 1);
    assert_eq!(drops_counted(&metrics, "team-16", "team-40"), 0);
    assert_eq!(drops_counted(&metrics, "team-59", "team-59"), 0);
    assert_eq!(drops_counted(&metrics, "other", "other"), 3600 - 1000);
    // Every drop is counted once.
    let total: u64 = series
        .iter()
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 3601);
}

#[test]
fn namespace_labels_are_capped_but_node_and_external_are_not() {
    let mut labels = NamespaceLabels::new(1, 100);
    let first = Endpoint::Pod(Arc::new(pod("shop", "web-0", false)));
    let second = Endpoint::Pod(Arc::new(pod("data", "db-0", false)));
    let node = Endpoint::Node {
        ip: ip("192.168.0.7"),
        node: "node-7".to_string(),
    };
    let external = Endpoint::External {
        ip: ip("198.51.100.9"),
        name: "198.51.100.9".to_string(),
    };
    assert_eq!(labels.pair(&first, &second), ["shop", "other"]);
    assert_eq!(labels.pair(&node, &external), ["node", "external"]);
    assert_eq!(labels.pair(&second, &first), ["other", "shop"]);
}

#[test]
fn pairs_past_the_cap_are_other_to_other_and_known_pairs_keep_theirs() {
    let mut labels = NamespaceLabels::new(100, 2);
    let shop = Endpoint::Pod(Arc::new(pod("shop", "web-0", false)));
    let data = Endpoint::Pod(Arc::new(pod("data", "db-0", false)));
    let external = Endpoint::External {
        ip: ip("198.51.100.9"),
        name: "198.51.100.9".to_string(),
    };
    assert_eq!(labels.pair(&shop, &data), ["shop", "data"]);
    assert_eq!(labels.pair(&external, &shop), ["external", "shop"]);
    assert_eq!(labels.pair(&data, &shop), ["other", "other"]);
    assert_eq!(labels.pair(&shop, &external), ["other", "other"]);
    assert_eq!(labels.pair(&shop, &data), ["shop", "data"]);
    assert_eq!(labels.pair(&external, &shop), ["external", "shop"]);
}

#[test]
fn the_stage_waits_for_the_index_and_ends_if_stopped_first() {
    let metrics = Arc::new(Metrics::new());
    let index = Arc::new(PodIndex::new(metrics.clone()));
    let dns = ReverseDns::with_resolver(
        DnsSettings::defaults(false),
        metrics.clone(),
        Arc::new(|_| Ok(None)),
    );
    let (trigger, stop) = crate::stop::new();
    let (input, stage_input) = bounded(4);
    let (stage_output, output) = bounded::<Batch<Located>>(4);
    let thread = std::thread::spawn(move || {
        run(
            stage_input,
            stage_output,
            index,
            Arc::default(),
            dns,
            stop,
            metrics,
        );
    });
    input
        .send(Batch {
            items: vec![drop_between("10.1.2.3", "10.1.2.4")],
            end: Some(position(1)),
        })
        .unwrap();
    // Not synced: the drop waits in the channel.
    assert!(output.recv_timeout(Duration::from_millis(50)).is_err());
    assert_eq!(input.len(), 1);
    trigger.trigger();
    thread.join().unwrap();
    assert!(output.recv().is_err());
}

#[test]
fn where_the_log_names_no_policy_the_isolating_network_policies_of_each_pod_end_are_found() {
    use crate::model::{Policy, PolicyKind};
    use crate::resolve::labels::LabelSets;
    use crate::resolve::policies::IsolatingPolicy;

    let policy = |namespace: &str, name: &str, spec: serde_json::Value| {
        let value =
            serde_json::json!({"metadata": {"namespace": namespace, "name": name}, "spec": spec});
        IsolatingPolicy::from_api(&serde_json::from_value(value).unwrap()).unwrap()
    };
    let policies = Arc::new(PolicyIndex::default());
    policies.replace_all(vec![
        policy(
            "db",
            "deny-in",
            serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
        policy(
            "shop",
            "web-out",
            serde_json::json!({
                "podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]
            }),
        ),
        policy(
            "shop",
            "deny-in",
            serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
    ]);
    let mut web = pod("shop", "web-1", false);
    let app_web = [("app".to_string(), "web".to_string())]
        .into_iter()
        .collect();
    web.labels = LabelSets::default().share(Some(&app_web));
    let stage = start_with_policies(
        vec![
            running(web, "10.0.1.1"),
            running(pod("db", "pg-0", false), "10.0.2.1"),
            running(pod("shop", "agent", true), "192.0.2.7"),
        ],
        policies,
    );
    let named = {
        let mut drop = drop_between("10.0.1.1", "10.0.2.1");
        drop.policy = Some(Policy::new(PolicyKind::NetworkPolicy, "db", "deny-in"));
        drop
    };
    let batch = stage.pass(
        vec![
            drop_between("10.0.1.1", "10.0.2.1"),
            named,
            // A hostNetwork pod is not subject to NetworkPolicies.
            drop_between("192.0.2.7", "10.0.1.1"),
        ],
        1,
    );
    let isolation: Vec<(Vec<String>, Vec<String>)> = batch
        .items
        .iter()
        .map(|located| {
            (
                located.isolation.sender.clone(),
                located.isolation.receiver.clone(),
            )
        })
        .collect();
    let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        isolation,
        [
            (names(&["web-out"]), names(&["deny-in"])),
            (names(&[]), names(&[])),
            (names(&[]), names(&["deny-in"])),
        ]
    );
    stage.finish();
}
