//! The `server_connection` target: one `Connection<Server>` against a
//! hostile client.
//!
//! The client's bytes (packets aimed at the connection's identifiers and
//! topics, arbitrary valid packets, raw bytes) arrive cut at arbitrary
//! points; time moves in arbitrary steps; the application answers as an
//! application may: accepts or rejects the CONNECT (resuming the session of
//! an earlier connection or not), acknowledges publishes, answers
//! subscriptions, delivers messages, sends AUTH, closes. After every step:
//!
//! - what `poll_transmit` / `poll_frames` hand out decodes, in the
//!   connection's version, as packets a client may receive, within the
//!   client's Maximum Packet Size, CONNACK first and nothing after a
//!   DISCONNECT or a refusing CONNACK;
//! - no event follows `Closed`, which comes once; nothing is written once
//!   the connection is closed; nothing the client sends after CONNECT is
//!   handed over before the application accepts it;
//! - the session stays within `max_queued` and `max_inflight`, and the
//!   packets written stay within what the input and the application's
//!   calls account for (one answer per packet or call, plus resends);
//! - after `handle_timeout(now)`, `poll_timeout` is not in the past, and
//!   repeating `handle_timeout(now)` settles at once (no busy loop);
//! - every publish and subscription handed to the application can be
//!   answered once, and an answer refused for a bad reason code leaves the
//!   request answerable.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, BytesMut};
use core::time::Duration;
use mqtt_codec::{
    ConnAckProps, PacketId, ProtocolVersion, ReasonCode, Str, SubscriptionId, MAX_PACKET_SIZE,
};
use mqtt_session::{
    Connection, DeliverError, DeliveryOptions, Instant, Limits, Message, Server, ServerConfig,
    ServerEvent, Session, UsageError,
};

use crate::gen::{self, LimitsSpec, ToServer};
use crate::wire::{peer_max, Output, Reader};

#[derive(Arbitrary, Debug)]
struct Input {
    limits: LimitsSpec,
    connect_timeout: u8,
    maximum_qos: u8,
    retain_available: bool,
    max_keep_alive: Option<u8>,
    /// Control characters in strings taken, not refused.
    allow_control_characters: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The client's bytes join what it has not delivered yet; the first
    /// `cut` bytes of that arrive now.
    Send {
        packet: ToServer,
        cut: u16,
    },
    /// Everything not delivered yet arrives.
    Flush,
    /// Time passes; the connection's deadlines are handled.
    Time(u16),
    Accept(AcceptSpec),
    Reject(u8),
    Ack {
        pick: u8,
        reason: u8,
    },
    Suback {
        pick: u8,
        reasons: Vec<u8>,
    },
    Unsuback {
        pick: u8,
        reasons: Vec<u8>,
    },
    Deliver(DeliverSpec),
    Auth {
        reason: u8,
        method: bool,
    },
    Close(u8),
    Eof,
    Transmit {
        limit: Option<u16>,
    },
    Frames {
        budget: u16,
    },
    /// The connection ends (EOF if still open) and a new one starts; its
    /// session may be resumed by the next accept.
    Reconnect,
}

#[derive(Arbitrary, Debug)]
struct AcceptSpec {
    resume: bool,
    session_expiry: Option<u8>,
    server_keep_alive: Option<u8>,
    assigned: bool,
    reason_string: bool,
}

#[derive(Arbitrary, Debug)]
pub(crate) struct DeliverSpec {
    topic: u8,
    qos: u8,
    retain: bool,
    payload: u8,
    expiry: Option<u8>,
    subscription_id: Option<u8>,
}

impl DeliverSpec {
    pub(crate) fn message(&self, now: Instant) -> (Message, DeliveryOptions) {
        let q = gen::qos(self.qos);
        let mut msg = Message::new(
            gen::topic(self.topic),
            vec![b'd'; usize::from(self.payload % 64)],
            q,
            self.retain,
        );
        msg.props.expires_at = self
            .expiry
            .map(|e| now.saturating_add(Duration::from_millis(u64::from(e) * 100)));
        let opts = DeliveryOptions {
            qos: q,
            retain: self.retain,
            subscription_identifiers: self
                .subscription_id
                .and_then(|i| SubscriptionId::new(u32::from(i) + 1))
                .into_iter()
                .collect(),
        };
        (msg, opts)
    }
}

