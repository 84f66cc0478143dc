//! Configuration: flags and environment variables (the original agent's names kept), read once by clap
//! into raw strings ([`Args`]) and then validated into typed settings ([`Config`]).
//!
//! Values stay strings until validation so that every mistake is reported the same way: one line that
//! names the environment variable and the bad value, and exit code 2. No other module reads the
//! environment or the command line.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::Args;
pub use drop_queue::DropQueue;
pub use kubernetes::KubernetesConfig;

mod args;
mod drop_queue;
mod kubernetes;
mod zone;

use crate::parse::{LocalZone, LogFormat, TimeLayout};

/// The validated configuration every other module receives.
#[derive(Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub prefixes: Vec<String>,
    pub time_layout: TimeLayout,
    /// The zone of timestamps written without one: `TZ`, else `/etc/localtime`, else UTC.
    pub local_zone: LocalZone,
    pub log_format: LogFormat,
    pub expiration: Duration,
    /// `PACKET_DROP_CHANNEL_BUFFER_SIZE` drops, as batches.
    pub drop_queue: DropQueue,
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
    /// The systemd journal's kernel entries, from `directory` or the local system journal.
    Journald { directory: Option<PathBuf> },
    /// The kernel ring buffer.
    Kmsg { path: PathBuf },
    /// NFLOG groups, read over netlink: packets, not lines, and no history to resume.
    Nflog(NflogConfig),
}

/// `LOG_SOURCE=nflog`: which groups, how much of each packet, how large a receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NflogConfig {
    /// Distinct, in the order given.
    pub groups: Vec<u16>,
    pub buffer_bytes: usize,
    pub copy_range: u16,
}

impl SourceConfig {
    /// The name used for this source's checkpoint file and in logs.
    pub fn name(&self) -> &'static str {
        match self {
            SourceConfig::File { .. } => "file",
            SourceConfig::Journald { .. } => "journald",
            SourceConfig::Kmsg { .. } => "kmsg",
            SourceConfig::Nflog(_) => "nflog",
        }
    }
}

// One value, built once at start: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// One JSON object per drop on stdout.
    Stdout,
    /// Events on the pods, through the API server.
    Kubernetes(KubernetesConfig),
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
    /// Validates what clap read (`Args::parse()`: `--help`, `--version` and unknown flags are clap's,
    /// exit 0 or 2); every other mistake is a [`ConfigError`].
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let source = match log_source(&args) {
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
            "journald" => SourceConfig::Journald {
                directory: match args.journal_directory.as_deref() {
                    None | Some("") => None,
                    Some(directory) if Path::new(directory).is_dir() => {
                        Some(PathBuf::from(directory))
                    }
                    Some(directory) => {
                        return Err(invalid(
                            "JOURNAL_DIRECTORY",
                            directory,
                            "is not a directory",
                        ));
                    }
                },
            },
            "kmsg" => SourceConfig::Kmsg {
                path: PathBuf::from(&args.kmsg_path),
            },
            "nflog" => SourceConfig::Nflog(nflog(&args)?),
            other => {
                return Err(invalid(
                    "LOG_SOURCE",
                    other,
                    "must be file, journald, kmsg or nflog",
                ));
            }
        };
        number_in(
            "WATCH_LOGS_INTERVAL_SECONDS",
            &args.watch_logs_interval_seconds,
            1,
            86_400,
        )?;

        let prefixes = args.iptables_log_prefix.clone();
        if prefixes.is_empty() || prefixes.iter().any(|prefix| prefix.trim().is_empty()) {
            return Err(invalid(
                "IPTABLES_LOG_PREFIX",
                &prefixes.join(","),
                "a prefix is empty",
            ));
        }

        let log_format = log_format(&args.log_format, &source)?;

        let time_layout =
            TimeLayout::from_go(&args.packet_drop_log_time_layout).map_err(|error| {
                invalid(
                    "PACKET_DROP_LOG_TIME_LAYOUT",
                    &args.packet_drop_log_time_layout,
                    error.to_string(),
                )
            })?;

        let local_zone = zone::local_zone(args.tz.as_deref(), Path::new(zone::LOCALTIME))?;

        let expiration_minutes = number_in(
            "PACKET_DROP_EXPIRATION_MINUTES",
            &args.packet_drop_expiration_minutes,
            1,
            60 * 24 * 365,
        )?;
        let queued_drops = number_in(
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
            "stdout" => SinkKind::Stdout,
            "auto" if !kubernetes::cluster_configured(&args) => SinkKind::Stdout,
            "auto" | "kubernetes" => {
                SinkKind::Kubernetes(kubernetes::kubernetes(&args, host_name)?)
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
            local_zone,
            log_format,
            expiration: Duration::from_secs(expiration_minutes * 60),
            drop_queue: DropQueue::holding(
                NonZeroUsize::new(queued_drops as usize).expect("checked >= 1"),
            ),
            state_directory,
            sink,
            metrics_address: SocketAddr::new(address, port),
            log_level,
        })
    }
}

