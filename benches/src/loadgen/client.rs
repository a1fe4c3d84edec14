//! A minimal MQTT 3.1.1 client on `mqtt-codec` and tokio, made for measuring:
//! one task per connection, one read buffer and one write buffer, PUBLISH
//! packets copied from a pre-encoded template with only the packet
//! identifier and the payload stamp patched in.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use mqtt_codec::{
    Ack, Connect, DecodeError, Decoder, Disconnect, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Str, StrError, Subscribe,
    SubscriptionOptions, TopicError, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::stats::{new_histogram, Stamp, Tracker, STAMP_LEN};

/// The version every connection speaks: the one all three brokers serve on
/// one listener.
const VERSION: ProtocolVersion = ProtocolVersion::V311;
/// Bytes queued for one write before the loop goes back to the socket.
const WRITE_BATCH: usize = 64 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Why a connection of the generator failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The socket failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The broker closed the connection.
    #[error("the broker closed the connection")]
    Closed,
    /// The broker sent bytes that are not a valid packet.
    #[error("undecodable packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded (a setting out of range).
    #[error("cannot encode a packet: {0}")]
    Encode(#[from] EncodeError),
    /// CONNACK with an error code.
    #[error("the broker refused the connection: {0:?}")]
    Refused(ReasonCode),
    /// SUBACK with a failure or a lower QoS than asked for.
    #[error("the broker granted {0:?} for the subscription")]
    Granted(ReasonCode),
    /// A packet the client does not expect at this point.
    #[error("unexpected {0:?} from the broker")]
    Unexpected(PacketType),
    /// An acknowledgement for a packet identifier that is not in flight.
    #[error("acknowledgement for packet identifier {0}, which is not in flight")]
    UnknownPacketId(u16),
    /// The broker did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A topic or filter from the arguments is not valid.
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    /// A client identifier is not a valid MQTT string.
    #[error("invalid client identifier: {0}")]
    ClientId(#[from] StrError),
    /// The payload cannot hold the stamp.
    #[error("payload of {0} bytes is shorter than the {STAMP_LEN}-byte stamp")]
    PayloadTooShort(usize),
}

/// One connection to the broker.
pub(crate) struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
}

impl Conn {
    /// Opens a TCP connection (from `source` if given), sends CONNECT with a
    /// clean session and waits for a successful CONNACK until `deadline`.
    pub(crate) async fn connect(
        broker: SocketAddr,
        source: Option<IpAddr>,
        client_id: &str,
        keep_alive: u16,
        clean: bool,
        deadline: Instant,
    ) -> Result<Conn, LoadError> {
        let socket = if broker.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source {
            // Each source address has its own ephemeral port range.
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = timeout_at(deadline, socket.connect(broker))
            .await
            .map_err(|_| LoadError::Timeout("the TCP connection"))??;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(256),
            wbuf: BytesMut::with_capacity(256),
            decoder: Decoder::with_version(VERSION),
        };
        let mut connect = Connect::new(VERSION, Str::new(Bytes::from(client_id.to_string()))?);
        connect.keep_alive = keep_alive;
        // Clean Session 0: a persistent session, which a durable broker stores.
        connect.clean_start = clean;
        Packet::Connect(Box::new(connect)).encode(VERSION, &mut conn.wbuf)?;
        conn.flush(deadline).await?;
        match conn.recv(deadline, "CONNACK").await? {
            Packet::ConnAck(ack) if !ack.reason.is_error() => Ok(conn),
            Packet::ConnAck(ack) => Err(LoadError::Refused(ack.reason)),
            p => Err(LoadError::Unexpected(p.packet_type())),
        }
    }

