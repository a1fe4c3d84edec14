//! Opening the byte stream to the broker: TCP, TLS, WebSocket; and that
//! stream as `mqtt-client`'s [`Transport`](mqtt_client::runtime::Transport).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{Message as WsMessage, WebSocketConfig};

use crate::{Address, ConnectError, Scheme};

/// A byte stream to the broker.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The byte stream to the broker, whatever the transport.
pub(crate) struct Transport(Pin<Box<dyn Io>>);

impl mqtt_client::runtime::Transport for Transport {
    type Error = io::Error;

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        self.0
            .as_mut()
            .poll_read(cx, &mut buf)
            .map_ok(|()| buf.filled().len())
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }
}

/// Room in the in-memory pipe between the WebSocket pump and the client.
const WS_PIPE: usize = 64 * 1024;

/// Opens the transport `address` names (without any timeout; the caller
/// bounds it).
pub(crate) async fn open(
    address: &Address,
    tls: Option<&Arc<rustls::ClientConfig>>,
    max_packet_size: u32,
) -> Result<Transport, ConnectError> {
    let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
    // MQTT packets are small and latency matters more than batching.
    tcp.set_nodelay(true)?;
    match address.scheme {
        Scheme::Tcp => Ok(Transport(Box::pin(tcp))),
        Scheme::Tls => Ok(Transport(Box::pin(tls_connect(address, tls, tcp).await?))),
        Scheme::WebSocket => websocket(address, tcp, max_packet_size).await,
        Scheme::WebSocketTls => {
            let stream = tls_connect(address, tls, tcp).await?;
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
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = tls.cloned().unwrap_or_else(default_tls);
    let name = ServerName::try_from(address.host.clone())
        .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}

/// The WebSocket upgrade with subprotocol `mqtt`, then a task that turns
/// binary WebSocket messages into a byte stream and back.
async fn websocket<S>(
    address: &Address,
    stream: S,
    max_packet_size: u32,
) -> Result<Transport, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
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
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
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
    let (ours, theirs) = tokio::io::duplex(WS_PIPE);
    tokio::spawn(pump_websocket(ws, theirs));
    Ok(Transport(Box::pin(ours)))
}

/// Moves bytes between the pipe and the WebSocket until either ends.
async fn pump_websocket<S>(ws: tokio_tungstenite::WebSocketStream<S>, pipe: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut pipe_rx, mut pipe_tx) = tokio::io::split(pipe);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = pipe_rx.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = ws_tx.send(WsMessage::Close(None)).await;
                    return;
                }
                Ok(n) => {
                    if ws_tx.send(WsMessage::binary(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            },
            msg = ws_rx.next() => match msg {
                Some(Ok(WsMessage::Binary(data))) => {
                    if pipe_tx.write_all(&data).await.is_err() {
                        return;
                    }
                }
                // Pings are answered by tungstenite itself; text frames are
                // not MQTT [MQTT-6.0.0-1] and end the connection.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                _ => {
                    let _ = pipe_tx.shutdown().await;
                    return;
                }
            },
        }
    }
}
