//! An MQTT 3.1.1 / 5.0 client for `no_std` targets, over any transport that
//! implements the [`embedded-io-async`](embedded_io_async) `Read` and `Write`
//! traits (embassy-net's `TcpSocket`, a TLS stream, a serial line, or a host
//! TCP stream through `embedded-io-adapters`).
//!
//! All protocol behaviour lives in [`mqtt_session`] (with the request
//! helpers and [`Backoff`] of `mqtt-client`); this crate moves bytes
//! between the transport and the session, keeps its timers through an
//! injected [`Clock`], and hands results to the caller. It needs `alloc` and
//! nothing of `std`, and spawns no task: the client makes progress, keep-alive
//! included, while one of its `async` methods is being awaited, so an idle
//! device awaits [`Client::next_message`] (alone or in a `select` with its
//! own work).
//!
//! # Example
//! On the host, over a tokio TCP stream made an `embedded-io-async` transport
//! by `embedded-io-adapters` (on a device, pass embassy-net's `TcpSocket` and a
//! clock built on `embassy_time`, as shown at [`Clock`]):
//! ```no_run
//! use mqtt_embedded::{Client, ClientConfig, Clock, Instant, ProtocolVersion, QoS, Str};
//!
//! /// A clock on tokio's timer, counting from its creation.
//! struct TokioClock(tokio::time::Instant);
//! impl Clock for TokioClock {
//!     fn now(&self) -> Instant {
//!         Instant::from_millis(self.0.elapsed().as_millis() as u64)
//!     }
//!     async fn sleep_until(&self, deadline: Instant) {
//!         tokio::time::sleep_until(self.0 + std::time::Duration::from_millis(deadline.as_millis())).await
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:1883").await?;
//! let transport = embedded_io_adapters::tokio_1::FromTokio::new(stream);
//! let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("sensor-1"));
//! let mut client = Client::new(transport, TokioClock(tokio::time::Instant::now()), config);
//! client.connect().await?;
//!
//! client.subscribe("commands/#", QoS::AtLeastOnce).await?;
//! client.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false).await?; // PUBACK arrived
//! let command = client.next_message().await?;
//! println!("{}: {:?}", command.topic, command.payload);
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Manual acknowledgement
//! With `config.manual_acks = true` a received QoS 1/2 message is not
//! acknowledged to the server until the application hands its token to
//! [`Client::ack`]: take messages with [`Client::next_delivery`], which
//! gives the token ([`Delivery::ack`]). A message whose handling never
//! finished (the device reset, the connection broke) is sent again by the
//! server on a resumed session. Acknowledgements leave in the order the
//! messages arrived, as MQTT requires [MQTT-4.6.0-2] [MQTT-4.6.0-3].
//!
//! # Reconnection
//! A transport cannot be reopened generically, so the caller reconnects:
//! take the client apart with [`Client::into_parts`], open a new transport
//! (or reconnect the same embassy socket), and hand it with the parts to
//! [`Client::resume`]; [`Backoff`] gives the delays between attempts. If the server kept the session (`clean_start: false`
//! and a session expiry interval under 5.0), what was in flight is resent and
//! completes on the new client: start such publishes with
//! [`Client::start_publish`] and await their outcome with
//! [`Client::published`], which works across the reconnection.
//!
//! # Transports
//! `read` and `write` futures are raced against the clock, so they must be
//! side-effect free when dropped unfinished ("cancel-safe" in the
//! `embedded-io-async` sense), as embassy-net sockets and the
//! `embedded-io-adapters` wrappers are.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod ack;
mod clock;
mod error;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use mqtt_client::requests::{first_granted, subscription_filters, topic_filters};
use mqtt_session::{ClientEvent, Connection};

