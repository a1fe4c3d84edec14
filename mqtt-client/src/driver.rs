//! What every client adapter with request handles does between its
//! transport and its callers: one sans-IO layer over [`Connection<Client>`]
//! that takes commands with the caller's reply handles, matches the
//! broker's answers to them by packet identifier, holds commands given
//! while no connection is up, finishes QoS 0 publishes once their bytes are
//! written, and carries the session across reconnections ([`Backoff`],
//! [`ClientConfig::for_resumption`]).
//!
//! The adapter keeps the transport, the clock and the channels. The async
//! adapters run it through [`runtime::run`](crate::runtime::run), which
//! does the following once for every runtime; a blocking adapter writes the
//! same with threads. Per connection:
//! ```text
//! driver.start(now);                                  // after the transport opened
//! loop {
//!     driver.poll_transmit(now, &mut wbuf);           // then write wbuf; all written: driver.handle_written()
//!     while let Some(ev) = driver.poll_event() { .. } // to the application
//!     if driver.is_closed() && wbuf.is_empty() { break }
//!     select! {
//!         read    => driver.handle_read(now, &mut rbuf) (handle_eof on end or error),
//!         command => driver.command(now, command)     (handles_dropped() when the last handle went),
//!         sleep_until(driver.poll_timeout()) => driver.handle_timeout(now),
//!     }
//! }
//! match driver.connection_ended(now) {
//!     AfterConnection::Failed(close) => /* the first connection: ConnectError::before_connack(close) */,
//!     AfterConnection::Finished => /* done */,
//!     AfterConnection::Reconnect => /* sleep driver.next_delay(random), taking commands; open; start again */,
//! }
//! ```
//! Replies are handed back through [`ReplySender::send`], as soon as the outcome
//! is known: the driver never waits on them.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::mem;
use core::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mqtt_session::mqtt_codec::{
    DisconnectProps, PacketId, ReasonCode, Str, SubscriptionId, SubscriptionOptions, TopicFilter,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Close, Connection, Instant, Message, ServerCaps, Session,
    UsageError,
};

pub use crate::ack::AckToken;
use crate::auth::{AuthError, AuthMechanism, EnhancedAuth, MAX_RANDOM_LEN};
use crate::backoff::Backoff;
use crate::error::{granted, publish_outcome, ClientError, ConnectError, SubscribeResult};
use crate::scram::ScramLogin;

/// How an adapter hands outcomes back to the callers waiting for them.
pub trait ReplySender {
    /// What waits for one request's outcome (a oneshot sender, a channel
    /// sender, ...).
    type Reply<T>;
    /// The error of a failed reconnection attempt, in [`Event::ReconnectFailed`].
    type ConnectError;
    /// Hands `result` to whoever waits on `reply`; a waiter that has gone
    /// away is no error.
    fn send<T>(reply: Self::Reply<T>, result: Result<T, ClientError>);
}

/// A request from the application, with the reply handle its outcome goes to.
pub enum Command<K: ReplySender> {
    /// Publish a message: answered with the broker's reason code once it
    /// is written (QoS 0), acknowledged (QoS 1) or complete (QoS 2).
    Publish {
        /// The message.
        message: Message,
        /// Where the outcome goes.
        reply: K::Reply<ReasonCode>,
    },
    /// Subscribe: answered with one result per filter.
    Subscribe {
        /// The filters and their options.
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        /// The subscription identifier (5.0).
        identifier: Option<SubscriptionId>,
        /// Where the outcome goes.
        reply: K::Reply<Vec<SubscribeResult>>,
    },
    /// Unsubscribe: answered with one reason code per filter (5.0).
    Unsubscribe {
        /// The filters.
        filters: Vec<TopicFilter>,
        /// Where the outcome goes.
        reply: K::Reply<Vec<ReasonCode>>,
    },
    /// Acknowledge a received message (manual acknowledgement,
    /// [`OptionSetters::manual_acks`](crate::OptionSetters::manual_acks)):
    /// answered once the acknowledgement is accepted (it leaves after those
    /// of the messages received before it), or with
    /// [`ClientError::StaleAck`] / [`ClientError::NotAwaitingAck`].
    Ack {
        /// The message's token, from [`Event::Message`].
        token: AckToken,
        /// Where the outcome goes.
        reply: K::Reply<()>,
    },
    /// Disconnect: answered once the client is done.
    Disconnect {
        /// The DISCONNECT reason code.
        reason: ReasonCode,
        /// The DISCONNECT properties (5.0).
        props: DisconnectProps,
        /// Where the outcome goes.
        reply: K::Reply<()>,
    },
}

