//! Where lines come from. Each source runs on its own thread and sends batches of lines, each batch with
//! the position just after it, so that acknowledged positions can be checkpointed.

mod batcher;
pub mod checkpoint;
pub mod file;
pub mod fingerprint;
pub mod journald;
pub mod kmsg;
pub mod lines;
