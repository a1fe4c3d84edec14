//! Loopback ports for test brokers. `mqtt-broker`'s own tests compile this
//! file too: they cannot depend on this crate, which depends on `mqtt-broker`.

use std::net::TcpListener;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    // Outside the ephemeral range (32768-60999 on Linux): a port the OS
    // hands out for "port 0" can be taken by any outgoing connection of a
    // test running in parallel before the broker binds it, which made a
    // broker fail to start now and then under load. Ports here are only
    // ever taken on purpose; a counter keeps this process's picks apart
    // and the process id spreads processes.
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..12_000 {
        let n = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = 20_000 + n as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}
