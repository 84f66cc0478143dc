//! The DaemonSet of each overlay: mounted where the agent reads, read-only but for its checkpoints,
//! locked down to what its log source needs, sized from the benchmarks, on every node.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::core::v1::{Container, HostPathVolumeSource, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::manifests::{AGENT, OVERLAYS, Rendered, render};
use super::probes::metrics_port;
use crate::support::agent::BINARY;

/// The hostPath volume behind each of `container`'s mounts that has one.
fn host_mounts<'a>(
    rendered: &'a Rendered,
    container: &'a Container,
) -> Vec<(&'a VolumeMount, &'a HostPathVolumeSource)> {
    let volumes = rendered.pod().volumes.as_deref().unwrap_or_default();
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|mount| {
            let volume = volumes
                .iter()
                .find(|volume| volume.name == mount.name)
                .unwrap_or_else(|| panic!("{}: no volume {}", rendered.overlay, mount.name));
            let host = volume.host_path.as_ref().unwrap_or_else(|| {
                panic!(
                    "{}: volume {} is not a hostPath",
                    rendered.overlay, mount.name
                )
            });
            (mount, host)
        })
        .collect()
}

/// The agent's mount that contains `path`, with its hostPath.
fn mount_of<'a>(rendered: &'a Rendered, path: &str) -> (&'a VolumeMount, &'a HostPathVolumeSource) {
    host_mounts(rendered, rendered.agent())
        .into_iter()
        .find(|(mount, _)| Path::new(path).starts_with(&mount.mount_path))
        .unwrap_or_else(|| panic!("{}: nothing mounts {path}", rendered.overlay))
}

#[test]
fn the_log_source_is_mounted_read_only_at_the_path_the_agent_reads() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("log source mounts", overlay) else {
            return;
        };
        assert_eq!(rendered.env("LOG_SOURCE"), Some(overlay));
        // (path the agent reads, the hostPath type that proves it is what it should be)
        let reads: Vec<(String, &str)> = match overlay {
            "file" => {
                let log = rendered
                    .env("IPTABLES_LOG_PATH")
                    .expect("IPTABLES_LOG_PATH");
                assert!(
                    host_mounts(&rendered, rendered.agent())
                        .iter()
                        .all(|(mount, _)| mount.mount_path != log),
                    "the log's directory is mounted, not the file: a rotated file would be lost"
                );
                let directory = Path::new(log).parent().expect("an absolute path");
                vec![
                    (directory.to_str().unwrap().to_string(), "Directory"),
                    // The host's zone, for timestamps written without one (RFC 3164).
                    ("/etc/localtime".to_string(), "File"),
                ]
            }
            "journald" => {
                // The system journal: sd-journal looks in both places, for this machine id.
                assert_eq!(rendered.env("JOURNAL_DIRECTORY"), None);
                vec![
                    ("/run/log/journal".to_string(), "DirectoryOrCreate"),
                    // Through /var/log, which every host has (see the overlay).
                    ("/var/log/journal".to_string(), "Directory"),
                    ("/etc/machine-id".to_string(), "File"),
                ]
            }
            "kmsg" => {
                let device = rendered.env("KMSG_PATH").unwrap_or("/dev/kmsg");
                vec![(device.to_string(), "CharDevice")]
            }
            // A netlink socket, not a file: nothing of the host is mounted.
            "nflog" => {
                assert!(
                    host_mounts(&rendered, rendered.agent()).is_empty(),
                    "nflog: no host mount"
                );
                Vec::new()
            }
            other => panic!("an overlay this test does not know: {other}"),
        };
        for (path, kind) in reads {
            let (mount, host) = mount_of(&rendered, &path);
            assert_eq!(
                host.path, mount.mount_path,
                "{overlay}: {path} is at the same path in the container as on the host"
            );
            assert_eq!(host.type_.as_deref(), Some(kind), "{overlay}: {path}");
            assert_eq!(mount.read_only, Some(true), "{overlay}: {path} read-only");
        }
    }
}

