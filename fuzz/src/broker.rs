//! The `broker` target: one `Broker` with small limits, several hostile
//! clients at once.
//!
//! Connections open (some refused at the limit), send bytes or packets
//! their adapter decoded (`handle_packets`, with the decoding error that
//! ends the stream), cut at arbitrary points and interleaved; they end by
//! EOF or are closed by the broker; time moves in arbitrary steps (keep
//! alive, CONNECT timeouts, will delays, session expiry, `$SYS`, stalled
//! subscribers); the broker publishes messages of its own; the adapter
//! writes some connections and not others, as bytes or as frames. The
//! client identifiers and topics come from small sets, so clients take over
//! each other's sessions and publish to each other's subscriptions. After
//! every step:
//!
//! - at most `max_connections` are open, and `open` refuses exactly at the
//!   limit;
//! - each connection's `BrokerEvent::Closed` comes once, for a connection
//!   that was opened, and EOF or `close` of an open connection brings it at
//!   once;
//! - everything `poll_transmit` / `poll_frames` hand out decodes as packets
//!   a client may receive, in the connection's version, within the
//!   client's Maximum Packet Size, CONNACK first, nothing after DISCONNECT;
//! - what one write takes from a connection is bounded by the limits (the
//!   QoS 0 and session queues, the in-flight window) plus the answers its
//!   own input calls for, however much was published meanwhile;
//! - `Closed` is the last word on a connection: once it has come and the
//!   connection has been written out in full, nothing more is written;
//! - what the broker holds (`Broker::sizes`) stays within its limits and
//!   what the input made: connections, sessions, subscriptions, retained
//!   messages, timer entries;
//! - `poll_writable` names each connection once per change and never loops,
//!   and after `handle_timeout(now)` the next deadline is later than `now`.
//!
//! At the end every connection gets EOF: each has had exactly one `Closed`,
//! and once written out none is left; a month later every session has
//! expired (the expiry is capped), with its subscriptions.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, BytesMut};
use core::time::Duration;
use mqtt_codec::{Decoder, ProtocolVersion, ReasonCode, TopicFilter};
use mqtt_router::broker::{
    Access, AuthAnswer, AuthConfig, AuthRequest, AuthStep, AuthSuccess, Broker, BrokerConfig,
    BrokerEvent, ConnId, OpenError, PeerInfo, QueueFullPolicy, Rights, Rule,
};
use mqtt_session::{Instant, Limits, ServerConfig};

use crate::gen::{self, LimitsSpec, ToServer};
use crate::server::DeliverSpec;
use crate::wire::{peer_max, Output, Reader};

/// Connections one input may open, at most.
const MAX_OPENED: usize = 12;

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u8,
    limits: LimitsSpec,
    max_connections: u8,
    max_session_expiry: u8,
    max_retained: u8,
    max_retained_payload: u8,
    drop_new: bool,
    sys_interval: Option<u8>,
    connect_timeout: u8,
    maximum_qos: u8,
    retain_available: bool,
    max_keep_alive: Option<u8>,
    strict_policy: bool,
    /// Control characters in strings taken, not refused.
    allow_control_characters: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A transport is accepted; `decoded`: its adapter decodes the bytes
    /// itself and hands over packets.
    Open {
        decoded: bool,
    },
    Send {
        conn: u8,
        packet: ToServer,
        cut: u16,
    },
    Flush {
        conn: u8,
    },
    Eof {
        conn: u8,
    },
    Close {
        conn: u8,
        reason: u8,
    },
    Time(u16),
    Publish(DeliverSpec),
    Write {
        conn: u8,
        limit: Option<u16>,
    },
    Frames {
        conn: u8,
        budget: u16,
    },
    /// The adapter's loop: every writable connection written out.
    WriteAll,
}

/// The fuzzed driver's answer to an authentication request: the user
/// `deny` is refused; a client with an Authentication Method gets one more
/// round trip; everyone else every right, or (strict) every right but
/// topics under `x`.
fn answer(req: &AuthRequest, strict: bool) -> AuthAnswer {
    if req.username().is_some_and(|u| u.as_str() == "deny") {
        return AuthAnswer::Refuse(ReasonCode(0x87));
    }
    if req.method().is_some() && req.step() == AuthStep::Connect {
        return AuthAnswer::Continue(bytes::Bytes::from_static(b"more"));
    }
    let rights = if strict {
        let rule = |f: &'static str, a| Rule::new(TopicFilter::from_static(f), a);
        Rights::from_rules([
            rule("#", Access::ReadWrite),
            rule("x", Access::Deny),
            rule("x/#", Access::Deny),
        ])
    } else {
        Rights::allow_all()
    };
    AuthAnswer::Success(AuthSuccess::new(req.username().cloned(), rights))
}