    /// Subscribes to one filter and checks that `qos` was granted.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        deadline: Instant,
    ) -> Result<(), LoadError> {
        let id = PacketId::new(1).expect("1 is a valid packet identifier");
        let subscribe = Subscribe {
            id,
            props: Default::default(),
            filters: vec![(
                TopicFilter::new(Bytes::from(filter.to_string()))?,
                SubscriptionOptions::new(qos),
            )],
        };
        Packet::Subscribe(subscribe).encode(VERSION, &mut self.wbuf)?;
        self.flush(deadline).await?;
        match self.recv(deadline, "SUBACK").await? {
            Packet::SubAck(ack) if ack.id == id => match ack.reasons.as_slice() {
                [r] if r.0 == qos as u8 => Ok(()),
                [r] => Err(LoadError::Granted(*r)),
                _ => Err(LoadError::Unexpected(PacketType::SubAck)),
            },
            p => Err(LoadError::Unexpected(p.packet_type())),
        }
    }

    /// Sends DISCONNECT and closes, ignoring errors: the measurement is over.
    pub(crate) async fn disconnect(mut self, deadline: Instant) {
        self.wbuf.clear();
        let d: Disconnect = Disconnect {
            reason: ReasonCode::SUCCESS,
            props: Default::default(),
        };
        if Packet::Disconnect(d)
            .encode(VERSION, &mut self.wbuf)
            .is_ok()
            && self.flush(deadline).await.is_ok()
        {
            let _ = timeout_at(deadline, self.stream.shutdown()).await;
        }
    }

    async fn flush(&mut self, deadline: Instant) -> Result<(), LoadError> {
        timeout_at(deadline, self.stream.write_all(&self.wbuf))
            .await
            .map_err(|_| LoadError::Timeout("the socket to take our bytes"))??;
        self.wbuf.clear();
        Ok(())
    }

    async fn recv(&mut self, deadline: Instant, what: &'static str) -> Result<Packet, LoadError> {
        // Bounded: each round reads at least one byte or ends by the deadline.
        loop {
            if let Some(p) = self.decoder.decode(&mut self.rbuf)? {
                return Ok(p);
            }
            self.rbuf.reserve(256);
            let n = timeout_at(deadline, self.stream.read_buf(&mut self.rbuf))
                .await
                .map_err(|_| LoadError::Timeout(what))??;
            if n == 0 {
                return Err(LoadError::Closed);
            }
        }
    }
}

/// A PUBLISH encoded once; each message is a copy with its packet
/// identifier and stamp patched in.
#[derive(Debug, Clone)]
pub(crate) struct PublishTemplate {
    bytes: Vec<u8>,
    /// Where the payload starts; the packet identifier (QoS 1/2) is the two
    /// bytes before it [MQTT-2.2.1-2].
    payload_at: usize,
    qos: QoS,
}

impl PublishTemplate {
    /// The template of a non-retained PUBLISH to `topic` with `payload_len` bytes.
    pub(crate) fn new(topic: &str, qos: QoS, payload_len: usize) -> Result<Self, LoadError> {
        if payload_len < STAMP_LEN {
            return Err(LoadError::PayloadTooShort(payload_len));
        }
        let topic = TopicName::new(Bytes::from(topic.to_string()))?;
        let mut publish = Publish::new(topic, Bytes::from(vec![0xA5; payload_len]));
        publish.qos = QosPid::from_qos(qos, PacketId::new(u16::MAX).expect("non-zero"));
        let mut out = BytesMut::new();
        Packet::Publish(publish).encode(VERSION, &mut out)?;
        let t = PublishTemplate {
            payload_at: out.len() - payload_len,
            bytes: out.to_vec(),
            qos,
        };
        Ok(t)
    }

    /// The QoS every copy is published at.
    pub(crate) fn qos(&self) -> QoS {
        self.qos
    }

    /// Bytes of one copy.
    pub(crate) fn packet_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one PUBLISH to `out` (`id` is ignored at QoS 0).
    pub(crate) fn write(&self, out: &mut BytesMut, id: PacketId, stamp: &Stamp) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let packet = &mut out[start..];
        if self.qos != QoS::AtMostOnce {
            packet[self.payload_at - 2..self.payload_at].copy_from_slice(&id.get().to_be_bytes());
        }
        stamp.write(&mut packet[self.payload_at..]);
    }
}

