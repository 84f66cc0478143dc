//! Start-up: configuration, logging, the pipeline, the exit code.

fn main() {}
