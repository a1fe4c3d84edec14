//! The `client_connection` target: one `Connection<Client>` against a
//! hostile broker.
//!
//! The broker's bytes (CONNACKs with arbitrary limits, publishes, acks and
//! SUBACKs aimed at the client's packet identifiers, arbitrary valid
//! packets, raw bytes) arrive cut at arbitrary points; time moves in
//! arbitrary steps; the application publishes, subscribes, unsubscribes,
//! sends AUTH, disconnects, and reconnects resuming its session. After
//! every step:
//!
//! - what `poll_transmit` / `poll_frames` hand out decodes, in the
//!   configured version, as packets a server may receive, within the
//!   Maximum Packet Size the broker announced, CONNECT first and once, and
//!   nothing after a DISCONNECT;
//! - no event follows `Closed`, which comes once; nothing is written once
//!   the connection is closed; no message is reported before CONNACK;
//! - `Published`, `Expired`, `Subscribed` and `Unsubscribed` name a request
//!   the application made and that is still open, each once; the packet
//!   identifiers of open requests are all different;
//! - the session holds at most `max_queued` messages plus the in-flight
//!   window, the window at most `max_inflight`, and the packets written stay
//!   within what the input and the application's calls account for;
//! - after `handle_timeout(now)`, `poll_timeout` is not in the past (see
//!   `settle_timeout`).

use arbitrary::{Arbitrary, Unstructured};
use bytes::{BufMut, Bytes, BytesMut};
use core::time::Duration;
use mqtt_codec::{
    AuthProps, DisconnectProps, PacketId, ProtocolVersion, QoS, Str, SubscriptionId,
    MAX_PACKET_SIZE,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Connection, Instant, Limits, Message, ServerCaps, UsageError,
};

use crate::gen::{self, LimitsSpec, ToClient};
use crate::server::settle_timeout;
use crate::wire::{Output, Reader};

#[derive(Arbitrary, Debug)]
struct Input {
    version: u8,
    client_id: u8,
    clean_start: bool,
    keep_alive: u8,
    session_expiry: u8,
    username: bool,
    request_problem_information: bool,
    auth: bool,
    limits: LimitsSpec,
    connect_timeout: u8,
    ping_timeout: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The broker's bytes join what it has not delivered yet; the first
    /// `cut` bytes of that arrive now.
    Send {
        packet: ToClient,
        cut: u16,
    },
    Flush,
    Time(u16),
    Publish {
        topic: u8,
        qos: u8,
        retain: bool,
        payload: u8,
        expiry: Option<u8>,
    },
    Subscribe {
        filters: Vec<(u8, u8)>,
        subscription_id: Option<u8>,
    },
    Unsubscribe {
        filters: Vec<u8>,
    },
    Disconnect {
        reason: u8,
        expiry: Option<u8>,
    },
    Auth {
        reason: u8,
        method: bool,
    },
    Eof,
    Transmit {
        limit: Option<u16>,
    },
    Frames {
        budget: u16,
    },
    /// The connection ends (EOF if still open) and the next one resumes
    /// its session, as `mqtt-client` reconnects.
    Reconnect,
}

/// Runs one input; see the [module documentation](self).
pub fn client_connection(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::debug(&input);
    let version = gen::version(input.version);
    let mut config = ClientConfig::new(
        version,
        Str::from_static(gen::pick(gen::CLIENT_IDS, input.client_id)),
    );
    config.clean_start = input.clean_start;
    config.keep_alive = u16::from(input.keep_alive % 32);
    config.session_expiry_interval = u32::from(input.session_expiry % 4) * 100;
    if input.username {
        config.username = Some(Str::from_static("u0"));
        config.password = Some(Bytes::from_static(b"pw"));
    }
    config.request_problem_information = input.request_problem_information;
    if input.auth && version.is_v5() {
        config.authentication = Some((Str::from_static(gen::AUTH_METHOD), None));
    }
    config.limits = input.limits.build();
    config.connect_timeout = Duration::from_millis(u64::from(input.connect_timeout) * 250);
    config.ping_timeout = Duration::from_millis(u64::from(input.ping_timeout) * 100);
    let mut h = Harness::new(config);
    for op in input.ops.iter().take(256) {
        h.step(op);
    }
    h.finish();
}