/// What a publisher does.
#[derive(Debug, Clone)]
pub(crate) struct PublisherPlan {
    /// Its number, written into every stamp.
    pub(crate) id: u32,
    /// The PUBLISH it repeats.
    pub(crate) template: Arc<PublishTemplate>,
    /// Most QoS 1/2 messages unacknowledged at once.
    pub(crate) window: usize,
    /// Fixed interval between messages; `None`: as fast as the window and
    /// the socket allow.
    pub(crate) period: Option<Duration>,
    /// Stamps count nanoseconds from here.
    pub(crate) base: Instant,
    /// First message.
    pub(crate) start: Instant,
    /// No message is started at or after this.
    pub(crate) stop: Instant,
    /// Waiting for acknowledgements ends here.
    pub(crate) deadline: Instant,
    /// Most messages in all.
    pub(crate) max_messages: u64,
}

/// What a publisher did.
#[derive(Debug, Default)]
pub(crate) struct PublisherReport {
    /// Messages written to the socket.
    pub(crate) published: u64,
    /// Of those, completed: QoS 0 once written, QoS 1 on PUBACK, QoS 2 on PUBCOMP.
    pub(crate) completed: u64,
    /// When the last message was started.
    pub(crate) last_sent: Option<Instant>,
    /// Why it ended early, if it did.
    pub(crate) error: Option<String>,
}

/// Where a QoS 2 message of ours stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outgoing {
    /// Waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent, waiting for PUBCOMP.
    Released,
}

/// Publishes until `plan.stop`, then waits for the outstanding
/// acknowledgements until `plan.deadline`, then disconnects.
pub(crate) async fn run_publisher(mut conn: Conn, plan: PublisherPlan) -> PublisherReport {
    let mut report = PublisherReport::default();
    if let Err(e) = publish_loop(&mut conn, &plan, &mut report).await {
        report.error = Some(e.to_string());
    }
    if plan.template.qos() == QoS::AtMostOnce && !conn.wbuf.is_empty() {
        // The broker stopped reading: messages still in our buffer were
        // never sent (a partly written one counts as not sent). At QoS 0 the
        // buffer holds nothing but copies of the template.
        let unsent = conn.wbuf.len().div_ceil(plan.template.packet_len()) as u64;
        report.published = report.published.saturating_sub(unsent);
        report.completed = report.published;
    }
    conn.disconnect(Instant::now() + Duration::from_secs(1))
        .await;
    report
}

