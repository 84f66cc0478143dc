//! Start-up: configuration, logging, the pipeline, the exit code (0 stopped by signal, 1 failed,
//! 2 bad configuration or deployment). `--check-config` stops after the configuration, with 0 or 2;
//! for NFLOG it also binds the groups once, as the agent will.

use std::process::ExitCode;

use clap::Parser;
use kube_iptables_tailer::config::{Args, Config, SinkKind, SourceConfig};
use kube_iptables_tailer::{pipeline, sources};

fn main() -> ExitCode {
    let args = Args::parse();
    let check_config = args.check_config;
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kube-iptables-tailer: {error}");
            return ExitCode::from(2);
        }
    };
    if check_config {
        let probed = match &config.source {
            SourceConfig::Nflog(nflog) => sources::nflog::probe(nflog),
            _ => Ok(()),
        };
        if let Err(error) = probed {
            eprintln!("kube-iptables-tailer: {error}");
            return ExitCode::from(if error.is_deployment() { 2 } else { 1 });
        }
        println!("{}", check_config_line(&config));
        return ExitCode::SUCCESS;
    }
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
            if error.is_configuration() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// What `--check-config` prints for a valid configuration: what would be read and where drops go.
fn check_config_line(config: &Config) -> String {
    let source = match &config.source {
        SourceConfig::File { path, .. } => format!("file {}", path.display()),
        SourceConfig::Journald {
            directory: Some(directory),
        } => format!("journald {}", directory.display()),
        SourceConfig::Journald { directory: None } => "journald (system journal)".to_string(),
        SourceConfig::Kmsg { path } => format!("kmsg {}", path.display()),
        SourceConfig::Nflog(nflog) => {
            let groups: Vec<String> = nflog.groups.iter().map(u16::to_string).collect();
            format!("nflog groups {}", groups.join(","))
        }
    };
    let sink = match &config.sink {
        SinkKind::Stdout => "stdout".to_string(),
        SinkKind::Kubernetes(kubernetes) => {
            format!("kubernetes (node {})", kubernetes.node_name)
        }
    };
    format!(
        "configuration OK: source {source}, sink {sink}, metrics on {}",
        config.metrics_address
    )
}