/// Runs one input; see the [module documentation](self).
pub fn server_connection(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::debug(&input);
    let limits = input.limits.build();
    let config = ServerConfig {
        limits: limits.clone(),
        connect_timeout: Duration::from_millis(u64::from(input.connect_timeout) * 250),
        maximum_qos: gen::qos(input.maximum_qos),
        retain_available: input.retain_available,
        max_keep_alive: input.max_keep_alive.map(|k| u16::from(k % 16)),
        allow_control_characters: input.allow_control_characters,
        partial_packet_timeout: Duration::from_secs(30),
    };
    let mut h = Harness::new(config, limits);
    for op in input.ops.iter().take(256) {
        h.step(op);
    }
    h.finish();
}

struct Harness {
    config: ServerConfig,
    limits: Limits,
    now: Instant,
    conn: Connection<Server>,
    out: Output,
    /// The client's Maximum Packet Size, from its CONNECT.
    peer_max: u32,
    connect_seen: bool,
    accepted: bool,
    closed: bool,
    /// Publishes handed over and not answered, and subscriptions.
    unacked: Vec<PacketId>,
    subs: Vec<PacketId>,
    unsubs: Vec<PacketId>,
    /// Client bytes not delivered yet, and delivered but not consumed.
    pending: Vec<u8>,
    rbuf: BytesMut,
    stored: Option<Session>,
    /// What accounts for output: input bytes (a packet takes two at least),
    /// application calls, timer runs, resent messages, connections.
    in_bytes: usize,
    calls: usize,
    resent: usize,
    connections: usize,
    out_packets: usize,
}

impl Harness {
    fn new(config: ServerConfig, limits: Limits) -> Harness {
        let now = Instant::ZERO;
        Harness {
            conn: Connection::<Server>::new(config.clone(), now),
            config,
            limits,
            now,
            out: Output::new(Reader::Client),
            peer_max: MAX_PACKET_SIZE,
            connect_seen: false,
            accepted: false,
            closed: false,
            unacked: Vec::new(),
            subs: Vec::new(),
            unsubs: Vec::new(),
            pending: Vec::new(),
            rbuf: BytesMut::new(),
            stored: None,
            in_bytes: 0,
            calls: 0,
            resent: 0,
            connections: 1,
            out_packets: 0,
        }
    }

