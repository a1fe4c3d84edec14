//! The HTTP listener: `/metrics`, `/healthz`, `/readyz`, on threads of its
//! own (tiny_http), away from the core task and the connection tasks.

use std::net::SocketAddr;
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response};

use super::{collect, Monitor, STALE_AFTER};

/// Why the HTTP listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {reason}")]
pub struct HttpError {
    addr: SocketAddr,
    reason: String,
}

/// The running listener; stopped when dropped.
pub(crate) struct HttpServer {
    server: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` and serves `monitor` until dropped.
    pub(crate) fn start(addr: SocketAddr, monitor: Arc<Monitor>) -> Result<HttpServer, HttpError> {
        let error = |reason: String| HttpError { addr, reason };
        let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| error(e.to_string()))?);
        let local_addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| error("not an IP listener".into()))?;
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("mqtt-http".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    answer(request, &monitor);
                }
            })
            .map_err(|e| error(e.to_string()))?;
        Ok(HttpServer {
            server,
            local_addr,
            thread: Some(thread),
        })
    }

    /// Where it listens (the real port when the configuration said 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(request: Request, monitor: &Arc<Monitor>) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let (status, content_type, body) = match (request.method(), path.as_str()) {
        (Method::Get | Method::Head, "/metrics") => metrics(monitor),
        (Method::Get | Method::Head, "/healthz") => health(monitor),
        (Method::Get | Method::Head, "/readyz") => ready(monitor),
        (Method::Get | Method::Head, _) => {
            (404, TEXT, "not found: /metrics, /healthz, /readyz\n".into())
        }
        _ => (405, TEXT, "method not allowed\n".into()),
    };
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    // A scraper that went away is not the broker's concern.
    let _ = request.respond(response);
}

const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text exposition format.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

fn metrics(monitor: &Arc<Monitor>) -> (u16, &'static str, String) {
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(
        &mut body,
        &collect::registry(monitor),
    ) {
        Ok(()) => (200, PROMETHEUS, body),
        Err(_) => (500, TEXT, "the metrics could not be encoded\n".into()),
    }
}

pub(super) fn health(monitor: &Monitor) -> (u16, &'static str, String) {
    let age = monitor.heartbeat_age();
    if age <= STALE_AFTER {
        (200, TEXT, "ok\n".into())
    } else {
        let body = format!("the core task has not turned for {} s\n", age.as_secs());
        (503, TEXT, body)
    }
}

pub(super) fn ready(monitor: &Monitor) -> (u16, &'static str, String) {
    if monitor.is_ready() {
        (200, TEXT, "ready\n".into())
    } else {
        (503, TEXT, "not ready: starting or stopping\n".into())
    }
}
