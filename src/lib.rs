//! kube-iptables-tailer: a node agent that turns the kernel's netfilter LOG lines for dropped packets
//! into records (and, later, Kubernetes Events) and Prometheus metrics.
//!
//! The map of the house, in the order data flows (see `pipeline.rs`, which wires it together):
//! - [`config`]: flags and environment variables, validated into typed settings (the only module that
//!   reads either).
//! - [`sources`]: where lines come from (`file` today), each a thread that sends [`model::Batch`]es of
//!   [`model::Line`]s with the position after them; [`sources::checkpoint`] persists acknowledged positions.
//! - [`parse`]: a pure function from a line to a [`model::PacketDrop`] or the reason it is not one.
//! - [`sinks`]: where drops go (`stdout` today), acknowledging each batch once it is handled.
//! - [`metrics`] and [`health`]: counters, `/metrics`, `/healthz`, `/readyz`.
//! - [`stop`]: the one shutdown signal every thread watches.

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
