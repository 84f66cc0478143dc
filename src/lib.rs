//! kube-iptables-tailer: a node agent that turns the kernel's netfilter LOG lines for dropped packets
//! into Kubernetes Events on the pods involved (or JSON records without a cluster) and Prometheus metrics.
//!
//! The map of the house, in the order data flows (see `pipeline.rs`, which wires it together):
//! - [`config`]: flags and environment variables, validated into typed settings (the only module that
//!   reads either).
//! - [`sources`]: where lines come from (a log file, the systemd journal, /dev/kmsg), each a thread that
//!   sends [`model::Batch`]es of [`model::Line`]s with the position after them; [`sources::checkpoint`]
//!   persists acknowledged positions.
//! - [`parse`]: a pure function from a line to a [`model::PacketDrop`] or the reason it is not one.
//! - [`sinks`]: stdout, when there is no cluster: one JSON object per drop.
//! - [`resolve`]: who is behind each IP (the pod index the Kubernetes watch fills; with
//!   `POD_INDEX=node`, other nodes' pods looked up on demand; reverse DNS).
//! - [`events`]: located drops → Event writes, aggregated and rate limited, acknowledged once accepted.
//! - [`kubernetes`]: the only module that knows tokio and kube-rs: the pod watch, the pod lookups
//!   (node mode) and the Event writer.
//! - [`metrics`] and [`health`]: counters, `/metrics`, `/healthz`, `/readyz`.
//! - [`stop`]: the one shutdown signal every thread watches.

pub mod atomic_file;
pub mod checksum;
pub mod config;
pub mod events;
pub mod health;
pub mod kubernetes;

pub mod metrics;
pub mod model;
pub mod parse;
pub mod pipeline;
pub mod resolve;
pub mod sinks;
pub mod sources;
pub mod stop;