struct Harness {
    config: ClientConfig,
    limits: Limits,
    version: ProtocolVersion,
    now: Instant,
    conn: Connection<Client>,
    out: Output,
    caps: Option<ServerCaps>,
    closed: bool,
    /// Open requests: publishes (they outlive a connection with their
    /// session) and (un)subscriptions (`true`: unsubscribe).
    publishes: Vec<PacketId>,
    requests: Vec<(PacketId, bool)>,
    pending: Vec<u8>,
    rbuf: BytesMut,
    in_bytes: usize,
    calls: usize,
    resent: usize,
    connections: usize,
    out_packets: usize,
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        let now = Instant::ZERO;
        Harness {
            conn: Connection::<Client>::new(config.clone(), now, None),
            limits: config.limits.clone(),
            version: config.version,
            config,
            now,
            out: Output::new(Reader::Server),
            caps: None,
            closed: false,
            publishes: Vec::new(),
            requests: Vec::new(),
            pending: Vec::new(),
            rbuf: BytesMut::new(),
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
                let bytes = packet.bytes(self.version);
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
            Op::Publish {
                topic,
                qos,
                retain,
                payload,
                expiry,
            } => {
                self.calls += 1;
                let q = gen::qos(*qos);
                let mut msg = Message::new(
                    gen::topic(*topic),
                    vec![b'm'; usize::from(*payload % 64)],
                    q,
                    *retain,
                );
                msg.props.expires_at =
                    expiry.map(|e| now.saturating_add(Duration::from_millis(u64::from(e) * 100)));
                let connected = self.conn.is_connected();
                match self.conn.publish(now, msg) {
                    Ok(id) => {
                        assert!(connected, "publish accepted while not connected");
                        assert_eq!(id.is_some(), q != QoS::AtMostOnce);
                        if let Some(id) = id {
                            self.new_id(id);
                            self.publishes.push(id);
                        }
                    }
                    Err(UsageError::NotConnected) => assert!(!connected),
                    Err(_) => {}
                }
            }
            Op::Subscribe {
                filters,
                subscription_id,
            } => {
                self.calls += 1;
                let filters = filters
                    .iter()
                    .take(4)
                    .map(|&(f, o)| {
                        (
                            gen::filter(f),
                            mqtt_codec::SubscriptionOptions::new(gen::qos(o)),
                        )
                    })
                    .collect();
                let sub_id = subscription_id.and_then(|i| SubscriptionId::new(u32::from(i) + 1));
                if let Ok(id) = self.conn.subscribe(now, filters, sub_id) {
                    self.new_id(id);
                    self.requests.push((id, false));
                }
            }
            Op::Unsubscribe { filters } => {
                self.calls += 1;
                let filters = filters.iter().take(4).map(|&f| gen::filter(f)).collect();
                if let Ok(id) = self.conn.unsubscribe(now, filters) {
                    self.new_id(id);
                    self.requests.push((id, true));
                }
            }
            Op::Disconnect { reason, expiry } => {
                self.calls += 1;
                let mut props = DisconnectProps::default();
                props.session_expiry_interval = expiry.map(|e| u32::from(e) * 10);
                let _ = self.conn.disconnect_with(now, gen::reason(*reason), props);
            }
            Op::Auth { reason, method } => {
                self.calls += 1;
                let mut props = AuthProps::default();
                if *method {
                    props.authentication_method = Some(Str::from_static(gen::AUTH_METHOD));
                }
                let _ = self.conn.auth(now, gen::reason(*reason), props);
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

    /// A packet identifier the connection handed out: not one of an open request.
    fn new_id(&self, id: PacketId) {
        assert!(
            !self.publishes.contains(&id) && !self.requests.iter().any(|&(r, _)| r == id),
            "packet identifier {id:?} handed out while still in use"
        );
    }

    fn deliver_bytes(&mut self, n: usize) {
        self.in_bytes += n;
        self.rbuf.extend_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.conn.handle_read(self.now, &mut self.rbuf);
        if self.closed || self.conn.is_closed() {
            self.rbuf.clear();
        }
        assert!(
            self.rbuf.len() < self.limits.max_packet_size as usize + 8,
            "the read buffer keeps {} bytes, more than a packet",
            self.rbuf.len()
        );
    }

    fn server_max(&self) -> u32 {
        self.caps
            .as_ref()
            .map_or(MAX_PACKET_SIZE, |c| c.maximum_packet_size)
    }

    fn transmit(&mut self, limit: Option<usize>) {
        let was_closed = self.conn.is_closed();
        let mut buf = Vec::new();
        let n = match limit {
            Some(l) => self.conn.poll_transmit(self.now, &mut (&mut buf).limit(l)),
            None => self.conn.poll_transmit(self.now, &mut buf),
        };
        assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
        assert!(n == 0 || !was_closed, "{n} bytes written after the close");
        let packets = self.out.bytes(self.version, self.server_max(), &buf);
        self.account(packets);
    }

    fn frames(&mut self, budget: usize) {
        let was_closed = self.conn.is_closed();
        let mut frames = Vec::new();
        let n = self.conn.poll_frames(self.now, &mut frames, budget);
        assert!(n == 0 || !was_closed, "frames handed out after the close");
        assert!(frames.len() <= 1 || n <= budget, "frames past the budget");
        let max = self.server_max();
        let packets = self.out.frames(self.version, max, &frames, n);
        self.account(packets);
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
        let session = self.conn.take_session();
        // SUBSCRIBE/UNSUBSCRIBE answers never survive the connection.
        self.requests.clear();
        match &session {
            Some(s) => self.resent += s.inflight() + s.queued(),
            None => self.publishes.clear(),
        }
        let next = self.config.for_resumption(self.caps.as_ref());
        self.conn = Connection::<Client>::new(next, self.now, session);
        self.out = Output::new(Reader::Server);
        self.caps = None;
        self.closed = false;
        self.pending.clear();
        self.rbuf.clear();
        self.connections += 1;
    }

    fn events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            assert!(!self.closed, "an event after Closed: {ev:?}");
            match ev {
                ClientEvent::Connected { caps, .. } => {
                    assert!(self.caps.is_none(), "a second Connected event");
                    self.caps = Some(caps);
                }
                ClientEvent::Message { msg, .. } => {
                    assert!(self.caps.is_some(), "a message before CONNACK");
                    assert!(!msg.topic.is_empty(), "a message without a topic");
                }
                ClientEvent::Published { id, .. } | ClientEvent::Expired { id } => {
                    let i = self.publishes.iter().position(|&p| p == id);
                    let i = i.unwrap_or_else(|| panic!("{id:?} completed, not an open publish"));
                    self.publishes.remove(i);
                }
                ClientEvent::Subscribed { id, .. } | ClientEvent::Unsubscribed { id, .. } => {
                    let i = self.requests.iter().position(|&(r, _)| r == id);
                    let i = i.unwrap_or_else(|| panic!("{id:?} answered, not an open request"));
                    self.requests.remove(i);
                }
                ClientEvent::Auth { .. } => {}
                ClientEvent::Closed(_) => self.closed = true,
            }
        }
        if self.closed {
            assert!(!self.conn.is_connected(), "connected after Closed");
            assert_eq!(self.conn.poll_timeout(), None, "a deadline after Closed");
        }
    }

    fn check_bounds(&self) {
        let Some(s) = self.conn.session() else {
            return;
        };
        let window = usize::from(self.limits.max_inflight).max(1);
        assert!(
            s.inflight() <= window,
            "{} messages in flight, window {window}",
            s.inflight()
        );
        assert!(
            s.inflight() + s.queued() <= self.limits.max_queued + window,
            "{} in flight and {} queued, limits {} + {window}",
            s.inflight(),
            s.queued(),
            self.limits.max_queued
        );
        assert!(
            s.inflight() + s.queued() <= self.publishes.len(),
            "the session holds more than the open publishes"
        );
    }

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
