//! The socket to the broker: TCP, optionally with rustls on top (feature
//! `tls`), split into a reading half (its own thread) and a writing half
//! (the driver's).

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use mqtt_client::{Address, Scheme};

use crate::options::TlsConfig;
use crate::ConnectError;

/// The writing side of a connection, and what decrypts what the reader
/// thread brings in.
pub(crate) struct Transport {
    tcp: TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<rustls::ClientConnection>,
}

/// Refuses, with [`ConnectError::FeatureDisabled`], a TLS address when this
/// build was compiled without the `tls` feature: a clear error rather than
/// a silent fallback to plain TCP.
pub(crate) fn require_features(scheme: Scheme) -> Result<(), ConnectError> {
    match scheme {
        Scheme::Tls if !cfg!(feature = "tls") => Err(ConnectError::FeatureDisabled {
            scheme: scheme.prefix(),
            feature: "tls",
        }),
        _ => Ok(()),
    }
}

impl Transport {
    /// Connects (TCP, then the TLS handshake if the address asks for it),
    /// all within `timeout`.
    pub(crate) fn open(
        address: &Address,
        tls: Option<&TlsConfig>,
        timeout: Duration,
    ) -> Result<Transport, ConnectError> {
        // Checked again here (not only in `ConnectOptions::new`): the
        // options' `client_options()` can switch an address to TLS.
        require_features(address.scheme)?;
        if address.is_websocket() {
            // `ConnectOptions::new` refuses WebSocket addresses.
            let refused = mqtt_client::ConnectError::InvalidAddress {
                address: format!("{}:{}", address.host, address.port),
                why: "this client has no WebSocket transport".to_owned(),
            };
            return Err(refused.into());
        }
        let deadline = Instant::now() + timeout;
        let mut last = None;
        let mut tcp = None;
        for addr in (address.host.as_str(), address.port).to_socket_addrs()? {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(mqtt_client::ConnectError::Timeout(timeout).into());
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            return Err(last
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                .into());
        };
        // MQTT packets are small and latency matters more than batching.
        tcp.set_nodelay(true)?;
        // A write that cannot finish in this time means the broker is gone.
        tcp.set_write_timeout(Some(timeout.max(Duration::from_secs(1))))?;
        #[cfg(feature = "tls")]
        {
            let mut tcp = tcp;
            let tls = match address.scheme {
                Scheme::Tls => Some(crate::tls::handshake(
                    address, tls, &mut tcp, deadline, timeout,
                )?),
                Scheme::Tcp | Scheme::WebSocket | Scheme::WebSocketTls => None,
            };
            Ok(Transport { tcp, tls })
        }
        #[cfg(not(feature = "tls"))]
        {
            // `require_features` refused TLS above; `tls` is always `None`.
            let _ = (tls, deadline);
            Ok(Transport { tcp })
        }
    }

    /// A second handle on the socket for the reader thread.
    pub(crate) fn reader(&self) -> io::Result<TcpStream> {
        self.tcp.try_clone()
    }

    /// Sends `plain` (MQTT bytes), encrypting it first under TLS.
    pub(crate) fn write_all(&mut self, plain: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.writer().write_all(plain)?;
            return crate::tls::flush(tls, &mut self.tcp);
        }
        self.tcp.write_all(plain)
    }

    /// Takes bytes the reader thread read from the socket; appends the MQTT
    /// bytes they carry to `out`. `Ok(false)`: the peer closed the TLS
    /// session.
    pub(crate) fn receive(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return crate::tls::receive(tls, &mut self.tcp, raw, out);
        }
        out.extend_from_slice(raw);
        Ok(true)
    }

    /// Closes the connection: TLS close_notify where there is TLS, then the
    /// socket in both directions, which also ends the reader thread.
    pub(crate) fn shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = crate::tls::flush(tls, &mut self.tcp);
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tcp_needs_no_feature() {
        assert!(require_features(Scheme::Tcp).is_ok());
        assert_eq!(
            require_features(Scheme::Tls).is_ok(),
            cfg!(feature = "tls"),
            "TLS is refused exactly when the feature is off"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_tls_address_is_refused_with_the_feature_it_needs() {
        let err = crate::ConnectOptions::new("mqtts://broker.example").unwrap_err();
        assert!(
            matches!(
                err,
                ConnectError::FeatureDisabled {
                    scheme: "mqtts://",
                    feature: "tls"
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
