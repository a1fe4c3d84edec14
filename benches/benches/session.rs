//! Publishes per second through a client and a server connection wired back
//! to back in memory, at QoS 0, 1 and 2: encode, decode and both state
//! machines included, no sockets.
//!
//! Run with `cargo bench -p mqtt-benches --bench session`.
#![allow(missing_docs)]

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqtt_codec::{ConnAckProps, ProtocolVersion, QoS, ReasonCode, Str, TopicName};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Connection, Instant, Limits, Message, Server, ServerConfig,
    ServerEvent,
};

/// Messages per measured batch.
const BATCH: usize = 256;

struct Pair {
    client: Connection<Client>,
    server: Connection<Server>,
    wire: BytesMut,
}

impl Pair {
    fn connected(version: ProtocolVersion) -> Pair {
        let now = Instant::ZERO;
        let mut cfg = ClientConfig::new(version, Str::from_static("bench"));
        cfg.keep_alive = 0;
        cfg.limits = Limits::unlimited();
        let server_cfg = ServerConfig {
            limits: Limits::unlimited(),
            ..ServerConfig::default()
        };
        let mut p = Pair {
            client: Connection::<Client>::new(cfg, now, None),
            server: Connection::<Server>::new(server_cfg, now),
            wire: BytesMut::with_capacity(64 * 1024),
        };
        p.flush_to_server();
        match p.server.poll_event() {
            Some(ServerEvent::Connect(_)) => {}
            other => panic!("expected CONNECT, got {other:?}"),
        }
        p.server
            .accept(now, None, ConnAckProps::default())
            .expect("accept");
        p.flush_to_client();
        assert!(matches!(
            p.client.poll_event(),
            Some(ClientEvent::Connected { .. })
        ));
        p
    }

    fn flush_to_server(&mut self) {
        let _ = self.client.poll_transmit(Instant::ZERO, &mut self.wire);
        self.server.handle_read(Instant::ZERO, &mut self.wire);
    }

    fn flush_to_client(&mut self) {
        let _ = self.server.poll_transmit(Instant::ZERO, &mut self.wire);
        self.client.handle_read(Instant::ZERO, &mut self.wire);
    }

    /// Publishes `BATCH` messages and runs every flow to completion; returns
    /// how many the server received (checked by the caller).
    fn run_batch(&mut self, msg: &Message) -> usize {
        let now = Instant::ZERO;
        for _ in 0..BATCH {
            self.client.publish(now, msg.clone()).expect("publish");
        }
        let mut received = 0;
        let mut completed = 0;
        for _ in 0..8 {
            self.flush_to_server();
            while let Some(ev) = self.server.poll_event() {
                if let ServerEvent::Publish { id, .. } = ev {
                    received += 1;
                    if let Some(id) = id {
                        self.server.ack(id, ReasonCode::SUCCESS).expect("ack");
                    }
                }
            }
            self.flush_to_client();
            while let Some(ev) = self.client.poll_event() {
                if let ClientEvent::Published { .. } = ev {
                    completed += 1;
                }
            }
            if msg.qos == QoS::AtMostOnce || completed == BATCH {
                break;
            }
        }
        assert!(msg.qos == QoS::AtMostOnce || completed == BATCH);
        received
    }
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("session/publish_back_to_back");
    g.throughput(Throughput::Elements(BATCH as u64));
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let msg = Message::new(
                TopicName::from_static("site/1/device/2/temp"),
                &b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"[..],
                qos,
                false,
            );
            let mut pair = Pair::connected(version);
            let name = format!("{version}/QoS{}", qos as u8);
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| assert_eq!(pair.run_batch(&msg), BATCH));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
