//! A minimal blocking MQTT client over `TcpStream` and mqtt-codec, for
//! tests that must know exactly which acknowledgements arrived before a
//! broker died (no library resends or hides anything). Every read is
//! bounded by a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Ack, Connect, Decoder, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid,
    ReasonCode, Str, Subscribe, SubscriptionOptions, TopicFilter, TopicName, Will,
};

/// One connection; `Err(())` from any call means the connection broke.
pub struct RawClient {
    stream: TcpStream,
    version: ProtocolVersion,
    decoder: Decoder,
    buf: BytesMut,
}

/// How a client connects.
#[derive(Clone)]
pub struct ConnectSpec {
    pub version: ProtocolVersion,
    pub client_id: &'static str,
    pub clean: bool,
    /// 5.0 Session Expiry Interval.
    pub expiry: u32,
    /// A will on `topic` with `payload`, delayed by this many seconds (5.0).
    pub will: Option<(&'static str, &'static str, u32)>,
}

impl RawClient {
    /// Connects; returns the client and Session Present.
    pub fn connect(addr: SocketAddr, spec: &ConnectSpec) -> Result<(RawClient, bool), ()> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|_| ())?;
        stream.set_nodelay(true).map_err(|_| ())?;
        let mut c = RawClient {
            stream,
            version: spec.version,
            decoder: Decoder::with_version(spec.version),
            buf: BytesMut::new(),
        };
        let mut connect = Connect::new(spec.version, Str::try_from(spec.client_id).unwrap());
        connect.clean_start = spec.clean;
        connect.keep_alive = 60;
        if spec.version == ProtocolVersion::V5 && spec.expiry > 0 {
            connect.props.session_expiry_interval = Some(spec.expiry);
        }
        if let Some((topic, payload, delay)) = spec.will {
            let mut will = Will {
                topic: TopicName::try_from(topic).unwrap(),
                payload: Bytes::from_static(payload.as_bytes()),
                qos: QoS::AtLeastOnce,
                retain: false,
                props: Default::default(),
            };
            will.props.will_delay_interval = Some(delay);
            connect.will = Some(will);
        }
        c.send(&Packet::Connect(Box::new(connect)))?;
        match c.recv(Duration::from_secs(5))? {
            Packet::ConnAck(a) if !a.reason.is_error() => Ok((c, a.session_present)),
            _ => Err(()),
        }
    }

    pub fn send(&mut self, p: &Packet) -> Result<(), ()> {
        let mut out = BytesMut::new();
        p.encode(self.version, &mut out).map_err(|_| ())?;
        self.stream.write_all(&out).map_err(|_| ())
    }

    /// The next packet within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Packet, ()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).map_err(|_| ())? {
                return Ok(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(());
            }
            self.stream.set_read_timeout(Some(left)).map_err(|_| ())?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Subscribes to `filter` at `qos` and waits for SUBACK.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), ()> {
        let sub = Subscribe {
            id: PacketId::new(1).unwrap(),
            props: Default::default(),
            filters: vec![(
                TopicFilter::try_from(filter).unwrap(),
                SubscriptionOptions::new(qos),
            )],
        };
        self.send(&Packet::Subscribe(sub))?;
        loop {
            if let Packet::SubAck(_) = self.recv(Duration::from_secs(5))? {
                return Ok(());
            }
        }
    }

    /// Sends a PUBLISH.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &str,
        qos: QoS,
        id: u16,
        dup: bool,
        retain: bool,
    ) -> Result<(), ()> {
        let mut p = Publish::new(
            TopicName::try_from(topic).unwrap(),
            Bytes::copy_from_slice(payload.as_bytes()),
        );
        p.qos = match PacketId::new(id) {
            Some(pid) => QosPid::from_qos(qos, pid),
            None => QosPid::AtMostOnce,
        };
        p.dup = dup;
        p.retain = retain;
        self.send(&Packet::Publish(p))
    }

    /// Publishes a retained QoS 1 message with a 5.0 Message Expiry
    /// Interval and waits for its PUBACK.
    pub fn retain_expiring(&mut self, topic: &str, payload: &str, expiry: u32) -> Result<(), ()> {
        let mut p = Publish::new(
            TopicName::try_from(topic).unwrap(),
            Bytes::copy_from_slice(payload.as_bytes()),
        );
        p.qos = QosPid::from_qos(QoS::AtLeastOnce, PacketId::new(9).unwrap());
        p.retain = true;
        p.props.message_expiry_interval = Some(expiry);
        self.send(&Packet::Publish(p))?;
        loop {
            if let Packet::PubAck(_) = self.recv(Duration::from_secs(5))? {
                return Ok(());
            }
        }
    }

    /// Sends PUBREL for `id`.
    pub fn pubrel(&mut self, id: u16) -> Result<(), ()> {
        self.send(&Packet::PubRel(Ack::new(PacketId::new(id).unwrap())))
    }

    /// Acknowledges a received PUBLISH as its QoS asks (PUBACK, or PUBREC
    /// and, on PUBREL, PUBCOMP, handled in [`RawClient::drain`]).
    fn answer(&mut self, p: &Publish) -> Result<(), ()> {
        match p.qos {
            QosPid::AtMostOnce => Ok(()),
            QosPid::AtLeastOnce(id) => self.send(&Packet::PubAck(Ack::new(id))),
            QosPid::ExactlyOnce(id) => self.send(&Packet::PubRec(Ack::new(id))),
        }
    }

    /// Receives messages until none comes for `quiet` (at most `limit` in
    /// all), acknowledging each; returns their payloads in order.
    pub fn drain(&mut self, quiet: Duration, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while Instant::now() < deadline {
            match self.recv(quiet) {
                Ok(Packet::Publish(p)) => {
                    got.push(String::from_utf8_lossy(&p.payload).into_owned());
                    if self.answer(&p).is_err() {
                        break;
                    }
                }
                Ok(Packet::PubRel(a)) => {
                    let _ = self.send(&Packet::PubComp(Ack::new(a.id)));
                }
                Ok(_) => {}
                Err(()) => break,
            }
        }
        got
    }

    /// Messages until `count` arrived or `limit` passed, then any more
    /// that arrive within `quiet` (duplicates would): for receivers whose
    /// first message may take a while (a node reconnecting to its cluster).
    pub fn drain_count(&mut self, count: usize, quiet: Duration, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while got.len() < count && Instant::now() < deadline {
            got.extend(self.drain(Duration::from_millis(200), deadline - Instant::now()));
        }
        got.extend(self.drain(quiet, quiet * 4));
        got
    }

    /// DISCONNECT (normal) and close.
    pub fn disconnect(mut self) {
        let _ = self.send(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Drops the connection without DISCONNECT (the will is due).
    pub fn abort(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