#[test]
fn host_mounts_are_read_only_but_for_the_checkpoints_kept_on_the_host() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("read-only mounts", overlay) else {
            return;
        };
        let Some(state) = rendered.env("STATE_DIRECTORY") else {
            // NFLOG keeps no history to resume from: no checkpoint, so nothing is written on the host.
            assert_eq!(overlay, "nflog", "{overlay}: STATE_DIRECTORY: checkpoints");
            for container in rendered.containers() {
                assert!(
                    host_mounts(&rendered, container).is_empty(),
                    "{overlay}: {} mounts the host",
                    container.name
                );
            }
            continue;
        };
        let (mount, host) = mount_of(&rendered, state);
        assert_eq!(mount.mount_path, state, "{overlay}");
        assert_eq!(
            host.path, state,
            "{overlay}: a new pod finds the old one's checkpoints"
        );
        assert_eq!(host.type_.as_deref(), Some("DirectoryOrCreate"));
        assert_ne!(
            mount.read_only,
            Some(true),
            "{overlay}: checkpoints are written"
        );
        for container in rendered.containers() {
            for (mount, _) in host_mounts(&rendered, container) {
                if mount.mount_path != state {
                    assert_eq!(
                        mount.read_only,
                        Some(true),
                        "{overlay}: {} mounts {} writable",
                        container.name,
                        mount.mount_path
                    );
                }
            }
        }
    }
}

#[test]
fn containers_are_locked_down_to_what_their_log_source_needs() {
    // (overlay, container, privileged, runs as root, capabilities added back)
    let expected: [(&str, &str, bool, bool, &[&str]); 5] = [
        ("file", AGENT, false, false, &[]),
        // Hands the checkpoint directory to the agent's user, then exits.
        ("file", "state-owner", false, true, &["CHOWN"]),
        // Journal files belong to root (group systemd-journal, whose id varies).
        ("journald", AGENT, false, true, &[]),
        // /dev/kmsg is outside every runtime's device allowlist; CAP_SYSLOG.
        ("kmsg", AGENT, true, true, &[]),
        // Binding an NFLOG group is a netfilter configuration request. Root, because Kubernetes
        // cannot give a non-root process the ambient capability it would need.
        ("nflog", AGENT, false, true, &["NET_ADMIN"]),
    ];
    for overlay in OVERLAYS {
        let Some(rendered) = render("lockdown", overlay) else {
            return;
        };
        let pod = rendered.pod();
        let seccomp = pod
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref());
        assert_eq!(
            seccomp.map(|s| s.type_.as_str()),
            Some("RuntimeDefault"),
            "{overlay}"
        );
        // NFLOG groups belong to a network namespace, and the drops are logged in the host's.
        let host_network = overlay == "nflog";
        assert_eq!(
            pod.host_network.unwrap_or(false),
            host_network,
            "{overlay}: hostNetwork"
        );
        assert_ne!(pod.host_pid, Some(true), "{overlay}");
        assert_ne!(pod.host_ipc, Some(true), "{overlay}");
        for container in rendered.containers() {
            let context = format!("{overlay}: {}", container.name);
            let &(_, _, privileged, root, added) = expected
                .iter()
                .find(|(o, c, ..)| *o == overlay && *c == container.name)
                .unwrap_or_else(|| panic!("{context}: a container this test does not know"));
            let security = container.security_context.as_ref().expect(&context);
            assert_eq!(security.read_only_root_filesystem, Some(true), "{context}");
            if root {
                assert_eq!(security.run_as_user, Some(0), "{context}");
                assert_ne!(security.run_as_non_root, Some(true), "{context}");
            } else {
                assert_eq!(security.run_as_non_root, Some(true), "{context}");
                assert!(
                    security.run_as_user.is_some_and(|uid| uid != 0),
                    "{context}"
                );
            }
            if privileged {
                assert_eq!(security.privileged, Some(true), "{context}");
                // Privileged means every capability: no list pretends otherwise.
                assert!(security.capabilities.is_none(), "{context}");
                continue;
            }
            assert_ne!(security.privileged, Some(true), "{context}");
            assert_eq!(
                security.allow_privilege_escalation,
                Some(false),
                "{context}"
            );
            let capabilities = security.capabilities.as_ref().expect(&context);
            assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
            let add: Vec<&str> = capabilities
                .add
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            assert_eq!(add, added, "{context}: capabilities added");
        }
        if overlay == "file" {
            // rsyslog's files are root:adm (or syslog:adm) 0640 on Debian and Ubuntu.
            let groups = pod
                .security_context
                .as_ref()
                .and_then(|s| s.supplemental_groups.clone());
            assert_eq!(groups, Some(vec![4]), "file: the group adm");
        }
    }
}

