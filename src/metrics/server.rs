//! The HTTP server for Prometheus and the probes: `/metrics`, `/healthz` (every thread alive),
//! `/readyz` (every readiness condition holds: the source is open, the pod index synced).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Header, Request, Response, Server};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::stop::Stop;

/// Without a thread to wake it at the stop: how long the server waits for a request before it
/// looks at the stop signal again.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for metrics: {message}")]
pub struct BindError {
    pub address: SocketAddr,
    pub message: String,
}

/// Binds the listening socket (at start, so that a port in use is a start-up error).
pub fn bind(address: SocketAddr) -> Result<Server, BindError> {
    Server::http(address).map_err(|error| BindError {
        address,
        message: error.to_string(),
    })
}

/// Thread body: answers requests until `stop`.
///
/// It waits for a request without a timeout (an idle agent wakes for nothing); a small thread waits
/// for the stop and unblocks it then.
pub fn run(server: Server, metrics: Arc<Metrics>, health: Health, stop: Stop) {
    let server = Arc::new(server);
    let (waiting_server, waiting_stop) = (server.clone(), stop.clone());
    let unblocker = std::thread::Builder::new()
        .name("metrics-stop".to_string())
        .spawn(move || {
            // Disconnected at the stop: nothing is ever sent.
            let _ = waiting_stop.receiver().recv();
            waiting_server.unblock();
        });
    let timeout = match unblocker {
        Ok(_) => None,
        Err(error) => {
            log::warn!("metrics server: no thread to wake it at the stop ({error}): polling");
            Some(STOP_CHECK_INTERVAL)
        }
    };
    while !stop.is_stopped() {
        let received = match timeout {
            None => server.recv().map(Some),
            Some(timeout) => server.recv_timeout(timeout),
        };
        match received {
            Ok(Some(request)) => respond(request, &metrics, &health),
            Ok(None) => {}
            // Also how the unblock at the stop arrives.
            Err(error) if stop.is_stopped() => log::debug!("metrics server: {error}"),
            Err(error) => log::warn!("metrics server: {error}"),
        }
    }
}

fn respond(request: Request, metrics: &Metrics, health: &Health) {
    let (status, content_type, body) = match request.url() {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => match health.dead_threads() {
            dead if dead.is_empty() => (200, "text/plain", "ok\n".to_string()),
            dead => (
                503,
                "text/plain",
                format!("threads ended: {}\n", dead.join(", ")),
            ),
        },
        "/readyz" => match health.unready_conditions() {
            waiting if waiting.is_empty() => (200, "text/plain", "ready\n".to_string()),
            waiting => (
                503,
                "text/plain",
                format!("not ready: waiting for {}\n", waiting.join(", ")),
            ),
        },
        _ => (
            404,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".to_string(),
        ),
    };
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    if let Err(error) = request.respond(response) {
        log::debug!("metrics server: answering a request: {error}");
    }
}
