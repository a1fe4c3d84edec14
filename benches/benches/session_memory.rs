//! Heap bytes a connected, idle connection costs, on each side: the state
//! machine, its session, its decoder, but not the adapter's socket buffers
//! (which an adapter sizes itself and frees while idle).
//!
//! Run with `cargo bench -p mqtt-benches --bench session_memory`.
#![allow(missing_docs)]

use std::alloc::System;

use bytes::BytesMut;
use mqtt_codec::{ConnAckProps, ProtocolVersion, Str};
use mqtt_session::{Client, ClientConfig, Connection, Instant, Server, ServerConfig, ServerEvent};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 10_000;

fn main() {
    if std::env::args().skip(1).any(|a| !a.starts_with('-')) {
        return;
    }
    println!("| version | server side, bytes per connection | client side, bytes per connection |");
    println!("|---|---:|---:|");
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let now = Instant::ZERO;
        // Every CONNECT is encoded before measuring, so only the connections count.
        let mut wires = connects(version, now);
        let region = Region::new(GLOBAL);
        let mut servers = Vec::with_capacity(N);
        for w in &mut wires {
            let mut s = Connection::<Server>::new(ServerConfig::default(), now);
            s.handle_read(now, w);
            match s.poll_event() {
                Some(ServerEvent::Connect(_)) => {}
                other => panic!("expected CONNECT, got {other:?}"),
            }
            s.accept(now, None, ConnAckProps::default()).unwrap();
            // Drained as an adapter drains it: events until `None`, bytes out.
            while s.poll_event().is_some() {}
            let mut out = BytesMut::new();
            let _ = s.poll_transmit(now, &mut out);
            servers.push(s);
        }
        let st = region.change();
        let server_bytes = per_connection(&st);

        let region = Region::new(GLOBAL);
        let mut clients = Vec::with_capacity(N);
        for i in 0..N {
            let id = Str::try_from(format!("client-{i:06}")).unwrap();
            let mut c = Connection::<Client>::new(ClientConfig::new(version, id), now, None);
            let mut out = BytesMut::new();
            let _ = c.poll_transmit(now, &mut out);
            while c.poll_event().is_some() {}
            clients.push(c);
        }
        let st = region.change();
        let client_bytes = per_connection(&st);
        println!("| {version} | {server_bytes:.0} | {client_bytes:.0} |");
        drop(servers);
        drop(clients);
    }
    broker_core();
}

/// Heap bytes still held after a measured region, per connection.
fn per_connection(st: &stats_alloc::Stats) -> f64 {
    (st.bytes_allocated as isize - st.bytes_deallocated as isize + st.bytes_reallocated) as f64
        / N as f64
}

/// The encoded CONNECT of each of `N` clients.
fn connects(version: ProtocolVersion, now: Instant) -> Vec<BytesMut> {
    (0..N)
        .map(|i| {
            let id = Str::try_from(format!("client-{i:06}")).unwrap();
            let mut c = Connection::<Client>::new(ClientConfig::new(version, id), now, None);
            let mut w = BytesMut::new();
            let _ = c.poll_transmit(now, &mut w);
            w
        })
        .collect()
}

/// Heap bytes per idle connected client in the broker core (`Broker`):
/// the connection's state machine and the broker's own records of it
/// (connection slot, session entry, client identifier, timer), as the
/// reference broker holds it between two keep-alives. Sockets and adapter
/// tasks are not included.
fn broker_core() {
    use mqtt_router::broker::{Broker, BrokerConfig, PeerInfo};
    println!();
    println!("| version | broker core, bytes per idle connection |");
    println!("|---|---:|");
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let now = Instant::ZERO;
        let mut wires = connects(version, now);
        let peers: Vec<PeerInfo> = (0..N)
            .map(|i| PeerInfo {
                remote: format!("127.0.0.1:{}", 10_000 + i),
                certificate_subject: None,
                certificate_username: None,
            })
            .collect();
        let mut broker = Broker::new(BrokerConfig::default());
        let mut out = BytesMut::with_capacity(64);
        let region = Region::new(GLOBAL);
        for (w, peer) in wires.iter_mut().zip(peers) {
            let id = broker.open(now, peer).unwrap();
            broker.handle_read(id, now, w);
            while broker.poll_writable().is_some() {}
            out.clear();
            let _ = broker.poll_transmit(id, now, &mut out);
            while broker.poll_event().is_some() {}
        }
        let st = region.change();
        let bytes = per_connection(&st);
        println!("| {version} | {bytes:.0} |");
        drop(broker);
    }
}