/// One connection as its adapter and its client see it.
struct Conn {
    id: ConnId,
    decoded: Option<Decoder>,
    /// The adapter's decoder refused the stream: nothing more is read.
    ended: bool,
    pending: Vec<u8>,
    rbuf: BytesMut,
    in_bytes: usize,
    closed: bool,
    /// Written out in full after `Closed`: nothing more may come.
    drained: bool,
    out: Output,
    /// The client's Maximum Packet Size, when its first bytes were a 5.0
    /// CONNECT naming one.
    peer_max: u32,
}

/// Runs one input; see the [module documentation](self).
pub fn broker(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::debug(&input);
    let limits = input.limits.build();
    let config = BrokerConfig {
        seed: u64::from(input.seed),
        server: ServerConfig {
            limits: limits.clone(),
            connect_timeout: Duration::from_millis(u64::from(input.connect_timeout) * 250),
            maximum_qos: gen::qos(input.maximum_qos),
            retain_available: input.retain_available,
            max_keep_alive: input.max_keep_alive.map(|k| u16::from(k % 16)),
            allow_control_characters: input.allow_control_characters,
            partial_packet_timeout: Duration::from_secs(30),
        },
        max_connections: usize::from(input.max_connections % 4) + 1,
        max_session_expiry: u32::from(input.max_session_expiry % 8) * 5,
        max_retained: usize::from(input.max_retained % 4),
        max_retained_payload: usize::from(input.max_retained_payload),
        queue_full: if input.drop_new {
            QueueFullPolicy::DropNew
        } else {
            QueueFullPolicy::DropOldest
        },
        sys_interval: input
            .sys_interval
            .map(|s| Duration::from_secs(u64::from(s % 30) + 1)),
        auth: AuthConfig {
            required: input.strict_policy,
            methods: vec!["FUZZ".to_owned()],
        },
        ..BrokerConfig::default()
    };
    let mut h = Harness {
        max_connections: config.max_connections,
        max_retained: config.max_retained,
        steps: 0,
        strict: input.strict_policy,
        broker: Broker::new(config),
        limits,
        now: Instant::ZERO,
        conns: Vec::new(),
    };
    for op in input.ops.iter().take(256) {
        h.step(op);
    }
    h.finish();
}

struct Harness {
    broker: Broker,
    /// The driver's rights are strict (see [`answer`]).
    strict: bool,
    limits: Limits,
    max_connections: usize,
    max_retained: usize,
    /// Steps run so far.
    steps: usize,
    now: Instant,
    conns: Vec<Conn>,
}

