//! Sessions: CONNECT (client identifier, authentication, takeover, clean
//! start or resume), the session table, and what happens when a connection
//! closes (session kept until its expiry, or ended).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::cmp::Reverse;
use core::fmt::Write as _;
use core::time::Duration;

use mqtt_codec::{ConnAckProps, ProtocolVersion, ReasonCode, Str};
use mqtt_session::mqtt_codec::Connect;
use mqtt_session::{Close, Message, Session};

use super::auth::{own_str, Authenticated, Parked};
use super::route::may_publish;
use super::{
    AuthSuccess, Broker, BrokerEvent, ConnId, ConnectedWill, PeerInfo, Reader, SessionKey,
    StoreRecord, Timer,
};
use crate::Instant;

pub(super) struct SessionEntry {
    pub(super) client_id: Str,
    pub(super) username: Option<Str>,
    pub(super) peer: Arc<PeerInfo>,
    pub(super) conn: Option<ConnId>,
    /// The session while no connection holds it. Boxed: the entries of
    /// connected clients, most of them, then hold 8 bytes instead of 168.
    pub(super) stored: Option<Box<Session>>,
    /// When a detached session ends (`None` while connected, or never).
    pub(super) expires_at: Option<Instant>,
    /// A will waiting for its delay, and when it is due.
    /// Boxed: most sessions have none, and a `Message` is 216 bytes.
    pub(super) will: Option<Box<(Message, Instant)>>,
    /// Bumped whenever the session is reused, so stale timers are ignored.
    pub(super) generation: u32,
    /// Whether the store holds this session (a persistent session of a
    /// broker with a store): its changes are recorded.
    pub(super) durable: bool,
    /// The owner's rights as a reader, checked per delivery, connected or
    /// not (and for its will, as a publisher).
    pub(super) reader: Reader,
    /// Whether it outlives its connection (a session expiry above zero):
    /// counted against `max_persistent_sessions`.
    pub(super) persistent: bool,
    /// Retained messages still to be sent for its SUBSCRIBEs, in slices.
    pub(super) replay: Option<Box<super::replay::Replay>>,
}

impl Broker {
    pub(super) fn on_connect(&mut self, id: ConnId, now: Instant, connect: Box<Connect>) {
        let mut ack = ConnAckProps::default();
        let Some(client_id) = self.client_id_for(id, now, &connect, &mut ack) else {
            return;
        };
        let method = connect.props.authentication_method.as_ref().map(own_str);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(m) = &method {
            if !self.config.auth.methods.iter().any(|k| k == m.as_str()) {
                // [MQTT-4.12.0-1]: a method the server does not support.
                c.conn.reject(now, ReasonCode::BAD_AUTHENTICATION_METHOD);
                self.stats
                    .refuse_connect(ReasonCode::BAD_AUTHENTICATION_METHOD);
                return;
            }
        }
        let username = connect.username.as_ref().map(own_str);
        let parked = Parked::new(
            client_id,
            ack,
            connect.clean_start,
            connect.bridge,
            username.clone(),
        );
        if !self.config.auth.required && method.is_none() {
            return self.complete_connect(id, now, parked, AuthSuccess::automatic(username));
        }
        let copy = |b: &bytes::Bytes| bytes::Bytes::copy_from_slice(b);
        let password = connect.password.as_ref().map(copy);
        let data = connect.props.authentication_data.as_ref().map(copy);
        self.request_connect_auth(id, parked, method, password, data);
    }

    /// Accepts an authenticated CONNECT: the session is taken over, resumed
    /// (by its owner only) or made, and CONNACK goes out. Publishers that a
    /// taken-over connection held back resume once the CONNECT is done, not
    /// in its middle, where their waiting publishes would still reach the
    /// subscriptions of a session that a clean start then discards.
    pub(super) fn complete_connect(
        &mut self,
        id: ConnId,
        now: Instant,
        parked: Parked,
        who: Authenticated,
    ) {
        self.resuming_after(now, |b| b.accept_connect(id, now, parked, who));
    }

