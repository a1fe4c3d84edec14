//! The role-independent core of a connection: reading, writing, timers,
//! QoS flows in both directions, and closing.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use core::fmt;

use bytes::{BufMut, BytesMut};
use mqtt_codec::{
    Ack, AckProps, ConnAck, DecodeError, Decoder, Disconnect, DisconnectProps, EncodeError, Packet,
    PacketId, PacketType, ProtocolVersion, Publish, QoS, QosPid, ReasonCode, SubscriptionId,
    MAX_PACKET_SIZE,
};

use crate::alias::{AliasUse, Aliases};
use crate::config::Limits;
use crate::error::{Close, DeliverError, Initiator, UsageError, Violation};
use crate::message::{Forward, Message};
use crate::queue::ElasticQueue;
use crate::session::{Inflight, Outgoing, Session};
use crate::time::Instant;
use crate::tx::{Frame, OutPublish, Tx, TxQueue};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::super::Client {}
    impl Sealed for super::super::Server {}
}

/// The side of the connection a [`Connection`] plays: [`Client`](crate::Client)
/// or [`Server`](crate::Server). Sealed: the two roles are all there is.
pub trait Role: sealed::Sealed + Sized {
    /// The events this role emits.
    type Event: fmt::Debug;
    #[doc(hidden)]
    type State: fmt::Debug;
    #[doc(hidden)]
    const IS_CLIENT: bool;
    #[doc(hidden)]
    fn on_detach(c: &mut Connection<Self>);
    #[doc(hidden)]
    fn handle_packet(c: &mut Connection<Self>, now: Instant, p: Packet);
    #[doc(hidden)]
    fn handle_role_timeout(c: &mut Connection<Self>, now: Instant);
    #[doc(hidden)]
    fn role_timeout(c: &Connection<Self>) -> Option<Instant>;
    #[doc(hidden)]
    fn on_message(
        c: &mut Connection<Self>,
        msg: Message,
        id: Option<PacketId>,
        subscription_identifiers: alloc::vec::Vec<SubscriptionId>,
    );
    #[doc(hidden)]
    fn on_outbound_complete(
        c: &mut Connection<Self>,
        id: PacketId,
        reason: ReasonCode,
        props: AckProps,
    );
    #[doc(hidden)]
    fn on_queued_expired(c: &mut Connection<Self>, id: PacketId);
    #[doc(hidden)]
    fn session_expiry_is_zero(c: &Connection<Self>) -> bool;
    #[doc(hidden)]
    fn closed_event(
        c: &mut Connection<Self>,
        now: Instant,
        close: Close,
        will_due: bool,
    ) -> Self::Event;
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Server: waiting for CONNECT.
    AwaitingConnect,
    /// Server: CONNECT received, waiting for the application's accept or reject.
    AwaitingAccept,
    /// Client: CONNECT queued, waiting for CONNACK.
    AwaitingConnAck,
    /// Connected.
    Connected,
    /// Closed; the last packets are still being written.
    Closing,
    /// Closed and drained.
    Closed,
}

/// The peer's limits, as announced in CONNECT (to a server) or CONNACK (to a client).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerLimits {
    pub(crate) receive_maximum: u16,
    pub(crate) max_packet_size: u32,
    pub(crate) topic_alias_maximum: u16,
    /// Whether the peer accepts reason strings and user properties on
    /// packets other than PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29].
    pub(crate) problem_information: bool,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            receive_maximum: u16::MAX,
            max_packet_size: MAX_PACKET_SIZE,
            topic_alias_maximum: 0,
            problem_information: true,
        }
    }
}

/// One MQTT connection's protocol state, for the client or the server side.
///
/// It does no IO. Feed it what the transport delivers with
/// [`handle_read`](Connection::handle_read) / [`handle_eof`](Connection::handle_eof)
/// and the passing of time with [`handle_timeout`](Connection::handle_timeout);
/// after each input or command, drain it: [`poll_transmit`](Connection::poll_transmit)
/// for bytes to write, [`poll_event`](Connection::poll_event) until `None`, then
/// [`poll_timeout`](Connection::poll_timeout) for the next deadline.
pub struct Connection<R: Role> {
    pub(crate) version: ProtocolVersion,
    pub(crate) decoder: Decoder,
    pub(crate) state: State,
    pub(crate) session: Option<Session>,
    pub(crate) tx: TxQueue,
    pub(crate) tx_qos0: usize,
    pub(crate) events: ElasticQueue<R::Event>,
    pub(crate) limits: Limits,
    pub(crate) peer: PeerLimits,
    pub(crate) last_rx: Instant,
    pub(crate) last_tx: Instant,
    /// The keep alive in force, in seconds (0: off).
    pub(crate) keep_alive: u16,
    /// Received QoS 1/2 publishes handed to the application and not yet answered.
    pub(crate) awaiting_ack: BTreeMap<PacketId, QoS>,
    /// Topic aliases in both directions (5.0).
    pub(crate) aliases: Aliases,
    /// Server: bytes that arrived after CONNECT, held until it is accepted.
    pub(crate) stash: Stash,
    /// Server: packets decoded by the adapter ([`Connection::handle_packet`])
    /// that arrived after CONNECT, held until it is accepted, with their
    /// total size on the wire. Boxed: an idle connection pays one pointer.
    pub(crate) held: Option<Box<HeldPackets>>,
    pub(crate) role: R::State,
}

