//! Configuration: flags and environment variables (the original agent's names kept), read once by clap
//! into raw strings ([`Args`]) and then validated into typed settings ([`Config`]).
//!
//! Values stay strings until validation so that every mistake is reported the same way: one line that
//! names the environment variable and the bad value, and exit code 2. No other module reads the
//! environment or the command line.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::parse::TimeLayout;
use crate::parse::time::ORIGINAL_DEFAULT_LAYOUT;

/// The raw command line and environment, as clap reads them.
#[derive(Parser, Debug)]
#[command(
    name = "kube-iptables-tailer",
    version,
    about = "Follows the kernel's netfilter LOG lines for dropped packets and reports each drop.",
    long_about = "Follows the kernel's netfilter LOG lines for dropped packets (iptables, ip6tables, nftables) \
                  and reports each drop: as a JSON record on stdout, and in Prometheus metrics.\n\
                  Every option can also be set by the environment variable shown with it."
)]
pub struct Args {
    /// Where log lines come from: file (journald and kmsg are not built yet).
    #[arg(long, env = "LOG_SOURCE", default_value = "file")]
    pub log_source: String,

    /// The log file that rsyslog (or ulogd2) writes the kernel's LOG lines to. Required for LOG_SOURCE=file.
    #[arg(long, env = "IPTABLES_LOG_PATH")]
    pub iptables_log_path: Option<String>,

    /// The LOG rules' prefix that marks a drop line; repeat the flag, or separate with commas in the variable.
    #[arg(
        long,
        env = "IPTABLES_LOG_PREFIX",
        default_value = "calico-drop:",
        value_delimiter = ','
    )]
    pub iptables_log_prefix: Vec<String>,

    /// Go reference layout of the line's timestamp. The default also accepts any RFC 3339 fraction and
    /// RFC 3164 (`Jan _2 15:04:05`) timestamps.
    #[arg(long, env = "PACKET_DROP_LOG_TIME_LAYOUT", default_value = ORIGINAL_DEFAULT_LAYOUT)]
    pub packet_drop_log_time_layout: String,

    /// Drops older than this many minutes are not reported.
    #[arg(long, env = "PACKET_DROP_EXPIRATION_MINUTES", default_value = "10")]
    pub packet_drop_expiration_minutes: String,

    /// Capacity of the queue of parsed drops (in batches of lines read together).
    #[arg(long, env = "PACKET_DROP_CHANNEL_BUFFER_SIZE", default_value = "100")]
    pub packet_drop_channel_buffer_size: String,

    /// Kept for compatibility with the original agent, which polled the file this often; it is checked
    /// and otherwise unused: the file is polled every FILE_POLL_INTERVAL_MS.
    #[arg(long, env = "WATCH_LOGS_INTERVAL_SECONDS", default_value = "5")]
    pub watch_logs_interval_seconds: String,

    /// How often the followed file is checked for new lines and rotation, in milliseconds.
    #[arg(long, env = "FILE_POLL_INTERVAL_MS", default_value = "50")]
    pub file_poll_interval_ms: String,

    /// With no checkpoint, read the existing file from its start instead of its end.
    #[arg(long, env = "FROM_BEGINNING")]
    pub from_beginning: bool,

    /// Lines longer than this many bytes are skipped whole (and counted).
    #[arg(long, env = "MAX_LINE_BYTES", default_value = "65536")]
    pub max_line_bytes: String,

    /// Directory for checkpoints (systemd's StateDirectory= sets it). Unset: no checkpoints, and a
    /// restart begins at the end of the file.
    #[arg(long, env = "STATE_DIRECTORY")]
    pub state_directory: Option<String>,

    /// Where drops go: stdout, kubernetes, or auto (kubernetes when a cluster is configured, else stdout).
    #[arg(long, env = "EVENT_SINK", default_value = "auto")]
    pub event_sink: String,

    /// Port of the /metrics, /healthz and /readyz HTTP server.
    #[arg(long, env = "METRICS_SERVER_PORT", default_value = "9090")]
    pub metrics_server_port: String,

    /// Address the metrics server listens on.
    #[arg(long, env = "METRICS_SERVER_ADDRESS", default_value = "0.0.0.0")]
    pub metrics_server_address: String,

    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set, refines it per module).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// The validated configuration every other module receives.
#[derive(Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub prefixes: Vec<String>,
    pub time_layout: TimeLayout,
    pub expiration: Duration,
    pub drop_queue_capacity: NonZeroUsize,
    pub state_directory: Option<PathBuf>,
    pub sink: SinkKind,
    pub metrics_address: SocketAddr,
    pub log_level: log::LevelFilter,
}

