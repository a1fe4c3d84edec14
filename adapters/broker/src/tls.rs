//! TLS for the `"mqtts"` and `"wss"` listeners: rustls (on `ring`) set up
//! from the listener's PEM files, and the subject of a verified client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::Listener;

/// Why a TLS listener could not be set up. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        /// Which file: certificate, key or CA file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("the {what} {path} holds no {item} in PEM form")]
    Empty {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for.
        item: &'static str,
    },
    /// A file is not valid PEM.
    #[error("the {what} {path} is not valid PEM: {source}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate and key cannot be used together (a key that does
    /// not match the certificate, an unsupported key type).
    #[error("the certificate {certfile} and key {keyfile} cannot be used: {source}")]
    CertifiedKey {
        /// The certificate file.
        certfile: PathBuf,
        /// The key file.
        keyfile: PathBuf,
        /// What rustls refused.
        source: rustls::Error,
    },
    /// A certificate of the CA file is refused as a trust anchor.
    #[error("the CA file {path} holds a certificate that cannot be trusted: {source}")]
    Authority {
        /// The CA file.
        path: PathBuf,
        /// What rustls refused.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA file.
    #[error("the CA file {path} cannot verify client certificates: {source}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// What rustls refused.
        source: VerifierBuilderError,
    },
    /// A TLS listener lacks `certfile` or `keyfile` (refused by the
    /// configuration check too; here for listeners built in code).
    #[error("a TLS listener needs certfile and keyfile")]
    MissingFiles,
}