pub use crate::ack::{AckToken, Delivery};
pub use crate::clock::Clock;
pub use crate::error::Error;
pub use mqtt_client::{Backoff, SubscribeResult};
pub use mqtt_session::mqtt_codec::{
    PacketId, ProtocolVersion, QoS, ReasonCode, RetainHandling, Str, SubscriptionId,
    SubscriptionOptions, TopicFilter, TopicName, Will, WillProps,
};
pub use mqtt_session::{
    self, ClientConfig, Close, Initiator, Instant, Limits, Message, ServerCaps, Session, UsageError,
};

/// Bytes asked of the transport per read.
const READ_CHUNK: usize = 1024;
/// How long the last bytes of a closed connection (its DISCONNECT) may take
/// to write before the client gives up on them.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// What CONNACK said when the server accepted the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// The limits the server announced.
    pub caps: ServerCaps,
}

/// What is left of a [`Client`] after [`Client::into_parts`].
#[derive(Debug)]
pub struct Parts<T, C> {
    /// The transport.
    pub transport: T,
    /// The clock.
    pub clock: C,
    /// The session, to resume on the next connection.
    pub session: Session,
    /// The configuration to resume it with.
    pub config: ClientConfig,
}

/// An MQTT client over an `embedded-io-async` transport `T`, keeping time with `C`.
///
/// One connection per `Client`: after it ends, every method returns the error
/// that ended it, and [`into_parts`](Client::into_parts) gives back the
/// transport, the clock, the session and the configuration for
/// [`resume`](Client::resume).
pub struct Client<T, C> {
    transport: T,
    clock: C,
    config: ClientConfig,
    conn: Connection<mqtt_session::Client>,
    /// Received bytes; the first `rlen` are real (the rest is room for a read
    /// that may have been cancelled).
    rbuf: BytesMut,
    rlen: usize,
    /// Encoded packets not yet taken by the transport.
    wbuf: BytesMut,
    /// Messages received while no [`next_message`](Client::next_message) was
    /// waiting, with their tokens under manual acknowledgement.
    messages: VecDeque<Delivery>,
    /// Under manual acknowledgement: the fingerprints of the messages
    /// waiting for [`ack`](Client::ack), by packet identifier (bounded by
    /// the Receive Maximum the session enforces).
    unacked: BTreeMap<PacketId, u64>,
    max_buffered: usize,
    /// Outcomes of QoS 1/2 publishes, until their caller takes them.
    done: BTreeMap<PacketId, Result<ReasonCode, Error>>,
    /// SUBACK/UNSUBACK results, until their caller takes them.
    acks: BTreeMap<PacketId, Vec<ReasonCode>>,
    connected: Option<Connected>,
    closed: Option<Close>,
    transport_error: Option<ErrorKind>,
}

