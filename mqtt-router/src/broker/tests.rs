//! Unit tests of broker internals the public API cannot observe.

use alloc::boxed::Box;

use bytes::BytesMut;
use mqtt_codec::{Connect, Packet, ProtocolVersion, Str};

use super::*;

fn bytes(p: &Packet) -> BytesMut {
    let mut out = BytesMut::new();
    p.encode(ProtocolVersion::V311, &mut out).unwrap();
    out
}

/// The keep-alive deadline moves with every packet read; the timer heap must
/// not keep one entry per move (it would grow with the message rate times
/// 1.5 × keep alive), and the connection must still expire on time.
#[test]
fn timer_heap_holds_few_entries_per_connection_however_many_packets_arrive() {
    let mut broker = Broker::new(BrokerConfig::default());
    let id = broker.open(Instant::ZERO, PeerInfo::default()).unwrap();
    let mut connect = Connect::new(ProtocolVersion::V311, Str::from_static("c"));
    connect.keep_alive = 60;
    broker.handle_read(
        id,
        Instant::ZERO,
        &mut bytes(&Packet::Connect(Box::new(connect))),
    );
    let mut sink = BytesMut::new();
    for ms in 1..=10_000u64 {
        let now = Instant::from_millis(ms);
        broker.handle_read(id, now, &mut bytes(&Packet::PingReq));
        while let Some(w) = broker.poll_writable() {
            let _ = broker.poll_transmit(w, now, &mut sink);
        }
        broker.handle_timeout(now);
    }
    // The CONNECT deadline, the keep-alive deadline and the $SYS timer.
    assert!(
        broker.timers.len() <= 4,
        "{} timer entries",
        broker.timers.len()
    );

    // Silent from 10 s on: closed at 10 s + 1.5 × 60 s, not before.
    while let Some(at) = broker
        .poll_timeout()
        .filter(|at| *at < Instant::from_millis(99_999))
    {
        broker.handle_timeout(at);
        let closed = matches!(broker.poll_event(), Some(BrokerEvent::Closed { .. }));
        assert!(!closed, "closed early, at {at:?}");
    }
    broker.handle_timeout(Instant::from_millis(100_000));
    assert!(
        matches!(broker.poll_event(), Some(BrokerEvent::Closed { id: closed, .. }) if closed == id)
    );
}
