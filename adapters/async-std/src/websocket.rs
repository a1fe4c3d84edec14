//! MQTT over WebSocket (`ws://`, and `wss://` with the `tls` feature):
//! the upgrade with subprotocol `mqtt` (async-tungstenite), then binary
//! WebSocket messages read and written as a byte stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use futures_util::{Sink, Stream};
use mqtt_client::Address;

use crate::transport::{Bytestream, Transport};
use crate::ConnectError;

/// A WebSocket as a byte stream: what a binary message brought and the
/// reader has not taken yet waits in `pending`.
pub(crate) struct WsBytes {
    ws: WebSocketStream<Bytestream>,
    pending: Bytes,
}

/// tungstenite's error as the IO error the client sees.
fn ws_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl WsBytes {
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
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

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
        Pin::new(&mut self.ws)
            .start_send(WsMessage::binary(buf.to_vec()))
            .map_err(ws_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_error)
    }

    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(ws_error)
    }
}

/// The WebSocket upgrade with subprotocol `mqtt` over `stream`.
pub(crate) async fn upgrade(
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