    fn accept_connect(&mut self, id: ConnId, now: Instant, parked: Parked, who: Authenticated) {
        let Parked {
            client_id,
            mut ack,
            clean_start,
            try_private,
            ..
        } = parked;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.username = who.username;
        c.rights = who.rights;
        c.try_private = try_private;
        let failing = self.store.as_deref().is_some_and(|d| d.is_failing());
        if failing && c.conn.version().is_v5() && c.conn.session_expiry_interval() > 0 {
            // The store cannot write: a persistent session could not be kept.
            c.conn.reject(now, ReasonCode::QUOTA_EXCEEDED);
            self.stats.refuse_connect(ReasonCode::QUOTA_EXCEEDED);
            return;
        }
        let will_denied = !c.rights.is_allow_all()
            && c.conn
                .will_message(now)
                .is_some_and(|(will, _)| !may_publish(&c.rights, &will));
        if will_denied {
            // A will is a publish of the client's: refused at CONNECT, as
            // Mosquitto does, rather than dropped when it comes due.
            c.conn.reject(now, ReasonCode::NOT_AUTHORIZED);
            self.stats.refuse_connect(ReasonCode::NOT_AUTHORIZED);
            return;
        }
        if c.conn.session_expiry_interval() > self.config.max_session_expiry {
            ack.session_expiry_interval = Some(self.config.max_session_expiry);
        }
        if who.method.is_some() {
            // The CONNACK of enhanced authentication names its method.
            ack.authentication_method = who.method;
            ack.authentication_data = who.data;
        }
        let username = c.username.clone();
        if let Some(reason) = self.connect_over_limits(id, now, &client_id) {
            if let Some(c) = self.conns.get_mut(id) {
                c.conn.reject(now, reason);
            }
            self.stats.refuse_connect(reason);
            return;
        }
        self.settle_detached(now, &client_id);
        self.take_over(id, now, &client_id);
        let (key, stored) = self.session_for(now, client_id, clean_start, &username);
        self.attach(id, key);
        if let Some(s) = stored.as_ref() {
            self.offline_sub(s);
        }
        let persistent = self.conns.get(id).is_some_and(|c| {
            c.conn
                .session_expiry_interval()
                .min(self.config.max_session_expiry)
                > 0
        });
        self.set_persistent(key, persistent);
        // The identifier the session has: assigned, for an empty one.
        let session_client_id = self.sessions[key as usize]
            .as_ref()
            .map(|e| e.client_id.clone());
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.session = Some(key);
        let resumed = stored.is_some();
        // Invariant: the connection is awaiting acceptance, having just sent CONNECT.
        let _ = c.conn.accept(now, stored, ack);
        self.stats.connections_total += 1;
        self.events.push_back(BrokerEvent::Connected {
            id,
            client_id: session_client_id.unwrap_or_else(|| c.conn.client_id().clone()),
            username: c.username.clone(),
            version: c.conn.version(),
            session_present: resumed,
        });
        if self.store.is_some() {
            self.record_connect(id, key, resumed, now);
        }
    }

    /// Records the session a connection took: opened or resumed when it
    /// outlives the connection, ended when it no longer does.
    fn record_connect(&mut self, id: ConnId, key: SessionKey, resumed: bool, now: Instant) {
        let max = self.config.max_session_expiry;
        let (Some(c), Some(entry)) = (self.conns.get_mut(id), self.sessions[key as usize].as_mut())
        else {
            return;
        };
        let expiry = c.conn.session_expiry_interval().min(max);
        let client_id = entry.client_id.clone();
        let username = entry.username.clone();
        let will = c
            .conn
            .will_message(now)
            .map(|(msg, delay)| connected_will(msg, delay, now));
        if expiry == 0 {
            // It ends with this connection [MQTT-3.1.2-23]: a crash ends it too.
            let was = core::mem::replace(&mut entry.durable, false);
            c.conn.track_session_changes(false);
            if was {
                self.emit(|| StoreRecord::SessionEnded { client_id });
            }
            return;
        }
        let r = if resumed && entry.durable {
            StoreRecord::SessionResumed {
                client_id,
                username,
                expiry,
                will,
            }
        } else {
            StoreRecord::SessionOpened {
                client_id,
                username,
                expiry,
                will,
            }
        };
        entry.durable = true;
        c.conn.track_session_changes(true);
        self.emit(|| r);
    }

