//! TLS under `mqtts://` and `wss://` (rustls on ring, through
//! futures-rustls), all of it behind the `tls` feature: the handshake; the
//! trust store used when the options give no rustls configuration and no
//! `ca_file` (Mozilla's roots with feature `webpki-roots`, the platform's
//! with feature `native-roots`, or both when both features are on); and
//! TLS without a hand-built `rustls::ClientConfig`: the trusted
//! certificate authorities from a PEM file ([`ConnectOptions::ca_file`])
//! and a client certificate for mutual TLS
//! ([`ConnectOptions::client_certificate`],
//! [`ConnectOptions::client_certificate_files`]), made into the
//! configuration at connect. The configuration itself (roots, PEM files,
//! rustls' `ClientConfig`) is mqtt-engine-tls's, shared by the client
//! adapters; what is here is the handshake over this crate's sockets, the
//! options' setters, and its errors as [`ConnectError`].

use std::path::Path;

use async_net::TcpStream;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use mqtt_client::Address;

use crate::options::TlsConfig;
use crate::{ConnectError, ConnectOptions};

/// The TLS handshake over `tcp`, with `config` or else the default
/// configuration; the server name is the address's host.
pub(crate) async fn connect(
    address: &Address,
    config: Option<&TlsConfig>,
    tcp: TcpStream,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = mqtt_tls::config_or_default(config)
        .map_err(|e| e.into_connect_error(ConnectError::NoRootCertificates))?;
    let name = ServerName::try_from(address.host.clone())
        .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
    Ok(futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}

impl ConnectOptions {
    /// Trusts the certificate authorities of the PEM file at `path` (one
    /// or more certificates) instead of the default roots (those the
    /// `webpki-roots` and `native-roots` features choose), as
    /// `mosquitto_pub --cafile` does. The file is read here; an unreadable
    /// file or one without a certificate makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`]. Switches an `mqtt://`
    /// or `ws://` address to TLS.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        match mqtt_tls::read_certificates(path.as_ref()) {
            Ok(certs) => self = self.ca_certificates(certs),
            Err(why) => self.common.invalid_option("ca_file", why),
        }
        self
    }

    /// Trusts these certificate authorities (DER) instead of the default
    /// roots. Switches an `mqtt://` or `ws://` address to TLS.
    pub fn ca_certificates(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        self.tls_files.set_roots(certs);
        self.common.use_tls();
        self
    }

    /// Presents this certificate chain (the client's certificate first)
    /// and private key to the broker: mutual TLS, for a listener that
    /// requires client certificates (Mosquitto's `require_certificate`).
    /// A key that does not suit rustls makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`]. Switches an `mqtt://`
    /// or `ws://` address to TLS.
    pub fn client_certificate(
        mut self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.tls_files.set_identity(cert_chain, key);
        self.common.use_tls();
        self
    }

    /// [`client_certificate`](Self::client_certificate) from PEM files, as
    /// `mosquitto_pub --cert --key` takes them. The files are read here;
    /// an unreadable one makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`].
    pub fn client_certificate_files(
        mut self,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Self {
        match mqtt_tls::read_identity(cert_path.as_ref(), key_path.as_ref()) {
            Ok((chain, key)) => self = self.client_certificate(chain, key),
            Err(why) => self.common.invalid_option("client_certificate", why),
        }
        self
    }

    /// The TLS configuration to connect with: the one given whole
    /// ([`tls_config`](Self::tls_config)), or one made of the pieces given,
    /// or `None` for the default (built when a TLS connection opens).
    pub(crate) fn take_tls(&mut self) -> Result<Option<TlsConfig>, ConnectError> {
        std::mem::take(&mut self.tls_files)
            .into_config(self.tls.take())
            .map_err(|e| e.into_connect_error(ConnectError::NoRootCertificates))
    }
}
