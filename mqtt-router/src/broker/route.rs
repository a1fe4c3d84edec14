//! PUBLISH: a client's (or a bridge's) message checked, retained, and
//! delivered to every matching session, connected or not, and to every
//! matching bridge.

use alloc::sync::Arc;

use mqtt_codec::{PacketId, QoS, ReasonCode, Str, TopicName};
use mqtt_session::{DeliverError, DeliveryOptions, Message, Session};

use super::bridges::bridge_index;
use super::flow::Sink;
use super::stats::{DropReason, PublishRefusal};
use super::{Broker, ConnId, QueueFullPolicy, Rights, SessionKey};
use crate::Instant;

/// What came of routing one message.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Routed {
    /// Sessions and bridges that took it (sent, or queued for later).
    pub(super) delivered: usize,
    /// Sessions and bridges that missed it because their queue was full.
    pub(super) queue_full: usize,
    /// Sessions it matched that discarded it as the protocol says: expired
    /// before it could be sent [MQTT-3.3.2-5] (a publish that waited in its
    /// paused publisher's input past its expiry), or too large for the
    /// subscriber, which counts as delivered [MQTT-3.1.2-25].
    pub(super) discarded: usize,
    /// A subscriber it reached (a connection or a bridge) that is past its
    /// high-water mark and still draining: the publisher's acknowledgement
    /// waits for it.
    pub(super) congested: Option<Sink>,
}

impl Broker {
    // ----- PUBLISH ----------------------------------------------------------------

    pub(super) fn on_publish(
        &mut self,
        id: ConnId,
        now: Instant,
        msg: Message,
        pid: Option<PacketId>,
    ) {
        // Flow control: a publish that would reach a congested subscriber
        // waits, and its publisher with it (see `flow.rs`).
        if let Some(sub) = self.congested_target(id, &msg, now) {
            let event = mqtt_session::ServerEvent::Publish { msg, id: pid };
            return self.wait_for(sub, id, event, now);
        }
        self.stats.received(&msg);
        if let Err(refusal) = self.check_message(&msg) {
            self.stats.refuse_publish(refusal.counted_as());
            // Under 3.1.1 the acknowledgement is a plain one and the message
            // is not forwarded (3.1.1 has no negative acknowledgement).
            if let (Some(pid), Some(c)) = (pid, self.conns.get_mut(id)) {
                let _ = c.conn.ack(pid, refusal.publish_reason());
            }
            return;
        }
        let Some(c) = self.conns.get(id) else {
            return;
        };
        let origin = c.session;
        let allowed = may_publish(&c.rights, &msg);
        if pid.is_some() && c.conn.version().is_v5() && self.store_failing() {
            // The store cannot write: a message that would need it is
            // refused now rather than held without end.
            if self.would_persist(&msg, origin) {
                self.stats.refuse_publish(PublishRefusal::StoreFailing);
                if let (Some(pid), Some(c)) = (pid, self.conns.get_mut(id)) {
                    let _ = c.conn.ack(pid, ReasonCode::QUOTA_EXCEEDED);
                }
                return;
            }
        }
        let (reason, routed) = self.publish_checked(now, msg, origin, allowed);
        let (Some(pid), Some(c)) = (pid, self.conns.get_mut(id)) else {
            return;
        };
        match routed.congested {
            Some(sub) if reason == ReasonCode::SUCCESS => self.hold_ack(sub, id, Some(pid), now),
            _ => {
                let _ = c.conn.ack(pid, reason);
            }
        }
    }

    /// Whether publishing `msg` would write to the store: it is retained, or
    /// reaches a persistent session at QoS 1/2.
    fn would_persist(&mut self, msg: &Message, origin: Option<SessionKey>) -> bool {
        if msg.retain {
            return true;
        }
        if msg.qos == mqtt_codec::QoS::AtMostOnce {
            return false;
        }
        let mut matches = core::mem::take(&mut self.matches);
        self.index.match_topic(&msg.topic, origin, &mut matches);
        let durable = matches
            .subscribers()
            .chain(matches.shared())
            .filter(|d| d.qos != mqtt_codec::QoS::AtMostOnce)
            .any(|d| {
                self.sessions
                    .get(d.client as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|e| e.durable)
            });
        self.matches = matches;
        durable
    }

