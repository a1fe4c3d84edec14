//! The durable broker as a process, at start: expiry keeps counting while
//! it is down, and a store it cannot use stops it with an error naming the
//! file (corrupt, truncated, unknown format version, read-only), never a
//! panic and never a silent empty start. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw_client::{ConnectSpec, RawClient};
use common::{broker_command, free_port, run, start_refused, BrokerProcess, TempDir};
use mqtt_codec::{ProtocolVersion, QoS};

fn v5(client_id: &'static str, expiry: u32, clean: bool) -> ConnectSpec {
    ConnectSpec {
        version: ProtocolVersion::V5,
        client_id,
        clean,
        expiry,
        will: None,
    }
}

#[test]
fn sessions_and_retained_messages_expire_while_the_broker_is_down() {
    let data = TempDir::new("expiry");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let broker = BrokerProcess::start_durable(port, &data.0, "");
    for (id, expiry) in [("short", 5), ("long", 3600)] {
        let (mut c, _) = RawClient::connect(addr, &v5(id, expiry, false)).unwrap();
        c.subscribe("t", QoS::AtLeastOnce).unwrap();
        c.disconnect();
    }
    let (mut p, _) = RawClient::connect(addr, &v5("p", 0, true)).unwrap();
    p.retain_expiring("r/short", "short", 5).unwrap();
    p.retain_expiring("r/long", "long", 3600).unwrap();
    p.disconnect();
    broker.kill9();
    // Down for longer than the 5 s expiries.
    std::thread::sleep(Duration::from_secs(6));
    let broker = BrokerProcess::start_durable(port, &data.0, "");
    let (c, present) = RawClient::connect(addr, &v5("short", 5, false)).unwrap();
    assert!(
        !present,
        "a session with a 5 s expiry outlived 6 s of downtime"
    );
    c.disconnect();
    let (c, present) = RawClient::connect(addr, &v5("long", 3600, false)).unwrap();
    assert!(present, "the long session is gone; log:\n{}", broker.log());
    c.disconnect();
    let (mut n, _) = RawClient::connect(addr, &v5("n", 0, true)).unwrap();
    n.subscribe("r/#", QoS::AtLeastOnce).unwrap();
    assert_eq!(
        n.drain(Duration::from_millis(500), Duration::from_secs(5)),
        ["long"]
    );
}

/// Starts the broker on `dir` and expects it to refuse, naming the store
/// file and saying `what`.
fn refuses_to_start(dir: &std::path::Path, what: &str) {
    let port = free_port().to_string();
    let data = dir.display().to_string();
    let (status, log) = start_refused(&["-p", &port, "--data-dir", &data]);
    assert!(
        !status.success(),
        "the broker started on a bad store; log:\n{log}"
    );
    assert!(
        log.contains("broker.redb"),
        "the error does not name the file:\n{log}"
    );
    assert!(
        log.contains(what),
        "the error does not say {what:?}:\n{log}"
    );
    assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
}

#[test]
fn a_corrupt_store_stops_the_broker_at_start() {
    let data = TempDir::new("corrupt");
    std::fs::write(data.0.join("broker.redb"), vec![0x5a; 64 * 1024]).unwrap();
    refuses_to_start(&data.0, "corrupt");
}

#[test]
fn an_empty_store_file_stops_the_broker_at_start() {
    let data = TempDir::new("empty");
    std::fs::write(data.0.join("broker.redb"), b"").unwrap();
    refuses_to_start(&data.0, "empty");
    assert_eq!(
        std::fs::metadata(data.0.join("broker.redb")).unwrap().len(),
        0,
        "the broker wrote to the empty file it refused"
    );
}

#[test]
fn a_truncated_store_stops_the_broker_at_start() {
    let data = TempDir::new("truncated");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let broker = BrokerProcess::start_durable(port, &data.0, "");
    let (mut p, _) = RawClient::connect(addr, &v5("p", 0, true)).unwrap();
    for i in 0..20 {
        p.retain_expiring(&format!("r/{i}"), &"x".repeat(2000), 3600)
            .unwrap();
    }
    p.disconnect();
    assert!(broker.terminate().success());
    let path = data.0.join("broker.redb");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    refuses_to_start(&data.0, "corrupt");
}

#[test]
fn a_store_of_an_unknown_format_version_stops_the_broker_at_start() {
    let data = TempDir::new("version");
    {
        let db = redb::Database::create(data.0.join("broker.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        tx.open_table(meta).unwrap().insert("format", 99).unwrap();
        tx.commit().unwrap();
    }
    refuses_to_start(&data.0, "format version 99");
}

#[test]
fn a_read_only_data_directory_stops_the_broker_at_start() {
    let data = TempDir::new("readonly");
    let mut perm = std::fs::metadata(&data.0).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&data.0, perm.clone()).unwrap();
    let port = free_port().to_string();
    let dir = data.0.display().to_string();
    let (status, log) = start_refused(&["-p", &port, "--data-dir", &dir]);
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&data.0, perm).unwrap();
    assert!(
        !status.success(),
        "the broker started on a read-only directory:\n{log}"
    );
    assert!(log.contains("read-only") && log.contains(&dir), "{log}");
}

#[test]
fn the_broker_says_at_start_that_it_runs_in_memory() {
    let port = free_port().to_string();
    // Stopped after a second; its log goes to standard error.
    let out = run(broker_command().args(["-p", &port]), Duration::from_secs(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("running in memory"), "{log}");
}

#[test]
fn a_data_directory_another_broker_uses_is_refused() {
    let data = TempDir::new("in-use");
    let _first = BrokerProcess::start_durable(free_port(), &data.0, "");
    refuses_to_start(&data.0, "another process");
}
