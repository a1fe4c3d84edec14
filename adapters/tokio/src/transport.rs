//! Opening the byte stream to the broker: TCP, TLS (feature `tls`),
//! WebSocket (feature `websocket`); and that stream as `mqtt-client`'s
//! [`Transport`](mqtt_client::runtime::Transport).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::options::TlsConfig;
use crate::{Address, ConnectError, Scheme};

/// A byte stream to the broker.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The byte stream to the broker, whatever the transport.
pub(crate) struct Transport(pub(crate) Pin<Box<dyn Io>>);

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

/// Refuses, with [`ConnectError::FeatureDisabled`], an address whose
/// transport this build was compiled without: a clear error at
/// `ConnectOptions::new` rather than a silent fallback to plain TCP.
pub(crate) fn require_features(scheme: Scheme) -> Result<(), ConnectError> {
    let tls = cfg!(feature = "tls");
    let websocket = cfg!(feature = "websocket");
    match scheme.missing_feature(tls, websocket) {
        None => Ok(()),
        Some(feature) => Err(ConnectError::FeatureDisabled {
            scheme: scheme.prefix(),
            feature,
        }),
    }
}

/// Opens the transport `address` names (without any timeout; the caller
/// bounds it).
pub(crate) async fn open(
    address: &Address,
    tls: Option<&TlsConfig>,
    max_packet_size: u32,
) -> Result<Transport, ConnectError> {
    // Checked again here (not only in `ConnectOptions::new`): the options'
    // `client_options()` can switch an address to TLS after it was parsed.
    require_features(address.scheme)?;
    let tcp = TcpStream::connect((address.host.as_str(), address.port)).await?;
    // MQTT packets are small and latency matters more than batching.
    tcp.set_nodelay(true)?;
    // Only the parameters of the transports this build has are used.
    let _ = (tls, max_packet_size);
    match address.scheme {
        Scheme::Tcp => Ok(Transport(Box::pin(tcp))),
        #[cfg(feature = "tls")]
        Scheme::Tls => Ok(Transport(Box::pin(
            crate::tls::connect(address, tls, tcp).await?,
        ))),
        #[cfg(feature = "websocket")]
        Scheme::WebSocket => crate::websocket::upgrade(address, tcp, max_packet_size).await,
        #[cfg(all(feature = "tls", feature = "websocket"))]
        Scheme::WebSocketTls => {
            let stream = crate::tls::connect(address, tls, tcp).await?;
            crate::websocket::upgrade(address, stream, max_packet_size).await
        }
        // `require_features` refused these above.
        #[cfg(not(all(feature = "tls", feature = "websocket")))]
        other => Err(ConnectError::FeatureDisabled {
            scheme: other.prefix(),
            feature: other
                .missing_feature(cfg!(feature = "tls"), cfg!(feature = "websocket"))
                .unwrap_or("tls"),
        }),
    }
}

// Each one runs only in a build without the feature it names
// (`.ci/run` builds them so).
#[cfg(all(test, not(all(feature = "tls", feature = "websocket"))))]
mod tests {
    use super::*;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_tls_address_is_refused_with_the_feature_it_needs() {
        for address in ["mqtts://broker.example", "wss://broker.example/mqtt"] {
            let err = crate::ConnectOptions::new(address).unwrap_err();
            let ConnectError::FeatureDisabled { feature, .. } = &err else {
                panic!("{address}: {err}");
            };
            assert!(*feature == "tls" || *feature == "websocket", "{err}");
            assert!(err.to_string().contains(feature), "{err}");
        }
        let err = crate::ConnectOptions::new("mqtts://broker.example").unwrap_err();
        assert_eq!(
            err.to_string(),
            "mqtts:// addresses need the `tls` feature of mqtt-engine-tokio, \
             which this build was compiled without"
        );
    }

    #[cfg(not(feature = "websocket"))]
    #[test]
    fn a_websocket_address_is_refused_with_the_feature_it_needs() {
        let err = crate::ConnectOptions::new("ws://broker.example").unwrap_err();
        assert!(
            matches!(
                err,
                ConnectError::FeatureDisabled {
                    scheme: "ws://",
                    feature: "websocket"
                }
            ),
            "{err}"
        );
    }
}