/// Server: bytes that arrived after CONNECT, held until it is accepted.
/// Boxed, and only while there are some: a connection pays one pointer.
#[derive(Debug, Default)]
pub(crate) struct Stash(Option<Box<BytesMut>>);

impl Stash {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_empty())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    /// Takes the held bytes out.
    pub(crate) fn take(&mut self) -> BytesMut {
        self.0.take().map(|b| *b).unwrap_or_default()
    }

    /// Holds `bytes` (all that is held; nothing is kept when it is empty).
    pub(crate) fn put(&mut self, bytes: BytesMut) {
        self.0 = (!bytes.is_empty()).then(|| Box::new(bytes));
    }

    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.0
            .get_or_insert_with(Box::default)
            .extend_from_slice(bytes);
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

/// Packets held before the CONNECT is accepted, and their size on the wire.
#[derive(Debug, Default)]
pub(crate) struct HeldPackets {
    packets: VecDeque<Result<Packet, DecodeError>>,
    bytes: usize,
}

impl<R: Role> fmt::Debug for Connection<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.version)
            .field("state", &self.state)
            .field("keep_alive", &self.keep_alive)
            .field("tx", &self.tx.len())
            .field("events", &self.events.len())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<R: Role> Connection<R> {
    pub(crate) fn with_state(
        version: ProtocolVersion,
        decoder: Decoder,
        state: State,
        limits: Limits,
        now: Instant,
        role: R::State,
    ) -> Self {
        Connection {
            version,
            decoder: decoder.with_max_packet_size(limits.max_packet_size),
            state,
            session: None,
            tx: TxQueue::new(),
            tx_qos0: 0,
            events: ElasticQueue::new(),
            limits,
            peer: PeerLimits::default(),
            last_rx: now,
            last_tx: now,
            keep_alive: 0,
            awaiting_ack: BTreeMap::new(),
            aliases: Aliases::default(),
            stash: Stash::default(),
            held: None,
            role,
        }
    }

    /// The protocol version (fixed by CONNECT; a server reports 3.1.1 until then).
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// True between a successful CONNECT/CONNACK exchange and the close.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// True once the connection has closed and its last bytes were handed to
    /// [`poll_transmit`](Connection::poll_transmit): the adapter drops the transport then.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The keep alive in force, in seconds.
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    /// The session state, once the connection has one.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Takes the session out of the connection, to resume it on the next one.
    pub fn detach(mut self) -> Option<Session> {
        R::on_detach(&mut self);
        self.session.take()
    }

    /// Takes the session out of a connection that has closed, leaving the
    /// connection to drain its last bytes; `None` while it is still open (a
    /// live connection keeps its session) or if it had none.
    pub fn take_session(&mut self) -> Option<Session> {
        if !self.is_ending() {
            return None;
        }
        R::on_detach(self);
        self.session.take()
    }

    fn is_ending(&self) -> bool {
        matches!(self.state, State::Closing | State::Closed)
    }

    /// Consumes every whole packet in `rbuf`, leaving a partial one in place.
    ///
    /// Afterwards drain [`poll_transmit`](Connection::poll_transmit),
    /// [`poll_event`](Connection::poll_event) and [`poll_timeout`](Connection::poll_timeout).
    pub fn handle_read(&mut self, now: Instant, rbuf: &mut BytesMut) {
        if self.is_ending() {
            rbuf.clear();
            return;
        }
        if !rbuf.is_empty() {
            self.last_rx = now;
        }
        if self.stash.is_empty() {
            return self.process(now, rbuf);
        }
        if self.state != State::AwaitingAccept {
            // What is left of the bytes held before the CONNECT was accepted
            // is the start of a packet: it goes back in front of the new bytes,
            // into the caller's buffer, which from now on holds the partial
            // tail as usual. (Holding it here instead would put every later
            // read through the bound meant for the time before the accept.)
            let mut held = self.stash.take();
            held.extend_from_slice(rbuf);
            *rbuf = held;
            return self.process(now, rbuf);
        }
        // Bytes are held from before the CONNECT was accepted: new ones go behind them.
        if !self.stash_more(now, rbuf) {
            return;
        }
        let mut buf = self.stash.take();
        self.process(now, &mut buf);
        if !self.is_ending() && self.stash.is_empty() {
            self.stash.put(buf);
        }
    }

    /// A packet the adapter decoded itself arrived; `wire_len` is its size on
    /// the wire. The alternative to [`Connection::handle_read`] for adapters
    /// that decode in the connection's own task, in parallel with others:
    /// decode with [`Connection::decoder`]'s configuration, hand over each
    /// packet in order, and report a decoding failure with
    /// [`Connection::handle_decode_error`]. Do not mix the two on one
    /// connection.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet, wire_len: usize) {
        if self.is_ending() {
            return;
        }
        self.last_rx = now;
        // Acknowledgements, most of a busy connection's traffic, go straight
        // to their handler (as `dispatch` would send them while connected),
        // without moving the packet through the general path.
        let ack = matches!(
            packet,
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)
        );
        if ack && self.state == State::Connected && self.held.is_none() {
            return self.handle_common(now, packet);
        }
        self.dispatch(now, Ok(packet), wire_len);
    }

    /// The adapter's decoder refused the peer's bytes: the connection ends
    /// as [`Connection::handle_read`] would end it (with a DISCONNECT or
    /// CONNACK carrying the error's reason code where the version allows).
    pub fn handle_decode_error(&mut self, now: Instant, error: DecodeError) {
        if self.is_ending() {
            return;
        }
        self.dispatch(now, Err(error), 0);
    }

    /// A decoder configured the way this connection decodes (version and
    /// maximum packet size), for adapters that decode in their own task.
    pub fn decoder(&self) -> Decoder {
        let d = if R::IS_CLIENT || self.state != State::AwaitingConnect {
            Decoder::with_version(self.version)
        } else {
            // The server's decoder adopts the version of the CONNECT.
            Decoder::new()
        };
        d.with_max_packet_size(self.limits.max_packet_size)
    }

    fn dispatch(&mut self, now: Instant, packet: Result<Packet, DecodeError>, wire_len: usize) {
        let holding = self.state == State::AwaitingAccept || self.held.is_some();
        if holding && !matches!(packet, Ok(Packet::Auth(_))) {
            // As for bytes: nothing after CONNECT is processed before the
            // application accepts it, except AUTH [MQTT-3.1.4-5].
            let limit = (self.limits.max_packet_size as usize).saturating_mul(2);
            let held = self.held.get_or_insert_with(Default::default);
            held.bytes = held.bytes.saturating_add(wire_len);
            if held.bytes > limit {
                self.held = None;
                return self.finish(
                    now,
                    Close {
                        initiator: Initiator::Local,
                        reason: ReasonCode::SERVER_BUSY,
                        violation: None,
                        will: None,
                        props: DisconnectProps::default(),
                    },
                    false,
                );
            }
            held.packets.push_back(packet);
            if self.state != State::AwaitingAccept {
                self.release_held(now);
            }
            return;
        }
        match packet {
            Ok(p) => R::handle_packet(self, now, p),
            Err(e) => self.violation(now, Violation::Decode(e)),
        }
    }

    /// Handles the packets held while the CONNECT waited for its answer.
    pub(crate) fn release_held(&mut self, now: Instant) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        while let Some(p) = held.packets.pop_front() {
            if self.is_ending() {
                return;
            }
            match p {
                Ok(p) => R::handle_packet(self, now, p),
                Err(e) => return self.violation(now, Violation::Decode(e)),
            }
        }
    }

    /// Decodes and handles packets until `buf` holds no whole one.
    pub(crate) fn process(&mut self, now: Instant, buf: &mut BytesMut) {
        loop {
            if self.is_ending() {
                buf.clear();
                return;
            }
            let awaiting_accept = self.state == State::AwaitingAccept;
            if awaiting_accept && !starts_with_auth(buf) {
                // [MQTT-3.1.4-5]: nothing after CONNECT is processed before the
                // application accepts it; it waits, bounded. AUTH is the
                // exception: enhanced authentication happens before CONNACK
                // (section 4.12, [MQTT-3.1.4-6] of 5.0), and a client that
                // named a method sends nothing else until then [MQTT-3.1.2-30].
                self.stash_more(now, buf);
                return;
            }
            match self.decoder.decode(buf) {
                Ok(Some(p)) => R::handle_packet(self, now, p),
                Ok(None) => {
                    if awaiting_accept {
                        // The start of an AUTH: held with the rest.
                        self.stash_more(now, buf);
                    }
                    return;
                }
                Err(e) => {
                    self.violation(now, Violation::Decode(e));
                    buf.clear();
                    return;
                }
            }
        }
    }

    /// Holds bytes that arrived before the CONNECT was answered, up to two
    /// maximum-size packets; a client that sends more is dropped (0x89).
    /// Returns whether the connection is still open.
    fn stash_more(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        let limit = (self.limits.max_packet_size as usize).saturating_mul(2);
        if self.stash.len() + buf.len() > limit {
            buf.clear();
            self.stash.clear();
            self.finish(
                now,
                Close {
                    initiator: Initiator::Local,
                    reason: ReasonCode::SERVER_BUSY,
                    violation: None,
                    will: None,
                    props: DisconnectProps::default(),
                },
                false,
            );
            return false;
        }
        self.stash.extend_from_slice(buf);
        buf.clear();
        true
    }

    /// The transport ended (end of stream or an IO error).
    pub fn handle_eof(&mut self, now: Instant) {
        if self.is_ending() {
            self.state = State::Closed;
            return;
        }
        let will = self.state == State::Connected;
        self.tx.clear();
        self.finish(
            now,
            Close {
                initiator: Initiator::Transport,
                reason: ReasonCode::UNSPECIFIED_ERROR,
                violation: None,
                will: None,
                props: DisconnectProps::default(),
            },
            will,
        );
        self.state = State::Closed;
    }

    /// Acts on every deadline that has passed. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_ending() {
            return;
        }
        R::handle_role_timeout(self, now);
    }

    /// The next instant [`handle_timeout`](Connection::handle_timeout) must be
    /// called at; `None` when no timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_ending() {
            return None;
        }
        R::role_timeout(self)
    }

    /// The next event for the application. `Closed` is always the last.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<R::Event> {
        let ev = self.events.pop_front();
        if ev.is_none() {
            self.events.settle();
        }
        ev
    }

    /// Appends whole packets to `wbuf` while each fits in its remaining
    /// capacity, returning the bytes written. A `BytesMut` or `Vec` takes all;
    /// a fixed `&mut [u8]` or `(&mut buf).limit(n)` gives back-pressure.
    #[must_use = "the written bytes must be sent"]
    pub fn poll_transmit(&mut self, now: Instant, wbuf: &mut impl BufMut) -> usize {
        self.strip_for_peer();
        let mut written = 0;
        while let Some(p) = self.tx.front() {
            let n = match p.encode_limited(self.version, self.peer.max_packet_size, wbuf) {
                Ok(n) => n,
                Err(EncodeError::BufferTooSmall { .. }) => break,
                Err(EncodeError::PacketTooLarge { .. }) => {
                    self.shed_front(now);
                    continue;
                }
                // Checked when queued; dropping is all that is left to do.
                Err(_) => 0,
            };
            self.pop_sent();
            written += n;
        }
        self.after_transmit(now, written);
        written
    }

    /// Like [`Connection::poll_transmit`], but hands over the packets
    /// themselves, for an adapter that encodes them in another task (with
    /// [`Packet::encode`] and [`Connection::version`]): whole packets are
    /// moved to `out` while their encoded size stays within `budget` bytes
    /// (at least one packet is moved when any is ready). Returns the bytes
    /// they will take on the wire. Every check `poll_transmit` makes (the
    /// peer's maximum packet size, problem information) is made here too.
    pub fn poll_packets(
        &mut self,
        now: Instant,
        out: &mut alloc::vec::Vec<Packet>,
        budget: usize,
    ) -> usize {
        self.poll_out(now, out, budget, Tx::into_packet)
    }

    /// Like [`Connection::poll_packets`], but hands over [`Frame`]s: packets
    /// as the connection queues them, a PUBLISH as a reference to its
    /// (shared) message plus what this delivery adds, encoded by the adapter
    /// with [`Frame::encode`]. No packet value is built or copied per
    /// delivery, and encoding can still run in the connection's own task.
    pub fn poll_frames(
        &mut self,
        now: Instant,
        out: &mut alloc::vec::Vec<Frame>,
        budget: usize,
    ) -> usize {
        self.poll_out(now, out, budget, Frame)
    }

    fn poll_out<T>(
        &mut self,
        now: Instant,
        out: &mut alloc::vec::Vec<T>,
        budget: usize,
        wrap: impl Fn(Tx) -> T,
    ) -> usize {
        self.strip_for_peer();
        // Sized once: a growing vector would copy every packet again.
        out.reserve(self.tx.len());
        let mut total = 0usize;
        while let Some(p) = self.tx.front() {
            let n = match p.encoded_len(self.version) {
                Ok(n) if n <= self.peer.max_packet_size as usize => n,
                Ok(_) => {
                    self.shed_front(now);
                    continue;
                }
                Err(_) => {
                    self.pop_sent();
                    continue;
                }
            };
            if total > 0 && total + n > budget {
                break;
            }
            if let Some(p) = self.pop_sent() {
                out.push(wrap(p));
                total += n;
            }
        }
        self.after_transmit(now, total);
        total
    }

    /// Only PUBLISH, CONNACK and DISCONNECT may carry diagnostics to a client
    /// that asked for no problem information [MQTT-3.1.2-29].
    fn strip_for_peer(&mut self) {
        if !self.peer.problem_information {
            // Queued publishes and plain acknowledgements carry none.
            for t in self.tx.iter_mut() {
                if let Tx::Packet(p) = t {
                    if !matches!(
                        **p,
                        Packet::Publish(_) | Packet::ConnAck(_) | Packet::Disconnect(_)
                    ) {
                        strip_diagnostics(p);
                    }
                }
            }
        }
    }

    /// The packet at the front exceeds the peer's maximum packet size.
    fn shed_front(&mut self, now: Instant) {
        let Some(t) = self.tx.pop_front() else {
            return;
        };
        if let Tx::Publish(o) = &t {
            // A message that no longer fits the peer's limit (a smaller
            // one after resumption) is treated as delivered, so its
            // identifier and window slot are freed [MQTT-3.1.2-25].
            return self.drop_unsendable(now, o.qos);
        }
        match t.into_packet() {
            Packet::Publish(pb) => self.drop_unsendable(now, pb.qos),
            mut p => {
                // Diagnostics are the first thing to go when an answer would
                // exceed the peer's maximum packet size [MQTT-3.1.2-25].
                strip_diagnostics(&mut p);
                if p.encoded_len(self.version)
                    .is_ok_and(|n| n <= self.peer.max_packet_size as usize)
                {
                    self.tx.push_front(p);
                }
            }
        }
    }

    /// Takes the front packet as sent.
    fn pop_sent(&mut self) -> Option<Tx> {
        let t = self.tx.pop_front();
        if t.as_ref().is_some_and(Tx::is_qos0_publish) {
            self.tx_qos0 = self.tx_qos0.saturating_sub(1);
        }
        t
    }

    fn after_transmit(&mut self, now: Instant, written: usize) {
        if written > 0 {
            self.last_tx = now;
        }
        // An idle connection holds no packet buffer once it goes quiet.
        self.tx.settle();
        if self.state == State::Closing && self.tx.is_empty() {
            self.state = State::Closed;
        }
    }

    /// Closes the connection, telling the peer `reason` where the version
    /// allows (5.0 DISCONNECT from either side; 3.1.1 DISCONNECT from a client
    /// only). `Closed` is emitted; keep draining until [`is_closed`](Connection::is_closed).
    pub fn close(&mut self, now: Instant, reason: ReasonCode) {
        self.close_inner(now, reason, DisconnectProps::default());
    }

    /// Like [`Connection::close`], with 5.0 DISCONNECT properties: a reason
    /// string, user properties, a server reference (server side), a new
    /// session expiry interval (client side). Under 3.1.1 they are not sent.
    ///
    /// A server may not send a session expiry interval [MQTT-3.14.2-2];
    /// a client whose CONNECT had a zero interval may not set a non-zero one
    /// [MQTT-3.14.2-2]; a server reference only comes from a server.
    pub fn close_with(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), UsageError> {
        if R::IS_CLIENT && props.server_reference.is_some()
            || !R::IS_CLIENT && props.session_expiry_interval.is_some()
        {
            return Err(UsageError::PropertyNotAllowed);
        }
        if R::IS_CLIENT
            && props.session_expiry_interval.is_some_and(|i| i != 0)
            && R::session_expiry_is_zero(self)
        {
            return Err(UsageError::PropertyNotAllowed);
        }
        self.close_inner(now, reason, props);
        Ok(())
    }

    fn close_inner(&mut self, now: Instant, reason: ReasonCode, props: DisconnectProps) {
        if self.is_ending() {
            return;
        }
        let connected = self.state == State::Connected;
        let props = if self.version.is_v5() {
            props
        } else {
            DisconnectProps::default()
        };
        if connected {
            self.queue_disconnect(reason, props.clone());
        }
        // A client that closes with 0x04 asks for its will; the server's own
        // closes (take-over, shutdown, administrative) leave the will due.
        let will = connected && reason != ReasonCode::NORMAL_DISCONNECTION;
        self.finish(
            now,
            Close {
                initiator: Initiator::Local,
                reason,
                violation: None,
                will: None,
                props,
            },
            will,
        );
    }

    /// Queues the DISCONNECT this role may send in this version.
    pub(crate) fn queue_disconnect(&mut self, reason: ReasonCode, props: DisconnectProps) {
        let client = R::IS_CLIENT;
        if self.version.is_v5() {
            let reason = if reason.valid_for(PacketType::Disconnect) {
                reason
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            let mut d = Disconnect::new(reason);
            d.props = props;
            self.tx.push_back(Packet::Disconnect(d));
        } else if client {
            self.tx.push_back(Packet::Disconnect(Disconnect::default()));
        }
    }

    /// The peer broke the protocol: tell it why where the version allows, and close.
    pub(crate) fn violation(&mut self, now: Instant, v: Violation) {
        let reason = v.reason();
        let connected = self.state == State::Connected;
        if connected && self.version.is_v5() {
            self.tx
                .push_back(Packet::Disconnect(Disconnect::new(reason)));
        } else if R::IS_CLIENT && self.state == State::AwaitingConnAck && self.version.is_v5() {
            // A 5.0 client has sent CONNECT and may send DISCONNECT before
            // CONNACK: it tells the server why it gives up (section 4.13.1,
            // a client SHOULD send DISCONNECT with the reason code).
            self.tx
                .push_back(Packet::Disconnect(Disconnect::new(reason)));
        } else if !R::IS_CLIENT && self.state == State::AwaitingConnect {
            // A refused first packet gets the CONNACK that says why, where the
            // version has a code for it [MQTT-3.1.2-2]; otherwise just the close.
            if let Violation::Decode(e) = &v {
                if let Some(r) = connack_for_decode_error(e) {
                    self.tx
                        .push_back(Packet::ConnAck(alloc::boxed::Box::new(ConnAck::new(
                            false, r,
                        ))));
                }
            }
        }
        self.finish(
            now,
            Close {
                initiator: Initiator::Peer,
                reason,
                violation: Some(v),
                will: None,
                props: DisconnectProps::default(),
            },
            connected,
        );
    }

    /// Emits `Closed` and moves to closing; `will_due` tells the server role
    /// whether to attach the will.
    pub(crate) fn finish(&mut self, now: Instant, close: Close, will_due: bool) {
        self.state = State::Closing;
        let ev = R::closed_event(self, now, close, will_due);
        self.events.push_back(ev);
        if self.tx.is_empty() {
            self.state = State::Closed;
        }
    }

    pub(crate) fn session_mut(&mut self) -> &mut Session {
        self.session
            .get_or_insert_with(|| Session::new(self.limits.max_queued))
    }

    // ----- outgoing messages -------------------------------------------------

    /// The in-flight window: the peer's Receive Maximum (5.0) and our own cap.
    fn window(&self) -> usize {
        usize::from(self.peer.receive_maximum.min(self.limits.max_inflight)).max(1)
    }

    /// Sends or queues a message; returns its packet identifier for QoS 1/2.
    pub(crate) fn submit(
        &mut self,
        now: Instant,
        msg: Arc<Message>,
        fwd: Forward,
    ) -> Result<Option<PacketId>, DeliverError> {
        if msg.is_expired(now) {
            return Err(DeliverError::Expired);
        }
        // Measured exactly only when a cheap bound does not settle it: a
        // message that waits in the queue is turned into a PUBLISH once,
        // when it goes out, not twice.
        let max = self.peer.max_packet_size;
        if msg.publish_len_bound(&fwd.subscription_identifiers) > max as usize {
            let qos = QosPid::from_qos(fwd.qos, PLACEHOLDER_ID);
            let p = OutPublish::new(&msg, qos, &fwd, false, now, self.version.is_v5());
            let len = Tx::Publish(p)
                .encoded_len(self.version)
                .unwrap_or(usize::MAX);
            if len > max as usize {
                return Err(DeliverError::TooLarge { len, max });
            }
        }
        let max_queued = self.limits.max_queued;
        let queued = self.tx_qos0 + self.session.as_ref().map_or(0, Session::queued);
        if fwd.qos == QoS::AtMostOnce {
            let limit = max_queued.min(self.limits.max_queued_qos0);
            if queued >= max_queued || self.tx_qos0 >= limit {
                return Err(DeliverError::QueueFull { limit });
            }
            self.push_publish(now, &msg, QosPid::AtMostOnce, &fwd, false);
            self.tx_qos0 += 1;
            return Ok(None);
        }
        let window = self.window();
        let session = self.session_mut();
        let room = session.inflight.len() < window && session.queue.is_empty();
        if !room && queued >= max_queued {
            return Err(DeliverError::QueueFull { limit: max_queued });
        }
        let id = session
            .alloc_id()
            .ok_or(DeliverError::QueueFull { limit: max_queued })?;
        let out = Outgoing { id, msg, fwd };
        if room {
            self.send_outgoing(now, out, false);
        } else {
            self.session_mut().queue.push_back(out);
        }
        Ok(Some(id))
    }

    /// Puts one QoS 1/2 message in flight.
    fn send_outgoing(&mut self, now: Instant, out: Outgoing, dup: bool) {
        let qos = QosPid::from_qos(out.fwd.qos, out.id);
        self.push_publish(now, &out.msg, qos, &out.fwd, dup);
        self.session_mut()
            .inflight
            .push_back(Inflight::Publish(out));
    }

    /// Queues the PUBLISH of a message, assigning a topic alias if enabled
    /// (5.0); properties go out under 5.0 only. It is encoded from the
    /// message itself when sent (see [`crate::tx`]).
    fn push_publish(
        &mut self,
        now: Instant,
        msg: &Arc<Message>,
        qos: QosPid,
        fwd: &Forward,
        dup: bool,
    ) {
        let v5 = self.version.is_v5();
        let mut p = OutPublish::new(msg, qos, fwd, dup, now, v5);
        if v5 && self.limits.outbound_topic_aliases {
            match self
                .aliases
                .assign(&msg.topic, self.peer.topic_alias_maximum)
            {
                Some(AliasUse::Set(a)) => p.alias = Some(a),
                Some(AliasUse::Reuse(a)) => (p.alias, p.alias_only) = (Some(a), true),
                None => {}
            }
        }
        self.tx.push_back(Tx::Publish(p));
    }

    /// Moves queued messages into the window as it opens; expired ones are dropped.
    pub(crate) fn fill_window(&mut self, now: Instant) {
        let window = self.window();
        loop {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            if session.inflight.len() >= window {
                return;
            }
            let Some(out) = session.queue.pop_front() else {
                return;
            };
            if out.msg.is_expired(now) {
                // Never started onward: dropped [MQTT-3.3.2-5].
                session.release_id(out.id);
                R::on_queued_expired(self, out.id);
                continue;
            }
            self.send_outgoing(now, out, false);
        }
    }

    /// Resends what a resumed session had in flight, with DUP, in the original
    /// order [MQTT-4.4.0-1], then sends what was queued meanwhile.
    pub(crate) fn resume(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let inflight: alloc::vec::Vec<Inflight> = session.inflight.iter().cloned().collect();
        let offline: alloc::vec::Vec<(Arc<Message>, Forward)> =
            session.offline_qos0.drain(..).collect();
        for e in inflight {
            match e {
                Inflight::Publish(o) => {
                    let qos = QosPid::from_qos(o.fwd.qos, o.id);
                    self.push_publish(now, &o.msg, qos, &o.fwd, true);
                }
                Inflight::PubRel(id, _) => self.tx.push_back(Packet::PubRel(Ack::new(id))),
            }
        }
        for (msg, fwd) in offline {
            if !msg.is_expired(now) {
                self.push_publish(now, &msg, QosPid::AtMostOnce, &fwd, false);
                self.tx_qos0 += 1;
            }
        }
        self.fill_window(now);
    }

    /// Forgets an in-flight PUBLISH that can no longer be sent, reporting it
    /// as completed with 0x95.
    fn drop_unsendable(&mut self, now: Instant, qos: QosPid) {
        if qos == QosPid::AtMostOnce {
            self.tx_qos0 = self.tx_qos0.saturating_sub(1);
            return;
        }
        let Some(id) = qos.packet_id() else {
            return;
        };
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Some(i) = session.find_inflight(id) {
            session.inflight.remove(i);
            session.release_id(id);
            R::on_outbound_complete(self, id, ReasonCode::PACKET_TOO_LARGE, AckProps::default());
            self.fill_window(now);
        }
    }

    // ----- acknowledgements of what we sent ----------------------------------

    pub(crate) fn on_puback(&mut self, now: Instant, ack: Ack) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(i) = session.find_inflight(ack.id) else {
            return;
        };
        if !matches!(&session.inflight[i], Inflight::Publish(o) if o.fwd.qos == QoS::AtLeastOnce) {
            return;
        }
        session.inflight.remove(i);
        session.release_id(ack.id);
        R::on_outbound_complete(self, ack.id, ack.reason, ack.props);
        self.fill_window(now);
    }

    pub(crate) fn on_pubrec(&mut self, now: Instant, ack: Ack) {
        let v5 = self.version.is_v5();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.find_inflight(ack.id) {
            Some(i) => match &session.inflight[i] {
                Inflight::Publish(o) if o.fwd.qos == QoS::ExactlyOnce => {
                    if ack.reason.is_error() {
                        // A failure PUBREC ends the QoS 2 flow (section 4.3.3).
                        session.inflight.remove(i);
                        session.release_id(ack.id);
                        R::on_outbound_complete(self, ack.id, ack.reason, ack.props);
                        self.fill_window(now);
                    } else {
                        session.inflight[i] = Inflight::PubRel(ack.id, ack.reason);
                        self.tx.push_back(Packet::PubRel(Ack::new(ack.id)));
                    }
                }
                // A repeated PUBREC: answer it again.
                Inflight::PubRel(..) => self.tx.push_back(Packet::PubRel(Ack::new(ack.id))),
                Inflight::Publish(_) => {}
            },
            None if v5 => self.tx.push_back(Packet::PubRel(Ack::with_reason(
                ack.id,
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ))),
            None => self.tx.push_back(Packet::PubRel(Ack::new(ack.id))),
        }
    }

    pub(crate) fn on_pubcomp(&mut self, now: Instant, ack: Ack) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(i) = session.find_inflight(ack.id) else {
            return;
        };
        let Inflight::PubRel(_, received) = session.inflight[i] else {
            return;
        };
        session.inflight.remove(i);
        session.release_id(ack.id);
        // PUBCOMP's own reason wins when it reports a failure; otherwise the
        // PUBREC's (0x10 No matching subscribers travels in PUBREC only).
        let reason = if ack.reason.is_error() {
            ack.reason
        } else {
            received
        };
        R::on_outbound_complete(self, ack.id, reason, ack.props);
        self.fill_window(now);
    }

    // ----- publishes we receive ----------------------------------------------

    /// Handles a received PUBLISH after the role's own checks.
    pub(crate) fn on_publish(&mut self, now: Instant, p: Publish) {
        let alias_max = if self.version.is_v5() {
            self.limits.topic_alias_maximum
        } else {
            0
        };
        let topic = match self
            .aliases
            .resolve(p.topic.clone(), p.props.topic_alias, alias_max)
        {
            Ok(t) => t,
            Err(v) => return self.violation(now, v),
        };
        let id = p.qos.packet_id();
        let qos = p.qos.qos();
        if let Some(id) = id {
            let session = self
                .session
                .get_or_insert_with(|| Session::new(self.limits.max_queued));
            if self.awaiting_ack.contains_key(&id) {
                // A resend of a message the application has not answered yet:
                // QoS 2 is not delivered twice [MQTT-4.3.3-10].
                if qos == QoS::ExactlyOnce {
                    return;
                }
            } else if qos == QoS::ExactlyOnce && session.inbound_qos2.contains(&id) {
                // Already received, on this connection or on an earlier one of
                // a resumed session: answer again, deliver nothing twice
                // [MQTT-4.3.3-10] (3.1.1: [MQTT-4.3.3-2]).
                self.tx.push_back(Packet::PubRec(Ack::new(id)));
                return;
            } else {
                // QoS 2 messages count until PUBREL, QoS 1 until answered.
                let unacked_qos1 = self
                    .awaiting_ack
                    .values()
                    .filter(|q| **q == QoS::AtLeastOnce)
                    .count();
                let unacked = unacked_qos1 + session.inbound_qos2.len();
                if self.version.is_v5() && unacked >= usize::from(self.limits.receive_maximum) {
                    return self.violation(now, Violation::ReceiveMaximumExceeded);
                }
                self.awaiting_ack.insert(id, qos);
                if qos == QoS::ExactlyOnce {
                    // The identifier joins the session state the moment the
                    // message is handed on, not when the application answers:
                    // a QoS 2 message received but not completely acknowledged
                    // is session state (section 4.1), so a resend after a
                    // reconnection is recognised even if the connection broke
                    // before the application answered.
                    session.inbound_qos2.insert(id);
                }
            }
        }
        let sub_ids = p.props.subscription_identifiers.clone();
        let msg = Message::from_publish(p, topic, now);
        R::on_message(self, msg, id, sub_ids);
    }

    /// Answers a received QoS 1/2 publish: PUBACK, or PUBREC for QoS 2.
    pub(crate) fn answer_publish(
        &mut self,
        id: PacketId,
        reason: ReasonCode,
        props: AckProps,
    ) -> Result<(), UsageError> {
        if self.is_ending() {
            return Err(UsageError::NotConnected);
        }
        let qos = self
            .awaiting_ack
            .get(&id)
            .copied()
            .ok_or(UsageError::UnknownPacketId(id))?;
        let reason = if self.version.is_v5() {
            reason
        } else {
            // 3.1.1 has no negative acknowledgement: the message is simply not
            // forwarded, and the flow completes.
            ReasonCode::SUCCESS
        };
        let kind = if qos == QoS::AtLeastOnce {
            PacketType::PubAck
        } else {
            PacketType::PubRec
        };
        if !reason.valid_for(kind) {
            return Err(UsageError::Encode(EncodeError::InvalidReasonCode {
                packet: kind,
                code: reason.0,
            }));
        }
        self.awaiting_ack.remove(&id);
        let mut ack = Ack::with_reason(id, reason);
        if self.version.is_v5() {
            ack.props = props;
        }
        if qos == QoS::AtLeastOnce {
            self.tx.push_back(Packet::PubAck(ack));
        } else {
            if reason.is_error() {
                // A failure PUBREC ends the flow: the identifier is free for a
                // new message [MQTT-4.3.3-9].
                self.session_mut().inbound_qos2.remove(&id);
            }
            self.tx.push_back(Packet::PubRec(ack));
        }
        Ok(())
    }

    pub(crate) fn on_pubrel(&mut self, ack: Ack) {
        let known = self
            .session
            .as_mut()
            .is_some_and(|s| s.inbound_qos2.remove(&ack.id));
        let reason = if known || !self.version.is_v5() {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.tx
            .push_back(Packet::PubComp(Ack::with_reason(ack.id, reason)));
    }

    /// Routes the packets both roles handle alike; anything else is unexpected.
    #[inline]
    pub(crate) fn handle_common(&mut self, now: Instant, p: Packet) {
        match p {
            Packet::PubAck(a) => self.on_puback(now, a),
            Packet::PubRec(a) => self.on_pubrec(now, a),
            Packet::PubRel(a) => self.on_pubrel(a),
            Packet::PubComp(a) => self.on_pubcomp(now, a),
            other => self.violation(now, Violation::UnexpectedPacket(other.packet_type())),
        }
    }

    /// Queues an AUTH packet (5.0 only), while connected or during the
    /// role's `handshake` state.
    pub(crate) fn send_auth(
        &mut self,
        handshake: State,
        reason: ReasonCode,
        props: mqtt_codec::AuthProps,
    ) -> Result<(), UsageError> {
        if !self.version.is_v5() {
            return Err(UsageError::NotInVersion(self.version));
        }
        if self.state != State::Connected && self.state != handshake {
            return Err(UsageError::NotConnected);
        }
        let p = Packet::Auth(mqtt_codec::Auth { reason, props });
        self.check_size(&p)?;
        self.tx.push_back(p);
        Ok(())
    }

    /// Whether `id` may be used for a new outgoing packet.
    pub(crate) fn alloc_id(&mut self) -> Option<PacketId> {
        self.session_mut().alloc_id()
    }

    pub(crate) fn release_id(&mut self, id: PacketId) {
        if let Some(s) = self.session.as_mut() {
            s.release_id(id);
        }
    }

    /// Bytes of payload a packet may not exceed for the peer, for callers
    /// that check before building.
    pub(crate) fn check_size(&self, p: &Packet) -> Result<(), UsageError> {
        let len = p.encoded_len(self.version).map_err(UsageError::Encode)?;
        if len > self.peer.max_packet_size as usize {
            return Err(UsageError::PacketTooLarge {
                len,
                max: self.peer.max_packet_size,
            });
        }
        Ok(())
    }
}

