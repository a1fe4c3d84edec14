//! A TCP relay on loopback that a test can cut to simulate an outage.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Forwards every connection made to [`Relay::addr`] to an upstream address,
/// byte for byte, on plain threads (usable from any runtime or none).
///
/// [`Relay::cut`] closes every current connection at once, as a network
/// outage does; the relay keeps accepting new ones unless told to refuse
/// them ([`Relay::refuse`]). [`Relay::stall`] swallows bytes in both
/// directions, so what the client sends is lost in transit (a publish stays
/// unacknowledged) until the connection is cut. Stopped on drop.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stopped: AtomicBool,
    refusing: AtomicBool,
    stalled: AtomicBool,
    accepted: AtomicU64,
    /// Live connections: the client side and the upstream side.
    connections: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
}

impl Shared {
    fn close(&self, id: u64) {
        let pair = self.connections.lock().expect("relay lock").remove(&id);
        if let Some((client, upstream)) = pair {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    fn cut(&self) -> usize {
        let pairs: Vec<_> = self
            .connections
            .lock()
            .expect("relay lock")
            .drain()
            .collect();
        for (_, (client, upstream)) in &pairs {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        pairs.len()
    }
}

impl Relay {
    /// Starts relaying from a free loopback port to `upstream`.
    pub fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("mqtt-testkit-relay".into())
                .spawn(move || accept_loop(listener, upstream, shared))
                .expect("a thread for the relay")
        };
        Relay {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:<port>`, the address form the client adapters take.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Closes every current connection (both sides); returns how many there
    /// were. New connections are still relayed unless [`Relay::refuse`] is on.
    pub fn cut(&self) -> usize {
        self.shared.cut()
    }

    /// While on, new connections are closed as soon as they are accepted,
    /// as if the broker could not be reached.
    pub fn refuse(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    /// While on, bytes read in either direction are dropped instead of
    /// forwarded. Packets may be cut in half by that, so a test cuts the
    /// connection after stalling it.
    pub fn stall(&self, on: bool) {
        self.shared.stalled.store(on, Ordering::SeqCst);
    }

    /// How many connections were relayed (not refused) so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many relayed connections are open now.
    pub fn open(&self) -> usize {
        self.shared.connections.lock().expect("relay lock").len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.shared.cut();
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.refusing.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let clones = (|| {
            Some((
                client.try_clone().ok()?,
                server.try_clone().ok()?,
                server.try_clone().ok()?,
                client.try_clone().ok()?,
            ))
        })();
        let Some((client_r, server_w, server_r, client_w)) = clones else {
            continue;
        };
        let id = next_id;
        next_id += 1;
        shared
            .connections
            .lock()
            .expect("relay lock")
            .insert(id, (client, server));
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        for (from, to) in [(client_r, server_w), (server_r, client_w)] {
            let for_pump = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("mqtt-testkit-relay-pump".into())
                .spawn(move || relay_bytes(from, to, id, &for_pump));
            if spawned.is_err() {
                shared.close(id);
            }
        }
    }
}

/// Copies `from` to `to` until either side closes, then closes both.
fn relay_bytes(mut from: TcpStream, mut to: TcpStream, id: u64, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if shared.stalled.load(Ordering::SeqCst) {
                    continue;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    shared.close(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            // Two connections at most: one per test phase.
            for stream in listener.incoming().take(2) {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, handle)
    }

    fn roundtrip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text)?;
        let mut back = vec![0u8; text.len()];
        stream.read_exact(&mut back)?;
        Ok(back)
    }

    #[test]
    fn relays_cuts_refuses_and_stalls() {
        let (upstream, _echo) = echo_server();
        let relay = Relay::start(upstream);
        let mut a = TcpStream::connect(relay.addr()).unwrap();
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(roundtrip(&mut a, b"hello").unwrap(), b"hello");
        assert_eq!(relay.accepted(), 1);

        // A stalled relay swallows what is sent.
        relay.stall(true);
        a.write_all(b"lost").unwrap();
        a.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert!(
            a.read(&mut buf).is_err(),
            "nothing comes back while stalled"
        );
        relay.stall(false);

        // A cut ends the connection: the client reads end of stream.
        assert_eq!(relay.cut(), 1);
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(a.read(&mut buf).unwrap_or(0), 0);

        // While refusing, a new connection is closed at once.
        relay.refuse(true);
        let mut b = TcpStream::connect(relay.addr()).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = b.write_all(b"x");
        assert_eq!(b.read(&mut buf).unwrap_or(0), 0);
        assert_eq!(relay.accepted(), 1);

        relay.refuse(false);
        let mut c = TcpStream::connect(relay.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(roundtrip(&mut c, b"again").unwrap(), b"again");
        assert_eq!(relay.open(), 1);
    }
}
