//! Opening the byte stream to the broker, on `async-io`'s TCP: plain,
//! TLS (futures-rustls), WebSocket (async-tungstenite) and WebSocket over
//! TLS; and that stream as `mqtt-client`'s
//! [`Transport`](mqtt_client::runtime::Transport).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_net::TcpStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls;
use futures_rustls::rustls::pki_types::ServerName;
use futures_util::Sink;
use futures_util::Stream;
use mqtt_client::{Address, Scheme};

use crate::ConnectError;

/// A byte stream to the broker (TCP, or TLS over it).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Bytestream = Pin<Box<dyn Io>>;

/// The transport to the broker, whatever it is.
pub(crate) enum Transport {
    /// TCP or TLS: bytes as they are.
    Stream(Bytestream),
    /// WebSocket: MQTT bytes in binary messages [MQTT-6.0.0-1].
    WebSocket(Box<WsBytes>),
}

/// A WebSocket as a byte stream: what a binary message brought and the
/// reader has not taken yet waits in `pending`.
pub(crate) struct WsBytes {
    ws: WebSocketStream<Bytestream>,
    pending: Bytes,
}

fn ws_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl WsBytes {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending.split_to(n));
                return Poll::Ready(Ok(n));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(WsMessage::Binary(data))) => self.pending = data,
                // Pings are answered by tungstenite itself.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                // Text is not MQTT [MQTT-6.0.0-1]: like a Close, the end.
                Some(Ok(WsMessage::Text(_) | WsMessage::Close(_))) | None => {
                    return Poll::Ready(Ok(0))
                }
                Some(Err(e)) => return Poll::Ready(Err(ws_error(e))),
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
        Pin::new(&mut self.ws)
            .start_send(WsMessage::binary(buf.to_vec()))
            .map_err(ws_error)?;
        Poll::Ready(Ok(buf.len()))
    }
}

impl mqtt_client::runtime::Transport for Transport {
    type Error = io::Error;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Stream(s) => s.as_mut().poll_read(cx, buf),
            Transport::WebSocket(ws) => ws.poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Transport::Stream(s) => s.as_mut().poll_write(cx, buf),
            Transport::WebSocket(ws) => ws.poll_write(cx, buf),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Stream(s) => s.as_mut().poll_flush(cx),
            Transport::WebSocket(ws) => Pin::new(&mut ws.ws).poll_flush(cx).map_err(ws_error),
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Stream(s) => s.as_mut().poll_close(cx),
            Transport::WebSocket(ws) => Pin::new(&mut ws.ws).poll_close(cx).map_err(ws_error),
        }
    }
}

/// Opens the transport `address` names (without any timeout; the caller
/// bounds it). `tls` is the configuration for `mqtts://` and `wss://`
/// (Mozilla's roots when `None`).
pub(crate) async fn open(
    address: &Address,
    tls: Option<&Arc<rustls::ClientConfig>>,
    max_packet_size: u32,
) -> Result<Transport, ConnectError> {
    let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
    // Small packets (acks, pings) go out at once.
    let _ = tcp.set_nodelay(true);
    let stream: Bytestream = if address.is_tls() {
        Box::pin(tls_connect(address, tls, tcp).await?)
    } else {
        Box::pin(tcp)
    };
    match address.scheme {
        Scheme::Tcp | Scheme::Tls => Ok(Transport::Stream(stream)),
        Scheme::WebSocket | Scheme::WebSocketTls => {
            websocket(address, stream, max_packet_size).await
        }
    }
}

/// The default TLS configuration: Mozilla's root certificates, no client
/// certificate.
fn default_tls() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

async fn tls_connect(
    address: &Address,
    tls: Option<&Arc<rustls::ClientConfig>>,
    tcp: TcpStream,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = tls.cloned().unwrap_or_else(default_tls);
    let name = ServerName::try_from(address.host.clone())
        .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
    Ok(futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}

/// The WebSocket upgrade with subprotocol `mqtt` over `stream`.
async fn websocket(
    address: &Address,
    stream: Bytestream,
    max_packet_size: u32,
) -> Result<Transport, ConnectError> {
    let scheme = if address.is_tls() { "wss" } else { "ws" };
    let host = if address.host.contains(':') {
        format!("[{}]", address.host)
    } else {
        address.host.clone()
    };
    let url = format!("{scheme}://{host}:{}{}", address.port, address.path);
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::WebSocket(e.to_string()))?;
    // MQTT over WebSocket names the subprotocol "mqtt" [MQTT-6.0.0-3].
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    // No WebSocket message needs to be larger than the largest MQTT packet
    // accepted (plus its fixed header): a peer cannot make us buffer more.
    let limit = usize::try_from(max_packet_size)
        .unwrap_or(usize::MAX)
        .saturating_add(5);
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let (ws, response) = async_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| ConnectError::WebSocket(e.to_string()))?;
    let agreed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"mqtt"));
    if !agreed {
        return Err(ConnectError::WebSocket(
            "the server did not agree to the mqtt subprotocol".into(),
        ));
    }
    Ok(Transport::WebSocket(Box::new(WsBytes {
        ws,
        pending: Bytes::new(),
    })))
}
