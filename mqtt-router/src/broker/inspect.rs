//! A read-only view of what the broker holds: its sessions and their
//! queues, for operators, tests and simulators that check the broker's
//! memory stays within its configured limits.

use mqtt_session::Session;

use super::sessions::SessionEntry;
use super::{Broker, ConnId};
use crate::Instant;

/// One session as the broker holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView<'a> {
    /// The client identifier it belongs to.
    pub client_id: &'a str,
    /// The user that owns it (who created it), if any.
    pub username: Option<&'a str>,
    /// Whether a connection holds it now.
    pub connected: bool,
    /// Messages waiting: behind the in-flight window, or while the client is
    /// away (bounded by `limits.max_queued`).
    pub queued: usize,
    /// QoS 1/2 deliveries started and not yet acknowledged.
    pub inflight: usize,
    /// When the session ends if no connection takes it first (`None` while
    /// connected, or never).
    pub expires_at: Option<Instant>,
    /// When its will is published if no connection takes the session first.
    pub will_at: Option<Instant>,
}

impl Broker {
    /// Every session the broker holds, connected or not.
    pub fn sessions(&self) -> impl Iterator<Item = SessionView<'_>> {
        self.sessions.iter().flatten().map(|e| self.view(e))
    }

    /// The session of `client_id`, if the broker holds one.
    pub fn session(&self, client_id: &str) -> Option<SessionView<'_>> {
        self.sessions().find(|s| s.client_id == client_id)
    }

    /// Events of connection `id`'s input (a PUBLISH, SUBSCRIBE,
    /// UNSUBSCRIBE, AUTH or DISCONNECT each) that the broker has read but
    /// not handled yet; 0 for a connection it no longer has. Flow control
    /// keeps a paused publisher's input waiting here, in order, and handles
    /// it once the subscribers it feeds drain (`throttle.rs`): until then
    /// such a packet has no effect, as if it were still on the network. An
    /// observer that models the broker (the simulator's oracle) takes each
    /// packet as handled when it leaves this queue, not when it was read.
    pub fn input_waiting(&self, id: ConnId) -> usize {
        self.conns.get(id).map_or(0, |c| c.throttle.waiting())
    }

    /// How many retained messages the broker keeps.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// The session state of `e`: its connection's while connected, else
    /// the one kept for the client's return.
    pub(super) fn held_session<'a>(&'a self, e: &'a SessionEntry) -> Option<&'a Session> {
        let live = e.conn.and_then(|id| self.conns.get(id)?.conn.session());
        live.or(e.stored.as_deref())
    }

    fn view<'a>(&'a self, e: &'a SessionEntry) -> SessionView<'a> {
        let session = self.held_session(e);
        SessionView {
            client_id: e.client_id.as_str(),
            username: e.username.as_ref().map(|u| u.as_str()),
            connected: e.conn.is_some(),
            queued: session.map_or(0, Session::queued),
            inflight: session.map_or(0, Session::inflight),
            expires_at: e.expires_at,
            will_at: e.will.as_ref().map(|w| w.1),
        }
    }
}