async fn publish_loop(
    conn: &mut Conn,
    plan: &PublisherPlan,
    report: &mut PublisherReport,
) -> Result<(), LoadError> {
    let qos = plan.template.qos();
    let window = plan.window.clamp(1, usize::from(u16::MAX));
    let mut inflight: HashMap<u16, Outgoing> = HashMap::with_capacity(window);
    let mut next_id = PacketId::new(1).expect("non-zero");
    let mut next_due = plan.start;
    let Conn {
        stream,
        rbuf,
        wbuf,
        decoder,
    } = conn;
    let (mut rd, mut wr) = stream.split();
    sleep_until(plan.start).await;
    // Bounded: ends by plan.deadline at the latest (checked every round, and
    // every wait below wakes by then).
    loop {
        let now = Instant::now();
        let sending = now < plan.stop && report.published < plan.max_messages;
        if sending {
            while report.published < plan.max_messages
                && wbuf.len() < WRITE_BATCH
                && (qos == QoS::AtMostOnce || inflight.len() < window)
            {
                if let Some(period) = plan.period {
                    if next_due > now {
                        break;
                    }
                    // Stamped with the time actually sent, not the time
                    // scheduled: tokio's timer fires up to a millisecond
                    // late, which is the generator's delay, not the broker's.
                    next_due += period;
                }
                let id = if qos == QoS::AtMostOnce {
                    next_id
                } else {
                    // A free identifier exists: fewer than 65,535 are in flight.
                    while inflight.contains_key(&next_id.get()) {
                        next_id = next_id.next();
                    }
                    inflight.insert(next_id.get(), Outgoing::Published);
                    next_id
                };
                next_id = next_id.next();
                let stamp = Stamp {
                    publisher: plan.id,
                    seq: report.published,
                    sent_ns: now.saturating_duration_since(plan.base).as_nanos() as u64,
                };
                plan.template.write(wbuf, id, &stamp);
                report.published += 1;
                report.last_sent = Some(now);
                if qos == QoS::AtMostOnce {
                    report.completed += 1;
                }
            }
        } else if inflight.is_empty() && wbuf.is_empty() {
            return Ok(());
        }
        if now >= plan.deadline {
            return Err(LoadError::Timeout("acknowledgements of our messages"));
        }
        let wake = match (sending, plan.period) {
            (true, Some(_)) => next_due.min(plan.stop),
            (true, None) => plan.stop,
            (false, _) => plan.deadline,
        };
        tokio::select! {
            r = wr.write_buf(wbuf), if !wbuf.is_empty() => {
                if r? == 0 {
                    return Err(LoadError::Closed);
                }
            }
            r = rd.read_buf(rbuf) => {
                if r? == 0 {
                    return Err(LoadError::Closed);
                }
                while let Some(p) = decoder.decode(rbuf)? {
                    match p {
                        Packet::PubAck(a) if qos == QoS::AtLeastOnce => {
                            match inflight.remove(&a.id.get()) {
                                Some(Outgoing::Published) => report.completed += 1,
                                _ => return Err(LoadError::UnknownPacketId(a.id.get())),
                            }
                        }
                        Packet::PubRec(a) if qos == QoS::ExactlyOnce => {
                            match inflight.get_mut(&a.id.get()) {
                                Some(s @ Outgoing::Published) => *s = Outgoing::Released,
                                _ => return Err(LoadError::UnknownPacketId(a.id.get())),
                            }
                            Packet::<Bytes>::PubRel(Ack::new(a.id)).encode(VERSION, wbuf)?;
                        }
                        Packet::PubComp(a) if qos == QoS::ExactlyOnce => {
                            match inflight.remove(&a.id.get()) {
                                Some(Outgoing::Released) => report.completed += 1,
                                _ => return Err(LoadError::UnknownPacketId(a.id.get())),
                            }
                        }
                        Packet::PingResp => {}
                        p => return Err(LoadError::Unexpected(p.packet_type())),
                    }
                }
                if rbuf.capacity() - rbuf.len() < 1024 {
                    rbuf.reserve(READ_CHUNK);
                }
            }
            _ = sleep_until(wake) => {}
        }
    }
}

/// What every subscriber watches: how many messages each publisher sent,
/// known once all have finished.
#[derive(Debug)]
pub(crate) struct RunState {
    /// Messages published, per publisher.
    pub(crate) published: Vec<AtomicU64>,
    /// Set once every publisher has finished and `published` is final.
    pub(crate) done: AtomicBool,
}

impl RunState {
    /// The state of a run with `publishers` publishers.
    pub(crate) fn new(publishers: u32) -> Self {
        RunState {
            published: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicBool::new(false),
        }
    }
}

/// What a subscriber does.
#[derive(Debug, Clone)]
pub(crate) struct SubscriberPlan {
    /// The QoS every delivery must come at: min(publish QoS, granted QoS).
    pub(crate) qos: QoS,
    /// The publishers whose messages it receives.
    pub(crate) sources: std::ops::Range<u32>,
    /// Publishers in the run (stamps name one of `0..publishers`).
    pub(crate) publishers: u32,
    /// Stamps count nanoseconds from here.
    pub(crate) base: Instant,
    /// Shared with the publishers.
    pub(crate) state: Arc<RunState>,
    /// Once publishing is over, a subscriber that has received nothing for
    /// this long stops waiting (messages were lost).
    pub(crate) idle: Duration,
    /// Receiving ends here whatever happens.
    pub(crate) deadline: Instant,
}

/// What a subscriber saw.
#[derive(Debug)]
pub(crate) struct SubscriberReport {
    /// Correctness counters.
    pub(crate) tracker: Tracker,
    /// End-to-end latency of every delivery, in nanoseconds.
    pub(crate) latency: Histogram<u64>,
    /// Messages its publishers sent.
    pub(crate) expected: u64,
    /// When the last PUBLISH arrived.
    pub(crate) last_delivery: Option<Instant>,
    /// Why it ended early, if it did.
    pub(crate) error: Option<String>,
}