/// `LOG_SOURCE`, or when it is unset the original agent's choice: it read the journal whenever
/// `JOURNAL_DIRECTORY` was set, and the file otherwise. Empty values count as unset, as a manifest's
/// `value: ""` means to leave a variable out.
fn log_source(args: &Args) -> &str {
    fn given(value: &Option<String>) -> Option<&str> {
        value.as_deref().filter(|value| !value.is_empty())
    }
    match (given(&args.log_source), given(&args.journal_directory)) {
        (Some(source), _) => source,
        (None, Some(_)) => "journald",
        (None, None) => "file",
    }
}

/// `LOG_FORMAT`, which must suit the source: Antrea writes a file of its own, OVN a file or syslog
/// (so the journal); NFLOG carries packets, not lines.
fn log_format(value: &str, source: &SourceConfig) -> Result<LogFormat, ConfigError> {
    let format = LogFormat::from_name(value).ok_or_else(|| {
        invalid(
            "LOG_FORMAT",
            value,
            "must be auto, netfilter, antrea, ovn or aws",
        )
    })?;
    let suits = matches!(
        (format, source),
        (LogFormat::Auto | LogFormat::Netfilter, _)
            | (
                LogFormat::Antrea | LogFormat::Aws,
                SourceConfig::File { .. }
            )
            | (
                LogFormat::Ovn,
                SourceConfig::File { .. } | SourceConfig::Journald { .. }
            )
    );
    if !suits {
        return Err(invalid(
            "LOG_FORMAT",
            value,
            format!("does not go with LOG_SOURCE={}", source.name()),
        ));
    }
    Ok(format)
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

fn nflog(args: &Args) -> Result<NflogConfig, ConfigError> {
    let mut groups = Vec::new();
    for group in args.nflog_groups.split(',') {
        let number = number_in("NFLOG_GROUPS", group, 0, u64::from(u16::MAX)).map_err(|_| {
            invalid(
                "NFLOG_GROUPS",
                &args.nflog_groups,
                "must be group numbers from 0 to 65535 separated by commas",
            )
        })? as u16;
        if groups.contains(&number) {
            return Err(invalid(
                "NFLOG_GROUPS",
                &args.nflog_groups,
                format!("group {number} is named twice"),
            ));
        }
        groups.push(number);
    }
    Ok(NflogConfig {
        groups,
        // 64 KiB holds a few hundred messages; 1 GiB is far past any sensible buffer.
        buffer_bytes: number_in(
            "NFLOG_BUFFER_BYTES",
            &args.nflog_buffer_bytes,
            64 << 10,
            1 << 30,
        )? as usize,
        // 40 bytes: a bare IPv6 header; below it no packet can be decoded. 65535: the whole packet.
        copy_range: number_in("NFLOG_COPY_RANGE", &args.nflog_copy_range, 40, 65_535)? as u16,
    })
}

/// The kernel's host name, the default node name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
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
mod tests;
