//! The broker core alone, with no sockets and no runtime: one publisher
//! sends QoS 1 messages to `--subscribers` subscribers of one topic,
//! through the path the tokio broker takes (the adapter decodes into
//! packets, the core routes, the adapter encodes the frames it hands out),
//! and every subscriber acknowledges what it gets. Deterministic, so that
//! an instruction count (`valgrind --tool=callgrind` or `perf stat -e
//! instructions`) compares two builds of the core on a busy machine, where
//! wall-clock figures would not.
//!
//! ```text
//! cargo build --release -p mqtt-benches --bin core_fanout
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/core_fanout --messages 2000 --subscribers 100
//! ```

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Ack, Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid, Str, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName,
};
use mqtt_router::broker::{Broker, BrokerConfig, ConnId, PeerInfo};
use mqtt_session::{Frame, Instant};

/// One client of the core: its id, the decoder the adapter keeps for its
/// input, and the decoder that reads what the core sends it.
struct Peer {
    id: ConnId,
    to_core: Decoder,
    from_core: Decoder,
}

fn main() {
    let mut messages = 2_000u32;
    let mut subscribers = 100usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), value) {
            ("--messages", Some(v)) => messages = u32::try_from(v).unwrap_or(u32::MAX),
            ("--subscribers", Some(v)) => subscribers = usize::try_from(v).unwrap_or(100),
            _ => {
                eprintln!("usage: core_fanout [--messages N] [--subscribers N]");
                std::process::exit(2);
            }
        }
    }
    let mut config = BrokerConfig {
        sys_interval: None,
        ..BrokerConfig::default()
    };
    config.server.limits.max_queued = 100_000;
    let mut broker = Broker::new(config);
    let now = Instant::ZERO;
    let mut peers: Vec<Peer> = (0..=subscribers)
        .map(|i| connect(&mut broker, now, &format!("c{i}")))
        .collect();
    for p in &mut peers[1..] {
        let filter = TopicFilter::try_from("bench/t").expect("a valid filter");
        let subscribe = Packet::Subscribe(Subscribe {
            id: pid(1),
            props: Default::default(),
            filters: vec![(filter, SubscriptionOptions::new(QoS::AtLeastOnce))],
        });
        send(&mut broker, now, p, &subscribe);
    }
    drain(&mut broker, now, &mut peers);
    let payload = Bytes::from_static(&[7u8; 64]);
    let mut delivered = 0u64;
    for n in 0..messages {
        let mut publish = Publish::new(TopicName::from_static("bench/t"), payload.clone());
        publish.qos = QosPid::AtLeastOnce(pid((n % 60_000 + 1) as u16));
        send(&mut broker, now, &mut peers[0], &Packet::Publish(publish));
        delivered += drain(&mut broker, now, &mut peers);
    }
    println!("messages={messages} subscribers={subscribers} deliveries={delivered}");
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("a non-zero packet identifier")
}

/// Opens a 3.1.1 connection with a clean session.
fn connect(broker: &mut Broker, now: Instant, client_id: &str) -> Peer {
    let id = broker
        .open(now, PeerInfo::default())
        .expect("room for the connection");
    let mut peer = Peer {
        id,
        to_core: broker.decoder(),
        from_core: Decoder::with_version(ProtocolVersion::V311),
    };
    let mut c = Connect::new(
        ProtocolVersion::V311,
        Str::try_from(client_id).expect("a valid client identifier"),
    );
    c.clean_start = true;
    send(broker, now, &mut peer, &Packet::Connect(Box::new(c)));
    peer
}

/// What the client `p` sends, through the adapter's decoder, into the core.
fn send(broker: &mut Broker, now: Instant, p: &mut Peer, packet: &Packet) {
    let mut wire = BytesMut::new();
    packet
        .encode(ProtocolVersion::V311, &mut wire)
        .expect("the packet encodes");
    let mut packets = Vec::new();
    loop {
        let len = wire.len();
        match p.to_core.decode(&mut wire) {
            Ok(Some(packet)) => packets.push((packet, len - wire.len())),
            Ok(None) => break,
            Err(e) => panic!("the bench's own bytes decode: {e}"),
        }
    }
    broker.handle_packets(p.id, now, packets, None);
}

/// Takes what the core has for every connection, encodes it as the
/// adapter does, and answers each PUBLISH with PUBACK, until nothing
/// moves; returns the PUBLISH packets delivered.
fn drain(broker: &mut Broker, now: Instant, peers: &mut [Peer]) -> u64 {
    let mut delivered = 0;
    loop {
        let mut ready = Vec::new();
        while let Some(id) = broker.poll_writable() {
            ready.push(id);
        }
        if ready.is_empty() {
            return delivered;
        }
        for id in ready {
            let Some(p) = peers.iter_mut().find(|p| p.id == id) else {
                continue;
            };
            let mut acks = Vec::new();
            for packet in take(broker, now, id, &mut p.from_core) {
                if let Packet::Publish(pb) = packet {
                    delivered += 1;
                    if let QosPid::AtLeastOnce(pid) = pb.qos {
                        acks.push(Packet::PubAck(Ack::new(pid)));
                    }
                }
            }
            for ack in acks {
                send(broker, now, p, &ack);
            }
        }
    }
}

/// The frames the core hands out for connection `id`, encoded and decoded
/// again as the client would read them.
fn take(broker: &mut Broker, now: Instant, id: ConnId, reader: &mut Decoder) -> Vec<Packet> {
    let mut wire = BytesMut::new();
    let mut frames: Vec<Frame> = Vec::new();
    while let Some(batch) = broker.poll_frames(id, now, &mut frames, 64 * 1024) {
        if batch.wire_len == 0 {
            break;
        }
        for f in frames.drain(..) {
            f.encode(batch.version, &mut wire)
                .expect("the core hands out encodable frames");
        }
    }
    let mut out = Vec::new();
    while let Ok(Some(p)) = reader.decode(&mut wire) {
        out.push(p);
    }
    out
}
