//! The socket to the broker: TCP, optionally with rustls on top, split into
//! a reading half (its own thread) and a writing half (the driver's).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use mqtt_client::{Address, Scheme};

use crate::ConnectError;

/// The writing side of a connection, and what decrypts what the reader
/// thread brings in.
pub(crate) struct Transport {
    tcp: TcpStream,
    tls: Option<rustls::ClientConnection>,
}

impl Transport {
    /// Connects (TCP, then the TLS handshake if the address asks for it),
    /// all within `timeout`.
    pub(crate) fn open(
        address: &Address,
        tls: Option<&Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Transport, ConnectError> {
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
        let Some(mut tcp) = tcp else {
            return Err(last
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                .into());
        };
        // MQTT packets are small and latency matters more than batching.
        tcp.set_nodelay(true)?;
        // A write that cannot finish in this time means the broker is gone.
        tcp.set_write_timeout(Some(timeout.max(Duration::from_secs(1))))?;
        let tls = match address.scheme {
            Scheme::Tcp => None,
            // `ConnectOptions::new` refuses WebSocket addresses.
            Scheme::WebSocket | Scheme::WebSocketTls => {
                let refused = mqtt_client::ConnectError::InvalidAddress {
                    address: format!("{}:{}", address.host, address.port),
                    why: "this client has no WebSocket transport".to_owned(),
                };
                return Err(refused.into());
            }
            Scheme::Tls => {
                let config = tls.cloned().unwrap_or_else(default_tls);
                let name = ServerName::try_from(address.host.clone())
                    .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
                let mut conn = rustls::ClientConnection::new(config, name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let left = deadline.saturating_duration_since(Instant::now());
                tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            mqtt_client::ConnectError::Timeout(timeout).into()
                        }
                        _ => ConnectError::Io(e),
                    })?;
                }
                tcp.set_read_timeout(None)?;
                Some(conn)
            }
        };
        Ok(Transport { tcp, tls })
    }

    /// A second handle on the socket for the reader thread.
    pub(crate) fn reader(&self) -> io::Result<TcpStream> {
        self.tcp.try_clone()
    }

    /// Sends `plain` (MQTT bytes), encrypting it first under TLS.
    pub(crate) fn write_all(&mut self, plain: &[u8]) -> io::Result<()> {
        match self.tls.as_mut() {
            None => self.tcp.write_all(plain),
            Some(tls) => {
                tls.writer().write_all(plain)?;
                flush_tls(tls, &mut self.tcp)
            }
        }
    }

    /// Takes bytes the reader thread read from the socket; appends the MQTT
    /// bytes they carry to `out`. `Ok(false)`: the peer closed the TLS
    /// session.
    pub(crate) fn receive(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            out.extend_from_slice(raw);
            return Ok(true);
        };
        let mut raw = raw;
        while !raw.is_empty() {
            tls.read_tls(&mut raw)?;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut chunk = [0u8; 4096];
            loop {
                match tls.reader().read(&mut chunk) {
                    Ok(0) => return Ok(false),
                    Ok(n) => out.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        // Alerts or key updates the peer's data asked for.
        flush_tls(tls, &mut self.tcp)?;
        Ok(true)
    }

    /// Closes the connection: TLS close_notify where there is TLS, then the
    /// socket in both directions, which also ends the reader thread.
    pub(crate) fn shutdown(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = flush_tls(tls, &mut self.tcp);
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

fn flush_tls(tls: &mut rustls::ClientConnection, tcp: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        tls.write_tls(tcp)?;
    }
    Ok(())
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
