//! Test helpers shared by the client adapters' integration tests.
//!
//! - [`Mosquitto`]: a real Eclipse Mosquitto on a free loopback port, killed
//!   when dropped. Missing Mosquitto skips the test, except under `CI=true`,
//!   where it fails it.
//! - [`OurBroker`]: the reference broker (`mqtt-broker`) in this process, on
//!   its own thread and tokio runtime, so tests of any runtime (or none) can
//!   use it.
//! - [`Relay`]: a TCP relay on loopback between a client and a broker that a
//!   test can cut, stall or make refuse connections, to simulate outages.
//! - [`TestCerts`]: a throw-away CA and server certificate for TLS tests.
//! - [`fake_broker`]: a broker that answers CONNECT with the bytes a test
//!   gives, to see how a client copes with a misbehaving peer.
//! - [`AnyBroker`] and [`brokers`]: our broker and Mosquitto, for tests that
//!   run against each.
//! - [`scram_broker`]: a one-connection server speaking SCRAM-SHA-256
//!   enhanced authentication, for the clients' `.scram()` option;
//! - [`toy_auth_broker`]: a one-connection server speaking a toy enhanced
//!   authentication method, for the clients' `.enhanced_auth()` option.
//!
//! Everything is bounded in time and cleans up after itself on drop.

mod broker;
mod mosquitto;
mod pki;
mod ports;
mod relay;
mod scram;
mod toy_auth;

pub use crate::broker::OurBroker;
pub use crate::mosquitto::{Mosquitto, MOSQUITTO};
pub use crate::pki::TestCerts;
pub use crate::relay::Relay;
pub use crate::scram::scram_broker;
pub use crate::toy_auth::{toy_auth_broker, ToyOutcome, TOY_CHALLENGES, TOY_METHOD};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A broker under test, kept running while it lives.
#[derive(Debug)]
pub enum AnyBroker {
    /// The reference broker, in this process.
    Ours(OurBroker),
    /// A real Mosquitto.
    Mosquitto(Mosquitto),
}

impl AnyBroker {
    /// Where it listens (MQTT over TCP).
    pub fn addr(&self) -> SocketAddr {
        match self {
            AnyBroker::Ours(b) => b.addr(),
            AnyBroker::Mosquitto(m) => m.addr(),
        }
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr())
    }

    /// Which broker it is, for assertion messages.
    pub fn name(&self) -> &'static str {
        match self {
            AnyBroker::Ours(_) => "mqtt-broker",
            AnyBroker::Mosquitto(_) => "mosquitto",
        }
    }
}

/// Our broker, and Mosquitto where installed (required under `CI=true`).
pub fn brokers() -> Vec<AnyBroker> {
    let mut all = vec![AnyBroker::Ours(OurBroker::start())];
    if let Some(m) = Mosquitto::start() {
        all.push(AnyBroker::Mosquitto(m));
    }
    all
}

/// A fake broker on a free loopback port: it reads the first connection's
/// CONNECT, answers with `reply`, then keeps the socket open until 3 seconds
/// pass without data. Returns its `mqtt://` address and its thread.
pub fn fake_broker(reply: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("mqtt://{}", listener.local_addr().expect("its address"));
    let handle = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        let _ = s.write_all(reply);
        let _ = s.read(&mut buf);
    });
    (url, handle)
}

pub use ports::free_port;

/// Whether `CI=true`: then a missing real peer fails a test instead of
/// skipping it, because CI installs every peer.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Waits until `addr` accepts TCP connections, up to `timeout`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns
/// whether it held. For tests waiting on another thread's progress.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A unique name for topics and client identifiers, so concurrent tests
/// against one broker do not see each other's messages.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