/// Which source to read, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    File {
        path: PathBuf,
        from_beginning: bool,
        poll_interval: Duration,
        max_line_bytes: usize,
    },
}

impl SourceConfig {
    /// The name used for this source's checkpoint file and in logs.
    pub fn name(&self) -> &'static str {
        match self {
            SourceConfig::File { .. } => "file",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
}

/// A configuration mistake: which variable, what value, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

fn invalid(variable: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the command line and the environment. `--help`, `--version` and unknown flags are handled by
    /// clap (exit 0 or 2); everything else is validated here.
    pub fn load() -> Result<Config, ConfigError> {
        Config::from_args(Args::parse())
    }

    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let source = match args.log_source.as_str() {
            "file" => SourceConfig::File {
                path: log_path(args.iptables_log_path.as_deref())?,
                from_beginning: args.from_beginning,
                poll_interval: Duration::from_millis(number_in(
                    "FILE_POLL_INTERVAL_MS",
                    &args.file_poll_interval_ms,
                    1,
                    60_000,
                )?),
                max_line_bytes: number_in("MAX_LINE_BYTES", &args.max_line_bytes, 256, 64 << 20)?
                    as usize,
            },
            "journald" | "kmsg" => {
                return Err(invalid(
                    "LOG_SOURCE",
                    &args.log_source,
                    "not supported by this version yet",
                ));
            }
            other => {
                return Err(invalid(
                    "LOG_SOURCE",
                    other,
                    "must be file, journald or kmsg",
                ));
            }
        };
        number_in(
            "WATCH_LOGS_INTERVAL_SECONDS",
            &args.watch_logs_interval_seconds,
            1,
            86_400,
        )?;

        let prefixes = args.iptables_log_prefix;
        if prefixes.is_empty() || prefixes.iter().any(|prefix| prefix.trim().is_empty()) {
            return Err(invalid(
                "IPTABLES_LOG_PREFIX",
                &prefixes.join(","),
                "a prefix is empty",
            ));
        }

        let time_layout =
            TimeLayout::from_go(&args.packet_drop_log_time_layout).map_err(|error| {
                invalid(
                    "PACKET_DROP_LOG_TIME_LAYOUT",
                    &args.packet_drop_log_time_layout,
                    error.to_string(),
                )
            })?;

        let expiration_minutes = number_in(
            "PACKET_DROP_EXPIRATION_MINUTES",
            &args.packet_drop_expiration_minutes,
            1,
            60 * 24 * 365,
        )?;
        let capacity = number_in(
            "PACKET_DROP_CHANNEL_BUFFER_SIZE",
            &args.packet_drop_channel_buffer_size,
            1,
            1 << 20,
        )?;

        let state_directory = match args.state_directory.as_deref() {
            None | Some("") => None,
            // systemd sets a colon-separated list when a unit names several directories: use the first.
            Some(value) => match value.split(':').next() {
                Some(first) if first.starts_with('/') => Some(PathBuf::from(first)),
                _ => {
                    return Err(invalid(
                        "STATE_DIRECTORY",
                        value,
                        "must be an absolute path",
                    ));
                }
            },
        };

        let sink = match args.event_sink.as_str() {
            "auto" | "stdout" => SinkKind::Stdout,
            "kubernetes" => {
                return Err(invalid(
                    "EVENT_SINK",
                    &args.event_sink,
                    "not supported by this version yet",
                ));
            }
            other => {
                return Err(invalid(
                    "EVENT_SINK",
                    other,
                    "must be auto, stdout or kubernetes",
                ));
            }
        };

        let port = number_in("METRICS_SERVER_PORT", &args.metrics_server_port, 1, 65_535)? as u16;
        let address: IpAddr = args.metrics_server_address.parse().map_err(|_| {
            invalid(
                "METRICS_SERVER_ADDRESS",
                &args.metrics_server_address,
                "must be an IP address",
            )
        })?;

        let log_level = match args.log_level.to_ascii_lowercase().as_str() {
            "error" => log::LevelFilter::Error,
            "warn" | "warning" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            "debug" => log::LevelFilter::Debug,
            "trace" => log::LevelFilter::Trace,
            _ => {
                return Err(invalid(
                    "LOG_LEVEL",
                    &args.log_level,
                    "must be error, warn, info, debug or trace",
                ));
            }
        };

        Ok(Config {
            source,
            prefixes,
            time_layout,
            expiration: Duration::from_secs(expiration_minutes * 60),
            drop_queue_capacity: NonZeroUsize::new(capacity as usize).expect("checked >= 1"),
            state_directory,
            sink,
            metrics_address: SocketAddr::new(address, port),
            log_level,
        })
    }
}