    /// The publish path of every message from outside the broker (a client
    /// or a bridge, `origin` being its key, which No Local compares with):
    /// refused when not `allowed`, else retained if flagged and routed.
    /// Returns the reason code the publisher is answered with, and what
    /// routing did.
    pub(super) fn publish_checked(
        &mut self,
        now: Instant,
        msg: Message,
        origin: Option<SessionKey>,
        allowed: bool,
    ) -> (ReasonCode, Routed) {
        if !allowed {
            self.stats.refuse_publish(PublishRefusal::NotAuthorized);
            return (ReasonCode::NOT_AUTHORIZED, Routed::default());
        }
        let owner = self.owner_of(origin);
        // A message from the other nodes leaves the retained store to the
        // cluster's retained set (`cluster.rs`).
        let quota = msg.retain
            && !self.came_from_cluster(origin)
            && !self.retain(now, &msg, owner.as_ref());
        let routed = self.route(now, msg, origin);
        // A message that reached nobody because queues were full is
        // refused with 0x97 Quota exceeded (issue 5, `DropNew`).
        let reason = if quota || (routed.delivered == 0 && routed.queue_full > 0) {
            ReasonCode::QUOTA_EXCEEDED
        } else if routed.delivered == 0 && routed.discarded == 0 {
            // Only when no subscription matched: a message that matched and
            // expired on its way was accepted for subscribers that exist.
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        (reason, routed)
    }

    /// The client identifier a retained message from `origin` is charged
    /// to: a client's; none for a bridge's.
    fn owner_of(&self, origin: Option<SessionKey>) -> Option<Str> {
        let e = self.sessions.get(origin? as usize)?.as_ref()?;
        Some(e.client_id.clone())
    }

    /// Applies a retained message set by client `owner` (`None`: the
    /// broker's own, a bridge's); false if a limit kept it out: its
    /// payload, the count, or the bytes (topic, payload and properties) in
    /// all and per client.
    pub(super) fn retain(&mut self, now: Instant, msg: &Message, owner: Option<&Str>) -> bool {
        self.retain_from(now, msg, owner, false)
    }

    /// [`Broker::retain`]; one that came `from_cluster` is not shared with
    /// the cluster again.
    pub(super) fn retain_from(
        &mut self,
        now: Instant,
        msg: &Message,
        owner: Option<&Str>,
        from_cluster: bool,
    ) -> bool {
        if !msg.payload.is_empty() && !self.retain_fits(now, msg, owner) {
            self.stats.retained_refused += 1;
            return false;
        }
        let mut stored = msg.clone();
        // The copy in the store keeps its own memory, not the read buffer.
        stored.payload = bytes::Bytes::copy_from_slice(&msg.payload);
        // `$SYS` values are the broker's own and republished: not stored.
        let record = (self.store.is_some() && !msg.topic.is_dollar()).then(|| stored.clone());
        let kept = self.retained_bytes.charge(Arc::new(stored), owner);
        let ok = self
            .retained
            .store(now, &msg.topic, kept, msg.props.expires_at)
            .is_ok();
        self.retained_bytes.sweep_if_sparse(self.retained.len());
        if let (true, Some(m)) = (ok, record) {
            self.record_retained(&m);
        }
        if ok && !from_cluster {
            self.share_retained(msg);
        }
        ok
    }

    /// Whether a retained message fits the retained limits, given the one
    /// it would replace.
    fn retain_fits(&mut self, now: Instant, msg: &Message, owner: Option<&Str>) -> bool {
        let replaced = self.retained.get(now, &msg.topic).map(|r| {
            let mine = owner.is_some_and(|o| self.retained_bytes.is_charged_to(r.message, o));
            (r.message.bytes(), mine)
        });
        msg.payload.len() <= self.config.max_retained_payload
            && (replaced.is_some() || self.retained.len() < self.config.max_retained)
            && self.retained_bytes_fit(msg.held_bytes(), owner, replaced)
    }

    /// Delivers `msg` to every matching subscriber: how many it reached, and
    /// how many it missed because a queue was full.
    pub(super) fn route(
        &mut self,
        now: Instant,
        msg: Message,
        publisher: Option<SessionKey>,
    ) -> Routed {
        let mut matches = core::mem::take(&mut self.matches);
        self.index.match_topic(&msg.topic, publisher, &mut matches);
        let mut routed = Routed::default();
        // One message for all the subscribers: each session holds a reference.
        let msg = Arc::new(msg);
        self.set_routing(Some(&msg));
        for d in matches.subscribers().chain(matches.shared()) {
            if !self.may_read(d.client, &msg.topic) {
                // Read access per delivery, as Mosquitto checks it: the
                // subscription was granted, this topic is not for it. (A
                // shared group's pick is not redrawn: the message is lost
                // to that group, as in Mosquitto.)
                continue;
            }
            let opts = DeliveryOptions {
                qos: msg.qos.min(d.qos),
                // Cleared unless Retain As Published [MQTT-3.3.1-12].
                retain: msg.retain && d.retain_as_published,
                subscription_identifiers: d.subscription_ids.to_vec(),
            };
            match self.deliver_to(d.client, now, msg.clone(), opts) {
                Ok(congested) => {
                    routed.delivered += 1;
                    routed.congested = routed.congested.or(congested);
                }
                Err(DeliverError::QueueFull { .. }) => routed.queue_full += 1,
                Err(DeliverError::Expired | DeliverError::TooLarge { .. }) => routed.discarded += 1,
                Err(_) => {}
            }
        }
        self.matches = matches;
        self.set_routing(None);
        self.record_routed(now, &msg, publisher);
        routed
    }

    /// Whether session or bridge `key` may receive a message on `topic`:
    /// a branch for a subscriber with every right, a cached answer for one
    /// with rules.
    #[inline]
    pub(super) fn may_read(&mut self, key: SessionKey, topic: &TopicName) -> bool {
        if let Some(index) = bridge_index(key) {
            return self
                .bridges
                .get_index(index)
                .is_some_and(|b| b.rights().may_read(topic));
        }
        self.sessions
            .get_mut(key as usize)
            .and_then(Option::as_mut)
            .is_some_and(|e| e.reader.may_read(topic, &self.read_hasher))
    }

    /// Hands one message to one session, connected or not, or to a bridge;
    /// every message not taken is counted as dropped. For a subscriber past
    /// its high-water mark and still draining, returns it (flow control).
    pub(super) fn deliver_to(
        &mut self,
        key: SessionKey,
        now: Instant,
        msg: Arc<Message>,
        opts: DeliveryOptions,
    ) -> Result<Option<Sink>, DeliverError> {
        if let Some(index) = bridge_index(key) {
            return self.deliver_to_bridge(index, now, msg, opts);
        }
        if let Some(held) = self.hold_for_replay(key, &msg, &opts) {
            // Behind the session's pending retained replay, in order.
            return held.map(|()| None);
        }
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return Err(DeliverError::Closed);
        };
        if let Some(cid) = entry.conn {
            return self.deliver_connected(cid, now, msg, opts);
        }
        if entry.stored.is_none() {
            return Err(DeliverError::Closed);
        }
        if !self.offline_room_for(&msg) {
            self.stats.count_dropped(DropReason::OfflineBytes, 1);
            return Err(DeliverError::QueueFull {
                limit: self.config.server.limits.max_queued,
            });
        }
        let Some(session) = self.sessions[key as usize]
            .as_mut()
            .and_then(|e| e.stored.as_deref_mut())
        else {
            return Err(DeliverError::Closed);
        };
        let before = session.queued_bytes();
        let policy = self.config.queue_full;
        let r = enqueue_detached(session, policy, msg, opts, &mut self.stats);
        let after = session.queued_bytes();
        self.offline_bytes = (self.offline_bytes + after).saturating_sub(before);
        self.journal_detached(key);
        r
    }
}

