//! The pod index: IP → pod, filled by the Kubernetes watch (in `kube.rs`), read by the resolve stage.
