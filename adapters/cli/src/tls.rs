//! `--cafile`, `--capath`, `--cert`, `--key` and `--insecure` as a rustls
//! client configuration.

use std::path::Path;
use std::sync::Arc;

use mqtt_tokio::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::args::TlsArgs;
use crate::failure::Failure;

/// Whether the TLS flags ask for TLS on their own (a CA to trust).
pub(crate) fn requested(args: &TlsArgs) -> bool {
    args.cafile.is_some() || args.capath.is_some()
}

/// Whether any TLS flag changes the default configuration (Mozilla's
/// roots, no client certificate, the host name checked).
pub(crate) fn customized(args: &TlsArgs) -> bool {
    requested(args) || args.cert.is_some() || args.insecure
}

/// The rustls configuration the flags describe: the CAs of `--cafile` and
/// `--capath` (Mozilla's roots without them), the client certificate of
/// `--cert`/`--key`, and with `--insecure` no host name check.
pub(crate) fn client_config(args: &TlsArgs) -> Result<Arc<rustls::ClientConfig>, Failure> {
    let roots = Arc::new(roots(args)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::runtime(format!("Error: Problem setting TLS options: {e}")))?;
    let builder = if args.insecure {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Failure::runtime(format!("Error: Problem setting TLS options: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
    } else {
        builder.with_root_certificates(roots)
    };
    let config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|e| Failure::runtime(format!("Error: Problem setting TLS options: {e}")))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(args: &TlsArgs) -> Result<RootCertStore, Failure> {
    let mut files = Vec::new();
    if let Some(file) = &args.cafile {
        files.push(file.clone());
    }
    if let Some(dir) = &args.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, &e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "crt" || x == "pem") {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    }
    let mut store = RootCertStore::empty();
    for file in &files {
        for cert in certificates(file)? {
            store.add(cert).map_err(|e| {
                Failure::runtime(format!(
                    "Error: Problem setting TLS options: {}: {e}",
                    file.display()
                ))
            })?;
        }
    }
    Ok(store)
}

/// The certificates of a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let pem = std::fs::read(path).map_err(|e| file_error(path, &e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(pem_error(path, &"no certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Failure> {
    let pem = std::fs::read(path).map_err(|e| file_error(path, &e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_error(path, &e))
}

fn file_error(path: &Path, e: &std::io::Error) -> Failure {
    Failure::runtime(format!(
        "Error: Problem setting TLS options: {}: {e}",
        path.display()
    ))
}

fn pem_error(path: &Path, e: &dyn std::fmt::Display) -> Failure {
    Failure::runtime(format!(
        "Error: Problem setting TLS options: {} is not usable PEM: {e}",
        path.display()
    ))
}

/// `--insecure`: the server's certificate chain is verified as usual, but
/// the names in it need not include the host.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
