//! TLS sessions over in-memory pipes: client certificates, their
//! identities, protocol versions and revocation.

use super::*;
use crate::config::{Protocol, TlsVersion};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// A CA, a server certificate for 127.0.0.1 and a client certificate
/// (CN=sensor-1, O=Example, serial 1), as PEM files in a fresh folder; the
/// CA stays at hand to sign more client certificates and CRLs.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    client: Client,
}

/// A client's certificate chain and key.
struct Client {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
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
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        let client = make_client(
            &dir,
            &issuer,
            &[
                (DnType::CommonName, "sensor-1"),
                (DnType::OrganizationName, "Example"),
            ],
            1,
        );
        Pki {
            dir,
            ca: ca_cert.der().clone(),
            issuer,
            client,
        }
    }

    /// A client certificate signed by the CA; see [`make_client`].
    fn client_cert(&self, subject: &[(DnType, &str)], serial: u64) -> Client {
        make_client(&self.dir, &self.issuer, subject, serial)
    }

    /// `crl.pem`: the CA's revocation list naming these serial numbers.
    fn crl(&self, revoked: &[u64]) -> PathBuf {
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&n| RevokedCertParams {
                    serial_number: SerialNumber::from(n),
                    revocation_time: date_time_ymd(2024, 6, 1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap();
        let path = self.dir.join("crl.pem");
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
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

    /// A client trusting the CA, showing `client` (if any), speaking only
    /// `versions`.
    fn connector(
        &self,
        client: Option<&Client>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some(c) => builder
                .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        TlsConnector::from(Arc::new(config))
    }
}

/// A client certificate signed by `issuer` with the subject's attributes
/// in this order, also written as `client-<serial>.pem` in `dir`.
fn make_client(
    dir: &Path,
    issuer: &Issuer<'static, KeyPair>,
    subject: &[(DnType, &str)],
    serial: u64,
) -> Client {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from(serial));
    // Not rcgen's default subject (CN=rcgen self signed cert), whose CN
    // would keep its first place.
    params.distinguished_name = DistinguishedName::new();
    for (t, v) in subject {
        params.distinguished_name.push(t.clone(), *v);
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("client-{serial}.pem")), cert.pem()).unwrap();
    Client {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// One TLS session over an in-memory pipe: what the server saw of the
/// client's certificate, or the server's handshake error. The client sends
/// a byte after its handshake so that a refusal of its certificate (TLS
/// 1.3 checks it after the client is done) reaches the server.
async fn session_with(
    pki: &Pki,
    listener: &Listener,
    client: Option<&Client>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<PeerCertificate, String> {
    let acceptor = acceptor(listener).unwrap();
    let connector = pki.connector(client, versions);
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
            let cert = peer_certificate(s.get_ref().1, listener.username_from_certificate());
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            s.write_all(b"y").await.unwrap();
            Ok(cert)
        }
        Err(e) => Err(e.to_string()),
    };
    client.abort();
    result
}

/// [`session_with`] the default client certificate (or none), any version.
async fn session(
    pki: &Pki,
    listener: &Listener,
    client_cert: bool,
) -> Result<Option<String>, String> {
    let client = client_cert.then_some(&pki.client);
    Ok(session_with(pki, listener, client, BOTH).await?.subject)
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

#[tokio::test]
async fn the_user_name_is_the_common_name_or_the_rfc_2253_subject() {
    let pki = Pki::new("identity");
    // Attributes in the usual DER order (country first); RFC 2253 writes
    // the last one first.
    let alice = pki.client_cert(
        &[
            (DnType::CountryName, "GB"),
            (DnType::OrganizationName, "Example"),
            (DnType::CommonName, "alice"),
        ],
        7,
    );
    let mut l = pki.listener(true, true);
    let plain = session_with(&pki, &l, Some(&alice), BOTH).await.unwrap();
    assert_eq!(plain.username, None);
    l.use_identity_as_username = true;
    let by_cn = session_with(&pki, &l, Some(&alice), BOTH).await.unwrap();
    assert_eq!(by_cn.username.as_deref(), Some("alice"));
    // The identity wins over the subject when both are set (as in Mosquitto).
    l.use_subject_as_username = true;
    let both = session_with(&pki, &l, Some(&alice), BOTH).await.unwrap();
    assert_eq!(both.username.as_deref(), Some("alice"));
    l.use_identity_as_username = false;
    let by_subject = session_with(&pki, &l, Some(&alice), BOTH).await.unwrap();
    assert_eq!(
        by_subject.username.as_deref(),
        Some("CN=alice,O=Example,C=GB")
    );
    // No Common Name: no identity to give.
    let nameless = pki.client_cert(&[(DnType::OrganizationName, "Example")], 8);
    l.use_identity_as_username = true;
    let none = session_with(&pki, &l, Some(&nameless), BOTH).await.unwrap();
    assert_eq!(none.username, None);
}

#[tokio::test]
async fn a_tlsv1_3_listener_refuses_a_tls_1_2_client() {
    let pki = Pki::new("versions");
    let mut l = pki.listener(false, false);
    let tls12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    assert!(session_with(&pki, &l, None, tls12).await.is_ok());
    l.tls_version = TlsVersion::Tls13;
    let e = session_with(&pki, &l, None, tls12).await.unwrap_err();
    assert!(e.contains("Tls12NotOfferedOrEnabled"), "{e}");
    assert!(session_with(&pki, &l, None, BOTH).await.is_ok());
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_with_a_crl() {
    let pki = Pki::new("crl");
    let revoked = pki.client_cert(&[(DnType::CommonName, "revoked")], 66);
    let mut l = pki.listener(true, true);
    // Without the CRL, both certificates verify.
    assert!(session_with(&pki, &l, Some(&revoked), BOTH).await.is_ok());
    l.crlfile = Some(pki.crl(&[66]));
    let e = session_with(&pki, &l, Some(&revoked), BOTH)
        .await
        .unwrap_err();
    assert!(e.to_lowercase().contains("revoked"), "{e}");
    let fine = session_with(&pki, &l, Some(&pki.client), BOTH)
        .await
        .unwrap();
    assert_eq!(fine.subject.as_deref(), Some("CN=sensor-1, O=Example"));
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

    let mut l = pki.listener(true, true);
    l.crlfile = Some(pki.dir.join("server.pem"));
    let e = refused(&l);
    assert!(
        e.contains("CRL file") && e.contains("holds no certificate revocation list"),
        "{e}"
    );
}
