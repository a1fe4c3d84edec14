//! Client certificates as identities, end to end: Mosquitto's
//! `mosquitto_pub` with `--cafile --cert --key` against the in-process
//! server, whose authenticator records the `PeerInfo` the core hands it. Checks
//! that `use_identity_as_username` / `use_subject_as_username` put the
//! certificate's user name there, that `tls_version = "tlsv1.3"` refuses a
//! TLS 1.2 client, and that a certificate revoked in `crlfile` is refused.
//!
//! Certificates are made at test time with rcgen.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{require, run};
use mqtt_broker::auth::{AuthFuture, Authenticator};
use mqtt_broker::{Config, Server};
use mqtt_router::broker::{AuthAnswer, AuthRequest, AuthSuccess, PeerInfo, Rights};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};

/// Lets everyone in and keeps the `PeerInfo` of every CONNECT.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<PeerInfo>>>);

impl Authenticator for Recording {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture {
        self.0.lock().unwrap().push(request.peer().clone());
        let success = AuthSuccess::new(request.username().cloned(), Rights::allow_all());
        Box::pin(async move { AuthAnswer::Success(success) })
    }
}

/// A CA, a server certificate for 127.0.0.1, client certificates for alice
/// (C=GB, O=Example, CN=alice; serial 1) and mallory (serial 66, revoked in
/// `crl.pem`), as PEM files in a fresh folder removed on drop.
struct Pki(PathBuf);

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("mqtt-cert-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: String| std::fs::write(dir.join(file), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "identity test CA");
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        write("server.pem", server.signed_by(&key, &issuer).unwrap().pem());
        write("server.key", key.serialize_pem());

        for (name, serial, subject) in [
            (
                "alice",
                1,
                &[
                    (DnType::CountryName, "GB"),
                    (DnType::OrganizationName, "Example"),
                    (DnType::CommonName, "alice"),
                ][..],
            ),
            ("mallory", 66, &[(DnType::CommonName, "mallory")][..]),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = DistinguishedName::new();
            for (t, v) in subject {
                p.distinguished_name.push(t.clone(), *v);
            }
            p.serial_number = Some(SerialNumber::from(serial));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            write(
                &format!("{name}.pem"),
                p.signed_by(&key, &issuer).unwrap().pem(),
            );
            write(&format!("{name}.key"), key.serialize_pem());
        }
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(66),
                revocation_time: date_time_ymd(2024, 6, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        write("crl.pem", crl.pem().unwrap());
        Pki(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

/// `mosquitto_pub` over TLS to `port` publishing one QoS 1 message, with the
/// client certificate `cert` (if any) and any extra arguments.
fn publish(pki: &Pki, port: u16, cert: Option<&str>, extra: &[&str]) -> Output {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5"])
        .args(["--cafile", &pki.file("ca.pem")])
        .args([
            "-t",
            "id/test",
            "-m",
            "hello",
            "-q",
            "1",
            "-i",
            "identity-test",
        ])
        .args(extra);
    if let Some(cert) = cert {
        c.args(["--cert", &pki.file(&format!("{cert}.pem"))])
            .args(["--key", &pki.file(&format!("{cert}.key"))]);
    }
    run(&mut c, Duration::from_secs(10))
}

#[test]
fn certificate_identities_versions_and_revocation_with_mosquitto_clients() {
    if !require("mosquitto_pub") {
        return;
    }
    let pki = Pki::new();
    let tls = format!(
        "protocol = \"mqtts\"\ncertfile = \"{}\"\nkeyfile = \"{}\"\n",
        pki.file("server.pem"),
        pki.file("server.key")
    );
    let verified = format!(
        "{tls}cafile = \"{}\"\nrequire_certificate = true\n",
        pki.file("ca.pem")
    );
    let config = format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n{verified}use_identity_as_username = true\ncrlfile = \"{}\"\n\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\n{verified}use_subject_as_username = true\n\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\n{tls}tls_version = \"tlsv1.3\"\n",
        pki.file("crl.pem")
    );
    let config = Config::from_toml(&config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let policy = Recording::default();
    let seen = policy.0.clone();
    let server = rt
        .block_on(Server::start_with_authenticator(
            config,
            1,
            Arc::new(policy),
        ))
        .unwrap();
    let ports: Vec<u16> = server.local_addrs().iter().map(|a| a.port()).collect();
    let (identity, subject, tls13) = (ports[0], ports[1], ports[2]);
    let usernames = || -> Vec<Option<String>> {
        seen.lock()
            .unwrap()
            .drain(..)
            .map(|p| p.certificate_username)
            .collect()
    };

    let out = publish(&pki, identity, Some("alice"), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(usernames(), [Some("alice".to_string())]);

    let out = publish(&pki, subject, Some("alice"), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(usernames(), [Some("CN=alice,O=Example,C=GB".to_string())]);

    // mallory's certificate is revoked in the identity listener's CRL: the
    // handshake fails and the core never hears of the connection.
    let out = publish(&pki, identity, Some("mallory"), &[]);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(usernames(), Vec::<Option<String>>::new());
    // Without a CRL (the subject listener) it is a valid certificate.
    let out = publish(&pki, subject, Some("mallory"), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(usernames(), [Some("CN=mallory".to_string())]);

    // A listener without client certificates gives no user name.
    let out = publish(&pki, tls13, None, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(usernames(), [None]);

    // TLS 1.3 only: a client held to TLS 1.2 is refused. (mosquitto_pub's
    // --tls-version is a minimum, so OpenSSL's own client pins the version.)
    if require("openssl") {
        let handshake = |version: &str| {
            run(
                Command::new("openssl")
                    .args(["s_client", "-connect", &format!("127.0.0.1:{tls13}")])
                    .args([version, "-CAfile", &pki.file("ca.pem")])
                    .stdin(std::process::Stdio::null()),
                Duration::from_secs(10),
            )
        };
        let out = handshake("-tls1_2");
        assert!(!out.status.success(), "{out:?}");
        let out = handshake("-tls1_3");
        assert!(out.status.success(), "{out:?}");
    }

    rt.block_on(server.stop());
}
