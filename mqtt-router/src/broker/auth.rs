//! Authentication as requests and answers: the core never calls a policy
//! and never waits. A CONNECT (after the client identifier rules) becomes
//! an [`AuthRequest`] the driver takes with [`Broker::poll_auth`]; the
//! connection is parked (no CONNACK, what the client sends meanwhile held
//! by the session layer, bounded, and refused with "server busy" at the
//! CONNECT deadline) until the driver calls [`Broker::answer_auth`]. 5.0
//! enhanced authentication (section 4.12) takes as many round trips as the
//! driver asks for ([`AuthAnswer::Continue`]), and a connected client may
//! re-authenticate (AUTH 0x19) under the same method.
//!
//! ```text
//! while let Some(req) = broker.poll_auth() {
//!     // check off the core task; later, on the core task:
//!     broker.answer_auth(req.ticket(), now, answer)?; // Stale: connection gone
//! }
//! ```

use alloc::boxed::Box;
use alloc::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{AuthProps, ConnAckProps, ProtocolVersion, ReasonCode, Str};

use super::rights::{Reader, Rights};
use super::{Broker, ConnId, PeerInfo};
use crate::Instant;

/// Names one outstanding authentication request; answers carry it back.
/// A ticket of a connection that has gone, or of a request that was
/// superseded, is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthTicket {
    conn: ConnId,
    seq: u32,
}

impl AuthTicket {
    /// The connection the request is about.
    pub fn conn(&self) -> ConnId {
        self.conn
    }
}

/// Which step of authentication a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// A CONNECT: user name, password, and the first Authentication Data
    /// of an enhanced method.
    Connect,
    /// The client's next AUTH (0x18) after the driver asked to continue.
    Continue,
    /// A connected client re-authenticates (AUTH 0x19, section 4.12.1).
    Reauthenticate,
}

/// What the driver needs to decide: plain data, taken by
/// [`Broker::poll_auth`].
#[derive(Debug, Clone)]
pub struct AuthRequest {
    ticket: AuthTicket,
    step: AuthStep,
    version: ProtocolVersion,
    client_id: Str,
    username: Option<Str>,
    password: Option<Bytes>,
    method: Option<Str>,
    data: Option<Bytes>,
    peer: Arc<PeerInfo>,
}

impl AuthRequest {
    /// The ticket to answer with.
    pub fn ticket(&self) -> AuthTicket {
        self.ticket
    }

    /// Which step this is.
    pub fn step(&self) -> AuthStep {
        self.step
    }

    /// The client's protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The client identifier, after assignment of an empty one.
    pub fn client_id(&self) -> &Str {
        &self.client_id
    }

    /// The user name: the CONNECT's while connecting, the authenticated
    /// one when re-authenticating.
    pub fn username(&self) -> Option<&Str> {
        self.username.as_ref()
    }

    /// The CONNECT's password (only in [`AuthStep::Connect`]).
    pub fn password(&self) -> Option<&Bytes> {
        self.password.as_ref()
    }

    /// The Authentication Method (5.0 enhanced authentication), if any.
    pub fn method(&self) -> Option<&Str> {
        self.method.as_ref()
    }

    /// The Authentication Data of this step, if any.
    pub fn data(&self) -> Option<&Bytes> {
        self.data.as_ref()
    }

    /// What the transport knows about the peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

/// A successful authentication: who the client is and what it may do.
#[derive(Debug, Clone)]
pub struct AuthSuccess {
    username: Option<Str>,
    rights: Rights,
    data: Option<Bytes>,
}

impl AuthSuccess {
    /// The client is `username` (`None`: anonymous) with `rights`. The
    /// user name owns the session: a session is resumed only by its user.
    pub fn new(username: Option<Str>, rights: Rights) -> Self {
        AuthSuccess {
            username,
            rights,
            data: None,
        }
    }