    /// The refusal of an authenticated CONNECT by the limits, if any: a
    /// will past the topic depth (0x90 Topic Name invalid) or the property
    /// limits (0x97 Quota exceeded), or one persistent session too many
    /// (0x97 Quota exceeded; 3.1.1: 0x03 Server unavailable).
    fn connect_over_limits(
        &mut self,
        id: ConnId,
        now: Instant,
        client_id: &Str,
    ) -> Option<ReasonCode> {
        let c = self.conns.get(id)?;
        let v5 = c.conn.version().is_v5();
        let persistent = c
            .conn
            .session_expiry_interval()
            .min(self.config.max_session_expiry)
            > 0;
        if let Some((will, _)) = c.conn.will_message(now) {
            if let Err(refusal) = self.check_message(&will) {
                return Some(refusal.publish_reason());
            }
        }
        if persistent && !self.persistent_room(client_id) {
            return Some(if v5 {
                ReasonCode::QUOTA_EXCEEDED
            } else {
                ReasonCode::SERVER_UNAVAILABLE
            });
        }
        None
    }

    /// The client identifier of a CONNECT, assigned when it is empty and
    /// the rules allow [MQTT-3.1.3-7], [MQTT-3.1.3-8]; `None` when the
    /// connection was refused for it.
    fn client_id_for(
        &mut self,
        id: ConnId,
        now: Instant,
        connect: &Connect,
        ack: &mut ConnAckProps,
    ) -> Option<Str> {
        let c = self.conns.get_mut(id)?;
        // Copied out of the CONNECT: sharing it would keep the connection's
        // whole first read buffer alive for as long as the session lives.
        let client_id = Str::copy_from(&connect.client_id.borrowed());
        if !client_id.is_empty() {
            return Some(client_id);
        }
        // 5.0 always, 3.1.1 only with a clean session.
        if connect.protocol != ProtocolVersion::V5 && !connect.clean_start {
            c.conn.reject(now, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            self.stats
                .refuse_connect(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            return None;
        }
        let mut s = String::from("auto-");
        let _ = write!(s, "{:016x}", self.rng.next_u64());
        let assigned = Str::try_from(s).unwrap_or_default();
        if connect.protocol.is_v5() {
            ack.assigned_client_identifier = Some(assigned.clone());
        }
        Some(assigned)
    }

    /// What is due by `now` for the detached session of `client_id`: a
    /// will past its delay goes out, a session past its expiry ends. Its
    /// timer may not have fired yet (the adapter calls `handle_timeout` a
    /// little late, or the clock jumped), but a session is gone at its
    /// expiry [MQTT-3.1.2-23] and must not be resumed after it.
    fn settle_detached(&mut self, now: Instant, client_id: &Str) {
        let Some(&key) = self.client_ids.get(client_id) else {
            return;
        };
        let Some(entry) = self.sessions[key as usize].as_ref() else {
            return;
        };
        let generation = entry.generation;
        self.session_timer(key, generation, now, now);
    }

    /// Take over: the client's previous connection ends with 0x8E, and its
    /// will is handled as for any other close [MQTT-3.1.4-3].
    fn take_over(&mut self, id: ConnId, now: Instant, client_id: &Str) {
        let Some(&key) = self.client_ids.get(client_id) else {
            return;
        };
        let Some(old) = self.sessions[key as usize].as_ref().and_then(|s| s.conn) else {
            return;
        };
        if old != id {
            if let Some(oc) = self.conns.get_mut(old) {
                oc.conn.close(now, ReasonCode::SESSION_TAKEN_OVER);
            }
            self.drain(old, now);
        }
    }

    /// The session a CONNECT gets: the stored one resumed, or a new one
    /// (clean start, none stored, or one of another user).
    fn session_for(
        &mut self,
        now: Instant,
        client_id: Str,
        clean_start: bool,
        username: &Option<Str>,
    ) -> (SessionKey, Option<Session>) {
        let key = self.client_ids.get(&client_id).copied();
        // A session belongs to the user that opened it: another user (an
        // anonymous client included) does not inherit its subscriptions
        // and messages, and starts afresh as with a clean start. Mosquitto
        // hands the session over; see DESIGN.md.
        let owned = key
            .and_then(|k| self.sessions[k as usize].as_ref())
            .is_some_and(|e| e.username == *username);
        match key {
            Some(key) if !clean_start && owned => {
                let entry = self.sessions[key as usize]
                    .as_mut()
                    .expect("client_ids only names live sessions");
                (key, entry.stored.take().map(|s| *s))
            }
            Some(key) => {
                // Clean start: the old session and its subscriptions go
                // [MQTT-3.1.2-4]. That ends the session, so a will still
                // waiting for its delay is published now (section 3.1.3.2.2:
                // "until the Will Delay Interval has passed or the Session
                // ends, whichever happens first"); this is not a connection
                // *to that session*, which would cancel it [MQTT-3.1.3-9].
                self.end_session(key, now, true);
                (self.new_session(client_id), None)
            }
            None => (self.new_session(client_id), None),
        }
    }

    /// Session `key` now belongs to connection `id`.
    fn attach(&mut self, id: ConnId, key: SessionKey) {
        let Some(c) = self.conns.get(id) else {
            return;
        };
        let (username, peer) = (c.username.clone(), c.peer.clone());
        let rights = c.rights.clone();
        if let Some(entry) = self.sessions[key as usize].as_mut() {
            if *entry.reader.rights() != rights {
                entry.reader = Reader::new(rights);
            }
            // A reconnection before the will delay cancels the will
            // (section 3.1.3.2.2).
            entry.will = None;
            entry.expires_at = None;
            entry.generation = entry.generation.wrapping_add(1);
            entry.conn = Some(id);
            entry.username = username;
            entry.peer = peer;
        }
    }

    pub(super) fn new_session(&mut self, client_id: Str) -> SessionKey {
        let entry = SessionEntry {
            client_id: client_id.clone(),
            username: None,
            peer: Arc::default(),
            conn: None,
            stored: None,
            expires_at: None,
            will: None,
            generation: 0,
            durable: false,
            reader: Reader::new(self.config.auth.unknown_rights()),
            persistent: false,
            replay: None,
        };
        let key = match self.free_sessions.pop() {
            Some(k) => {
                self.sessions[k as usize] = Some(entry);
                k
            }
            None => {
                self.sessions.push(Some(entry));
                // Below 2^31 (the bridge keys' bit): that many entries would
                // take over 200 GiB.
                debug_assert!(self.sessions.len() <= super::bridges::BRIDGE_KEY as usize);
                (self.sessions.len() - 1) as SessionKey
            }
        };
        self.client_ids.insert(client_id, key);
        key
    }

    /// Ends a session: its subscriptions and queued messages go; a pending
    /// will is published now if `publish_will` (the session ending before the
    /// will delay, section 3.1.2.5).
    pub(super) fn end_session(&mut self, key: SessionKey, now: Instant, publish_will: bool) {
        self.set_persistent(key, false);
        let Some(entry) = self.sessions[key as usize].take() else {
            return;
        };
        if let Some(s) = entry.stored.as_deref() {
            self.offline_sub(s);
        }
        self.interest_session_ended(key);
        self.index.remove_client(key);
        if self.client_ids.get(&entry.client_id) == Some(&key) {
            self.client_ids.remove(&entry.client_id);
        }
        self.free_sessions.push(key);
        if entry.durable {
            let client_id = entry.client_id.clone();
            self.emit(|| StoreRecord::SessionEnded { client_id });
        }
        if publish_will {
            if let Some((will, _)) = entry.will.map(|b| *b) {
                self.publish_will(now, will, entry.reader.rights(), &entry.client_id);
            }
        }
    }

    // ----- close, wills, session expiry ----------------------------------------

    pub(super) fn on_closed(&mut self, id: ConnId, now: Instant, close: Close) {
        // What the session recorded goes out before the session leaves.
        self.journal_conn(id);
        self.forget_auth(id);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.closed = true;
        let session = c.conn.take_session();
        let expiry = c.conn.session_expiry_interval();
        let key = c.session.take();
        let drained = c.conn.is_closed();
        self.events.push_back(BrokerEvent::Closed {
            id,
            close: close.clone(),
        });
        if drained {
            self.free_conn(id);
        }
        let Some(key) = key else {
            return;
        };
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return;
        };
        if entry.conn != Some(id) {
            return;
        }
        entry.conn = None;
        let expiry = expiry.min(self.config.max_session_expiry);
        let will = close.will;
        if expiry == 0 {
            // The session ends with the connection: a will is published now.
            if let Some((msg, _)) = will {
                entry.will = Some(Box::new((msg, now)));
            }
            self.end_session(key, now, true);
            return;
        }
        if let Some(s) = session.as_ref() {
            self.offline_add(s);
        }
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return;
        };
        entry.stored = session.map(Box::new);
        entry.generation = entry.generation.wrapping_add(1);
        let generation = entry.generation;
        entry.expires_at = (expiry != u32::MAX)
            .then(|| now.saturating_add(Duration::from_secs(u64::from(expiry))));
        if let Some(at) = entry.expires_at {
            self.timers
                .push(Reverse((at, Timer::Session(key, generation))));
        }
        if let Some((msg, delay)) = will {
            self.will_at_close(key, msg, delay, now);
        }
        self.record_detached(key);
    }

