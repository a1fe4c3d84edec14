//! The session pair of `benches/session.rs` without criterion: a client and
//! a server connection back to back in memory, `--batches` batches of 256
//! publishes at QoS 0, 1 and 2 under 3.1.1 and 5.0, encode, decode and both
//! state machines included. Deterministic, so an instruction count compares
//! two builds on a busy machine:
//!
//! ```text
//! cargo build --release -p mqtt-benches --bin session_pair
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/session_pair --batches 100
//! ```

use bytes::BytesMut;
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

fn main() {
    let mut args = std::env::args().skip(1);
    let batches = match (
        args.next().as_deref(),
        args.next().map(|v| v.parse::<usize>()),
    ) {
        (Some("--batches"), Some(Ok(n))) => n,
        (None, _) => 100,
        _ => {
            eprintln!("usage: session_pair [--batches N]");
            std::process::exit(2);
        }
    };
    let mut total = 0;
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let msg = Message::new(
                TopicName::from_static("site/1/device/2/temp"),
                &b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"[..],
                qos,
                false,
            );
            let mut pair = Pair::connected(version);
            for _ in 0..batches {
                total += pair.run_batch(&msg);
            }
        }
    }
    println!("batches={batches} messages={total}");
}
