//! The role-independent core of a connection: reading, writing, timers,
//! QoS flows in both directions, and closing.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::fmt;

use mqtt_codec::{
    AckProps, Decoder, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, SubscriptionId,
    MAX_PACKET_SIZE,
};

use crate::alias::Aliases;
use crate::config::Limits;
use crate::error::Close;
use crate::message::Message;
use crate::queue::ElasticQueue;
use crate::session::Session;
use crate::time::Instant;
use crate::tx::TxQueue;

mod close;
mod inbound;
mod outbound;
mod output;
mod read;

pub(crate) use read::{connack_for_decode_error, BeforeConnack};

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
    /// Whether received QoS 1/2 messages wait for the application's
    /// acknowledgement (a client with `manual_acks`).
    #[doc(hidden)]
    fn manual_acks(_c: &Connection<Self>) -> bool {
        false
    }
    #[doc(hidden)]
    fn on_partial(c: &mut Connection<Self>, now: Instant, buffered: usize);
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
    /// Queued messages dropped because they expired before they could go
    /// out, not yet taken by [`Connection::take_expired`].
    pub(crate) expired: u32,
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
    /// Server: packets that arrived after CONNECT, held until it is
    /// accepted, with what they cost. Boxed: an idle connection pays one
    /// pointer.
    pub(crate) before_connack: Option<Box<BeforeConnack>>,
    pub(crate) role: R::State,
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
            expired: 0,
            events: ElasticQueue::new(),
            limits,
            peer: PeerLimits::default(),
            last_rx: now,
            last_tx: now,
            keep_alive: 0,
            awaiting_ack: BTreeMap::new(),
            aliases: Aliases::default(),
            before_connack: None,
            role,
        }
    }

    /// How many queued messages were dropped since the last call because
    /// their Message Expiry Interval passed before they could be sent
    /// [MQTT-3.3.2-5] (for the application's counters).
    pub fn take_expired(&mut self) -> u32 {
        core::mem::take(&mut self.expired)
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

    /// Starts (`on`) or stops recording the changes to the connection's
    /// session state (see [`Session::track_changes`]), creating the session
    /// if it has none yet.
    pub fn track_session_changes(&mut self, on: bool) {
        self.session_mut().track_changes(on);
    }

    /// Moves the changes recorded in the connection's session to `out`.
    pub fn take_session_changes(&mut self, out: &mut alloc::vec::Vec<crate::SessionChange>) {
        if let Some(s) = self.session.as_mut() {
            s.take_changes(out);
        }
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

    pub(crate) fn is_ending(&self) -> bool {
        matches!(self.state, State::Closing | State::Closed)
    }

    pub(crate) fn session_mut(&mut self) -> &mut Session {
        self.session
            .get_or_insert_with(|| Session::new(self.limits.max_queued))
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
}