/// Stands in for the real identifier while a PUBLISH is only being measured.
const PLACEHOLDER_ID: PacketId = match PacketId::new(1) {
    Some(id) => id,
    None => panic!("1 is a valid packet identifier"),
};

/// Drops the reason string and user properties of an answer (never of a PUBLISH).
fn strip_diagnostics(p: &mut Packet) {
    match p {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.props = Default::default();
        }
        Packet::SubAck(s) | Packet::UnsubAck(s) => s.props = Default::default(),
        Packet::Disconnect(d) => {
            d.props.reason_string = None;
            d.props.user_properties.clear();
        }
        Packet::ConnAck(c) => {
            c.props.reason_string = None;
            c.props.user_properties.clear();
        }
        Packet::Auth(a) => {
            a.props.reason_string = None;
            a.props.user_properties.clear();
        }
        _ => {}
    }
}

/// Whether `buf` starts with an AUTH packet (type 15), judged from its first byte.
fn starts_with_auth(buf: &[u8]) -> bool {
    buf.first()
        .is_some_and(|b| b >> 4 == PacketType::Auth as u8)
}

/// Maps a decode error of the very first packet to the CONNACK a server owes,
/// if any: 3.1.1 only has codes for a few refusals [MQTT-3.2.2-6].
pub(crate) fn connack_for_decode_error(e: &DecodeError) -> Option<ReasonCode> {
    match e {
        DecodeError::UnsupportedProtocolVersion(_) => {
            Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
        }
        DecodeError::InvalidClientIdV31 => Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        _ => None,
    }
}
