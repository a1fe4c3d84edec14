//! `-L` URLs and the TLS flags: mqtts:// with `--cafile`, ws:// and wss://
//! against our broker's listeners.

mod common;

use common::{mqtt, run, wait_subscribed, Running};
use mqtt_testkit::{unique, OurBroker, TestCerts};

/// Our broker with TCP, TLS, WebSocket and WebSocket-over-TLS listeners
/// (in that order), and the folder holding the test certificates.
fn broker_with_every_transport() -> (OurBroker, std::path::PathBuf) {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-cli-certs"));
    certs.write_to(&dir).unwrap();
    let tls = format!(
        "certfile = \"{}\"\nkeyfile = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    );
    let config = format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\n{tls}\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"ws\"\n\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"wss\"\n{tls}"
    );
    (OurBroker::start_with(&config), dir)
}

/// `mqtt sub` over `sub_url` receives what `mqtt pub` sends over `pub_url`.
fn round_trip(broker: &OurBroker, sub_args: &[&str], pub_args: &[&str]) {
    let topic = unique("transport");
    let probe = unique("probe");
    let mut sub = mqtt();
    sub.arg("sub")
        .args(sub_args)
        .args(["-t", &topic, "-t", &probe, "-T", &probe, "-C", "1", "-v"]);
    let sub = Running::start(sub, b"");
    wait_subscribed(broker.addr(), &[&probe]);
    let mut publish = mqtt();
    publish
        .arg("pub")
        .args(pub_args)
        .args(["-t", &topic, "-m", "across", "-q", "1"]);
    let sent = run(publish, b"");
    assert_eq!(sent.code(), Some(0), "pub {pub_args:?}: {}", sent.stderr);
    let got = sub.finish();
    assert_eq!(
        got.out(),
        format!("{topic} across\n"),
        "sub {sub_args:?}: {}",
        got.stderr
    );
}

#[test]
fn tls_websocket_and_websocket_over_tls_urls_carry_messages() {
    let (broker, dir) = broker_with_every_transport();
    let [tcp, tls, ws, wss] = [0, 1, 2, 3].map(|i| broker.addrs()[i].port());
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let tls_port = tls.to_string();
    let tcp_url = format!("mqtt://127.0.0.1:{tcp}");
    let ws_url = format!("ws://127.0.0.1:{ws}/mqtt");
    let wss_url = format!("wss://localhost:{wss}/mqtt");
    // -h/-p with --cafile turn TLS on, as in mosquitto_pub.
    let over_tls = ["-h", "localhost", "-p", &tls_port, "--cafile", ca];
    round_trip(&broker, &["-L", &ws_url], &over_tls);
    round_trip(
        &broker,
        &["-L", &wss_url, "--cafile", ca],
        &["-L", &tcp_url],
    );
    let tls_url = format!("mqtts://localhost:{tls}");
    round_trip(&broker, &["-L", &tls_url, "--cafile", ca], &["-L", &ws_url]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_untrusted_certificate_fails_the_connection_with_status_one() {
    let (broker, dir) = broker_with_every_transport();
    let url = format!("mqtts://localhost:{}", broker.addrs()[1].port());
    // Mozilla's roots do not know the test CA.
    let mut cmd = mqtt();
    cmd.args(["pub", "-L", &url, "-t", "a", "-m", "x"]);
    let done = run(cmd, b"");
    assert_eq!(done.code(), Some(1));
    assert!(done.stderr.starts_with("Error: "), "{}", done.stderr);
    // A CA file that is not there is named.
    let mut cmd = mqtt();
    cmd.args([
        "pub",
        "-L",
        &url,
        "--cafile",
        "/nonexistent/ca.pem",
        "-t",
        "a",
        "-m",
        "x",
    ]);
    let done = run(cmd, b"");
    assert_eq!(done.code(), Some(1));
    assert!(
        done.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        done.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_url_topic_and_credentials_are_used() {
    let broker = OurBroker::start();
    let topic = unique("url");
    let probe = unique("probe");
    let port = broker.addr().port();
    let mut sub = mqtt();
    sub.args([
        "sub",
        "-L",
        &format!("mqtt://someone@127.0.0.1:{port}/{topic}"),
    ])
    .args(["-t", &probe, "-T", &probe, "-C", "1", "-F", "%t=%p"]);
    let sub = Running::start(sub, b"");
    wait_subscribed(broker.addr(), &[&probe]);
    let mut publish = mqtt();
    publish.args([
        "pub",
        "-L",
        &format!("mqtt://user:secret@127.0.0.1:{port}/{topic}"),
        "-m",
        "by url",
    ]);
    assert_eq!(run(publish, b"").code(), Some(0));
    assert_eq!(sub.finish().out(), format!("{topic}=by url\n"));
}

#[test]
fn insecure_skips_only_the_host_name_check() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-cli-insecure"));
    certs.write_to(&dir).unwrap();
    // 127.0.0.2 is loopback too, but the certificate does not name it.
    let broker = OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.2:0\"\nprotocol = \"mqtts\"\ncertfile = \"{}\"\nkeyfile = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    ));
    let port = broker.addrs()[1].port().to_string();
    let ca = dir.join("ca.pem");
    let publish = |extra: &[&str]| {
        let mut cmd = mqtt();
        cmd.args(["pub", "-h", "127.0.0.2", "-p", &port, "--cafile"])
            .arg(&ca)
            .args(["-t", "a", "-m", "x"])
            .args(extra);
        run(cmd, b"")
    };
    let refused = publish(&[]);
    assert_eq!(refused.code(), Some(1), "the name is checked");
    assert!(refused.stderr.contains("Error"), "{}", refused.stderr);
    let accepted = publish(&["--insecure"]);
    assert_eq!(accepted.code(), Some(0), "{}", accepted.stderr);
    let _ = std::fs::remove_dir_all(dir);
}