impl<K: ReplySender> Command<K> {
    /// Answers the command with `error` without carrying it out.
    pub fn fail(self, error: ClientError) {
        match self {
            Command::Publish { reply, .. } => K::send(reply, Err(error)),
            Command::Subscribe { reply, .. } => K::send(reply, Err(error)),
            Command::Unsubscribe { reply, .. } => K::send(reply, Err(error)),
            Command::Ack { reply, .. } => K::send(reply, Err(error)),
            Command::Disconnect { reply, .. } => K::send(reply, Err(error)),
        }
    }
}

impl<K: ReplySender> fmt::Debug for Command<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Publish { message, .. } => f
                .debug_struct("Publish")
                .field("message", message)
                .finish_non_exhaustive(),
            Command::Subscribe { filters, .. } => f
                .debug_struct("Subscribe")
                .field("filters", filters)
                .finish_non_exhaustive(),
            Command::Unsubscribe { filters, .. } => f
                .debug_struct("Unsubscribe")
                .field("filters", filters)
                .finish_non_exhaustive(),
            Command::Ack { token, .. } => f
                .debug_struct("Ack")
                .field("token", token)
                .finish_non_exhaustive(),
            Command::Disconnect { reason, .. } => f
                .debug_struct("Disconnect")
                .field("reason", reason)
                .finish_non_exhaustive(),
        }
    }
}

/// What the client reports besides request results, in order. `E` is the
/// adapter's error for a failed reconnection attempt.
// Not `#[non_exhaustive]`: a match on it names every event, so a new one
// cannot be ignored silently.
#[derive(Debug)]
pub enum Event<E> {
    /// A message arrived on a subscription: already acknowledged to the
    /// broker, or, under manual acknowledgement, waiting for the
    /// application's acknowledgement with `ack`.
    Message {
        /// The message.
        message: Message,
        /// The identifiers of the subscriptions it matched (5.0).
        subscription_identifiers: Vec<SubscriptionId>,
        /// The packet identifier it arrived with (QoS 1 and 2), as
        /// `mosquitto_sub -F %m` shows it.
        packet_id: Option<PacketId>,
        /// Under manual acknowledgement, for a QoS 1/2 message: what the
        /// application hands to `ack` once it is done with the message (the
        /// broker sends it again after a reconnection if it never was).
        /// `None` otherwise: the flow is already answered.
        ack: Option<AckToken>,
    },
    /// A connection was accepted: the first one, and each reconnection.
    Connected {
        /// Whether the broker resumed the session. After a reconnection
        /// without it, subscriptions must be made again.
        session_present: bool,
        /// What the broker announced in CONNACK.
        caps: ServerCaps,
    },
    /// The connection ended without the application asking for it: the
    /// broker disconnected, the network failed, or no PINGRESP came in time.
    Disconnected {
        /// How it ended (reason code, which side, 5.0 diagnostics).
        close: Close,
        /// Whether the client is reconnecting; if not, the client is done.
        reconnecting: bool,
    },
    /// A reconnection attempt failed; the next follows after the backoff.
    ReconnectFailed {
        /// Why.
        error: E,
    },
}

/// What to do after a connection ended ([`ClientDriver::connection_ended`]).
#[derive(Debug)]
#[must_use]
pub enum AfterConnection {
    /// The first connection ended before CONNACK; the close it reported (if
    /// any) says why, for [`ConnectError::before_connack`](crate::ConnectError::before_connack).
    /// The client is done.
    Failed(Option<Box<Close>>),
    /// The client is done: the application disconnected or dropped every
    /// handle, or the connection was lost without reconnection. Every
    /// request has been answered.
    Finished,
    /// The connection was lost: wait [`ClientDriver::next_delay`], open a
    /// new transport and [`start`](ClientDriver::start) again.
    Reconnect,
}

