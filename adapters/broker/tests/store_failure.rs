//! A store that cannot write (disk full, IO error), with the real server:
//! what needs the store is not acknowledged, the failure shows in
//! `$SYS/broker/store/failing`, new persistent work from 5.0 clients is
//! refused with 0x97, nothing crashes, and once the store writes again
//! everything acknowledged before is there and the held acknowledgement
//! goes out. Every wait is bounded.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw_client::{ConnectSpec, RawClient};
use mqtt_broker::store::{MemoryStore, Store, StoreError};
use mqtt_broker::{Config, FileAuthenticator, Server};
use mqtt_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use mqtt_router::broker::{RestoredState, StoreRecord};

/// A memory store whose commits fail while `failing` is set.
struct FlakyStore {
    inner: Arc<Mutex<MemoryStore>>,
    failing: Arc<AtomicBool>,
}

impl Store for FlakyStore {
    fn load(&mut self) -> Result<RestoredState, StoreError> {
        self.inner.lock().unwrap().load()
    }

    fn commit(&mut self, records: &[StoreRecord]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Write {
                path: "flaky".into(),
                reason: "No space left on device".into(),
            });
        }
        self.inner.lock().unwrap().commit(records)
    }

    fn describe(&self) -> String {
        "flaky".into()
    }
}

fn v5(client_id: &'static str, clean: bool, expiry: u32) -> ConnectSpec {
    ConnectSpec {
        version: ProtocolVersion::V5,
        client_id,
        clean,
        expiry,
        will: None,
    }
}