#[test]
fn node_name_comes_from_the_downward_api() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("NODE_NAME", overlay) else {
            return;
        };
        let variable = rendered
            .agent()
            .env
            .iter()
            .flatten()
            .find(|v| v.name == "NODE_NAME");
        let field = variable
            .and_then(|variable| variable.value_from.as_ref())
            .and_then(|source| source.field_ref.as_ref())
            .map(|field| field.field_path.as_str());
        assert_eq!(field, Some("spec.nodeName"), "{overlay}");
    }
}

/// A quantity in bytes or millicores: enough of Kubernetes' format for these manifests.
fn amount(quantity: &Quantity) -> u64 {
    let text = quantity.0.as_str();
    let units = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("m", 1)];
    for (suffix, factor) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<u64>().expect("a whole number") * factor;
        }
    }
    // Plain cores (as millicores) or bytes.
    text.parse::<u64>().expect("a whole number") * 1000
}

#[test]
fn resources_are_requested_and_limited_as_the_benchmarks_measured() {
    const MIB: u64 = 1 << 20;
    for overlay in OVERLAYS {
        let Some(rendered) = render("resources", overlay) else {
            return;
        };
        for container in rendered.containers() {
            let context = format!("{overlay}: {}", container.name);
            let resources = container.resources.as_ref().expect(&context);
            let requests = resources.requests.as_ref().expect(&context);
            let limits = resources.limits.as_ref().expect(&context);
            for resource in ["cpu", "memory"] {
                let request = amount(requests.get(resource).expect(&context));
                let limit = amount(limits.get(resource).expect(&context));
                assert!(request > 0 && request <= limit, "{context}: {resource}");
            }
        }
        let resources = rendered.agent().resources.as_ref().unwrap();
        let request = amount(&resources.requests.as_ref().unwrap()["memory"]);
        let limit = amount(&resources.limits.as_ref().unwrap()["memory"]);
        // About 30 MiB resident while following a log; 77 MiB at peak with 100,000 pods, plus one
        // decoded page of real (larger) pods.
        assert!(request >= 32 * MIB, "{overlay}: memory request {request}");
        assert!(limit >= 128 * MIB, "{overlay}: memory limit {limit}");
    }
}

#[test]
fn it_runs_on_every_node_with_a_priority_class_and_one_tagged_image() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("every node", overlay) else {
            return;
        };
        let pod = rendered.pod();
        let tolerates_everything = pod.tolerations.iter().flatten().any(|toleration| {
            toleration.operator.as_deref() == Some("Exists")
                && toleration.key.is_none()
                && toleration.effect.is_none()
        });
        assert!(tolerates_everything, "{overlay}: tolerates every taint");
        assert!(
            pod.node_selector.is_none() && pod.affinity.is_none(),
            "{overlay}"
        );
        assert!(pod.priority_class_name.is_some(), "{overlay}");
        let image = rendered.agent().image.as_deref().expect("image");
        let (_, tag) = image.rsplit_once(':').expect("a tagged image");
        assert!(!tag.contains('/') && !tag.is_empty(), "{overlay}: {image}");
        for container in rendered.containers() {
            assert_eq!(
                container.image.as_deref(),
                Some(image),
                "{overlay}: {}",
                container.name
            );
        }
    }
}

#[test]
fn the_environment_is_a_configuration_the_agent_accepts() {
    for overlay in OVERLAYS {
        let Some(rendered) = render("environment", overlay) else {
            return;
        };
        let mut command = Command::new(BINARY);
        command
            .arg("--check-config")
            .env_clear()
            // Set by the kubelet in every pod.
            .env("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
            .env("KUBERNETES_SERVICE_PORT", "443");
        for variable in rendered.agent().env.iter().flatten() {
            match (&variable.value, &variable.value_from) {
                (Some(value), None) => command.env(&variable.name, value),
                (None, Some(_)) => command.env(&variable.name, "node-1"),
                _ => panic!("{overlay}: {variable:?}"),
            };
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{overlay}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let source = format!("configuration OK: source {overlay}");
        assert!(stdout.starts_with(&source), "{overlay}: {stdout}");
        assert!(
            stdout.contains("sink kubernetes (node node-1)"),
            "{overlay}: {stdout}"
        );
        // The port the manifest declares and probes is the one the agent will listen on.
        let metrics = format!("metrics on 0.0.0.0:{}\n", metrics_port(&rendered));
        assert!(stdout.ends_with(&metrics), "{overlay}: {stdout}");
    }
}
