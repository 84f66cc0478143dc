//! Where drops go: `stdout` (one JSON object per drop) today, Kubernetes Events later.
pub mod stdout;
