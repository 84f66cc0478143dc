//! What ships beside the binary, checked the way a user meets it: the kustomize overlays as `kubectl
//! kustomize` renders them, read back into Kubernetes' own types (k8s-openapi) and held against what
//! the agent really does; the systemd unit as systemd reads it, and as a real systemd runs it once
//! `make install` put it in a container; `make install`; the Containerfile; and
//! `--check-config`, which the unit runs before every start.

mod check_config;
mod containerfile;
mod daemonset;
mod journald_view;
mod manifests;
mod nflog_overlay;
mod probes;
mod rbac;
mod real_systemd;
mod systemd;

use std::path::Path;

use crate::support::{privileged, which};

/// The repository root, where `deploy/`, `systemd/` and the Makefile are.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` can be run here. Anyone may run an installed one; a missing one skips the test with
/// the reason, or fails it where CI requires every test to run (install-deps installs them there).
pub fn have(test: &str, tool: &str) -> bool {
    which(tool).is_some() || privileged(test, &[tool])
}
