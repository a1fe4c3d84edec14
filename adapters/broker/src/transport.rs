//! What a listener speaks, and the handshake that turns an accepted TCP
//! socket into an MQTT byte stream: nothing for TCP, TLS, a WebSocket
//! upgrade, or both.

use std::io;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{Listener, Protocol};
use crate::tls::{self, PeerCertificate, TlsError, UsernameFrom};
use crate::ws::{self, WsIo, WsSettings};

/// A listener's transport, its TLS files already read.
pub(crate) enum Transport {
    Tcp,
    Tls(TlsAcceptor, UsernameFrom),
    Ws(WsSettings),
    Wss(TlsAcceptor, UsernameFrom, WsSettings),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An MQTT byte stream after its handshake, with what the client's verified
/// certificate says where TLS gave one.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>, PeerCertificate),
    Ws(Box<WsIo<TcpStream>>),
    Wss(Box<WsIo<TlsStream<TcpStream>>>, PeerCertificate),
}

impl Transport {
    /// The transport of `listener`, reading its TLS files now.
    pub(crate) fn new(listener: &Listener, max_packet_size: u32) -> Result<Transport, TlsError> {
        let ws = || WsSettings::new(listener.path.clone(), max_packet_size);
        let from = listener.username_from_certificate();
        Ok(match listener.protocol {
            Protocol::Mqtt => Transport::Tcp,
            Protocol::Mqtts => Transport::Tls(tls::acceptor(listener)?, from),
            Protocol::Ws => Transport::Ws(ws()),
            Protocol::Wss => Transport::Wss(tls::acceptor(listener)?, from, ws()),
        })
    }

    /// Whether accepting needs a handshake before MQTT bytes flow.
    pub(crate) fn has_handshake(&self) -> bool {
        !matches!(self, Transport::Tcp)
    }

    /// How the listener is named in logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Tcp => "MQTT over TCP",
            Transport::Tls(..) => "MQTT over TLS",
            Transport::Ws(_) => "MQTT over WebSocket",
            Transport::Wss(..) => "MQTT over WebSocket over TLS",
        }
    }

    /// Runs the handshake on `stream`. The caller bounds it in time.
    pub(crate) async fn accept(&self, stream: TcpStream) -> io::Result<Accepted> {
        let ws_error = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        Ok(match self {
            Transport::Tcp => Accepted::Tcp(stream),
            Transport::Tls(acceptor, from) => {
                let tls = acceptor.accept(stream).await?;
                let cert = identify(tls.get_ref().1, *from)?;
                Accepted::Tls(Box::new(tls), cert)
            }
            Transport::Ws(settings) => Accepted::Ws(Box::new(
                ws::accept(stream, settings).await.map_err(ws_error)?,
            )),
            Transport::Wss(acceptor, from, settings) => {
                let tls = acceptor.accept(stream).await?;
                let cert = identify(tls.get_ref().1, *from)?;
                let ws = ws::accept(tls, settings).await.map_err(ws_error)?;
                Accepted::Wss(Box::new(ws), cert)
            }
        })
    }
}

/// The client certificate's identity; an error when the listener takes the
/// user name from the certificate and this one has none to give (no Common
/// Name, a subject that is not text): such a client is not let in at all,
/// rather than in under the name it chose itself.
fn identify(
    conn: &tokio_rustls::rustls::ServerConnection,
    from: UsernameFrom,
) -> io::Result<PeerCertificate> {
    let cert = tls::peer_certificate(conn, from);
    if from != UsernameFrom::Nothing && cert.username.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the client certificate has no user name to give (use_identity_as_username needs a Common Name)",
        ));
    }
    Ok(cert)
}