impl Broker {
    /// Delivers to a connected session; returns its connection when it is
    /// past its high-water mark and still draining (flow control).
    fn deliver_connected(
        &mut self,
        cid: ConnId,
        now: Instant,
        msg: Arc<Message>,
        opts: DeliveryOptions,
    ) -> Result<Option<Sink>, DeliverError> {
        let capacity = self.flow_capacity();
        let mark = self.store_mark();
        let (qos, payload) = (opts.qos, msg.payload.len());
        let exactly_once = qos == QoS::ExactlyOnce;
        let Some(c) = self.conns.get_mut(cid) else {
            return Err(DeliverError::Closed);
        };
        let r = c.conn.deliver(now, msg, opts);
        let backlog = c.conn.session().map_or(0, Session::queued);
        c.flow.observe(backlog, capacity, now);
        let congested = c.flow.congested(capacity, now).then_some(Sink::Conn(cid));
        self.note_change(cid);
        if self.store.is_some() {
            // The session's new message is recorded before anything else
            // can change that session.
            self.journal_conn(cid);
            if exactly_once {
                // A QoS 2 PUBLISH to a persistent session waits until the
                // message (and the publisher's "received" record before it)
                // is stored: sent before, a crash would forget both, the
                // publisher (never answered) would resend it, and the
                // subscriber would get it twice, against the "exactly once"
                // of [MQTT-4.3.3]. A QoS 1 PUBLISH is not held: a second
                // copy after a crash is what QoS 1 allows [MQTT-4.3.2].
                self.gate_output(cid, mark);
            }
        }
        match r {
            Ok(_) => {
                self.stats.sent(qos, payload);
                Ok(congested)
            }
            Err(e) => {
                self.stats.count_dropped(DropReason::of(&e), 1);
                Err(e)
            }
        }
    }
}

