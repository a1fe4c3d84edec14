//! The reference broker run in this process on its own thread and runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;

use mqtt_broker::{Config, Server};
use tokio::sync::oneshot;

/// The reference broker (`mqtt-broker`) serving on a free loopback port from
/// its own thread with its own tokio runtime; stopped when dropped.
#[derive(Debug)]
pub struct OurBroker {
    addrs: Vec<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// A folder of files the broker reads, removed when it stops.
    dir: Option<PathBuf>,
}

impl OurBroker {
    /// Starts the broker with its default limits on `127.0.0.1:0`.
    pub fn start() -> OurBroker {
        OurBroker::start_with("")
    }

    /// Starts the broker with `extra_toml` (e.g. a `[limits]` table, or more
    /// `[[listener]]`s, which may bind port 0 too) after the loopback
    /// listener on a free port.
    ///
    /// Panics when the configuration is refused or the listener cannot be
    /// bound: a test cannot go on then.
    pub fn start_with(extra_toml: &str) -> OurBroker {
        let text = format!("[[listener]]\nbind = \"127.0.0.1:0\"\n\n{extra_toml}");
        let config = Config::from_toml(&text).expect("a valid broker configuration");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mqtt-testkit-broker".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let server = match Server::start(config, 7).await {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = addr_tx.send(Ok(server.local_addrs().to_vec()));
                    // A dropped sender (the test panicked) stops it as well.
                    let _ = stop_rx.await;
                    server.stop().await;
                });
            })
            .expect("a thread for the broker");
        let addrs = addr_rx
            .recv()
            .expect("the broker thread reports its address")
            .expect("the broker binds a loopback port");
        OurBroker {
            addrs,
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: None,
        }
    }

    /// Starts the broker with `acl` (Mosquitto's ACL file format: `topic
    /// read open/#`, ...) as its ACL file; anonymous clients may connect.
    /// The file lives in a temporary folder removed when the broker stops.
    pub fn start_with_acl(acl: &str) -> OurBroker {
        let dir = std::env::temp_dir().join(crate::unique("mqtt-testkit-acl"));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let file = dir.join("acl");
        std::fs::write(&file, acl).expect("the ACL file written");
        let mut broker = OurBroker::start_with(&format!("[auth]\nacl_file = {:?}\n", file));
        broker.dir = Some(dir);
        broker
    }

    /// Where its first listener (MQTT over TCP) listens.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Where each listener listens, in the configuration's order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `mqtt://127.0.0.1:<port>`, the address form the client adapters take.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr())
    }
}

impl Drop for OurBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