fn log_path(value: Option<&str>) -> Result<PathBuf, ConfigError> {
    let value = value.unwrap_or("");
    if value.is_empty() {
        return Err(invalid(
            "IPTABLES_LOG_PATH",
            value,
            "required when LOG_SOURCE=file",
        ));
    }
    let path = PathBuf::from(value);
    // A missing file is fine (the source waits for it); a directory never becomes a log file.
    if path.is_dir() {
        return Err(invalid(
            "IPTABLES_LOG_PATH",
            value,
            "is a directory, not a file",
        ));
    }
    Ok(path)
}

fn number_in(variable: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(number) if (min..=max).contains(&number) => Ok(number),
        _ => Err(invalid(
            variable,
            value,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["kube-iptables-tailer"];
        argv.extend_from_slice(flags);
        Config::from_args(Args::try_parse_from(argv).expect("clap accepts the flags"))
    }

    #[test]
    fn defaults_match_the_original_agent() {
        let config = parse(&["--iptables-log-path", "/var/log/iptables.log"]).unwrap();
        assert_eq!(config.prefixes, vec!["calico-drop:".to_string()]);
        assert_eq!(config.expiration, Duration::from_secs(600));
        assert_eq!(config.drop_queue_capacity.get(), 100);
        assert_eq!(config.metrics_address, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(config.log_level, log::LevelFilter::Info);
        assert_eq!(config.sink, SinkKind::Stdout);
        assert_eq!(config.state_directory, None);
        assert_eq!(
            config.source,
            SourceConfig::File {
                path: PathBuf::from("/var/log/iptables.log"),
                from_beginning: false,
                poll_interval: Duration::from_millis(50),
                max_line_bytes: 65536,
            }
        );
    }

    #[test]
    fn repeated_prefix_flags_and_state_directory_list() {
        let config = parse(&[
            "--iptables-log-path=/l",
            "--iptables-log-prefix=a:",
            "--iptables-log-prefix=my drop:",
            "--state-directory=/var/lib/kit:/var/lib/other",
        ])
        .unwrap();
        assert_eq!(
            config.prefixes,
            vec!["a:".to_string(), "my drop:".to_string()]
        );
        assert_eq!(config.state_directory, Some(PathBuf::from("/var/lib/kit")));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: [(&[&str], &str); 9] = [
            (
                &[],
                "invalid IPTABLES_LOG_PATH=\"\": required when LOG_SOURCE=file",
            ),
            (
                &["--iptables-log-path=/tmp"],
                "invalid IPTABLES_LOG_PATH=\"/tmp\": is a directory, not a file",
            ),
            (
                &["--iptables-log-path=/l", "--metrics-server-port=0"],
                "invalid METRICS_SERVER_PORT=\"0\": must be a whole number from 1 to 65535",
            ),
            (
                &["--iptables-log-path=/l", "--metrics-server-port=70000"],
                "invalid METRICS_SERVER_PORT=\"70000\": must be a whole number from 1 to 65535",
            ),
            (
                &["--iptables-log-path=/l", "--log-level=loud"],
                "invalid LOG_LEVEL=\"loud\": must be error, warn, info, debug or trace",
            ),
            (
                &["--iptables-log-path=/l", "--log-source=syslog"],
                "invalid LOG_SOURCE=\"syslog\": must be file, journald or kmsg",
            ),
            (
                &[
                    "--iptables-log-path=/l",
                    "--packet-drop-expiration-minutes=ten",
                ],
                "invalid PACKET_DROP_EXPIRATION_MINUTES=\"ten\": must be a whole number from 1 to 525600",
            ),
            (
                &["--iptables-log-path=/l", "--state-directory=relative"],
                "invalid STATE_DIRECTORY=\"relative\": must be an absolute path",
            ),
            (
                &["--iptables-log-path=/l", "--iptables-log-prefix="],
                "invalid IPTABLES_LOG_PREFIX=\"\": a prefix is empty",
            ),
        ];
        for (flags, message) in cases {
            assert_eq!(
                parse(flags).unwrap_err().to_string(),
                message,
                "flags {flags:?}"
            );
        }
    }

    #[test]
    fn bad_time_layout_names_the_variable() {
        let error = parse(&[
            "--iptables-log-path=/l",
            "--packet-drop-log-time-layout=hello",
        ])
        .unwrap_err();
        assert_eq!(error.variable, "PACKET_DROP_LOG_TIME_LAYOUT");
        assert_eq!(error.value, "hello");
    }
}