/// The TLS acceptor for `listener`, its files read now.
pub(crate) fn acceptor(listener: &Listener) -> Result<TlsAcceptor, TlsError> {
    let (Some(certfile), Some(keyfile)) = (&listener.certfile, &listener.keyfile) else {
        return Err(TlsError::MissingFiles);
    };
    let provider = Arc::new(ring::default_provider());
    let chain = certificates(certfile, "certificate file")?;
    let key = private_key(keyfile)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::CertifiedKey {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
            source,
        })?;
    let builder = match &listener.cafile {
        None => builder.with_no_client_auth(),
        Some(cafile) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(cafile, "CA file")? {
                roots.add(cert).map_err(|source| TlsError::Authority {
                    path: cafile.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if listener.require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().map_err(|source| TlsError::Verifier {
                path: cafile.clone(),
                source,
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::CertifiedKey {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The certificates of a PEM file, with errors naming the file (also
/// used for bridges' client certificates).
pub(crate) fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            item: "certificate",
        });
    }
    Ok(certs)
}

/// The private key of a PEM file, with errors naming the file.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "key file";
    let pem = read(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: WHAT,
            path: path.to_owned(),
            item: "private key",
        },
        source => TlsError::Pem {
            what: WHAT,
            path: path.to_owned(),
            source,
        },
    })
}

/// The subject of the client's certificate, which rustls has verified
/// against the listener's CA file (no certificate: `None`), as an RFC 4514
/// style string, e.g. `"CN=sensor-1, O=Example"`.
pub(crate) fn certificate_subject(conn: &rustls::ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    // rustls parsed this certificate while verifying it; a name x509-parser
    // cannot read still must not fail the connection, so it is just absent.
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(cert.subject().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::ClientConfig;
    use tokio_rustls::TlsConnector;

    /// A CA, a server certificate for 127.0.0.1 and a client certificate
    /// (CN=sensor-1), as PEM files in a fresh folder.
    struct Pki {
        dir: PathBuf,
        ca: CertificateDer<'static>,
        client_chain: Vec<CertificateDer<'static>>,
        client_key: PrivateKeyDer<'static>,
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Pki {
        fn new(name: &str) -> Pki {
            let dir = std::env::temp_dir().join(format!(
                "mqtt-broker-tls-unit-{}-{name}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "test CA");
            let ca_cert = ca_params.self_signed(&ca_key).unwrap();
            let ca = Issuer::new(ca_params, ca_key);

            let server_key = KeyPair::generate().unwrap();
            let mut server_params = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
            server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

            let client_key = KeyPair::generate().unwrap();
            let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            client_params
                .distinguished_name
                .push(DnType::CommonName, "sensor-1");
            client_params
                .distinguished_name
                .push(DnType::OrganizationName, "Example");
            let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

            std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
            std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
            std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
            Pki {
                dir,
                ca: ca_cert.der().clone(),
                client_chain: vec![client_cert.der().clone()],
                client_key: PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
            }
        }

        fn listener(&self, cafile: bool, require_certificate: bool) -> Listener {
            let mut l = Listener::tcp("127.0.0.1:0".parse().unwrap());
            l.protocol = Protocol::Mqtts;
            l.certfile = Some(self.dir.join("server.pem"));
            l.keyfile = Some(self.dir.join("server.key"));
            l.cafile = cafile.then(|| self.dir.join("ca.pem"));
            l.require_certificate = require_certificate;
            l
        }

        fn client(&self, with_certificate: bool) -> TlsConnector {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
            let config = if with_certificate {
                builder
                    .with_client_auth_cert(self.client_chain.clone(), self.client_key.clone_key())
                    .unwrap()
            } else {
                builder.with_no_client_auth()
            };
            TlsConnector::from(Arc::new(config))
        }
    }

    /// One TLS session over an in-memory pipe: what the server saw as the
    /// client's subject, or the server's handshake error. The client sends
    /// a byte after its handshake so that a refusal of its certificate
    /// (TLS 1.3 checks it after the client is done) reaches the server.
    async fn session(
        pki: &Pki,
        listener: &Listener,
        client_cert: bool,
    ) -> Result<Option<String>, String> {
        let acceptor = acceptor(listener).unwrap();
        let connector = pki.client(client_cert);
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let client = tokio::spawn(async move {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            if let Ok(mut s) = connector.connect(name, client_io).await {
                let _ = s.write_all(b"x").await;
                let _ = s.flush().await;
                let mut b = [0u8; 1];
                let _ = s.read(&mut b).await;
            }
        });
        let result = match acceptor.accept(server_io).await {
            Ok(mut s) => {
                let subject = certificate_subject(s.get_ref().1);
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
                s.write_all(b"y").await.unwrap();
                Ok(subject)
            }
            Err(e) => Err(e.to_string()),
        };
        client.abort();
        result
    }

    #[tokio::test]
    async fn a_verified_client_certificate_gives_its_subject() {
        let pki = Pki::new("subject");
        let l = pki.listener(true, true);
        assert_eq!(
            session(&pki, &l, true).await.unwrap().as_deref(),
            Some("CN=sensor-1, O=Example")
        );
        // Required and not shown: refused.
        assert!(session(&pki, &l, false).await.is_err());
        // Optional: without a certificate there is no subject.
        let l = pki.listener(true, false);
        assert_eq!(session(&pki, &l, false).await.unwrap(), None);
        assert!(session(&pki, &l, true).await.unwrap().is_some());
        // No CA file: client certificates are not asked for.
        let l = pki.listener(false, false);
        assert_eq!(session(&pki, &l, true).await.unwrap(), None);
    }

    fn refused(l: &Listener) -> String {
        match acceptor(l) {
            Ok(_) => panic!("accepted {l:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let pki = Pki::new("errors");
        let mut l = pki.listener(true, false);
        l.certfile = Some(pki.dir.join("missing.pem"));
        let e = refused(&l);
        assert!(
            e.contains("certificate file") && e.contains("missing.pem"),
            "{e}"
        );

        let mut l = pki.listener(true, false);
        l.keyfile = Some(pki.dir.join("server.pem"));
        let e = refused(&l);
        assert!(
            e.contains("key file") && e.contains("holds no private key"),
            "{e}"
        );

        let mut l = pki.listener(true, false);
        l.cafile = Some(pki.dir.join("server.key"));
        let e = refused(&l);
        assert!(e.contains("CA file") && e.contains("server.key"), "{e}");

        // A key of another certificate.
        let other = KeyPair::generate().unwrap();
        std::fs::write(pki.dir.join("other.key"), other.serialize_pem()).unwrap();
        let mut l = pki.listener(false, false);
        l.keyfile = Some(pki.dir.join("other.key"));
        let e = refused(&l);
        assert!(e.contains("server.pem") && e.contains("other.key"), "{e}");

        std::fs::write(
            pki.dir.join("garbage.pem"),
            "-----BEGIN CERTIFICATE-----\n!!\n",
        )
        .unwrap();
        let mut l = pki.listener(false, false);
        l.certfile = Some(pki.dir.join("garbage.pem"));
        let e = refused(&l);
        assert!(e.contains("garbage.pem"), "{e}");

        assert!(acceptor(&pki.listener(true, true)).is_ok());
    }
}