impl Harness {
    fn pick(&self, i: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(i) % self.conns.len())
    }

    fn step(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Open { decoded } => self.open(*decoded),
            Op::Send { conn, packet, cut } => {
                let Some(i) = self.pick(*conn) else { return };
                let c = &mut self.conns[i];
                let version = self.broker.version(c.id).unwrap_or(ProtocolVersion::V311);
                let bytes = packet.bytes(version);
                if let (ToServer::Connect(spec), true) = (packet, c.in_bytes == 0) {
                    let connect = spec.build();
                    if connect.protocol.is_v5() && c.pending.is_empty() && !bytes.is_empty() {
                        c.peer_max = peer_max(connect.props.maximum_packet_size);
                    }
                }
                c.pending.extend_from_slice(&bytes);
                let n = usize::from(*cut) % (c.pending.len() + 1);
                self.deliver(i, n);
            }
            Op::Flush { conn } => {
                let Some(i) = self.pick(*conn) else { return };
                let n = self.conns[i].pending.len();
                self.deliver(i, n);
            }
            Op::Eof { conn } => {
                let Some(i) = self.pick(*conn) else { return };
                let live = self.live(i);
                self.broker.handle_eof(self.conns[i].id, now);
                self.events();
                assert!(!live || self.conns[i].closed, "EOF brought no Closed");
            }
            Op::Close { conn, reason } => {
                let Some(i) = self.pick(*conn) else { return };
                let live = self.live(i);
                self.broker
                    .close(self.conns[i].id, now, gen::reason(*reason));
                self.events();
                assert!(!live || self.conns[i].closed, "close brought no Closed");
            }
            Op::Time(step) => {
                self.now = gen::advance(self.now, *step);
                self.broker.handle_timeout(self.now);
                if let Some(t) = self.broker.poll_timeout() {
                    assert!(t > self.now, "deadline {t:?} not after {:?}", self.now);
                }
            }
            Op::Publish(d) => {
                let (msg, _) = d.message(now);
                let _ = self.broker.publish(now, msg);
            }
            Op::Write { conn, limit } => {
                let Some(i) = self.pick(*conn) else { return };
                self.write(i, limit.map(usize::from));
            }
            Op::Frames { conn, budget } => {
                let Some(i) = self.pick(*conn) else { return };
                self.frames(i, usize::from(*budget));
            }
            Op::WriteAll => self.write_all(),
        }
        self.events();
        self.steps += 1;
        self.check_sizes();
    }

    /// What the broker holds stays within its limits and what the input
    /// made: open connections within `max_connections`, a session per
    /// connection opened at most, a subscription per four bytes read,
    /// retained messages within `max_retained`, and the timer heap growing
    /// by a few entries per step at most (stale entries included).
    fn check_sizes(&self) {
        let s = self.broker.sizes();
        assert_eq!(s.connections, self.broker.connection_count());
        assert!(
            s.connections <= self.max_connections,
            "{} connections open, limit {}",
            s.connections,
            self.max_connections
        );
        assert!(
            s.sessions <= self.conns.len(),
            "{} sessions from {} connections",
            s.sessions,
            self.conns.len()
        );
        // A subscription takes four bytes of SUBSCRIBE at least (a filter
        // of one character, its length and its options).
        let read: usize = self.conns.iter().map(|c| c.in_bytes).sum();
        assert!(
            s.subscriptions <= read / 4,
            "{} subscriptions from {read} bytes read",
            s.subscriptions,
        );
        assert!(
            s.retained <= self.max_retained,
            "{} retained, limit {}",
            s.retained,
            self.max_retained
        );
        assert!(
            s.timers <= 16 + 4 * self.steps,
            "{} timers after {} steps",
            s.timers,
            self.steps
        );
    }

    /// Whether connection `i` is open and has not been reported closed.
    fn live(&self, i: usize) -> bool {
        let c = &self.conns[i];
        !c.closed && self.broker.version(c.id).is_some()
    }

    fn open(&mut self, decoded: bool) {
        if self.conns.len() >= MAX_OPENED {
            return;
        }
        let open = self.broker.connection_count();
        match self.broker.open(self.now, PeerInfo::default()) {
            Ok(id) => {
                assert!(open < self.max_connections, "opened past the limit");
                assert!(self.conns.iter().all(|c| c.id != id), "{id:?} reused");
                let decoder = self.broker.decoder();
                self.conns.push(Conn {
                    id,
                    decoded: decoded.then_some(decoder),
                    ended: false,
                    pending: Vec::new(),
                    rbuf: BytesMut::new(),
                    in_bytes: 0,
                    closed: false,
                    drained: false,
                    out: Output::new(Reader::Client),
                    peer_max: mqtt_codec::MAX_PACKET_SIZE,
                });
            }
            Err(OpenError::TooManyConnections(n)) => {
                assert_eq!(n, self.max_connections);
                assert_eq!(open, n, "refused below the limit");
            }
            Err(e) => panic!("open refused: {e:?}"),
        }
    }

    /// The first `n` bytes not yet delivered on connection `i` arrive.
    fn deliver(&mut self, i: usize, n: usize) {
        let now = self.now;
        let c = &mut self.conns[i];
        c.in_bytes += n;
        if c.ended {
            c.pending.drain(..n);
            return;
        }
        c.rbuf.extend_from_slice(&c.pending[..n]);
        c.pending.drain(..n);
        let id = c.id;
        match &mut c.decoded {
            None => self.broker.handle_read(id, now, &mut c.rbuf),
            Some(decoder) => {
                let mut packets = Vec::new();
                let mut error = None;
                loop {
                    let before = c.rbuf.len();
                    match decoder.decode(&mut c.rbuf) {
                        Ok(Some(p)) => packets.push((p, before - c.rbuf.len())),
                        Ok(None) => break,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                if error.is_some() {
                    // The stream is over; the adapter reads no more.
                    c.rbuf.clear();
                    c.ended = true;
                }
                if !packets.is_empty() || error.is_some() {
                    self.broker.handle_packets(id, now, packets, error);
                }
            }
        }
    }

    /// The bound on what one write may take from connection `i`.
    fn write_bound(&self, i: usize) -> usize {
        let l = &self.limits;
        let window = usize::from(l.max_inflight).max(1);
        let qos0 = l.max_queued.min(l.max_queued_qos0);
        qos0 + l.max_queued + 2 * window + self.conns[i].in_bytes / 2 + 8
    }

    fn write(&mut self, i: usize, limit: Option<usize>) {
        let now = self.now;
        let id = self.conns[i].id;
        let version = self.broker.version(id);
        let mut buf = Vec::new();
        let n = match limit {
            Some(l) => self.broker.poll_transmit(id, now, &mut (&mut buf).limit(l)),
            None => self.broker.poll_transmit(id, now, &mut buf),
        };
        assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
        let c = &mut self.conns[i];
        assert!(
            !c.drained || n == 0,
            "{n} bytes written after Closed and the last write"
        );
        c.drained |= c.closed && limit.is_none();
        let Some(version) = version else {
            assert_eq!(n, 0, "bytes written for a connection that is gone");
            return;
        };
        let bound = self.write_bound(i);
        let c = &mut self.conns[i];
        let packets = c.out.bytes(version, c.peer_max, &buf);
        assert!(
            packets <= bound,
            "one write took {packets} packets, bound {bound}"
        );
    }

    fn frames(&mut self, i: usize, budget: usize) {
        let now = self.now;
        let id = self.conns[i].id;
        let mut frames = Vec::new();
        let Some(batch) = self.broker.poll_frames(id, now, &mut frames, budget) else {
            assert!(frames.is_empty(), "frames for a connection that is gone");
            return;
        };
        assert!(
            !self.conns[i].drained || frames.is_empty(),
            "frames handed out after Closed and the last write"
        );
        assert!(
            frames.len() <= 1 || batch.wire_len <= budget,
            "past the budget"
        );
        let bound = self.write_bound(i);
        let c = &mut self.conns[i];
        let packets = c
            .out
            .frames(batch.version, c.peer_max, &frames, batch.wire_len);
        assert!(
            packets <= bound,
            "one write took {packets} packets, bound {bound}"
        );
    }

    fn write_all(&mut self) {
        let mut seen = Vec::new();
        while let Some(id) = self.broker.poll_writable() {
            assert!(
                !seen.contains(&id),
                "{id:?} writable twice without a change"
            );
            seen.push(id);
            let i = self
                .conns
                .iter()
                .position(|c| c.id == id)
                .unwrap_or_else(|| panic!("{id:?} writable, never opened"));
            self.write(i, None);
            self.events();
        }
    }

    fn events(&mut self) {
        while let Some(req) = self.broker.poll_auth() {
            let a = answer(&req, self.strict);
            // Stale answers are the driver's normal case.
            let _ = self.broker.answer_auth(req.ticket(), self.now, a);
        }
        while let Some(ev) = self.broker.poll_event() {
            let id = match ev {
                BrokerEvent::Closed { id, .. } => id,
                // An accepted CONNECT: checked through the CONNACK instead.
                BrokerEvent::Connected { .. } => continue,
            };
            let c = self
                .conns
                .iter_mut()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("Closed for {id:?}, never opened"));
            assert!(!c.closed, "a second Closed for {id:?}");
            c.closed = true;
        }
    }

    /// Every transport ends; everything is written out.
    fn finish(&mut self) {
        for i in 0..self.conns.len() {
            let live = self.live(i);
            self.broker.handle_eof(self.conns[i].id, self.now);
            self.events();
            assert!(!live || self.conns[i].closed, "EOF brought no Closed");
        }
        self.write_all();
        for c in &self.conns {
            assert!(c.closed, "{:?} ended without Closed", c.id);
        }
        assert_eq!(
            self.broker.connection_count(),
            0,
            "connections left after every one ended"
        );
        // Sessions expire and wills go out with no one to receive them.
        self.now = Instant::from_millis(self.now.as_millis() + 30 * 86_400_000);
        self.broker.handle_timeout(self.now);
        assert!(self.broker.poll_timeout().is_none_or(|t| t > self.now));
        assert!(
            self.broker.poll_writable().is_none(),
            "writable with no connection"
        );
        // Every session expiry is capped (`max_session_expiry`): all are
        // gone, with their subscriptions; only `$SYS` stays on the clock.
        let s = self.broker.sizes();
        assert_eq!(s.sessions, 0, "sessions past their expiry: {s:?}");
        assert_eq!(s.subscriptions, 0, "subscriptions of no session: {s:?}");
        assert!(s.timers <= 1, "timers with nothing to time: {s:?}");
        self.check_sizes();
    }
}
