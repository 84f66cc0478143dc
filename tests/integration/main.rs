//! Integration tests: one binary, a module per area. `support` holds the real parts the tests drive
//! (network namespaces, rsyslog, the agent process).

mod agent;
mod chaos;
mod deploy;
mod fake_api_selftest;
mod file_source;
mod journald_source;
mod kernel;
mod kmsg_source;
mod kubernetes;
mod migration;
mod nflog_source;
mod support;
