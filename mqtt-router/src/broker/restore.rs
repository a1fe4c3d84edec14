//! Start-up with a store: the core rebuilt from the plain data a driver
//! read back ([`RestoredState`]), with wall-clock deadlines turned into the
//! core's instants.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use mqtt_codec::Str;
use mqtt_session::{Message, Session};

use super::durable::Durable;
use super::store::{
    MessageId, OutgoingState, RestoreError, RestoredSession, RestoredState, StoreRecord, WallTime,
};
use super::{Broker, Rights, SessionKey, Timer};
use crate::{Instant, Subscription};

/// The largest message id or record order a store may hold: half the
/// range, which a billion records a second would take 292 years to reach,
/// so what comes after it can always be counted without overflow.
const SEQUENCE_LIMIT: u64 = 1 << 63;

impl Broker {
    /// Turns the store seam on and gives the core back the durable state a
    /// driver read from its store (empty on a first start): sessions
    /// (detached; one that was connected when the broker stopped counts its
    /// expiry from now), their subscriptions, outgoing QoS 1/2 messages with
    /// their packet identifiers and state, incoming QoS 2 identifiers,
    /// retained messages and delayed wills. `now` and `wall` are one reading
    /// of the driver's two clocks: what expired while the broker was down is
    /// dropped (a session's pending will is published), what came due is
    /// due now.
    ///
    /// From then on the broker emits [`StoreRecord`]s
    /// ([`Broker::poll_store`]) and holds the output that promises them
    /// until [`Broker::handle_stored`]. Records for what restoring dropped
    /// come first.
    ///
    /// # Errors
    /// [`RestoreError`] if the broker already has connections or state, or
    /// the state is inconsistent; the broker must not be used then.
    pub fn restore(
        &mut self,
        now: Instant,
        wall: WallTime,
        state: RestoredState,
    ) -> Result<(), RestoreError> {
        if self.store.is_some() || self.conns.open > 0 || !self.client_ids.is_empty() {
            return Err(RestoreError::NotFresh);
        }
        let last_message = state.messages.iter().map(|m| m.id.0).max().unwrap_or(0);
        let last_order = state
            .sessions
            .iter()
            .flat_map(|s| s.outgoing.iter().map(|o| o.order))
            .max()
            .unwrap_or(0);
        // Both numbers go on counting up from here (`Durable::push`,
        // `Durable::body`): a damaged store must not bring them near their
        // end, where the count would overflow.
        for (what, value) in [("message id", last_message), ("record order", last_order)] {
            if value >= SEQUENCE_LIMIT {
                return Err(RestoreError::NumberTooLarge { what, value });
            }
        }
        let next_message = last_message + 1;
        self.start(now);
        let d = Durable::new(now, wall, next_message, last_order);
        let mut bodies = BTreeMap::new();
        for m in state.messages {
            let mut msg = m.message;
            msg.props.expires_at = m.expires_at.map(|t| d.instant(t));
            bodies.insert(m.id, Arc::new(msg));
        }
        self.store = Some(Box::new(d));
        for r in state.retained {
            self.restore_retained(now, wall, r.message, r.expires_at);
        }
        for b in state.bridges {
            let mut queue = Vec::with_capacity(b.queue.len());
            for m in b.queue {
                let Some(body) = bodies.get(&m.message) else {
                    return Err(RestoreError::MissingBridgeMessage {
                        bridge: b.name,
                        message: m.message,
                    });
                };
                queue.push((m.seq, body.clone(), m.qos, m.retain));
            }
            queue.sort_by_key(|q| q.0);
            if let Some(d) = self.store.as_deref_mut() {
                d.keep_bridge_queue(b.name, queue);
            }
        }
        let mut wills = Vec::new();
        for s in state.sessions {
            if self.client_ids.contains_key(&s.client_id) {
                return Err(RestoreError::DuplicateSession(s.client_id));
            }
            self.restore_session(now, wall, s, &bodies, &mut wills)?;
        }
        // Wills that came due while the broker was down, once every
        // session that may receive them is back.
        // Their topics passed the owner's rights at CONNECT (see
        // `complete_connect`); the rights themselves are not stored.
        for (msg, owner) in wills {
            self.publish_will(now, msg, &Rights::allow_all(), &owner);
        }
        Ok(())
    }

    fn restore_retained(
        &mut self,
        now: Instant,
        wall: WallTime,
        mut msg: Message,
        expires_at: Option<WallTime>,
    ) {
        if expires_at.is_some_and(|t| t <= wall) {
            let topic = msg.topic.clone();
            self.emit(|| StoreRecord::RetainedCleared { topic });
            return;
        }
        let at = expires_at.and_then(|t| self.store.as_deref().map(|d| d.instant(t)));
        msg.props.expires_at = at;
        let topic = msg.topic.clone();
        // Not charged to a client: the store does not say who set it.
        let kept = self.retained_bytes.charge(Arc::new(msg), None);
        let _ = self.retained.store(now, &topic, kept, at);
    }

