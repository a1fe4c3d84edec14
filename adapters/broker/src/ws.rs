//! MQTT over WebSocket (MQTT 5.0 section 6, 3.1.1 section 6): the HTTP
//! upgrade with subprotocol `mqtt` on the listener's path, and an adapter
//! that turns binary frames into the byte stream the codec reads.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// The subprotocols accepted, in order of preference: `mqtt` (3.1.1 and
/// 5.0) and `mqttv3.1` (what 3.1 clients offer).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Smallest limit on one WebSocket message, whatever the packet size limit.
const MIN_MESSAGE_LIMIT: usize = 64 * 1024;

/// How one listener upgrades HTTP connections.
#[derive(Debug, Clone)]
pub(crate) struct WsSettings {
    /// The HTTP path clients must ask for.
    pub(crate) path: String,
    /// Largest WebSocket message (and frame) read.
    pub(crate) max_message: usize,
}

impl WsSettings {
    /// Settings for `path`, reading messages of at most `max_packet_size`
    /// (at least 64 KiB): a frame normally carries one packet, and the codec
    /// refuses bigger packets anyway, so a peer cannot make the broker
    /// buffer more than that per connection.
    pub(crate) fn new(path: String, max_packet_size: u32) -> WsSettings {
        WsSettings {
            path,
            max_message: (max_packet_size as usize).max(MIN_MESSAGE_LIMIT),
        }
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            // The defaults (128 KiB each) would be eager per-connection memory.
            .read_buffer_size(8 * 1024)
            // Each write is one batch of packets, flushed at once by the writer.
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// Runs the WebSocket upgrade on `stream`: the path must match (else 404),
/// and a client offering subprotocols must offer one of ours (else 400).
// `ErrorResponse` is tungstenite's callback error type, not ours to shrink.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept<S>(
    stream: S,
    settings: &WsSettings,
) -> Result<WsIo<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let path = settings.path.as_str();
    let check = |request: &Request, response: Response| upgrade(path, request, response);
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(settings.config()))
            .await?;
    Ok(WsIo {
        ws,
        pending: Bytes::new(),
    })
}

/// Decides on one upgrade request.
#[allow(clippy::result_large_err)]
fn upgrade(
    path: &str,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    if request.uri().path() != path {
        return Err(refusal(
            StatusCode::NOT_FOUND,
            "no MQTT endpoint at this path",
        ));
    }
    let offered: Vec<&str> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        // [MQTT-6.0.0-3] obliges the client to offer "mqtt"; clients that
        // offer nothing are still served, as other brokers do.
        return Ok(response);
    }
    // The one the client prefers, among ours [MQTT-6.0.0-4].
    let Some(chosen) = offered.iter().find(|p| SUBPROTOCOLS.contains(p)) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "MQTT over WebSocket needs the subprotocol \"mqtt\"",
        ));
    };
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(if *chosen == "mqtt" {
            "mqtt"
        } else {
            "mqttv3.1"
        }),
    );
    Ok(response)
}

fn refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.to_string()));
    *r.status_mut() = status;
    r
}

/// A WebSocket connection as a byte stream: binary frames in, one binary
/// frame per write out. MQTT packets may span frames and a frame may hold
/// several packets [MQTT-6.0.0-2]; the codec reassembles them.
#[derive(Debug)]
pub(crate) struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// The unread rest of the last binary frame.
    pending: Bytes,
}

fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            // Pings are answered by tungstenite itself while reading.
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => this.pending = data,
                Some(Ok(Message::Text(_))) => {
                    // [MQTT-6.0.0-1] Any data frame other than binary closes
                    // the network connection.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a WebSocket text frame: MQTT packets travel in binary frames",
                    )));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut ws = Pin::new(&mut self.get_mut().ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(io_error)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(data)))
            .map_err(io_error)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A close frame, then the transport's own shutdown (TLS close_notify).
        ready!(Pin::new(&mut this.ws).poll_close(cx)).map_err(io_error)?;
        Pin::new(this.ws.get_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    type Client = WebSocketStream<DuplexStream>;

    /// A client and the server's byte stream, upgraded with `protocols`
    /// offered (the server's answer is returned too).
    async fn pair(
        path: &str,
        protocols: Option<&str>,
    ) -> (Client, WsIo<DuplexStream>, Option<String>) {
        let (c, s) = tokio::io::duplex(64 * 1024);
        let settings = WsSettings::new("/mqtt".into(), 1024);
        let server = tokio::spawn(async move { accept(s, &settings).await.unwrap() });
        let mut request = format!("ws://127.0.0.1{path}")
            .into_client_request()
            .unwrap();
        if let Some(p) = protocols {
            request.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(p).unwrap(),
            );
        }
        let (client, response) = tokio_tungstenite::client_async(request, c).await.unwrap();
        let chosen = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .map(|v| v.to_str().unwrap().to_string());
        (client, server.await.unwrap(), chosen)
    }

    /// The HTTP status of an upgrade the server refuses.
    async fn refused(path: &str, protocols: &str) -> u16 {
        let (c, s) = tokio::io::duplex(64 * 1024);
        let settings = WsSettings::new("/mqtt".into(), 1024);
        let server = tokio::spawn(async move { accept(s, &settings).await.is_err() });
        let mut request = format!("ws://127.0.0.1{path}")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocols).unwrap(),
        );
        let status = match tokio_tungstenite::client_async(request, c).await {
            Err(tungstenite::Error::Http(r)) => r.status().as_u16(),
            other => panic!("not refused: {other:?}"),
        };
        assert!(server.await.unwrap(), "the server side failed too");
        status
    }

    #[tokio::test]
    async fn the_subprotocol_chosen_is_one_the_client_offered() {
        assert_eq!(pair("/mqtt", Some("mqtt")).await.2.as_deref(), Some("mqtt"));
        assert_eq!(
            pair("/mqtt", Some("mqttv3.1")).await.2.as_deref(),
            Some("mqttv3.1")
        );
        assert_eq!(
            pair("/mqtt", Some("chat, mqttv3.1, mqtt"))
                .await
                .2
                .as_deref(),
            Some("mqttv3.1")
        );
        assert_eq!(pair("/mqtt", None).await.2, None);
        assert_eq!(
            pair("/mqtt?x=1", Some("mqtt")).await.2.as_deref(),
            Some("mqtt")
        );
    }

    #[tokio::test]
    async fn a_wrong_path_or_subprotocol_is_refused() {
        assert_eq!(refused("/", "mqtt").await, 404);
        assert_eq!(refused("/mqtt/x", "mqtt").await, 404);
        assert_eq!(refused("/mqtt", "chat").await, 400);
    }

    #[tokio::test]
    async fn frames_become_a_byte_stream_both_ways() {
        let (mut client, mut server, _) = pair("/mqtt", Some("mqtt")).await;
        // One packet over two frames, then two packets in one frame; a ping
        // between them is answered and not seen as data.
        client
            .send(Message::Binary(Bytes::from_static(&[0xC0])))
            .await
            .unwrap();
        client
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(&[0x00])))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(&[
                0xC0, 0x00, 0xE0, 0x00,
            ])))
            .await
            .unwrap();
        let mut got = [0u8; 6];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0xC0, 0x00, 0xC0, 0x00, 0xE0, 0x00]);
        // Reads smaller than a frame take it piecewise.
        client
            .send(Message::Binary(Bytes::from_static(b"abcdef")))
            .await
            .unwrap();
        let mut small = [0u8; 4];
        server.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"abcd");
        server.read_exact(&mut small[..2]).await.unwrap();
        assert_eq!(&small[..2], b"ef");

        server.write_all(&[0xD0, 0x00]).await.unwrap();
        server.flush().await.unwrap();
        let mut saw_pong = false;
        loop {
            match client.next().await.unwrap().unwrap() {
                Message::Pong(p) => {
                    assert_eq!(&p[..], b"hi");
                    saw_pong = true;
                }
                Message::Binary(b) => {
                    assert_eq!(&b[..], &[0xD0, 0x00]);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(saw_pong, "the ping was not answered");

        // Shutdown sends a close frame; the client sees the close.
        server.shutdown().await.unwrap();
        assert!(matches!(client.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn a_text_frame_or_an_oversized_message_is_an_error() {
        let (mut client, mut server, _) = pair("/mqtt", Some("mqtt")).await;
        client.send(Message::text("\u{10}\u{0}")).await.unwrap();
        let mut b = [0u8; 1];
        let e = server.read(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        let (mut client, mut server, _) = pair("/mqtt", Some("mqtt")).await;
        let big = Bytes::from(vec![0u8; MIN_MESSAGE_LIMIT + 1]);
        let send = tokio::spawn(async move {
            let _ = client.send(Message::Binary(big)).await;
            client
        });
        assert!(server.read(&mut b).await.is_err());
        drop(send.await);
    }

    #[tokio::test]
    async fn a_close_frame_is_the_end_of_the_stream() {
        let (mut client, mut server, _) = pair("/mqtt", Some("mqtt")).await;
        client.close(None).await.unwrap();
        let mut b = [0u8; 1];
        assert_eq!(server.read(&mut b).await.unwrap(), 0);
    }
}