    /// Authentication Data for the CONNACK (or the AUTH 0x00 ending a
    /// re-authentication) of an enhanced method.
    pub fn with_data(mut self, data: Bytes) -> Self {
        self.data = Some(data);
        self
    }
}

/// The driver's answer to an [`AuthRequest`].
#[derive(Debug, Clone)]
pub enum AuthAnswer {
    /// Authenticated: CONNACK 0x00 (or AUTH 0x00 after re-authentication).
    Success(AuthSuccess),
    /// Enhanced authentication needs another round trip: AUTH 0x18 with
    /// this Authentication Data goes to the client, whose next AUTH becomes
    /// an [`AuthStep::Continue`] request.
    Continue(Bytes),
    /// Refused with this reason: CONNACK (3.1.1: the return code that says
    /// the same, [MQTT-3.2.2-6]) while connecting, DISCONNECT after
    /// a failed re-authentication [MQTT-4.12.1-2]. Typically 0x86 Bad user
    /// name or password, 0x87 Not authorized, 0x8C Bad authentication method.
    Refuse(ReasonCode),
}

/// Why [`Broker::answer_auth`] did not apply an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthAnswerError {
    /// The connection has gone, or the request was not the one outstanding:
    /// nothing to do.
    #[error("the authentication request is stale (its connection has gone)")]
    Stale,
    /// [`AuthAnswer::Continue`] for a client without an Authentication
    /// Method (or under 3.1.1, which has no AUTH): the connection was
    /// refused with 0x80 Unspecified error instead.
    #[error("cannot continue authentication: the client named no authentication method")]
    NoMethod,
}

/// Who is waited for in an authentication in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Driver,
    Client,
}

/// A CONNECT waiting for its authentication, with what its acceptance needs.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) client_id: Str,
    pub(super) ack: ConnAckProps,
    pub(super) clean_start: bool,
    pub(super) try_private: bool,
    username: Option<Str>,
}

impl Parked {
    pub(super) fn new(
        client_id: Str,
        ack: ConnAckProps,
        clean_start: bool,
        try_private: bool,
        username: Option<Str>,
    ) -> Self {
        Parked {
            client_id,
            ack,
            clean_start,
            try_private,
            username,
        }
    }
}

/// A connection's authentication in progress (boxed in the connection:
/// most connections have none).
#[derive(Debug)]
pub(super) struct Progress {
    seq: u32,
    waiting: Waiting,
    method: Option<Str>,
    /// The CONNECT, while connecting; `None` while re-authenticating.
    parked: Option<Parked>,
}

/// What an answer does, decided with the connection borrowed.
enum Outcome {
    Connect(Box<Parked>, Authenticated),
    Reauthenticated(Authenticated),
    Refuse(ReasonCode, bool),
    Sent,
}

impl Broker {
    /// The next authentication request for the driver. Answer each with
    /// [`Broker::answer_auth`], in any order, from any later turn.
    #[must_use]
    pub fn poll_auth(&mut self) -> Option<AuthRequest> {
        self.auth_requests.pop_front()
    }

