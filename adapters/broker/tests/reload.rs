//! SIGHUP on the broker binary: new TLS files for new connections while
//! connected clients stay, a reload that fails keeps the old settings, and
//! the log level follows the configuration.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{free_port, require, run, BrokerProcess, Running};

fn hangup(broker: &BrokerProcess) {
    let status = Command::new("kill")
        .args(["-HUP", &broker.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (bounded) until the broker's log holds `text`.
fn wait_log(broker: &BrokerProcess, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = broker.log();
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// mosquitto_pub over TLS to `port`, trusting `ca`: whether it got through.
fn publish_trusting(ca: &str, port: u16) -> bool {
    let out = run(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile", ca])
            .args(["-t", "reload/t", "-q", "1", "-m", "hello"]),
        Duration::from_secs(10),
    );
    out.status.success()
}

fn copy_server_files(from: &Pki, to: &Pki) {
    for f in ["server.pem", "server.key"] {
        std::fs::copy(from.file(f), to.file(f)).unwrap();
    }
}

#[test]
fn sighup_serves_new_certificates_to_new_connections_and_keeps_connected_clients() {
    if !require("mosquitto_pub") {
        return;
    }
    // The broker reads its files from `live`; `old` and `new` are two CAs.
    let (live, old, new) = (Pki::new("live"), Pki::new("old"), Pki::new("new"));
    copy_server_files(&old, &live);
    let tls = free_port();
    let broker = BrokerProcess::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:{tls}\"\nprotocol = \"mqtts\"\n\
         certfile = \"{}\"\nkeyfile = \"{}\"\n",
        live.file("server.pem"),
        live.file("server.key")
    ));
    assert!(publish_trusting(&old.file("ca.pem"), tls));
    // A subscriber connected before the reload, over the old certificate.
    let sub = Running::spawn(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &tls.to_string()])
            .args(["--cafile", &old.file("ca.pem")])
            .args(["-t", "reload/t", "-q", "1", "-C", "1", "-W", "15"]),
    );
    std::thread::sleep(Duration::from_millis(500));

    copy_server_files(&new, &live);
    hangup(&broker);
    // (The harness logs at warn: the reload's info line is not there to
    // wait for; the new certificate is.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !publish_trusting(&new.file("ca.pem"), tls) {
        assert!(
            Instant::now() < deadline,
            "the new certificate is never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !publish_trusting(&old.file("ca.pem"), tls),
        "new connections get the new certificate"
    );
    // The subscriber from before the reload is still connected: it got the
    // message published over the new certificate.
    assert_eq!(sub.output_within(Duration::from_secs(10)).trim(), "hello");

    // A reload whose files cannot be used changes nothing.
    std::fs::write(live.file("server.key"), "not a key").unwrap();
    hangup(&broker);
    let log = wait_log(&broker, "reload failed");
    assert!(log.contains("server.key"), "the file is named: {log}");
    assert!(publish_trusting(&new.file("ca.pem"), tls));
}

#[test]
fn sighup_applies_a_new_log_level() {
    // Started by hand: the harness sets RUST_LOG, which would win over
    // the configuration's level.
    let port = free_port();
    let dir = common::TempDir::new("loglevel");
    let conf = dir.0.join("broker.toml");
    let write = |level: &str| {
        std::fs::write(
            &conf,
            format!("[[listener]]\nbind = \"127.0.0.1:{port}\"\n[log]\nlevel = \"{level}\"\n"),
        )
        .unwrap()
    };
    write("warn");
    let log_path = dir.0.join("stderr.log");
    let child = Running(
        common::broker_command()
            .arg("-c")
            .arg(&conf)
            .env_remove("RUST_LOG")
            .stderr(std::fs::File::create(&log_path).unwrap())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!log().contains("INFO"), "at warn, no info lines: {}", log());
    // "configuration reloaded" is an info line: it shows only if the
    // reload lowered the level first.
    write("info");
    Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}