/// Receives and acknowledges until every message its publishers sent has
/// arrived, or nothing arrives for `plan.idle` after they finished, or
/// `plan.deadline`; then disconnects.
pub(crate) async fn run_subscriber(mut conn: Conn, plan: SubscriberPlan) -> SubscriberReport {
    let mut report = SubscriberReport {
        tracker: Tracker::new(plan.publishers),
        latency: new_histogram(),
        expected: 0,
        last_delivery: None,
        error: None,
    };
    if let Err(e) = subscribe_loop(&mut conn, &plan, &mut report).await {
        report.error = Some(e.to_string());
    }
    conn.disconnect(Instant::now() + Duration::from_secs(1))
        .await;
    report
}

async fn subscribe_loop(
    conn: &mut Conn,
    plan: &SubscriberPlan,
    report: &mut SubscriberReport,
) -> Result<(), LoadError> {
    let Conn {
        stream,
        rbuf,
        wbuf,
        decoder,
    } = conn;
    let (mut rd, mut wr) = stream.split();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut done_at: Option<Instant> = None;
    rbuf.reserve(READ_CHUNK);
    // Bounded: the tick ends the loop by plan.deadline at the latest.
    loop {
        tokio::select! {
            r = wr.write_buf(wbuf), if !wbuf.is_empty() => {
                if r? == 0 {
                    return Err(LoadError::Closed);
                }
            }
            r = rd.read_buf(rbuf) => {
                if r? == 0 {
                    return Err(LoadError::Closed);
                }
                let now = Instant::now();
                let now_ns = now.saturating_duration_since(plan.base).as_nanos() as u64;
                while let Some(p) = decoder.decode(rbuf)? {
                    match p {
                        Packet::Publish(p) => {
                            let stamp = Stamp::read(&p.payload);
                            report.tracker.record(stamp, p.qos_level() == plan.qos);
                            if let Some(s) = stamp {
                                let _ = report.latency.record(now_ns.saturating_sub(s.sent_ns).max(1));
                            }
                            report.last_delivery = Some(now);
                            match p.qos {
                                QosPid::AtMostOnce => {}
                                QosPid::AtLeastOnce(id) => {
                                    Packet::<Bytes>::PubAck(Ack::new(id)).encode(VERSION, wbuf)?;
                                }
                                QosPid::ExactlyOnce(id) => {
                                    Packet::<Bytes>::PubRec(Ack::new(id)).encode(VERSION, wbuf)?;
                                }
                            }
                        }
                        Packet::PubRel(a) => {
                            Packet::<Bytes>::PubComp(Ack::new(a.id)).encode(VERSION, wbuf)?;
                        }
                        Packet::PingResp => {}
                        p => return Err(LoadError::Unexpected(p.packet_type())),
                    }
                }
                if rbuf.capacity() - rbuf.len() < 1024 {
                    rbuf.reserve(READ_CHUNK);
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if plan.state.done.load(Ordering::Acquire) {
                    let done = *done_at.get_or_insert(now);
                    report.expected = plan
                        .sources
                        .clone()
                        .filter_map(|i| plan.state.published.get(i as usize))
                        .map(|n| n.load(Ordering::Acquire))
                        .sum();
                    let distinct = report.tracker.counts().distinct;
                    if distinct >= report.expected && wbuf.is_empty() {
                        return Ok(());
                    }
                    let last = report.last_delivery.map_or(done, |l| l.max(done));
                    if now.saturating_duration_since(last) >= plan.idle {
                        return Ok(());
                    }
                }
                if now >= plan.deadline {
                    return Err(LoadError::Timeout("the remaining deliveries"));
                }
            }
        }
    }
}

/// What an idle connection saw while held.
#[derive(Debug, Default)]
pub(crate) struct IdleReport {
    /// PINGREQ sent.
    pub(crate) pings: u64,
    /// PINGRESP received.
    pub(crate) pongs: u64,
    /// Why it ended before it was told to stop, if it did.
    pub(crate) error: Option<String>,
}

/// Holds a connection open, sending PINGREQ every `ping_every`, until `stop`
/// turns true or `deadline`; then disconnects.
pub(crate) async fn hold_idle(
    mut conn: Conn,
    ping_every: Duration,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> IdleReport {
    let mut report = IdleReport::default();
    let mut next_ping = Instant::now() + ping_every;
    // Bounded: ends on `stop` or by the deadline.
    let result: Result<(), LoadError> = async {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            tokio::select! {
                r = conn.stream.read_buf(&mut conn.rbuf) => {
                    if r? == 0 {
                        return Err(LoadError::Closed);
                    }
                    while let Some(p) = conn.decoder.decode(&mut conn.rbuf)? {
                        match p {
                            Packet::PingResp => report.pongs += 1,
                            p => return Err(LoadError::Unexpected(p.packet_type())),
                        }
                    }
                }
                _ = sleep_until(next_ping.min(deadline)) => {
                    if Instant::now() >= deadline {
                        return Err(LoadError::Timeout("the end of the hold"));
                    }
                    Packet::<Bytes>::PingReq.encode(VERSION, &mut conn.wbuf)?;
                    conn.flush(deadline).await?;
                    report.pings += 1;
                    next_ping += ping_every;
                }
                r = stop.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        report.error = Some(e.to_string());
    }
    conn.disconnect(Instant::now() + Duration::from_secs(2))
        .await;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(bytes: &[u8]) -> Packet {
        let mut buf = BytesMut::from(bytes);
        let p = Decoder::with_version(VERSION)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert!(buf.is_empty(), "exactly one packet");
        p
    }

    #[test]
    fn template_copies_decode_with_their_id_and_stamp() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t = PublishTemplate::new("bench/fan-in/3", qos, 64).unwrap();
            let mut out = BytesMut::new();
            for (n, id) in [(0u64, 1u16), (1, 0x1234), (2, u16::MAX)] {
                let stamp = Stamp {
                    publisher: 3,
                    seq: n,
                    sent_ns: 1_000 + n,
                };
                t.write(&mut out, PacketId::new(id).unwrap(), &stamp);
                let Packet::Publish(p) = decode_one(&out) else {
                    panic!("not a PUBLISH");
                };
                out.clear();
                assert_eq!(p.qos_level(), qos);
                assert_eq!(
                    p.packet_id().map(PacketId::get),
                    (qos != QoS::AtMostOnce).then_some(id)
                );
                assert_eq!(p.topic.unwrap().as_str(), "bench/fan-in/3");
                assert_eq!(p.payload.len(), 64);
                assert_eq!(Stamp::read(&p.payload), Some(stamp));
                assert!(!p.retain && !p.dup);
            }
        }
    }

    #[test]
    fn template_refuses_a_payload_without_room_for_the_stamp() {
        assert!(matches!(
            PublishTemplate::new("t", QoS::AtMostOnce, STAMP_LEN - 1),
            Err(LoadError::PayloadTooShort(19))
        ));
        assert!(PublishTemplate::new("t", QoS::AtMostOnce, STAMP_LEN).is_ok());
        assert!(matches!(
            PublishTemplate::new("a/+", QoS::AtMostOnce, 64),
            Err(LoadError::Topic(_))
        ));
    }

    #[test]
    fn template_handles_a_long_remaining_length() {
        // 200 KiB payload: a three-byte remaining length before the topic.
        let t = PublishTemplate::new("big", QoS::AtLeastOnce, 200 * 1024).unwrap();
        let mut out = BytesMut::new();
        let stamp = Stamp {
            publisher: 0,
            seq: 9,
            sent_ns: 9,
        };
        t.write(&mut out, PacketId::new(7).unwrap(), &stamp);
        let Packet::Publish(p) = decode_one(&out) else {
            panic!("not a PUBLISH");
        };
        assert_eq!(p.packet_id().map(PacketId::get), Some(7));
        assert_eq!(Stamp::read(&p.payload), Some(stamp));
    }
}