    /// Session `key`'s timer entry for instant `at` fired at `now`: what
    /// was due by `at` is acted on.
    pub(super) fn session_timer(
        &mut self,
        key: SessionKey,
        generation: u32,
        at: Instant,
        now: Instant,
    ) {
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        if entry.generation != generation || entry.conn.is_some() {
            return;
        }
        // Compared with the entry's own instant, not `now` (as connection
        // timers are): a reused slot starts its generations again, so an
        // entry left by the slot's previous session can match a new one;
        // acted on late (a clock jump), it would publish the new session's
        // will before deadlines that fall between them (another client's
        // keep alive running out first). Its own entry acts in its turn.
        let expires = entry.expires_at;
        // A will due before its session ends goes out alone. One due
        // because the session ends (its delay reaches the expiry) goes out
        // once the session has ended ("until the Will Delay Interval has
        // passed or the Session ends", section 3.1.3.2.2): `end_session`
        // publishes it after the session's subscriptions are gone, so it
        // cannot be queued to the very session that is dropping its queue
        // (a shared group picking it would lose a QoS 1 will unreported,
        // where another member could take it, section 4.8.2).
        let will_first = entry
            .will
            .as_ref()
            .is_some_and(|w| w.1 <= at && expires.is_none_or(|e| w.1 < e));
        if will_first {
            if let Some((msg, _)) = entry.will.take().map(|b| *b) {
                let (rights, owner) = (entry.reader.rights().clone(), entry.client_id.clone());
                self.publish_will(now, msg, &rights, &owner);
                self.record_detached(key);
            }
        }
        if expires.is_some_and(|e| e <= at) {
            self.stats.sessions_expired += 1;
            self.end_session(key, now, true);
        }
    }
}

/// A connection's will as stored while it is connected: the message without
/// its deadline, the Message Expiry Interval it had, the Will Delay Interval.
fn connected_will(mut message: Message, delay: Duration, now: Instant) -> ConnectedWill {
    let published = now.saturating_add(delay);
    let message_expiry = message.props.expires_at.map(|at| {
        let ms = at.as_millis().saturating_sub(published.as_millis());
        u32::try_from(ms / 1000).unwrap_or(u32::MAX)
    });
    message.props.expires_at = None;
    ConnectedWill {
        message,
        message_expiry,
        delay: u32::try_from(delay.as_secs()).unwrap_or(u32::MAX),
    }
}
