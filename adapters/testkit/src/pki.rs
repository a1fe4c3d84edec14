//! A throw-away certificate authority and server certificate for TLS tests.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A test CA and a server certificate it signed for `localhost` and
/// `127.0.0.1`, in the forms brokers and clients take.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate, DER (for a rustls root store).
    pub ca_der: Vec<u8>,
    /// The CA certificate, PEM (for Mosquitto's `cafile`).
    pub ca_pem: String,
    /// The server certificate, PEM (Mosquitto's `certfile`).
    pub server_pem: String,
    /// The server's private key, PEM (Mosquitto's `keyfile`).
    pub server_key_pem: String,
    /// A client certificate the CA signed (Common Name `alice`), PEM, for
    /// mutual TLS (`mosquitto_pub --cert`).
    pub client_pem: String,
    /// The client's private key, PEM (`mosquitto_pub --key`).
    pub client_key_pem: String,
}

impl TestCerts {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> TestCerts {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mqtt-testkit CA");
        let ca_cert = ca.self_signed(&ca_key).expect("a self-signed CA");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server parameters");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = server
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        let client_key = KeyPair::generate().expect("a client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        client.distinguished_name.push(DnType::CommonName, "alice");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client
            .signed_by(&client_key, &issuer)
            .expect("a client certificate");
        TestCerts {
            ca_der: ca_cert.der().to_vec(),
            client_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            ca_pem: ca_cert.pem(),
            server_pem: server_cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }

    /// The files Mosquitto's TLS options name, for
    /// [`Mosquitto::start_with_files`](crate::Mosquitto::start_with_files)
    /// with [`TestCerts::MOSQUITTO_TLS`].
    pub fn files(&self) -> [(&'static str, &[u8]); 3] {
        [
            ("ca.pem", self.ca_pem.as_bytes()),
            ("server.pem", self.server_pem.as_bytes()),
            ("server.key", self.server_key_pem.as_bytes()),
        ]
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir` (created if
    /// missing), for a broker that reads them from files, and the client's
    /// `client.pem` and `client.key`.
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, contents) in self.files() {
            std::fs::write(dir.join(name), contents)?;
        }
        std::fs::write(dir.join("client.pem"), &self.client_pem)?;
        std::fs::write(dir.join("client.key"), &self.client_key_pem)?;
        Ok(())
    }

    /// A rustls client configuration (ring) trusting this CA only, for a
    /// client adapter's `tls_config`.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .expect("the test CA is a valid root");
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

    /// Mosquitto listener lines that turn on TLS with [`TestCerts::files`].
    pub const MOSQUITTO_TLS: &'static str =
        "cafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key";
}
