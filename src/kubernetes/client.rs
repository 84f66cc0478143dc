//! The API client: in-cluster service account, a kubeconfig file, or `KUBE_API_SERVER` alone; the
//! latter overrides the server address of the first two (as the original agent's variable did).

use std::path::Path;
use std::time::Duration;

use futures_util::FutureExt;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use super::KubeSettings;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot start the Kubernetes runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read the kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error(
        "no Kubernetes configuration found (not in a cluster, no kubeconfig, no KUBE_API_SERVER): {0}"
    )]
    NotFound(String),
    #[error("KUBE_API_SERVER {0:?} is not a URL")]
    BadServer(String),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(String),
}

/// Builds the client. This does not contact the server: an API that is down at start is retried by the
/// watch and the writer, not fatal.
pub async fn connect(settings: &KubeSettings) -> Result<Client, ClientError> {
    let mut config = match &settings.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |message: String| ClientError::Kubeconfig {
                path: path.display().to_string(),
                message,
            };
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(e.to_string()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| kubeconfig_error(e.to_string()))?
        }
        None => match (Config::infer().await, &settings.api_server) {
            (Ok(config), _) => config,
            (Err(_), Some(server)) => Config::new(parse_server(server)?),
            (Err(error), None) => return Err(ClientError::NotFound(error.to_string())),
        },
    };
    if let Some(server) = &settings.api_server {
        config.cluster_url = parse_server(server)?;
    }
    config.connect_timeout = Some(Duration::from_secs(5));
    // kube-rs would otherwise retry 429/503/504 itself for minutes; the Event writer retries with its
    // own backoff, honouring Retry-After, and counts every failed answer in the metrics.
    config.default_retry = false;
    Client::try_from(config).map_err(|error| ClientError::Client(error.to_string()))
}

fn parse_server(server: &str) -> Result<http::Uri, ClientError> {
    api_server_url(server).ok_or_else(|| ClientError::BadServer(server.to_string()))
}

/// `KUBE_API_SERVER` as a URL: `http://` or `https://` and a host; `None` for anything else.
pub fn api_server_url(server: &str) -> Option<http::Uri> {
    let url: http::Uri = server.parse().ok()?;
    let scheme_fits = matches!(url.scheme_str(), Some("http" | "https"));
    let has_host = url.host().is_some_and(|host| !host.is_empty());
    // `http` takes any text after the host's colon and reports no port when it is no number.
    let host_and_port = url.authority()?.as_str().rsplit('@').next()?;
    let after_host = host_and_port.rsplit(']').next()?;
    let port_fits = !after_host.contains(':') || url.port_u16().is_some();
    (scheme_fits && has_host && port_fits).then_some(url)
}

/// Reads and checks a kubeconfig file as [`connect`] will use it (its current context, that
/// context's cluster and server URL, the CA data), without contacting the server: so that a bad
/// file stops the start, and `--check-config`, with exit code 2 instead of failing the Kubernetes
/// thread later. The error is one line saying what is wrong with the file.
pub fn check_kubeconfig(path: &Path) -> Result<(), String> {
    let one_line = |message: String| message.split_whitespace().collect::<Vec<_>>().join(" ");
    let kubeconfig = match Kubeconfig::read_from(path) {
        Ok(kubeconfig) => kubeconfig,
        Err(KubeconfigError::ReadConfig(error, _)) => {
            return Err(one_line(format!("cannot be read: {error}")));
        }
        Err(error) => return Err(one_line(format!("is not a kubeconfig: {error}"))),
    };
    // kube's loader is `async` for the sake of other sources; from a file it reads and parses only,
    // and finishes on its first poll, so no runtime is needed. Were that to change, the check is
    // left to the Kubernetes thread (`None`).
    match Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).now_or_never() {
        Some(Err(error)) => Err(one_line(format!("cannot be used: {error}"))),
        Some(Ok(_)) | None => Ok(()),
    }
}
