//! The Kubernetes part of the configuration: where the API is, how Events look and how fast they go.

use std::path::PathBuf;
use std::time::Duration;

use super::{Args, ConfigError, invalid, number_in};
use crate::model::PodIdentifier;
use crate::resolve::pod_lookup::PodIndexMode;

/// Settings of the Kubernetes sink, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesConfig {
    pub kubeconfig: Option<PathBuf>,
    pub api_server: Option<String>,
    pub node_name: String,
    pub reason: String,
    pub component: String,
    pub pod_index: PodIndexMode,
    /// Node mode: how long a remote pod's lookup is trusted.
    pub pod_lookup_ttl: Duration,
    pub identifier: PodIdentifier,
    pub identifier_label: Option<String>,
    pub dns_lookup: bool,
    pub network_policy_attribution: bool,
    pub repeat_interval: Duration,
    pub events_qps: f64,
    pub events_burst: u32,
    /// `None`: no bound (EVENTS_PER_POD=0).
    pub events_per_pod: Option<usize>,
}

/// Whether a cluster is configured: in a pod (KUBERNETES_SERVICE_HOST), a kubeconfig, or KUBE_API_SERVER.
/// `~/.kube/config` alone does not count: `make run` on a laptop must not post to a real cluster.
pub fn cluster_configured(args: &Args) -> bool {
    let given = |value: &Option<String>| value.as_deref().is_some_and(|value| !value.is_empty());
    given(&args.kubernetes_service_host) || given(&args.kubeconfig) || given(&args.kube_api_server)
}

pub fn kubernetes(
    args: &Args,
    host_name: impl FnOnce() -> String,
) -> Result<KubernetesConfig, ConfigError> {
    let non_empty = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
    let api_server = non_empty(&args.kube_api_server);
    if let Some(server) = &api_server {
        if crate::kubernetes::api_server_url(server).is_none() {
            return Err(invalid(
                "KUBE_API_SERVER",
                server,
                "must be an http:// or https:// URL",
            ));
        }
    }
    // Read now, as the Kubernetes thread will, so that a missing or broken file is a configuration
    // error (exit 2, and `--check-config` says so), not a failure once the agent runs.
    let kubeconfig = non_empty(&args.kubeconfig).map(PathBuf::from);
    if let Some(path) = &kubeconfig {
        crate::kubernetes::check_kubeconfig(path)
            .map_err(|problem| invalid("KUBECONFIG", &path.display().to_string(), problem))?;
    }
    let identifier = match args.pod_identifier.as_str() {
        "namespace" => PodIdentifier::Namespace,
        "name" => PodIdentifier::Name,
        "label" => PodIdentifier::Label,
        "name_with_namespace" => PodIdentifier::NameWithNamespace,
        other => {
            return Err(invalid(
                "POD_IDENTIFIER",
                other,
                "must be namespace, name, label or name_with_namespace",
            ));
        }
    };
    let identifier_label = non_empty(&args.pod_identifier_label);
    if identifier == PodIdentifier::Label && identifier_label.is_none() {
        return Err(invalid(
            "POD_IDENTIFIER_LABEL",
            "",
            "required when POD_IDENTIFIER=label",
        ));
    }
    let dns_lookup = boolean("DNS_LOOKUP", &args.dns_lookup)?;
    let network_policy_attribution = boolean(
        "NETWORK_POLICY_ATTRIBUTION",
        &args.network_policy_attribution,
    )?;
    let events_qps = match args.events_qps.trim().parse::<f64>() {
        Ok(qps) if qps > 0.0 && qps <= 10_000.0 => qps,
        _ => {
            return Err(invalid(
                "EVENTS_QPS",
                &args.events_qps,
                "must be a number above 0, at most 10000",
            ));
        }
    };
    let events_burst = number_in("EVENTS_BURST", &args.events_burst, 1, 100_000)? as u32;
    let events_per_pod = match number_in("EVENTS_PER_POD", &args.events_per_pod, 0, 10_000)? {
        0 => None,
        limit => Some(limit as usize),
    };
    // Accepted and checked, as old deployments set it; the watch needs no periodic relist.
    number_in("POD_RESYNC_MINUTES", &args.pod_resync_minutes, 1, 60 * 24)?;
    let node_name = non_empty(&args.node_name);
    let pod_index = match args.pod_index.as_deref() {
        Some("cluster") => PodIndexMode::Cluster,
        Some("node") if node_name.is_some() => PodIndexMode::Node,
        Some("node") => {
            return Err(invalid(
                "POD_INDEX",
                "node",
                "requires NODE_NAME (this node's name, from the downward API's spec.nodeName)",
            ));
        }
        // Node mode pulls a node's share of the pods, not all of them (README: "Pod index"), but
        // watches the wrong pods under a wrong name: only where the node's name was given.
        None | Some("") if node_name.is_some() => PodIndexMode::Node,
        None | Some("") => PodIndexMode::Cluster,
        Some(other) => return Err(invalid("POD_INDEX", other, "must be cluster or node")),
    };
    let lookup_ttl = number_in(
        "POD_LOOKUP_TTL_SECONDS",
        &args.pod_lookup_ttl_seconds,
        1,
        3600,
    )?;
    let repeat = number_in(
        "REPEATED_EVENTS_INTERVAL_MINUTES",
        &args.repeated_events_interval_minutes,
        1,
        60 * 24,
    )?;
    for (variable, value) in [
        ("KUBE_EVENT_DISPLAY_REASON", &args.kube_event_display_reason),
        (
            "KUBE_EVENT_SOURCE_COMPONENT_NAME",
            &args.kube_event_source_component_name,
        ),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(variable, value, "must not be empty"));
        }
    }
    Ok(KubernetesConfig {
        kubeconfig,
        api_server,
        node_name: node_name.unwrap_or_else(host_name),
        reason: args.kube_event_display_reason.clone(),
        component: args.kube_event_source_component_name.clone(),
        pod_index,
        pod_lookup_ttl: Duration::from_secs(lookup_ttl),
        identifier,
        identifier_label,
        dns_lookup,
        network_policy_attribution,
        repeat_interval: Duration::from_secs(repeat * 60),
        events_qps,
        events_burst,
        events_per_pod,
    })
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
fn boolean(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(variable, value, "must be true or false")),
    }
}