fn puback(c: &mut RawClient, timeout: Duration) -> Option<ReasonCode> {
    loop {
        match c.recv(timeout) {
            Ok(Packet::PubAck(a)) => return Some(a.reason),
            Ok(_) => {}
            Err(()) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_holds_what_needs_it_refuses_new_work_and_loses_nothing() {
    let config =
        Config::from_toml("[[listener]]\nbind = \"127.0.0.1:0\"\n[sys]\ninterval = 1\n").unwrap();
    let policy = std::sync::Arc::new(FileAuthenticator::load(&config.auth).unwrap());
    let failing = Arc::new(AtomicBool::new(false));
    let memory = Arc::new(Mutex::new(MemoryStore::new()));
    let store = FlakyStore {
        inner: memory.clone(),
        failing: failing.clone(),
    };
    let server = Server::start_with_store(config, 7, policy, Some(Box::new(store)))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let failing2 = failing.clone();
    tokio::task::spawn_blocking(move || {
        let (mut s, _) = RawClient::connect(addr, &v5("sub", false, 3600)).unwrap();
        s.subscribe("d/#", QoS::AtLeastOnce).unwrap();
        s.disconnect();
        let (mut sys, _) = RawClient::connect(addr, &v5("watcher", true, 0)).unwrap();
        sys.subscribe("$SYS/broker/store/failing", QoS::AtMostOnce)
            .unwrap();
        let (mut p, _) = RawClient::connect(addr, &v5("pub", true, 0)).unwrap();
        p.publish("d/1", "before", QoS::AtLeastOnce, 1, false, false)
            .unwrap();
        assert_eq!(
            puback(&mut p, Duration::from_secs(5)),
            Some(ReasonCode::SUCCESS)
        );

        failing2.store(true, Ordering::SeqCst);
        p.publish("d/2", "held", QoS::AtLeastOnce, 2, false, false)
            .unwrap();
        assert_eq!(
            puback(&mut p, Duration::from_secs(1)),
            None,
            "acknowledged unstored"
        );
        // The core has heard of the failure: new persistent work is refused
        // (from another connection: this one's PUBACKs keep their order
        // [MQTT-4.6.0-2], behind the held one).
        let (mut p2, _) = RawClient::connect(addr, &v5("pub2", true, 0)).unwrap();
        p2.publish("d/3", "refused", QoS::AtLeastOnce, 3, false, false)
            .unwrap();
        assert_eq!(
            puback(&mut p2, Duration::from_secs(5)),
            Some(ReasonCode::QUOTA_EXCEEDED)
        );
        // A new persistent session is refused too.
        assert!(RawClient::connect(addr, &v5("late", false, 60)).is_err());
        let got = sys.drain(Duration::from_millis(1500), Duration::from_secs(3));
        assert!(got.iter().any(|v| v == "1"), "$SYS says {got:?}");

        failing2.store(false, Ordering::SeqCst);
        // The retried commit succeeds: the held PUBACK goes out.
        assert_eq!(
            puback(&mut p, Duration::from_secs(5)),
            Some(ReasonCode::SUCCESS)
        );
        let (mut s, present) = RawClient::connect(addr, &v5("sub", false, 3600)).unwrap();
        assert!(present);
        assert_eq!(
            s.drain(Duration::from_millis(500), Duration::from_secs(5)),
            ["before", "held"]
        );
    })
    .await
    .unwrap();
    assert_eq!(memory.lock().unwrap().image().session_count(), 1);
    server.stop().await;
}

/// A memory store whose commits panic while `panicking` is set, as a bug
/// inside the store would.
struct PanickingStore {
    inner: MemoryStore,
    panicking: Arc<AtomicBool>,
}

impl Store for PanickingStore {
    fn load(&mut self) -> Result<RestoredState, StoreError> {
        self.inner.load()
    }

    fn commit(&mut self, records: &[StoreRecord]) -> Result<(), StoreError> {
        assert!(
            !self.panicking.load(Ordering::SeqCst),
            "injected panic in the store"
        );
        self.inner.commit(records)
    }

    fn describe(&self) -> String {
        "panicking".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_panics_stops_the_broker_with_an_error_and_never_acknowledges_unstored() {
    let config = Config::from_toml("[[listener]]\nbind = \"127.0.0.1:0\"\n").unwrap();
    let policy = std::sync::Arc::new(FileAuthenticator::load(&config.auth).unwrap());
    let panicking = Arc::new(AtomicBool::new(false));
    let store = PanickingStore {
        inner: MemoryStore::new(),
        panicking: panicking.clone(),
    };
    let server = Server::start_with_store(config, 7, policy, Some(Box::new(store)))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let client = tokio::task::spawn_blocking(move || {
        let (mut s, _) = RawClient::connect(addr, &v5("sub", false, 3600)).unwrap();
        s.subscribe("d/#", QoS::AtLeastOnce).unwrap();
        s.disconnect();
        let (mut p, _) = RawClient::connect(addr, &v5("pub", true, 0)).unwrap();
        panicking.store(true, Ordering::SeqCst);
        p.publish("d/1", "lost", QoS::AtLeastOnce, 1, false, false)
            .unwrap();
        puback(&mut p, Duration::from_secs(3))
    });
    let ended = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the broker went on without its store");
    let e = ended.expect_err("the broker must report its store's death");
    assert!(e.to_string().contains("panicking"), "{e}");
    assert_eq!(
        client.await.unwrap(),
        None,
        "acknowledged what the store never stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_holds_only_what_needs_it_and_shutdown_still_ends() {
    let config = Config::from_toml("[[listener]]\nbind = \"127.0.0.1:0\"\n").unwrap();
    let policy = std::sync::Arc::new(FileAuthenticator::load(&config.auth).unwrap());
    let failing = Arc::new(AtomicBool::new(false));
    let store = FlakyStore {
        inner: Arc::new(Mutex::new(MemoryStore::new())),
        failing: failing.clone(),
    };
    let server = Server::start_with_store(config, 7, policy, Some(Box::new(store)))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let (mut s, _) = RawClient::connect(addr, &v5("sub", false, 3600)).unwrap();
        s.subscribe("d/#", QoS::AtLeastOnce).unwrap();
        s.disconnect();
        let (mut other, _) = RawClient::connect(addr, &v5("other", true, 0)).unwrap();
        // 3.1.1: its messages cannot be refused, so each turn makes records.
        let spec = ConnectSpec {
            version: ProtocolVersion::V311,
            ..v5("pub", true, 0)
        };
        let (mut p, _) = RawClient::connect(addr, &spec).unwrap();
        failing.store(true, Ordering::SeqCst);
        // Far more turns with records than the store may have in flight.
        for id in 1..=150 {
            p.publish("d/1", "held", QoS::AtLeastOnce, id, false, false)
                .unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
        other.send(&Packet::PingReq).unwrap();
        loop {
            match other.recv(Duration::from_secs(3)) {
                Ok(Packet::PingResp) => break,
                Ok(_) => {}
                Err(()) => panic!("no PINGRESP while the store fails"),
            }
        }
        assert_eq!(
            puback(&mut p, Duration::from_millis(300)),
            None,
            "acknowledged unstored"
        );
    })
    .await
    .unwrap();
    // The store still fails: shutdown gives up on it, with an error.
    server.shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("shutdown hung on a failing store");
    assert!(ended.is_err(), "unstored records at shutdown are an error");
}