    fn step(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Send { packet, cut } => {
                let bytes = packet.bytes(self.conn.version());
                self.pending.extend_from_slice(&bytes);
                let n = usize::from(*cut) % (self.pending.len() + 1);
                self.deliver_bytes(n);
            }
            Op::Flush => self.deliver_bytes(self.pending.len()),
            Op::Time(step) => {
                self.now = gen::advance(self.now, *step);
                self.calls += 1;
                settle_timeout(&mut self.conn, self.now);
            }
            Op::Accept(a) => self.accept(a),
            Op::Reject(r) => {
                self.calls += 1;
                self.conn.reject(now, gen::reason(*r));
            }
            Op::Ack { pick, reason } => self.ack(*pick, *reason),
            Op::Suback { pick, reasons } => self.suback(*pick, reasons, false),
            Op::Unsuback { pick, reasons } => self.suback(*pick, reasons, true),
            Op::Deliver(d) => {
                self.calls += 1;
                let (msg, opts) = d.message(now);
                let qos = opts.qos;
                let connected = self.conn.is_connected();
                match self.conn.deliver(now, msg, opts) {
                    Ok(id) => {
                        assert!(connected, "deliver succeeded while not connected");
                        assert_eq!(id.is_some(), qos != mqtt_codec::QoS::AtMostOnce);
                    }
                    Err(DeliverError::Closed) => assert!(!connected, "deliver refused: closed"),
                    Err(_) => assert!(connected),
                }
            }
            Op::Auth { reason, method } => {
                self.calls += 1;
                let mut props = mqtt_codec::AuthProps::default();
                if *method {
                    props.authentication_method = Some(Str::from_static(gen::AUTH_METHOD));
                }
                let _ = self.conn.auth(now, gen::reason(*reason), props);
            }
            Op::Close(r) => {
                self.calls += 1;
                self.conn.close(now, gen::reason(*r));
            }
            Op::Eof => {
                self.conn.handle_eof(now);
                self.events();
                assert!(self.closed && self.conn.is_closed(), "EOF closes");
            }
            Op::Transmit { limit } => self.transmit(limit.map(usize::from)),
            Op::Frames { budget } => self.frames(usize::from(*budget)),
            Op::Reconnect => self.reconnect(),
        }
        self.events();
        self.check_bounds();
    }

    fn deliver_bytes(&mut self, n: usize) {
        self.in_bytes += n;
        self.rbuf.extend_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.conn.handle_read(self.now, &mut self.rbuf);
        if self.closed || self.conn.is_closed() {
            // A closed connection reads nothing more.
            self.rbuf.clear();
        }
        assert!(
            self.rbuf.len() < self.limits.max_packet_size as usize + 8,
            "the read buffer keeps {} bytes, more than a packet",
            self.rbuf.len()
        );
    }

    fn accept(&mut self, a: &AcceptSpec) {
        self.calls += 1;
        let mut props = ConnAckProps::default();
        props.session_expiry_interval = a.session_expiry.map(|s| u32::from(s) * 10);
        props.server_keep_alive = a.server_keep_alive.map(|k| u16::from(k % 8));
        props.assigned_client_identifier = a.assigned.then(|| Str::from_static("assigned"));
        props.reason_string = a.reason_string.then(|| Str::from_static("welcome"));
        let session = if a.resume { self.stored.take() } else { None };
        if let Some(s) = &session {
            self.resent += s.inflight() + s.queued();
        }
        let due = self.connect_seen && !self.accepted && !self.closed;
        match self.conn.accept(self.now, session, props) {
            Ok(()) => {
                assert!(due, "accept succeeded with no CONNECT to answer");
                self.accepted = true;
            }
            // No CONNACK fits the client's Maximum Packet Size: closed.
            Err(UsageError::PacketTooLarge { .. }) if due => {
                self.events();
                assert!(self.closed, "a CONNACK too large, and no Closed");
            }
            Err(e) => assert!(!due, "accept refused: {e:?}"),
        }
    }

    fn ack(&mut self, pick: u8, reason: u8) {
        self.calls += 1;
        let reason = gen::reason(reason);
        if self.unacked.is_empty() {
            let id = gen::packet_id(pick);
            assert!(
                self.conn.ack(id, reason).is_err(),
                "ack of {id:?}, never handed over"
            );
            return;
        }
        let id = self.unacked.remove(usize::from(pick) % self.unacked.len());
        match self.conn.ack(id, reason) {
            Ok(()) => {}
            // A reason PUBACK/PUBREC cannot carry: still to be answered.
            Err(UsageError::Encode(_)) => self.unacked.push(id),
            Err(UsageError::NotConnected) if self.closed => {}
            Err(e) => panic!("ack of a delivered publish {id:?} refused: {e:?}"),
        }
    }

    fn suback(&mut self, pick: u8, reasons: &[u8], unsubscribe: bool) {
        self.calls += 1;
        let reasons: Vec<ReasonCode> = reasons.iter().take(8).map(|&r| gen::reason(r)).collect();
        let list = if unsubscribe {
            &mut self.unsubs
        } else {
            &mut self.subs
        };
        if list.is_empty() {
            return;
        }
        let id = list.remove(usize::from(pick) % list.len());
        let r = if unsubscribe {
            self.conn.unsuback(id, &reasons)
        } else {
            self.conn.suback(id, &reasons)
        };
        match r {
            Ok(()) => {}
            // Reasons that do not encode: the request is still to be answered.
            Err(UsageError::Encode(_)) => {
                let list = if unsubscribe {
                    &mut self.unsubs
                } else {
                    &mut self.subs
                };
                list.push(id);
            }
            Err(UsageError::NotConnected) if self.closed => {}
            Err(e) => panic!("answer to a subscription request {id:?} refused: {e:?}"),
        }
    }

    fn transmit(&mut self, limit: Option<usize>) {
        let version = self.conn.version();
        let was_closed = self.conn.is_closed();
        let mut buf = Vec::new();
        let n = match limit {
            Some(l) => self.conn.poll_transmit(self.now, &mut (&mut buf).limit(l)),
            None => self.conn.poll_transmit(self.now, &mut buf),
        };
        assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
        if let Some(l) = limit {
            assert!(n <= l, "poll_transmit wrote {n} bytes past its limit {l}");
        }
        assert!(n == 0 || !was_closed, "{n} bytes written after the close");
        let packets = self.out.bytes(version, self.peer_max(version), &buf);
        self.account(packets);
    }

    fn frames(&mut self, budget: usize) {
        let version = self.conn.version();
        let was_closed = self.conn.is_closed();
        let mut frames = Vec::new();
        let n = self.conn.poll_frames(self.now, &mut frames, budget);
        assert!(n == 0 || !was_closed, "frames handed out after the close");
        assert!(
            frames.len() <= 1 || n <= budget,
            "{} frames of {n} bytes past the budget {budget}",
            frames.len()
        );
        let packets = self.out.frames(version, self.peer_max(version), &frames, n);
        self.account(packets);
    }

    fn peer_max(&self, version: ProtocolVersion) -> u32 {
        if version.is_v5() {
            self.peer_max
        } else {
            MAX_PACKET_SIZE
        }
    }

    fn account(&mut self, packets: usize) {
        self.out_packets += packets;
        let budget = self.in_bytes / 2 + self.calls + self.resent + 2 * self.connections;
        assert!(
            self.out_packets <= budget,
            "{} packets written; input and calls account for {budget}",
            self.out_packets
        );
    }

    fn reconnect(&mut self) {
        if !self.closed {
            self.conn.handle_eof(self.now);
            self.events();
        }
        let _ = self.conn.poll_transmit(self.now, &mut Vec::new());
        if let Some(s) = self.conn.take_session() {
            self.stored = Some(s);
        }
        self.conn = Connection::<Server>::new(self.config.clone(), self.now);
        self.out = Output::new(Reader::Client);
        self.peer_max = MAX_PACKET_SIZE;
        self.connect_seen = false;
        self.accepted = false;
        self.closed = false;
        self.unacked.clear();
        self.subs.clear();
        self.unsubs.clear();
        self.pending.clear();
        self.rbuf.clear();
        self.connections += 1;
    }

    fn events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            assert!(!self.closed, "an event after Closed: {ev:?}");
            match ev {
                ServerEvent::Connect(c) => {
                    assert!(!self.connect_seen, "a second Connect event");
                    self.connect_seen = true;
                    self.peer_max = peer_max(c.props.maximum_packet_size);
                }
                ServerEvent::Publish { id, .. } => {
                    assert!(self.accepted, "a publish handed over before the accept");
                    if let Some(id) = id {
                        if !self.unacked.contains(&id) {
                            self.unacked.push(id);
                        }
                    }
                }
                ServerEvent::Subscribe { id, filters, .. } => {
                    assert!(
                        self.accepted,
                        "a subscription handed over before the accept"
                    );
                    assert!(!filters.is_empty(), "SUBSCRIBE without filters");
                    self.subs.push(id);
                }
                ServerEvent::Unsubscribe { id, filters } => {
                    assert!(self.accepted, "an unsubscription before the accept");
                    assert!(!filters.is_empty(), "UNSUBSCRIBE without filters");
                    self.unsubs.push(id);
                }
                ServerEvent::Auth { .. } => assert!(self.connect_seen, "AUTH before CONNECT"),
                ServerEvent::Closed(_) => self.closed = true,
            }
        }
        if self.closed {
            assert!(!self.conn.is_connected(), "connected after Closed");
            assert_eq!(self.conn.poll_timeout(), None, "a deadline after Closed");
        }
    }

    fn check_bounds(&self) {
        if let Some(s) = self.conn.session() {
            assert!(
                s.queued() <= self.limits.max_queued,
                "{} messages queued, limit {}",
                s.queued(),
                self.limits.max_queued
            );
            let window = usize::from(self.limits.max_inflight).max(1);
            assert!(
                s.inflight() <= window,
                "{} messages in flight, window {window}",
                s.inflight()
            );
        }
    }

    /// The transport ends: everything is closed and drained.
    fn finish(&mut self) {
        self.deliver_bytes(self.pending.len());
        self.events();
        self.transmit(None);
        self.conn.handle_eof(self.now);
        self.events();
        assert!(self.closed, "no Closed event after EOF");
        assert!(self.conn.is_closed());
        self.transmit(None);
        assert!(self.conn.poll_event().is_none());
    }
}

/// `handle_timeout(now)` as an adapter runs it: afterwards the next deadline
/// is not in the past, and if it is `now` (a timer that fires at once), a
/// second run settles it: an adapter never spins on a deadline.
pub(crate) fn settle_timeout<R: mqtt_session::Role>(conn: &mut Connection<R>, now: Instant) {
    conn.handle_timeout(now);
    for _ in 0..2 {
        match conn.poll_timeout() {
            Some(t) if t <= now => {
                assert_eq!(
                    t, now,
                    "poll_timeout {t:?} in the past after handle_timeout({now:?})"
                );
                conn.handle_timeout(now);
            }
            _ => return,
        }
    }
    panic!("poll_timeout stays at {now:?} however often handle_timeout runs");
}