    /// Rebuilds one session; a will due already joins `wills`.
    fn restore_session(
        &mut self,
        now: Instant,
        wall: WallTime,
        s: RestoredSession,
        bodies: &BTreeMap<MessageId, Arc<Message>>,
        wills: &mut Vec<(Message, Str)>,
    ) -> Result<(), RestoreError> {
        let Some(d) = self.store.as_deref() else {
            return Ok(());
        };
        let had_will = s.will.is_some();
        let pending = s.will.map(|w| {
            let mut msg = w.message;
            msg.props.expires_at = w.expires_at.map(|t| d.instant(t));
            (msg, d.instant(w.due), w.due <= wall)
        });
        // Connected when the broker stopped: that connection ended without
        // DISCONNECT, so its will is due after its delay from now.
        let connected = s.connected_will.filter(|_| s.detached.is_none()).map(|w| {
            let due = WallTime::from_millis(
                wall.as_millis()
                    .saturating_add(u64::from(w.delay).saturating_mul(1000)),
            );
            let mut msg = w.message;
            msg.props.expires_at = w.message_expiry.map(|e| {
                d.instant(WallTime::from_millis(
                    due.as_millis().saturating_add(u64::from(e) * 1000),
                ))
            });
            (msg, d.instant(due), w.delay == 0)
        });
        let mut will = pending.or(connected);
        let expires_at = match s.detached {
            Some(Some(at)) => Some(at),
            Some(None) => None,
            None => (s.expiry != u32::MAX).then(|| {
                WallTime::from_millis(wall.as_millis().saturating_add(u64::from(s.expiry) * 1000))
            }),
        };
        let ended = expires_at.is_some_and(|at| at <= wall);
        if ended || will.as_ref().is_some_and(|w| w.2) {
            if let Some((msg, _, _)) = will.take() {
                wills.push((msg, s.client_id.clone()));
            }
        }
        if ended {
            let client_id = s.client_id;
            self.emit(|| StoreRecord::SessionEnded { client_id });
            return Ok(());
        }
        let mut session = Session::new(self.config.server.limits.max_queued);
        let mut outgoing = s.outgoing;
        outgoing.sort_by_key(|o| o.order);
        for o in outgoing {
            match o.state {
                OutgoingState::Publish { message, options } => {
                    let Some(body) = bodies.get(&message) else {
                        return Err(RestoreError::MissingMessage {
                            client_id: s.client_id,
                            message,
                        });
                    };
                    session.restore_outgoing(o.packet_id, body.clone(), options);
                }
                OutgoingState::PubRel => {
                    session.restore_pubrel(o.packet_id);
                }
            }
        }
        for id in s.incoming {
            session.restore_incoming(id);
        }
        session.track_changes(true);
        let key = self.new_session(s.client_id);
        for sub in s.subscriptions {
            let subscription = Subscription::new(sub.options, sub.identifier);
            if self
                .index
                .insert(key, &sub.filter, subscription)
                .is_ok_and(|ins| ins.is_new())
            {
                self.interest_added(&sub.filter);
            }
        }
        let changed = s.detached.is_none() || had_will != will.is_some();
        self.restore_entry(now, key, session, s.username, expires_at, will);
        if changed {
            self.record_detached(key);
        }
        Ok(())
    }

    /// Fills in session entry `key`, detached, and arms its timers.
    fn restore_entry(
        &mut self,
        now: Instant,
        key: SessionKey,
        mut session: Session,
        username: Option<Str>,
        expires_at: Option<WallTime>,
        will: Option<(Message, Instant, bool)>,
    ) {
        let expires_at = expires_at.and_then(|t| self.store.as_deref().map(|d| d.instant(t)));
        // A restored session is a persistent one, detached, with the
        // configured byte limit; it counts as any other.
        session.set_max_queued_bytes(self.config.server.limits.max_queued_bytes);
        self.offline_add(&session);
        self.set_persistent(key, true);
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return;
        };
        entry.durable = true;
        entry.username = username;
        entry.stored = Some(Box::new(session));
        entry.expires_at = expires_at;
        entry.will = will.map(|(msg, due, _)| Box::new((msg, due)));
        let generation = entry.generation;
        let due = entry.will.as_ref().map(|w| w.1);
        for at in [expires_at, due].into_iter().flatten() {
            self.timers
                .push(Reverse((at.max(now), Timer::Session(key, generation))));
        }
    }
}
