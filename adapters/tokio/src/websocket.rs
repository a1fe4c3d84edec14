//! MQTT over WebSocket (`ws://`, and `wss://` with the `tls` feature):
//! the upgrade with subprotocol `mqtt`, then a task that moves the bytes
//! between binary WebSocket messages and an in-memory pipe.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{Message as WsMessage, WebSocketConfig};

use crate::transport::Transport;
use crate::{Address, ConnectError};

/// Room in the in-memory pipe between the WebSocket pump and the client.
const WS_PIPE: usize = 64 * 1024;

/// The WebSocket upgrade with subprotocol `mqtt`, then a task that turns
/// binary WebSocket messages into a byte stream and back.
pub(crate) async fn upgrade<S>(
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