/// The request bookkeeping of one client across its connections; see the
/// [module documentation](self).
pub struct ClientDriver<K: ReplySender> {
    config: ClientConfig,
    backoff: Option<Backoff>,
    conn: Option<Connection<Client>>,
    /// From the last CONNACK: the next connection resumes with them.
    caps: Option<ServerCaps>,
    /// Between connections: what was in flight and queued.
    session: Option<Session>,
    ever_connected: bool,
    publishes: BTreeMap<PacketId, K::Reply<ReasonCode>>,
    /// QoS 0 publishes handed to the connection, not yet in the write buffer.
    qos0_waiting: Vec<K::Reply<ReasonCode>>,
    /// QoS 0 publishes in the write buffer: done once it is written.
    qos0_written: Vec<K::Reply<ReasonCode>>,
    subscribes: BTreeMap<PacketId, K::Reply<Vec<SubscribeResult>>>,
    unsubscribes: BTreeMap<PacketId, K::Reply<Vec<ReasonCode>>>,
    /// Commands given while not connected, for the next connection.
    held: VecDeque<Command<K>>,
    disconnecting: Option<K::Reply<()>>,
    /// Every handle of the application is gone.
    abandoned: bool,
    finished: bool,
    close: Option<Close>,
    events: VecDeque<Event<K::ConnectError>>,
    /// The enhanced authentication mechanism: every connection runs an
    /// exchange.
    auth: Option<AuthMechanism>,
    /// This connection's exchange is under way (CONNECT sent, no CONNACK).
    authenticating: bool,
    /// Why this connection's exchange failed on this side.
    auth_failure: Option<AuthError>,
    /// Counts the connections started: the [`AckToken`]s of each.
    connection: u64,
}

