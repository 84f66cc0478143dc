//! The pods of a large synthetic cluster, the same on every run: realistic names
//! (`app-xxxxxxxxxx-xxxxx` in `team-NN-production`, 50 namespaces), UUID uids, 1,000 nodes, one IPv4
//! address each and an IPv6 one for every other pod.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const NAMESPACES: u32 = 50;
pub const NODES: u32 = 1_000;

pub const APPS: [&str; 16] = [
    "frontend",
    "checkout",
    "payments-api",
    "search-indexer",
    "cart",
    "recommendations",
    "image-resizer",
    "auth-gateway",
    "inventory-sync",
    "notifications-worker",
    "ledger",
    "catalog",
    "session-store",
    "metrics-exporter",
    "shipping",
    "pricing-engine",
];

/// Pod `n` of the cluster.
pub struct SyntheticPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// `base + n`: the benches keep their pods' addresses apart by base.
    pub ipv4: Ipv4Addr,
    /// For every other pod (even `n`).
    pub ipv6: Option<Ipv6Addr>,
}

impl SyntheticPod {
    pub fn new(n: u32, base: u32) -> SyntheticPod {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut random = Random(u64::from(n) + 1);
        // Allocated in this order: the pod_index bench measures the resident memory they take.
        SyntheticPod {
            namespace: format!("team-{:02}-production", n % NAMESPACES),
            name: format!(
                "{}-{}-{}",
                app(n),
                random.word(10, ALPHABET),
                random.word(5, ALPHABET)
            ),
            uid: random.uuid(),
            node: format!("ip-10-0-{}-{}.ec2.internal", n % NODES / 250, n % 250),
            ipv4: ipv4(n, base),
            ipv6: ipv6(n),
        }
    }
}

/// The IPv4 address of pod `n`: `base + n`.
pub fn ipv4(n: u32, base: u32) -> Ipv4Addr {
    Ipv4Addr::from(base + n)
}

/// The IPv6 address of pod `n`, which even pods have: `fd00::` with `n` in the last 32 bits.
pub fn ipv6(n: u32) -> Option<Ipv6Addr> {
    n.is_multiple_of(2)
        .then(|| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16))
}

/// The `app` of pod `n`, the first part of its name.
pub fn app(n: u32) -> &'static str {
    APPS[n as usize % APPS.len()]
}

/// The IPv4 address of the node of pod `n`.
pub fn host_ip(n: u32) -> String {
    format!("10.0.{}.{}", n % NODES / 250, n % 250)
}

/// splitmix64: deterministic, so every run builds the same pods.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self, len: usize, alphabet: &[u8]) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn uuid(&mut self) -> String {
        let (high, low) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xfff,
            (low >> 48) & 0x3fff | 0x8000,
            low & 0xffff_ffff_ffff
        )
    }
}

/// Pod `n` (IPv4 10.0.0.0 + n) as a real API server sends a Deployment's pod: two containers with
/// env, resources, probes and mounts, the service account's projected volume, tolerations, status
/// conditions and container statuses, an owner reference, and the managedFields of the controller
/// and the kubelet. About 7 KB of JSON, as in a typical cluster; `created` is its timestamps.
pub fn full_pod_object(n: u32, created: &str) -> serde_json::Value {
    use serde_json::json;
    let pod = SyntheticPod::new(n, 0x0A00_0000);
    let app = app(n);
    let pod_ip = pod.ipv4.to_string();
    let ips: Vec<serde_json::Value> = std::iter::once(pod_ip.clone())
        .chain(pod.ipv6.map(|ip| ip.to_string()))
        .map(|ip| json!({"ip": ip}))
        .collect();
    let host_ip = host_ip(n);
    let hash = format!("{:010x}", (n / 20) * 7919);
    let container = |name: &str, image: &str, port: u32| {
        json!({
            "name": name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": [
                {"name": "APP_NAME", "value": app},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{app}-db"), "key": "url"}}}
            ],
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"}, "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
            ],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}
        })
    };
    let status_of = |name: &str, image: &str| {
        json!({
            "name": name, "image": image, "imageID": format!("{image}@sha256:{:064x}", n),
            "containerID": format!("containerd://{:064x}", u64::from(n) * 31 + 7),
            "ready": true, "restartCount": 0, "started": true,
            "state": {"running": {"startedAt": created}}, "lastState": {}
        })
    };
    let (main_image, sidecar_image) = (
        format!("registry.example.com/{app}:1.42.{}", n % 7),
        "registry.example.com/envoy:1.31.2".to_string(),
    );
    let managed_spec = json!({
        "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:team": {}},
                       "f:ownerReferences": {".": {}, "k:{\"uid\":\"0d3c\"}": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {}, "f:image": {}, "f:imagePullPolicy": {},
                   "f:livenessProbe": {}, "f:name": {}, "f:ports": {}, "f:readinessProbe": {}, "f:resources": {},
                   "f:securityContext": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
                   "f:volumeMounts": {}}, "k:{\"name\":\"envoy\"}": {".": {}, "f:image": {}, "f:name": {}}},
                   "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                   "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}, "f:volumes": {}}
    });
    let managed_status = json!({
        "f:status": {"f:conditions": {"k:{\"type\":\"ContainersReady\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                     "k:{\"type\":\"Initialized\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                     "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                     "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}
    });
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": created});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "generateName": format!("{app}-{hash}-"),
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": (100_000 + n).to_string(),
            "creationTimestamp": created,
            "labels": {"app": app, "pod-template-hash": hash, "team": format!("team-{:02}", (n / 20) % 50)},
            "annotations": {"kubectl.kubernetes.io/restartedAt": created, "prometheus.io/scrape": "true", "prometheus.io/port": "9102"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-{hash}"), "uid": "0d3c", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": created, "fieldsType": "FieldsV1", "fieldsV1": managed_spec},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": created, "fieldsType": "FieldsV1", "fieldsV1": managed_status, "subresource": "status"}
            ]
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": format!("{app}-config"), "defaultMode": 420}},
                {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "containers": [container("app", &main_image, 8080), container("envoy", &sidecar_image, 15001)],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": pod.node,
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": ips,
            "startTime": created,
            "containerStatuses": [status_of("app", &main_image), status_of("envoy", &sidecar_image)],
            "qosClass": "Burstable"
        }
    })
}
