//! The API client: in-cluster service account, a kubeconfig file, or `KUBE_API_SERVER` alone; the
//! latter overrides the server address of the first two (as the original agent's variable did).

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
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
    server
        .parse()
        .map_err(|_| ClientError::BadServer(server.to_string()))
}
