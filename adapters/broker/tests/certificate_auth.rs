//! Certificate identities as authentication, end to end with Mosquitto's
//! clients: on a listener with `use_identity_as_username`, the built-in
//! authenticator (`[auth]`) takes the certificate's Common Name as the user
//! without a password, ignoring the CONNECT's user name and password as
//! Mosquitto does, and the ACL's rules for that user apply. Anonymous
//! clients are refused (`allow_anonymous = false`), so a client without a
//! user name gets in only through its certificate.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pki::Pki;
use common::{require, run, Running};
use mqtt_broker::{Config, Server};

/// Mosquitto client arguments for the TLS listener on `port` with alice's
/// certificate, 5.0.
fn tls_args(pki: &Pki, port: u16) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-V",
        "mqttv5",
        "--cafile",
        &pki.file("ca.pem"),
        "--cert",
        &pki.file("alice.pem"),
        "--key",
        &pki.file("alice.key"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn publish(pki: &Pki, port: u16, topic: &str, extra: &[&str]) -> std::process::Output {
    let mut c = Command::new("mosquitto_pub");
    c.args(tls_args(pki, port))
        .args(["-t", topic, "-m", "hello", "-q", "1", "-i", "alice-pub"])
        .args(extra);
    run(&mut c, Duration::from_secs(10))
}

/// A subscriber to `topic` with alice's certificate, waiting up to 5 s for
/// one message; `-v` prints the topic with it.
fn subscriber(pki: &Pki, port: u16, topic: &str, id: &str) -> Running {
    Running::spawn(
        Command::new("mosquitto_sub")
            .args(tls_args(pki, port))
            .args(["-t", topic, "-q", "1", "-i", id, "-C", "1", "-W", "5", "-v"]),
    )
}

#[test]
fn a_certificate_is_the_user_and_its_acl_rules_apply_with_mosquitto_clients() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let pki = Pki::new("certificate-auth");
    let acl = pki.dir.join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite alice/#\n").unwrap();
    let config = format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\ncertfile = {:?}\nkeyfile = {:?}\n\
         cafile = {:?}\nrequire_certificate = true\nuse_identity_as_username = true\n\n\
         [auth]\nallow_anonymous = false\nacl_file = {:?}\n",
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem"),
        acl.display().to_string(),
    );
    let config = Config::from_toml(&config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(Server::start(config, 1)).unwrap();
    let port = server.local_addrs()[0].port();

    // alice/x: allowed. No user name: the certificate authenticates.
    let sub = subscriber(&pki, port, "alice/x", "alice-sub");
    std::thread::sleep(Duration::from_millis(500));
    let out = publish(&pki, port, "alice/x", &[]);
    assert!(out.status.success(), "{out:?}");
    let got = sub.output_within(Duration::from_secs(6));
    assert_eq!(got.trim(), "alice/x hello");

    // A user name and a wrong password in the CONNECT are ignored: the
    // certificate's user is the one checked.
    let out = publish(&pki, port, "alice/x", &["-u", "bob", "-P", "wrong"]);
    assert!(out.status.success(), "{out:?}");

    // bob/x: the subscription is refused (SUBACK 0x87, which mosquitto_sub
    // reports), and a publish there reaches no one.
    let denied = Running::spawn(
        Command::new("mosquitto_sub")
            .args(tls_args(&pki, port))
            .args(["-t", "bob/x", "-i", "alice-denied", "-W", "3"]),
    );
    let sub = subscriber(&pki, port, "#", "alice-all");
    std::thread::sleep(Duration::from_millis(500));
    // The publish itself gets PUBACK 0x87, which mosquitto_pub reports.
    let out = publish(&pki, port, "bob/x", &[]);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("Not authorized"), "{out:?}");
    let got = sub.output_within(Duration::from_secs(6));
    assert_eq!(got.trim(), "", "a message to bob/x was delivered: {got}");
    let (stdout, stderr) = denied.output_and_errors_within(Duration::from_secs(5));
    let said = format!("{stdout}{stderr}");
    assert!(said.contains("denied"), "mosquitto_sub said: {said:?}");

    rt.block_on(server.stop());
}
