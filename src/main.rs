//! Start-up: configuration, logging, the pipeline, the exit code (0 stopped by signal, 1 failed,
//! 2 bad configuration).

use std::process::ExitCode;

use kube_iptables_tailer::config::Config;
use kube_iptables_tailer::pipeline;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kube-iptables-tailer: {error}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::new()
        .filter_level(config.log_level)
        .parse_env(env_logger::Env::new().filter("RUST_LOG"))
        .target(env_logger::Target::Stderr)
        .init();
    match pipeline::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            eprintln!("kube-iptables-tailer: {error}");
            ExitCode::FAILURE
        }
    }
}
