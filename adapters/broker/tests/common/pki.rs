//! Test certificates made with rcgen: a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate it signed, a self-signed
//! rogue one.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files in a fresh folder, removed on drop: `ca.pem`; `server.pem` +
/// `server.key` (for 127.0.0.1 and localhost); `client.pem` + `client.key`
/// (CN=sensor-1, signed by the CA); `alice.pem` + `alice.key` (CN=alice,
/// signed by the CA); `rogue.pem` + `rogue.key` (self-signed).
pub struct Pki {
    /// The folder holding the files.
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "mqtt-broker-transports-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: String| std::fs::write(dir.join(file), text).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "mqtt-broker test CA");
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        write("server.pem", server.signed_by(&key, &issuer).unwrap().pem());
        write("server.key", key.serialize_pem());

        let client = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            p
        };
        let key = KeyPair::generate().unwrap();
        write(
            "client.pem",
            client("sensor-1").signed_by(&key, &issuer).unwrap().pem(),
        );
        write("client.key", key.serialize_pem());
        let key = KeyPair::generate().unwrap();
        write(
            "alice.pem",
            client("alice").signed_by(&key, &issuer).unwrap().pem(),
        );
        write("alice.key", key.serialize_pem());
        let key = KeyPair::generate().unwrap();
        write(
            "rogue.pem",
            client("rogue").self_signed(&key).unwrap().pem(),
        );
        write("rogue.key", key.serialize_pem());
        Pki { dir }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
