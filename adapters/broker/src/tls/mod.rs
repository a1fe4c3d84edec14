//! TLS for the `"mqtts"` and `"wss"` listeners: rustls (on `ring`) set up
//! from the listener's PEM files (certificate, key, CA file, CRL file, least
//! protocol version), and the subject and user name of a verified client
//! certificate.

mod identity;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer,
};
use tokio_rustls::rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{Listener, TlsVersion};

pub(crate) use identity::UsernameFrom;

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
    /// The CRL file holds a revocation list rustls cannot use.
    #[error("the CRL file {path} cannot be used: {source}")]
    Crl {
        /// The CRL file.
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
    // `tls_version` is the least version: "tlsv1.2" allows 1.2 and 1.3.
    let versions: &[&rustls::SupportedProtocolVersion] = match listener.tls_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
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
            let verifier = match &listener.crlfile {
                None => verifier,
                // Like OpenSSL's CRL check under Mosquitto: the client's own
                // certificate is looked up; one whose issuer has no CRL in
                // the file is refused (its status is unknown).
                Some(crlfile) => verifier
                    .with_crls(revocation_lists(crlfile)?)
                    .only_check_end_entity_revocation(),
            };
            let verifier =
                verifier
                    .build()
                    .map_err(|source| match (&listener.crlfile, source) {
                        (Some(crlfile), source @ VerifierBuilderError::InvalidCrl(_)) => {
                            TlsError::Crl {
                                path: crlfile.clone(),
                                source,
                            }
                        }
                        (_, source) => TlsError::Verifier {
                            path: cafile.clone(),
                            source,
                        },
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

/// The certificate revocation lists of a PEM file.
fn revocation_lists(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    const WHAT: &str = "CRL file";
    let pem = read(path, WHAT)?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: WHAT,
            path: path.to_owned(),
            source,
        })?;
    if crls.is_empty() {
        return Err(TlsError::Empty {
            what: WHAT,
            path: path.to_owned(),
            item: "certificate revocation list",
        });
    }
    Ok(crls)
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

/// What a verified client certificate says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PeerCertificate {
    /// The subject, as an RFC 4514 style string, e.g.
    /// `"CN=sensor-1, O=Example"` (for logs and `PeerInfo`).
    pub(crate) subject: Option<String>,
    /// The user name the listener takes from it (`use_identity_as_username`,
    /// `use_subject_as_username`).
    pub(crate) username: Option<String>,
}

/// The client's certificate, which rustls has verified against the
/// listener's CA file (no certificate: nothing), with the user name `from`
/// asks for.
pub(crate) fn peer_certificate(
    conn: &rustls::ServerConnection,
    from: UsernameFrom,
) -> PeerCertificate {
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return PeerCertificate::default();
    };
    // rustls parsed this certificate while verifying it; a name x509-parser
    // cannot read still must not fail the connection here, so it is just
    // absent (a listener that needs a user name from it refuses the client).
    match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => PeerCertificate {
            subject: Some(cert.subject().to_string()),
            username: identity::username(&cert, from),
        },
        Err(_) => PeerCertificate::default(),
    }
}

#[cfg(test)]
mod tests;