    /// Applies the driver's answer to the request `ticket`. A stale ticket
    /// (the connection closed meanwhile) changes nothing.
    pub fn answer_auth(
        &mut self,
        ticket: AuthTicket,
        now: Instant,
        answer: AuthAnswer,
    ) -> Result<(), AuthAnswerError> {
        let id = ticket.conn;
        let c = self
            .conns
            .get_mut(id)
            .filter(|c| !c.closed && !c.conn.is_closed())
            .ok_or(AuthAnswerError::Stale)?;
        let current = c
            .auth
            .as_ref()
            .is_some_and(|p| p.seq == ticket.seq && p.waiting == Waiting::Driver);
        if !current {
            return Err(AuthAnswerError::Stale);
        }
        let Some(mut progress) = c.auth.take() else {
            return Err(AuthAnswerError::Stale);
        };
        let connecting = progress.parked.is_some();
        let mut result = Ok(());
        let outcome = match answer {
            AuthAnswer::Success(s) => match progress.parked.take() {
                Some(parked) => Outcome::Connect(Box::new(parked), s.with_method(progress.method)),
                None => Outcome::Reauthenticated(s.with_method(progress.method)),
            },
            AuthAnswer::Refuse(reason) => {
                // The authenticator said no: an authentication failure,
                // counted by method (a CONNECT or a re-authentication).
                self.stats.auth_failures.count(progress.method.as_ref());
                Outcome::Refuse(reason, connecting)
            }
            AuthAnswer::Continue(data) => {
                let mut props = AuthProps::default();
                props.authentication_method = progress.method.clone();
                props.authentication_data = Some(data);
                let sent = progress.method.is_some()
                    && c.conn
                        .auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props)
                        .is_ok();
                if sent {
                    progress.waiting = Waiting::Client;
                    c.auth = Some(progress);
                    Outcome::Sent
                } else {
                    result = Err(AuthAnswerError::NoMethod);
                    Outcome::Refuse(ReasonCode::UNSPECIFIED_ERROR, connecting)
                }
            }
        };
        match outcome {
            Outcome::Connect(parked, s) => self.complete_connect(id, now, *parked, s),
            Outcome::Reauthenticated(s) => self.reauthenticated(id, now, s),
            Outcome::Refuse(reason, connecting) => self.refuse(id, now, reason, connecting),
            Outcome::Sent => {}
        }
        self.drain(id, now);
        result
    }

    /// Replaces the rights of connection `id`'s client (e.g. after the
    /// driver reloaded its ACL): they apply to its next publish, subscribe
    /// and delivery. False if the connection has gone.
    pub fn set_rights(&mut self, id: ConnId, rights: Rights) -> bool {
        let Some(c) = self.conns.get_mut(id).filter(|c| !c.closed) else {
            return false;
        };
        c.rights = rights.clone();
        if let Some(entry) = c.session.and_then(|k| self.sessions[k as usize].as_mut()) {
            entry.reader = Reader::new(rights);
        }
        true
    }

    /// Replaces the rights of the session of `client_id`, connected or not
    /// (e.g. for sessions restored from a store, which come back with the
    /// rights [`AuthConfig`](super::AuthConfig) gives unknown clients). False if there
    /// is no such session.
    pub fn set_session_rights(&mut self, client_id: &Str, rights: Rights) -> bool {
        let Some(&key) = self.client_ids.get(client_id) else {
            return false;
        };
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return false;
        };
        entry.reader = Reader::new(rights.clone());
        if let Some(c) = entry.conn.and_then(|id| self.conns.get_mut(id)) {
            c.rights = rights;
        }
        true
    }

    /// Parks connection `id`'s CONNECT and asks the driver about it.
    pub(super) fn request_connect_auth(
        &mut self,
        id: ConnId,
        parked: Parked,
        method: Option<Str>,
        password: Option<Bytes>,
        data: Option<Bytes>,
    ) {
        let seq = self.next_auth_seq();
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        self.auth_requests.push_back(AuthRequest {
            ticket: AuthTicket { conn: id, seq },
            step: AuthStep::Connect,
            version: c.conn.version(),
            client_id: parked.client_id.clone(),
            username: parked.username.clone(),
            password,
            method: method.clone(),
            data,
            peer: c.peer.clone(),
        });
        c.auth = Some(Box::new(Progress {
            seq,
            waiting: Waiting::Driver,
            method,
            parked: Some(parked),
        }));
    }

    /// A client's AUTH: the next step the driver asked for (0x18), or a
    /// re-authentication (0x19) of a connected client; anything else is a
    /// protocol error (section 4.12). The session layer has checked that
    /// the method is the CONNECT's [MQTT-4.12.0-7].
    pub(super) fn on_auth(
        &mut self,
        id: ConnId,
        now: Instant,
        reason: ReasonCode,
        props: AuthProps,
    ) {
        let seq = self.next_auth_seq();
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let connected = c.session.is_some();
        let step = match (&c.auth, reason) {
            (Some(p), ReasonCode::CONTINUE_AUTHENTICATION) if p.waiting == Waiting::Client => {
                AuthStep::Continue
            }
            (None, ReasonCode::RE_AUTHENTICATE) if connected => AuthStep::Reauthenticate,
            _ => return self.refuse(id, now, ReasonCode::PROTOCOL_ERROR, !connected),
        };
        let method = props.authentication_method.as_ref().map(own_str);
        let progress = c.auth.get_or_insert_with(|| {
            Box::new(Progress {
                seq,
                waiting: Waiting::Driver,
                method: method.clone(),
                parked: None,
            })
        });
        progress.seq = seq;
        progress.waiting = Waiting::Driver;
        let (client_id, username) = match &progress.parked {
            Some(p) => (p.client_id.clone(), p.username.clone()),
            None => (c.conn.client_id().clone(), c.username.clone()),
        };
        self.auth_requests.push_back(AuthRequest {
            ticket: AuthTicket { conn: id, seq },
            step,
            version: c.conn.version(),
            client_id,
            username,
            password: None,
            method,
            data: props
                .authentication_data
                .map(|d| Bytes::copy_from_slice(&d)),
            peer: c.peer.clone(),
        });
    }

    /// A connection closed: its requests still queued go (answers to those
    /// already taken are stale).
    pub(super) fn forget_auth(&mut self, id: ConnId) {
        let pending = self.conns.get_mut(id).and_then(|c| c.auth.take()).is_some();
        if pending {
            self.auth_requests.retain(|r| r.ticket.conn != id);
        }
    }

    /// Ends an authentication with `reason`: CONNACK while `connecting`,
    /// DISCONNECT once connected.
    fn refuse(&mut self, id: ConnId, now: Instant, reason: ReasonCode, connecting: bool) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.auth = None;
        if connecting {
            c.conn.reject(now, reason);
            self.stats.refuse_connect(reason);
        } else if reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD {
            // A failed re-authentication: 0x86 is a CONNACK code only, not
            // among DISCONNECT's (5.0 section 3.14.2.1), where it would
            // become 0x80; 0x87 Not authorized says what happened.
            c.conn.close(now, ReasonCode::NOT_AUTHORIZED);
        } else {
            c.conn.close(now, reason);
        }
    }

    /// A re-authentication succeeded: AUTH 0x00, and the new rights. The
    /// user may not change under a session it did not open: a different
    /// user name closes the connection with 0x87 Not authorized.
    fn reauthenticated(&mut self, id: ConnId, now: Instant, s: Authenticated) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.username != s.username {
            c.conn.close(now, ReasonCode::NOT_AUTHORIZED);
            return;
        }
        let mut props = AuthProps::default();
        props.authentication_method = s.method;
        props.authentication_data = s.data;
        if c.conn.auth(now, ReasonCode::SUCCESS, props).is_err() {
            // Too large for the client's Maximum Packet Size.
            c.conn.close(now, ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
            return;
        }
        self.set_rights(id, s.rights);
    }

    fn next_auth_seq(&mut self) -> u32 {
        self.auth_seq = self.auth_seq.wrapping_add(1);
        self.auth_seq
    }
}

/// A successful answer with the connection's method, for its CONNACK or AUTH.
pub(super) struct Authenticated {
    pub(super) username: Option<Str>,
    pub(super) rights: Rights,
    pub(super) method: Option<Str>,
    pub(super) data: Option<Bytes>,
}

impl AuthSuccess {
    fn with_method(self, method: Option<Str>) -> Authenticated {
        Authenticated {
            username: self.username,
            rights: self.rights,
            method,
            data: self.data,
        }
    }

    /// Every right, for a connection accepted without a request.
    pub(super) fn automatic(username: Option<Str>) -> Authenticated {
        Authenticated {
            username,
            rights: Rights::allow_all(),
            method: None,
            data: None,
        }
    }
}

/// A copy of `s` in memory of its own (not the read buffer's).
pub(super) fn own_str(s: &Str) -> Str {
    Str::try_from(s.as_str()).unwrap_or_default()
}

/// The requests of a broker, in order.
pub(super) type Requests = alloc::collections::VecDeque<AuthRequest>;