impl<T, C> core::fmt::Debug for Client<T, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .field("buffered_messages", &self.messages.len())
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<T: Read + Write, C: Clock> Client<T, C> {
    /// A client over a freshly opened `transport`, with a new session.
    /// Nothing is sent until [`connect`](Client::connect) is awaited.
    pub fn new(transport: T, clock: C, config: ClientConfig) -> Self {
        Self::with_session(transport, clock, config, None)
    }

    /// A client that resumes `session`, taken from an earlier client with
    /// [`into_parts`](Client::into_parts), over a new `transport`.
    ///
    /// Set `config.clean_start` to false (and, under 5.0, a non-zero
    /// `session_expiry_interval` on the earlier connection): if the server
    /// still has the session, publishes that were in flight are resent and
    /// complete here ([`published`](Client::published)); if it has not, they
    /// are sent again as new publishes.
    pub fn resume(transport: T, clock: C, config: ClientConfig, session: Session) -> Self {
        Self::with_session(transport, clock, config, Some(session))
    }

    fn with_session(
        transport: T,
        clock: C,
        config: ClientConfig,
        session: Option<Session>,
    ) -> Self {
        let conn = Connection::<mqtt_session::Client>::new(config.clone(), clock.now(), session);
        Client {
            transport,
            clock,
            config,
            conn,
            rbuf: BytesMut::new(),
            rlen: 0,
            wbuf: BytesMut::new(),
            messages: VecDeque::new(),
            unacked: BTreeMap::new(),
            max_buffered: 16,
            done: BTreeMap::new(),
            acks: BTreeMap::new(),
            connected: None,
            closed: None,
            transport_error: None,
        }
    }

    /// Sets how many received messages are held while the application is
    /// busy elsewhere (default 16). When that many wait, the client stops
    /// reading, and a call that needs the server's answer returns
    /// [`Error::Backlog`] until messages are taken.
    pub fn set_max_buffered_messages(&mut self, max: usize) {
        self.max_buffered = max.max(1);
    }

    /// Sends CONNECT and waits for CONNACK (bounded by the configuration's
    /// `connect_timeout`).
    pub async fn connect(&mut self) -> Result<Connected, Error> {
        loop {
            if let Some(c) = &self.connected {
                return Ok(c.clone());
            }
            self.step().await?;
        }
    }

    /// True while the connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// Publishes `payload` to `topic` and waits for its outcome: QoS 0
    /// completes once the transport took the bytes, QoS 1 once PUBACK
    /// arrived, QoS 2 once PUBCOMP arrived, with the server's reason code
    /// (success, or 0x10 "no matching subscribers" under 5.0; always success
    /// under 3.1.1). A failure reason code is [`Error::Refused`].
    ///
    /// If this fails after the message was handed over, the message stays in
    /// the session; use [`start_publish`](Client::start_publish) and
    /// [`published`](Client::published) to keep hold of its outcome.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, Error> {
        let topic = TopicName::try_from(topic)?;
        self.publish_message(Message::new(topic, payload, qos, retain))
            .await
    }

    /// Publishes a message with 5.0 properties; see [`Client::publish`].
    pub async fn publish_message(&mut self, msg: Message) -> Result<ReasonCode, Error> {
        match self.start_publish(msg).await? {
            Some(id) => self.published(id).await,
            None => Ok(ReasonCode::SUCCESS),
        }
    }

    /// Hands `msg` to the session and writes it out, without waiting for the
    /// server. Returns the packet identifier of a QoS 1/2 publish, whose
    /// outcome [`published`](Client::published) awaits.
    pub async fn start_publish(&mut self, msg: Message) -> Result<Option<PacketId>, Error> {
        let id = self
            .conn
            .publish(self.clock.now(), msg)
            .map_err(|e| self.usage(e))?;
        if let Some(id) = id {
            // An outcome left over from an earlier use of this identifier.
            self.done.remove(&id);
        }
        self.flush().await;
        if id.is_none() && self.conn.is_closed() {
            return Err(self.closed_error());
        }
        Ok(id)
    }

    /// Waits for the outcome of the QoS 1/2 publish `id` (from
    /// [`start_publish`](Client::start_publish), on this client or on the
    /// one whose session this client resumed).
    pub async fn published(&mut self, id: PacketId) -> Result<ReasonCode, Error> {
        loop {
            match self.done.remove(&id) {
                Some(Ok(reason)) if reason.is_error() => return Err(Error::Refused(reason)),
                Some(outcome) => return outcome,
                None => {}
            }
            let idle = self
                .conn
                .session()
                .is_some_and(|s| s.inflight() == 0 && s.queued() == 0);
            if self.conn.is_connected() && idle {
                return Err(Error::Usage(UsageError::UnknownPacketId(id)));
            }
            self.step_reading().await?;
        }
    }

    /// Subscribes to one filter; returns the QoS the server granted, or
    /// [`Error::Refused`] with its failure reason code.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS, Error> {
        let results = self
            .subscribe_with(&[(filter, SubscriptionOptions::new(qos))], None)
            .await?;
        first_granted(&results).map_err(Error::Refused)
    }

    /// Subscribes to several filters with 5.0 subscription options (No
    /// Local, Retain As Published, Retain Handling) and an optional
    /// subscription identifier; one result per filter, in order: the granted
    /// QoS or the failure reason code.
    pub async fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<SubscriptionId>,
    ) -> Result<Vec<SubscribeResult>, Error> {
        let filters = subscription_filters(filters)?;
        let id = self
            .conn
            .subscribe(self.clock.now(), filters, identifier)
            .map_err(|e| self.usage(e))?;
        let results = self.wait_ack(id).await?;
        Ok(results.into_iter().map(mqtt_client::granted).collect())
    }

    /// Unsubscribes; one reason code per filter under 5.0 (success or 0x11
    /// "no subscription existed"), none under 3.1.1.
    pub async fn unsubscribe(&mut self, filters: &[&str]) -> Result<Vec<ReasonCode>, Error> {
        let filters = topic_filters(filters)?;
        let id = self
            .conn
            .unsubscribe(self.clock.now(), filters)
            .map_err(|e| self.usage(e))?;
        self.wait_ack(id).await
    }

    async fn wait_ack(&mut self, id: PacketId) -> Result<Vec<ReasonCode>, Error> {
        self.acks.remove(&id);
        loop {
            if let Some(results) = self.acks.remove(&id) {
                return Ok(results);
            }
            self.step_reading().await?;
        }
    }

    /// The next message from the server, waiting (and keeping the connection
    /// alive) until one arrives. Messages already received come first, even
    /// after the connection ended. Dropping the future loses nothing.
    ///
    /// Under manual acknowledgement (`config.manual_acks`) use
    /// [`next_delivery`](Client::next_delivery), which gives the token to
    /// acknowledge the message with: a message taken here is never
    /// acknowledged on this connection.
    pub async fn next_message(&mut self) -> Result<Message, Error> {
        self.next_delivery().await.map(|d| d.message)
    }

    /// A message already received, without waiting.
    pub fn try_next_message(&mut self) -> Option<Message> {
        self.try_next_delivery().map(|d| d.message)
    }

    /// [`next_message`](Client::next_message) with the message's
    /// acknowledgement token under manual acknowledgement
    /// ([`Delivery::ack`], for [`ack`](Client::ack)).
    pub async fn next_delivery(&mut self) -> Result<Delivery, Error> {
        loop {
            if let Some(d) = self.messages.pop_front() {
                return Ok(d);
            }
            self.step().await?;
        }
    }

    /// A message already received with its token, without waiting.
    pub fn try_next_delivery(&mut self) -> Option<Delivery> {
        self.messages.pop_front()
    }

    /// Acknowledges a message received under manual acknowledgement
    /// (`config.manual_acks`) with the token of its [`Delivery`]: PUBACK,
    /// or PUBREC for QoS 2, written out before this returns. An
    /// acknowledgement given early waits for those of the messages
    /// received before it [MQTT-4.6.0-2] [MQTT-4.6.0-3].
    ///
    /// [`Error::NotAwaitingAck`] if the message waits for no
    /// acknowledgement here (acknowledged already, or received by an
    /// earlier client: the server sends it again, with a token of its own);
    /// [`Error::StaleAck`] for the token of a message this client did not
    /// receive; the connection's error once it has ended.
    pub async fn ack(&mut self, token: AckToken) -> Result<(), Error> {
        let id = token.packet_id();
        match self.unacked.get(&id) {
            Some(&fingerprint) if fingerprint == token.fingerprint() => {}
            Some(_) => return Err(Error::StaleAck),
            None => return Err(Error::NotAwaitingAck),
        }
        self.conn.ack(id).map_err(|e| self.usage(e))?;
        self.unacked.remove(&id);
        self.flush().await;
        match self.transport_error {
            Some(kind) => Err(Error::Transport(kind)),
            None => Ok(()),
        }
    }

    /// Disconnects normally: DISCONNECT, no will.
    pub async fn disconnect(&mut self) -> Result<(), Error> {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION).await
    }

    /// Disconnects with a 5.0 reason code (0x04 asks the server to publish
    /// the will anyway); 3.1.1 sends a plain DISCONNECT.
    pub async fn disconnect_with(&mut self, reason: ReasonCode) -> Result<(), Error> {
        if self.conn.is_closed() {
            return Err(self.closed_error());
        }
        self.conn.disconnect(self.clock.now(), reason);
        self.flush().await;
        self.dispatch();
        match self.transport_error {
            Some(kind) => Err(Error::Transport(kind)),
            None => Ok(()),
        }
    }

    /// How the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&Close> {
        self.closed.as_ref()
    }

    /// Takes the client apart for [`resume`](Client::resume): the transport
    /// (to drop, or to reopen), the clock, the session (its in-flight and
    /// queued publishes) and the configuration for the next connection
    /// ([`ClientConfig::for_resumption`]: Clean Start 0 when the server keeps
    /// the session, and the client identifier it assigned, if any).
    pub fn into_parts(self) -> Parts<T, C> {
        let caps = self.connected.as_ref().map(|c| &c.caps);
        let config = self.config.for_resumption(caps);
        let session = self
            .conn
            .detach()
            .unwrap_or_else(|| Session::new(config.limits.max_queued));
        Parts {
            transport: self.transport,
            clock: self.clock,
            session,
            config,
        }
    }

    /// A usage error from the session, or the error that closed the connection.
    fn usage(&self, e: UsageError) -> Error {
        if e == UsageError::NotConnected && self.closed.is_some() {
            self.closed_error()
        } else {
            Error::Usage(e)
        }
    }

    fn closed_error(&self) -> Error {
        if let Some(kind) = self.transport_error {
            return Error::Transport(kind);
        }
        match &self.closed {
            Some(c)
                if self.connected.is_none()
                    && c.initiator == Initiator::Peer
                    && c.violation.is_none() =>
            {
                Error::Refused(c.reason)
            }
            Some(c) => Error::Closed(Box::new(c.clone())),
            None => Error::Transport(ErrorKind::NotConnected),
        }
    }

    /// Moves the session's events to where callers look for them.
    fn dispatch(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                ClientEvent::Connected {
                    session_present,
                    caps,
                    ..
                } => {
                    self.connected = Some(Connected {
                        session_present,
                        caps,
                    })
                }
                ClientEvent::Message { msg, packet_id, .. } => {
                    let ack = packet_id
                        .filter(|_| self.config.manual_acks)
                        .map(|id| AckToken::new(id, &msg));
                    if let Some(token) = ack {
                        self.unacked.insert(token.packet_id(), token.fingerprint());
                    }
                    self.messages.push_back(Delivery { message: msg, ack });
                }
                ClientEvent::Published { id, reason, .. } => {
                    self.done.insert(id, Ok(reason));
                }
                ClientEvent::Expired { id, .. } => {
                    self.done.insert(id, Err(Error::Expired));
                }
                ClientEvent::Subscribed { id, results, .. }
                | ClientEvent::Unsubscribed { id, results, .. } => {
                    self.acks.insert(id, results);
                }
                ClientEvent::Closed(close) => self.closed = Some(close),
                // Enhanced authentication is not offered by this adapter; a
                // server that starts it runs into the connect timeout.
                ClientEvent::Auth { .. } => {}
            }
        }
    }

    /// One round that needs the server's answer: refused while the message
    /// buffer is full, since reading could only grow it further.
    async fn step_reading(&mut self) -> Result<(), Error> {
        if self.messages.len() >= self.max_buffered {
            self.flush().await;
            return Err(Error::Backlog);
        }
        self.step().await
    }

    /// One round of the drive loop: write what is pending, then wait for
    /// bytes or the next deadline and hand either to the session.
    async fn step(&mut self) -> Result<(), Error> {
        self.flush().await;
        if self.conn.is_closed() {
            return Err(self.closed_error());
        }
        // A read cancelled last time left room bytes behind: drop them.
        self.rbuf.truncate(self.rlen);
        let len = self.rlen;
        self.rbuf.resize(len + READ_CHUNK, 0);
        let deadline = self.conn.poll_timeout();
        let r = select(
            self.transport.read(&mut self.rbuf[len..]),
            sleep(&self.clock, deadline),
        )
        .await;
        let now = self.clock.now();
        match r {
            Either::Left(Ok(n)) if n > 0 => {
                self.rbuf.truncate(len + n);
                self.conn.handle_read(now, &mut self.rbuf);
            }
            Either::Left(Ok(_)) => {
                self.rbuf.truncate(len);
                self.conn.handle_eof(now);
            }
            Either::Left(Err(e)) => {
                self.rbuf.truncate(len);
                self.transport_error = Some(e.kind());
                self.conn.handle_eof(now);
            }
            Either::Right(()) => {
                self.rbuf.truncate(len);
                self.conn.handle_timeout(now);
            }
        }
        self.rlen = self.rbuf.len();
        // Answers (PUBACK, PUBREC, PINGREQ, ...) go out now, not on the next call.
        self.flush().await;
        Ok(())
    }

    /// Writes every pending packet to the transport, acting on deadlines
    /// that pass meanwhile (a keep-alive timeout ends a write that never
    /// completes). A transport error closes the connection.
    async fn flush(&mut self) {
        let mut wrote = false;
        let mut linger_until = None;
        loop {
            let now = self.clock.now();
            let _ = self.conn.poll_transmit(now, &mut self.wbuf);
            self.dispatch();
            if self.wbuf.is_empty() || self.transport_error.is_some() {
                self.wbuf.clear();
                break;
            }
            let deadline = match self.conn.poll_timeout() {
                Some(d) => d,
                // Closed: its last bytes get a bounded time.
                None => *linger_until.get_or_insert(now.saturating_add(CLOSE_LINGER)),
            };
            match select(
                self.transport.write(&self.wbuf),
                sleep(&self.clock, Some(deadline)),
            )
            .await
            {
                Either::Left(Ok(0)) => self.fail(ErrorKind::WriteZero),
                Either::Left(Ok(n)) => {
                    self.wbuf.advance(n);
                    wrote = true;
                }
                Either::Left(Err(e)) => self.fail(e.kind()),
                Either::Right(()) => {
                    if self.conn.is_closed() {
                        self.wbuf.clear();
                        break;
                    }
                    self.conn.handle_timeout(self.clock.now());
                    if self.conn.is_closed() {
                        // Timed out mid-write: the rest of the stream is moot.
                        self.wbuf.clear();
                        break;
                    }
                }
            }
        }
        if wrote && self.transport_error.is_none() {
            let deadline = self
                .conn
                .poll_timeout()
                .unwrap_or_else(|| self.clock.now().saturating_add(CLOSE_LINGER));
            match select(self.transport.flush(), sleep(&self.clock, Some(deadline))).await {
                Either::Left(Ok(())) => {}
                Either::Left(Err(e)) => self.fail(e.kind()),
                // A flush that outlasts the deadline: the next round's timer
                // handling decides whether the connection is still alive.
                Either::Right(()) => {}
            }
        }
        self.dispatch();
    }

    /// The transport failed: the connection is over.
    fn fail(&mut self, kind: ErrorKind) {
        self.transport_error = Some(kind);
        self.wbuf.clear();
        self.conn.handle_eof(self.clock.now());
        self.dispatch();
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures, `a` first; the first to finish wins and the other is dropped.
async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(x) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(x));
        }
        Poll::Pending
    })
    .await
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep<C: Clock>(clock: &C, deadline: Option<Instant>) {
    match deadline {
        Some(d) => clock.sleep_until(d).await,
        None => core::future::pending().await,
    }
}