/// Whether a client (or bridge) with `rights` may publish `msg`: nobody
/// outside the broker publishes into `$` topics, which belong to the server
/// (section 4.7.2), and the rights may refuse the topic.
pub(super) fn may_publish(rights: &Rights, msg: &Message) -> bool {
    !msg.topic.is_dollar() && rights.may_publish(&msg.topic)
}

/// Queues a message for a detached session, applying the queue-full policy
/// for its count and its bytes alike: room is made one message at a time
/// until the new one fits, or the policy keeps what is queued. Every message
/// not taken is counted as dropped; those refused for bytes, also apart.
fn enqueue_detached(
    session: &mut Session,
    policy: QueueFullPolicy,
    msg: Arc<Message>,
    opts: DeliveryOptions,
    stats: &mut super::Stats,
) -> Result<Option<Sink>, DeliverError> {
    if msg.held_bytes() > session.max_queued_bytes() {
        // It could never fit: refused without emptying the queue for it.
        stats.count_dropped(DropReason::QueuedBytes, 1);
        stats.queued_bytes_over_limit += 1;
        return Err(DeliverError::QueueFull {
            limit: session.max_queued(),
        });
    }
    // Each turn removes one queued message, so this ends within the queue's
    // length.
    loop {
        let for_bytes = session.queued() < session.max_queued();
        match session.enqueue(msg.clone(), opts.clone()) {
            Ok(()) => return Ok(None),
            Err(e @ DeliverError::QueueFull { .. }) => {
                let reason = if for_bytes {
                    DropReason::QueuedBytes
                } else {
                    DropReason::QueueFull
                };
                stats.count_dropped(reason, 1);
                stats.queued_bytes_over_limit += u64::from(for_bytes);
                if !policy.make_room(opts.qos, session) {
                    return Err(e);
                }
            }
            Err(e) => {
                stats.count_dropped(DropReason::of(&e), 1);
                return Err(e);
            }
        }
    }
}
