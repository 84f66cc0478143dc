//! The probes and the Prometheus annotations point at the metrics port the agent is configured with,
//! at paths the agent's own server answers; on the host network, at a port no common node agent takes.

use std::time::Duration;

use k8s_openapi::api::core::v1::{HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::manifests::{OVERLAYS, Rendered, render};
use crate::support::agent::Agent;
use crate::support::wait_until;

/// The agent's default METRICS_SERVER_PORT.
pub const DEFAULT_PORT: i32 = 9090;

/// Ports that node agents commonly listen on in the host's network namespace, where a hostNetwork
/// pod's metrics server listens too: it must take none of them.
const NODE_PORTS: [(i32, &str); 17] = [
    (2379, "etcd"),
    (2380, "etcd peers"),
    (6443, "the API server"),
    (9090, "Prometheus"),
    (9091, "calico-felix metrics"),
    (9099, "calico-felix health"),
    (9100, "node-exporter"),
    (9962, "cilium-agent metrics"),
    (9963, "cilium-operator metrics"),
    (9964, "cilium envoy metrics"),
    (9965, "hubble metrics"),
    (10248, "kubelet health"),
    (10249, "kube-proxy metrics"),
    (10250, "the kubelet"),
    (10256, "kube-proxy health"),
    (20241, "kube-router metrics"),
    (20244, "kube-router health"),
];

fn http_get<'a>(probe: Option<&'a Probe>, which: &str) -> &'a HTTPGetAction {
    probe
        .and_then(|probe| probe.http_get.as_ref())
        .unwrap_or_else(|| panic!("the {which} probe is an HTTP GET"))
}

/// The container port a probe's `port` names (or is).
pub fn port_number(rendered: &Rendered, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => {
            rendered
                .agent()
                .ports
                .iter()
                .flatten()
                .find(|port| port.name.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("{}: no port named {name}", rendered.overlay))
                .container_port
        }
    }
}

/// The port the agent's metrics server will listen on: METRICS_SERVER_PORT, or the default.
pub fn metrics_port(rendered: &Rendered) -> i32 {
    rendered
        .env("METRICS_SERVER_PORT")
        .map_or(DEFAULT_PORT, |port| port.parse().expect("a port"))
}

/// The container port named `metrics`, and the ports the liveness and readiness probes ask.
pub fn probe_ports(rendered: &Rendered) -> (i32, i32, i32) {
    let agent = rendered.agent();
    let metrics = port_number(rendered, &IntOrString::String("metrics".to_string()));
    let liveness = http_get(agent.liveness_probe.as_ref(), "liveness");
    let readiness = http_get(agent.readiness_probe.as_ref(), "readiness");
    (
        metrics,
        port_number(rendered, &liveness.port),
        port_number(rendered, &readiness.port),
    )
}

#[test]
fn probes_and_scrape_annotations_point_at_the_metrics_port() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("probes", overlay) else {
            return;
        };
        let port = metrics_port(&rendered);
        let agent = rendered.agent();
        let declared = agent
            .ports
            .iter()
            .flatten()
            .find(|p| p.container_port == port);
        let declared = declared.unwrap_or_else(|| panic!("{overlay}: port {port} is declared"));
        assert_eq!(declared.protocol.as_deref(), Some("TCP"));
        assert_eq!(declared.host_port, None, "{overlay}: no host port");

        let liveness = http_get(agent.liveness_probe.as_ref(), "liveness");
        assert_eq!(liveness.path.as_deref(), Some("/healthz"), "{overlay}");
        assert_eq!(port_number(&rendered, &liveness.port), port, "{overlay}");
        let readiness = http_get(agent.readiness_probe.as_ref(), "readiness");
        assert_eq!(readiness.path.as_deref(), Some("/readyz"), "{overlay}");
        assert_eq!(port_number(&rendered, &readiness.port), port, "{overlay}");
        for probe in [liveness, readiness] {
            assert!(matches!(probe.scheme.as_deref(), None | Some("HTTP")));
        }

        let template = &rendered.daemon_set().spec.template;
        let annotations = template
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.annotations.clone())
            .unwrap_or_default();
        let annotation = |key: &str| annotations.get(key).map(String::as_str);
        assert_eq!(
            annotation("prometheus.io/scrape"),
            Some("true"),
            "{overlay}"
        );
        assert_eq!(
            annotation("prometheus.io/port"),
            Some(port.to_string().as_str()),
            "{overlay}"
        );
        assert_eq!(
            annotation("prometheus.io/path"),
            Some("/metrics"),
            "{overlay}"
        );
    }
}

#[test]
fn on_the_host_network_the_metrics_port_is_none_that_node_agents_commonly_take() {
    let mut checked = Vec::new();
    for overlay in OVERLAYS {
        let Some(rendered) = render("host ports", overlay) else {
            return;
        };
        if rendered.pod().host_network != Some(true) {
            continue;
        }
        let port = metrics_port(&rendered);
        if let Some((_, owner)) = NODE_PORTS.iter().find(|(taken, _)| *taken == port) {
            panic!("{overlay}: on the host network, port {port} is {owner}'s on many nodes");
        }
        checked.push(overlay);
    }
    assert_eq!(checked, ["nflog"], "the overlays on the host network");
}

#[test]
fn the_agent_answers_the_probe_and_scrape_paths_of_the_manifests() {
    let Some(rendered) = render("probe paths", "file") else {
        return;
    };
    let agent_spec = rendered.agent();
    let liveness = http_get(agent_spec.liveness_probe.as_ref(), "liveness");
    let readiness = http_get(agent_spec.readiness_probe.as_ref(), "readiness");
    let template = &rendered.daemon_set().spec.template;
    let scrape = template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["prometheus.io/path"]
        .clone();

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("iptables.log");
    std::fs::write(&log, "").unwrap();
    let agent = Agent::start(
        dir.path(),
        &[
            ("IPTABLES_LOG_PATH", log.to_str().unwrap()),
            ("EVENT_SINK", "stdout"),
        ],
    );
    let get = |path: &str| agent.get(path).map(|(status, _)| status);
    assert_eq!(get(liveness.path.as_deref().unwrap()), Some(200));
    wait_until(
        "the readiness probe to pass",
        Duration::from_secs(10),
        || get(readiness.path.as_deref().unwrap()) == Some(200),
    );
    let (status, body) = agent.get(&scrape).expect("the metrics answer");
    assert_eq!(status, 200);
    assert!(
        body.contains("kube_iptables_tailer_lines_read_total"),
        "{body}"
    );
}
