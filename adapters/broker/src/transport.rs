//! What a listener speaks, and the handshake that turns an accepted TCP
//! socket into an MQTT byte stream: nothing for TCP, TLS, a WebSocket
//! upgrade, or both.

use std::io;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{Listener, Protocol};
use crate::tls::{self, TlsError};
use crate::ws::{self, WsIo, WsSettings};

/// A listener's transport, its TLS files already read.
pub(crate) enum Transport {
    Tcp,
    Tls(TlsAcceptor),
    Ws(WsSettings),
    Wss(TlsAcceptor, WsSettings),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An MQTT byte stream after its handshake, with the subject of the
/// client's verified certificate where TLS gave one.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>, Option<String>),
    Ws(Box<WsIo<TcpStream>>),
    Wss(Box<WsIo<TlsStream<TcpStream>>>, Option<String>),
}

impl Transport {
    /// The transport of `listener`, reading its TLS files now.
    pub(crate) fn new(listener: &Listener, max_packet_size: u32) -> Result<Transport, TlsError> {
        let ws = || WsSettings::new(listener.path.clone(), max_packet_size);
        Ok(match listener.protocol {
            Protocol::Mqtt => Transport::Tcp,
            Protocol::Mqtts => Transport::Tls(tls::acceptor(listener)?),
            Protocol::Ws => Transport::Ws(ws()),
            Protocol::Wss => Transport::Wss(tls::acceptor(listener)?, ws()),
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
            Transport::Tls(_) => "MQTT over TLS",
            Transport::Ws(_) => "MQTT over WebSocket",
            Transport::Wss(..) => "MQTT over WebSocket over TLS",
        }
    }

    /// Runs the handshake on `stream`. The caller bounds it in time.
    pub(crate) async fn accept(&self, stream: TcpStream) -> io::Result<Accepted> {
        let ws_error = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        Ok(match self {
            Transport::Tcp => Accepted::Tcp(stream),
            Transport::Tls(acceptor) => {
                let tls = acceptor.accept(stream).await?;
                let subject = tls::certificate_subject(tls.get_ref().1);
                Accepted::Tls(Box::new(tls), subject)
            }
            Transport::Ws(settings) => Accepted::Ws(Box::new(
                ws::accept(stream, settings).await.map_err(ws_error)?,
            )),
            Transport::Wss(acceptor, settings) => {
                let tls = acceptor.accept(stream).await?;
                let subject = tls::certificate_subject(tls.get_ref().1);
                let ws = ws::accept(tls, settings).await.map_err(ws_error)?;
                Accepted::Wss(Box::new(ws), subject)
            }
        })
    }
}