impl<K: ReplySender> fmt::Debug for ClientDriver<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientDriver")
            .field("conn", &self.conn)
            .field("publishes", &self.publishes.len())
            .field("qos0", &(self.qos0_waiting.len() + self.qos0_written.len()))
            .field("subscribes", &self.subscribes.len())
            .field("unsubscribes", &self.unsubscribes.len())
            .field("held", &self.held.len())
            .field("events", &self.events.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<K: ReplySender> ClientDriver<K> {
    /// A driver for connections with `config`; `backoff` turns on
    /// reconnection after a lost connection.
    pub fn new(config: ClientConfig, backoff: Option<Backoff>) -> Self {
        ClientDriver {
            config,
            backoff,
            conn: None,
            caps: None,
            session: None,
            ever_connected: false,
            publishes: BTreeMap::new(),
            qos0_waiting: Vec::new(),
            qos0_written: Vec::new(),
            subscribes: BTreeMap::new(),
            unsubscribes: BTreeMap::new(),
            held: VecDeque::new(),
            disconnecting: None,
            abandoned: false,
            finished: false,
            close: None,
            events: VecDeque::new(),
            auth: None,
            authenticating: false,
            auth_failure: None,
            connection: 0,
        }
    }

    /// Runs SCRAM enhanced authentication (MQTT 5.0) with `login` on every
    /// connection; each needs fresh randomness: see
    /// [`start_with_nonce`](Self::start_with_nonce). The same as
    /// [`with_auth`](Self::with_auth) with the login as the mechanism.
    pub fn with_scram(self, login: Option<ScramLogin>) -> Self {
        self.with_auth(login.map(AuthMechanism::new))
    }

    /// Runs enhanced authentication (MQTT 5.0, section 4.12) with `auth` on
    /// every connection: its method and first data in CONNECT, its answer
    /// to each AUTH 0x18 of the server, its check of the CONNACK's data.
    /// A mechanism that needs randomness
    /// ([`needs_nonce`](Self::needs_nonce)) gets it through
    /// [`start_with_nonce`](Self::start_with_nonce).
    pub fn with_auth(mut self, auth: Option<AuthMechanism>) -> Self {
        self.auth = auth;
        self
    }

    /// Whether connections must be started with
    /// [`start_with_nonce`](Self::start_with_nonce): the enhanced
    /// authentication mechanism (SCRAM, say) needs randomness.
    pub fn needs_nonce(&self) -> bool {
        self.nonce_len() > 0
    }

    /// How many random bytes [`start_with_nonce`](Self::start_with_nonce)
    /// needs: the mechanism's
    /// [`random_len`](crate::auth::EnhancedAuth::random_len), at most
    /// [`MAX_RANDOM_LEN`]; 0 without one.
    pub fn nonce_len(&self) -> usize {
        self.auth
            .as_ref()
            .map_or(0, |a| a.random_len().min(MAX_RANDOM_LEN))
    }

    /// The configuration the first connection uses (the connect timeout and
    /// packet size limit for the adapter's transport).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The current connection, if one was started and has not ended.
    pub fn connection(&self) -> Option<&Connection<Client>> {
        self.conn.as_ref()
    }

    /// Starts a connection over a transport the adapter just opened: CONNECT
    /// is queued. After a lost connection it resumes the session (Clean
    /// Start 0 when the server keeps it, the assigned client identifier) and
    /// resends what was in flight.
    ///
    /// With a mechanism that needs randomness
    /// ([`needs_nonce`](Self::needs_nonce)) use
    /// [`start_with_nonce`](Self::start_with_nonce): SCRAM without
    /// randomness cannot authenticate, and the connection ends at once with
    /// [`ConnectError::Authentication`].
    pub fn start(&mut self, now: Instant) {
        self.start_with_nonce(now, &[]);
    }

    /// [`start`](Self::start), with `random`: [`nonce_len`](Self::nonce_len)
    /// fresh bytes from the operating system, for the enhanced
    /// authentication mechanism's [`start`](crate::auth::EnhancedAuth::start)
    /// (SCRAM makes them its nonce; unused without a mechanism).
    pub fn start_with_nonce(&mut self, now: Instant, random: &[u8]) {
        let mut config = if self.caps.is_some() {
            self.config.for_resumption(self.caps.as_ref())
        } else {
            self.config.clone()
        };
        self.close = None;
        self.auth_failure = None;
        self.authenticating = false;
        let random = &random[..random.len().min(self.nonce_len())];
        if let Some(auth) = self.auth.as_mut() {
            let first = auth.start(random).and_then(|data| {
                let method = Str::try_from(auth.method()).map_err(|_| {
                    AuthError::rejected("the Authentication Method is not an MQTT string")
                })?;
                Ok((method, data.map(Bytes::from)))
            });
            match first {
                Ok(first) => {
                    config.authentication = Some(first);
                    self.authenticating = true;
                }
                Err(e) => {
                    // Nothing is sent: the adapter sees a closed connection.
                    self.auth_failure = Some(e);
                    self.close = Some(Close::local(ReasonCode::UNSPECIFIED_ERROR));
                    return;
                }
            }
        }
        self.connection = self.connection.wrapping_add(1);
        self.conn = Some(Connection::<Client>::new(config, now, self.session.take()));
    }

    /// Why the first connection failed before its CONNACK, for the caller
    /// of `connect`: `close` is what [`AfterConnection::Failed`] carried.
    pub fn connect_error(&mut self, close: Option<Close>) -> ConnectError {
        match self.auth_failure.take() {
            Some(e) => ConnectError::Authentication(e),
            None => ConnectError::before_connack(close, self.config.connect_timeout),
        }
    }

    /// True while a connection is accepted (CONNACK arrived) and not closed.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_connected())
    }

    /// True when there is no connection or it has closed: once its last
    /// bytes are written, the adapter closes the transport and calls
    /// [`connection_ended`](Self::connection_ended).
    pub fn is_closed(&self) -> bool {
        self.conn.as_ref().is_none_or(|c| c.is_closed())
    }

    /// True once a connection was accepted (the first CONNACK arrived): from
    /// then on a lost connection is reconnected, not a failed connect.
    pub fn has_connected(&self) -> bool {
        self.ever_connected
    }

    /// True once a disconnect was asked for.
    pub fn is_disconnecting(&self) -> bool {
        self.disconnecting.is_some()
    }

    /// True once the client is done: it answers every command with
    /// [`ClientError::Disconnected`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes the transport read; whole packets are consumed from `rbuf`.
    pub fn handle_read(&mut self, now: Instant, rbuf: &mut BytesMut) {
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_read(now, rbuf);
        }
        self.take_events(now);
    }

    /// The transport ended or failed.
    pub fn handle_eof(&mut self, now: Instant) {
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_eof(now);
        }
        self.take_events(now);
    }

    /// The deadline of [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_timeout(now);
        }
        self.take_events(now);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conn.as_ref().and_then(|c| c.poll_timeout())
    }

    /// Appends the bytes to send to `wbuf`, including those of commands the
    /// connection's events released (held commands once CONNACK arrived).
    pub fn poll_transmit(&mut self, now: Instant, wbuf: &mut impl BufMut) -> usize {
        let mut written = 0;
        while let Some(conn) = self.conn.as_mut() {
            written += conn.poll_transmit(now, wbuf);
            self.qos0_written.append(&mut self.qos0_waiting);
            if !self.take_events(now) {
                break;
            }
        }
        written
    }

    /// Everything [`poll_transmit`](Self::poll_transmit) gave has been
    /// written: QoS 0 publishes complete.
    pub fn handle_written(&mut self) {
        for reply in self.qos0_written.drain(..) {
            K::send(reply, Ok(ReasonCode::SUCCESS));
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event<K::ConnectError>> {
        self.events.pop_front()
    }

    /// Whether events wait for the application (an adapter reads no more
    /// from the transport meanwhile, so memory stays bounded).
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// A command from the application. It is carried out now if connected,
    /// held for the connection (within the outgoing queue's bound)
    /// otherwise, and failed with [`ClientError::Disconnected`] once the
    /// client is done or disconnecting.
    pub fn command(&mut self, now: Instant, command: Command<K>) {
        self.submit(now, command);
        self.take_events(now);
    }

    /// Every handle of the application is gone: disconnect normally.
    pub fn handles_dropped(&mut self, now: Instant) {
        self.abandoned = true;
        if let Some(conn) = self.conn.as_mut() {
            conn.disconnect(now, ReasonCode::NORMAL_DISCONNECTION);
        }
        self.take_events(now);
    }

    /// The connection is closed and the transport shut: what now. The
    /// session stays here for the next connection.
    pub fn connection_ended(&mut self, now: Instant) -> AfterConnection {
        self.take_events(now);
        if let Some(mut conn) = self.conn.take() {
            self.session = conn.take_session();
        }
        if !self.ever_connected {
            let close = self.close.take().map(Box::new);
            self.finish(ClientError::Disconnected);
            return AfterConnection::Failed(close);
        }
        if self.disconnecting.is_some() || self.abandoned {
            self.finish(ClientError::Disconnected);
            return AfterConnection::Finished;
        }
        let reconnecting = self.backoff.is_some();
        if let Some(close) = self.close.take() {
            self.events.push_back(Event::Disconnected {
                close,
                reconnecting,
            });
        }
        if !reconnecting {
            self.finish(ClientError::ConnectionLost);
            return AfterConnection::Finished;
        }
        // SUBSCRIBE and UNSUBSCRIBE answers do not survive the connection;
        // neither does a QoS 0 publish not yet written.
        self.fail_connection_bound(ClientError::ConnectionLost);
        AfterConnection::Reconnect
    }

    /// The wait before the next reconnection attempt, counting it as made;
    /// `random` is any random number (for the jitter).
    pub fn next_delay(&mut self, random: u32) -> Duration {
        self.backoff
            .as_mut()
            .map_or(Duration::ZERO, |b| b.next_delay(random))
    }

    /// A reconnection attempt failed: the application hears of it.
    pub fn reconnect_failed(&mut self, error: K::ConnectError) {
        self.events.push_back(Event::ReconnectFailed { error });
    }

    /// Whether the adapter should give up reconnecting: the application
    /// disconnected or dropped every handle meanwhile. Then it calls
    /// [`stop`](Self::stop).
    pub fn wants_to_stop(&self) -> bool {
        self.disconnecting.is_some() || self.abandoned
    }

    /// The client is done without a connection: everything still waiting
    /// fails with [`ClientError::Disconnected`], a disconnect completes.
    pub fn stop(&mut self) {
        self.finish(ClientError::Disconnected);
    }

    fn submit(&mut self, now: Instant, command: Command<K>) {
        if self.finished || self.disconnecting.is_some() {
            return command.fail(ClientError::Disconnected);
        }
        let conn = match (command, self.conn.as_mut()) {
            (
                Command::Disconnect {
                    reason,
                    props,
                    reply,
                },
                conn,
            ) => {
                if let Some(conn) = conn {
                    if props.is_empty() {
                        conn.disconnect(now, reason);
                    } else if let Err(e) = conn.close_with(now, reason, props) {
                        return K::send(reply, Err(e.into()));
                    }
                }
                self.disconnecting = Some(reply);
                return;
            }
            (Command::Ack { token, reply }, conn) => {
                let result = match conn {
                    Some(conn) if token.connection() == self.connection => {
                        conn.ack(token.packet_id()).map_err(|e| match e {
                            UsageError::UnknownPacketId(_) => ClientError::NotAwaitingAck,
                            _ => ClientError::StaleAck,
                        })
                    }
                    // That connection is gone, and the message with it: the
                    // broker sends it again.
                    Some(_) | None => Err(ClientError::StaleAck),
                };
                return K::send(reply, result);
            }
            (command, Some(conn)) if conn.is_connected() => (command, conn),
            (command, _) => return self.hold(command),
        };
        match conn {
            (Command::Publish { message, reply }, conn) => match conn.publish(now, message) {
                Ok(Some(id)) => {
                    self.publishes.insert(id, reply);
                }
                Ok(None) => self.qos0_waiting.push(reply),
                Err(e) => K::send(reply, Err(e.into())),
            },
            (
                Command::Subscribe {
                    filters,
                    identifier,
                    reply,
                },
                conn,
            ) => match conn.subscribe(now, filters, identifier) {
                Ok(id) => {
                    self.subscribes.insert(id, reply);
                }
                Err(e) => K::send(reply, Err(e.into())),
            },
            (Command::Unsubscribe { filters, reply }, conn) => {
                match conn.unsubscribe(now, filters) {
                    Ok(id) => {
                        self.unsubscribes.insert(id, reply);
                    }
                    Err(e) => K::send(reply, Err(e.into())),
                }
            }
            (Command::Disconnect { .. } | Command::Ack { .. }, _) => {}
        }
    }

    /// Keeps a command for the next connection, within the outgoing queue's
    /// bound.
    fn hold(&mut self, command: Command<K>) {
        let limit = self.config.limits.max_queued;
        if self.held.len() >= limit {
            command.fail(ClientError::Usage(UsageError::QueueFull { limit }));
        } else {
            self.held.push_back(command);
        }
    }

    /// Takes the connection's events; true if there were any.
    fn take_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(ev) = self.conn.as_mut().and_then(|c| c.poll_event()) {
            any = true;
            self.on_event(now, ev);
        }
        any
    }

    fn on_event(&mut self, now: Instant, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected {
                session_present,
                caps,
                authentication_data,
            } => {
                if !self.verify_server(now, authentication_data) {
                    return;
                }
                self.caps = Some(caps.clone());
                self.ever_connected = true;
                if let Some(backoff) = self.backoff.as_mut() {
                    backoff.reset();
                }
                self.events.push_back(Event::Connected {
                    session_present,
                    caps,
                });
                for command in mem::take(&mut self.held) {
                    self.submit(now, command);
                }
            }
            ClientEvent::Message {
                msg,
                subscription_identifiers,
                packet_id,
            } => {
                let ack = packet_id
                    .filter(|_| self.config.manual_acks)
                    .map(|packet_id| AckToken::new(self.connection, packet_id));
                self.events.push_back(Event::Message {
                    message: msg,
                    subscription_identifiers,
                    packet_id,
                    ack,
                })
            }
            ClientEvent::Published { id, reason, .. } => {
                if let Some(reply) = self.publishes.remove(&id) {
                    K::send(reply, publish_outcome(reason));
                }
            }
            ClientEvent::Expired { id, .. } => {
                if let Some(reply) = self.publishes.remove(&id) {
                    K::send(reply, Err(ClientError::Expired));
                }
            }
            ClientEvent::Subscribed { id, results, .. } => {
                if let Some(reply) = self.subscribes.remove(&id) {
                    K::send(reply, Ok(results.into_iter().map(granted).collect()));
                }
            }
            ClientEvent::Unsubscribed { id, results, .. } => {
                if let Some(reply) = self.unsubscribes.remove(&id) {
                    K::send(reply, Ok(results));
                }
            }
            ClientEvent::Closed(close) => self.close = Some(close),
            ClientEvent::Auth { reason, props } => self.on_auth(now, reason, props),
        }
    }

    /// Fails what cannot outlive the connection.
    fn fail_connection_bound(&mut self, error: ClientError) {
        for (_, reply) in mem::take(&mut self.subscribes) {
            K::send(reply, Err(error.clone()));
        }
        for (_, reply) in mem::take(&mut self.unsubscribes) {
            K::send(reply, Err(error.clone()));
        }
        for reply in self
            .qos0_waiting
            .drain(..)
            .chain(self.qos0_written.drain(..))
        {
            K::send(reply, Err(error.clone()));
        }
    }

    /// The client is done: everything still waiting fails with `error`, the
    /// disconnect completes.
    fn finish(&mut self, error: ClientError) {
        self.finished = true;
        self.fail_connection_bound(error.clone());
        for (_, reply) in mem::take(&mut self.publishes) {
            K::send(reply, Err(error.clone()));
        }
        for command in mem::take(&mut self.held) {
            command.fail(error.clone());
        }
        if let Some(reply) = self.disconnecting.take() {
            K::send(reply, Ok(()));
        }
    }
}

#[path = "driver_auth.rs"]
mod auth_steps;

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "driver_scram_tests.rs"]
mod scram_tests;

#[cfg(test)]
#[path = "driver_auth_tests.rs"]
mod auth_tests;
