//! Listeners: accepting sockets, the transports' handshakes, bounded in
//! time and in number.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::connection::serve;
use super::ToCoreTx;
use crate::tls::PeerCertificate;
use crate::transport::{Accepted, Transport};

/// A listener's transport, replaced whole on reload (new TLS files): each
/// accepted socket takes the one current when it was accepted, so
/// connections already made keep theirs.
pub(crate) type SharedTransport = Arc<RwLock<Arc<Transport>>>;

/// A bound listening socket and the transport it speaks.
pub(crate) struct BoundListener {
    pub(crate) socket: TcpListener,
    pub(crate) transport: SharedTransport,
}

/// The transport current now.
fn current(shared: &SharedTransport) -> Arc<Transport> {
    // A panic while swapping left a whole transport behind: still usable.
    shared.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// How accepted sockets are admitted before the core sees them.
#[derive(Clone)]
pub(crate) struct Admission {
    /// Longest a TLS or WebSocket handshake may take (the CONNECT timeout):
    /// a peer that connects and stays silent holds nothing past it.
    pub(crate) handshake_timeout: Duration,
    /// Handshakes under way at once, over all listeners (the connection
    /// limit): sockets beyond it are closed at once.
    pub(crate) handshakes: Arc<Semaphore>,
    /// Whether reads and the core's turns are stamped to keep the order
    /// across connections (`limits.order_across_connections`).
    pub(crate) order_across_connections: bool,
    /// Longest a write to a client may make no progress.
    pub(crate) write_timeout: Duration,
}

pub(super) async fn accept_loop(listener: BoundListener, admission: Admission, to_core: ToCoreTx) {
    loop {
        match listener.socket.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let transport = current(&listener.transport);
                if !transport.has_handshake() {
                    tokio::spawn(serve(
                        stream,
                        peer,
                        PeerCertificate::default(),
                        to_core.clone(),
                    ));
                    continue;
                }
                let Ok(permit) = admission.handshakes.clone().try_acquire_owned() else {
                    debug!(%peer, "connection refused: too many handshakes under way");
                    continue;
                };
                let to_core = to_core.clone();
                let timeout = admission.handshake_timeout;
                // The handshake runs in the connection's own task, never here.
                tokio::spawn(async move {
                    let accepted = handshake(&transport, stream, peer, timeout).await;
                    drop(permit);
                    if let Some(accepted) = accepted {
                        connection(accepted, peer, to_core).await;
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The transport's handshake, bounded by `timeout`.
pub(super) async fn handshake(
    transport: &Transport,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<Accepted> {
    match tokio::time::timeout(timeout, transport.accept(stream)).await {
        Ok(Ok(accepted)) => Some(accepted),
        Ok(Err(e)) => {
            debug!(%peer, transport = transport.name(), error = %e, "handshake failed");
            None
        }
        Err(_) => {
            debug!(%peer, transport = transport.name(), "handshake timed out");
            None
        }
    }
}

/// One client connection after its handshake.
pub(super) async fn connection(accepted: Accepted, peer: SocketAddr, to_core: ToCoreTx) {
    match accepted {
        Accepted::Tcp(s) => serve(s, peer, PeerCertificate::default(), to_core).await,
        Accepted::Tls(s, cert) => {
            debug!(%peer, certificate = ?cert.subject, username = ?cert.username, "TLS session established");
            serve(s, peer, cert, to_core).await
        }
        Accepted::Ws(s) => serve(s, peer, PeerCertificate::default(), to_core).await,
        Accepted::Wss(s, cert) => {
            debug!(%peer, certificate = ?cert.subject, username = ?cert.username, "TLS session established");
            serve(s, peer, cert, to_core).await
        }
    }
}

/// Binds every listener, failing early if one cannot be bound.
pub(crate) async fn bind(
    listeners: Vec<(SocketAddr, SharedTransport)>,
) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for (address, transport) in listeners {
        let socket = TcpListener::bind(address).await?;
        let name = current(&transport).name();
        info!(address = %socket.local_addr()?, "listening for {name}");
        out.push(BoundListener { socket, transport });
    }
    Ok(out)
}
