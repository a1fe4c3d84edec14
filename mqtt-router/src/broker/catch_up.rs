//! Late subscriber catch-up: the order across connections kept without
//! holding any input back (DESIGN.md, "Order across connections").
//!
//! The driver stamps its input from one counter: each read with the stamp
//! taken when its socket was found readable, as early as it can
//! ([`Broker::handle_packets_read_at`]), and each turn of the core with a
//! stamp taken after that turn's input was received, before it is handled
//! ([`Broker::set_order`]). The core then behaves as if a SUBSCRIBE took
//! effect at its read's stamp and a message was routed at its turn's stamp:
//! a message routed at a stamp above the SUBSCRIBE's read, but before the
//! core got to the SUBSCRIBE (its read waited in another connection's
//! shadow), is delivered to the new subscription when the SUBSCRIBE is
//! handled, as if it had been routed just after it.
//!
//! For that the core keeps the messages it routed recently in a ring,
//! bounded by count, bytes and age ([`MAX_MESSAGES`], [`MAX_BYTES`],
//! [`MAX_AGE_MS`]): a reference to each (the message routing shares with
//! its subscribers), its stamp, its publisher. A message is caught up to a
//! session only once and only if routing could not have given it already:
//!
//! - not the session's own (its PUBLISH came before the SUBSCRIBE on its
//!   own connection, where the specification orders everything);
//! - no subscription of the session matched it before this SUBSCRIBE (it
//!   got the message through that one, or No Local kept it out), and none
//!   that matched it was removed by an UNSUBSCRIBE since it was routed;
//! - not retained when this SUBSCRIBE's retained replay covers its topic
//!   (the replay sends it, or the newer message that replaced it);
//! - the session may read the topic, and the new subscriptions match it as
//!   routing would match them (No Local, QoS, Retain As Published,
//!   Subscription Identifiers);
//! - shared subscriptions take no part: a group's message went to one
//!   member, maybe before this one joined.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{SubscriptionOptions, TopicFilter};
use mqtt_session::mqtt_codec::{DecodeError, Packet};
use mqtt_session::{DeliveryOptions, Message};

use super::{Broker, ConnId, SessionKey};
use crate::Instant;

/// The most messages the ring keeps.
pub(super) const MAX_MESSAGES: usize = 1024;
/// The most bytes ([`Message::held_bytes`]) the ring's messages hold.
pub(super) const MAX_BYTES: usize = 4 * 1024 * 1024;
/// The oldest a message in the ring may be, in driver milliseconds: far
/// longer than a read waits between its stamp and the core.
pub(super) const MAX_AGE_MS: u64 = 50;

/// A message routed recently.
struct Recent {
    /// The turn's stamp when it was routed.
    order: u64,
    /// When it was routed.
    at: Instant,
    /// Its publisher (a session, a bridge), `None` for the broker's own.
    origin: Option<SessionKey>,
    msg: Arc<Message>,
    /// Its [`Message::held_bytes`], counted once.
    bytes: usize,
}

/// The ring of messages routed recently and the stamps in force.
#[derive(Default)]
pub(super) struct CatchUp {
    /// The stamp of what is routed now; `None` until the driver stamps its
    /// turns: then nothing is recorded and nothing caught up.
    order: Option<u64>,
    /// The stamp of the read being handled, if the driver gave one.
    read_at: Option<u64>,
    ring: VecDeque<Recent>,
    /// The ring's sequence number of `ring[0]`.
    first_seq: u64,
    /// [`Message::held_bytes`] of the ring's messages.
    bytes: usize,
    /// Per session that unsubscribed while the ring held messages: the
    /// sequence number of the first message routed after that UNSUBSCRIBE
    /// (those before may have reached it through the removed subscription).
    floors: BTreeMap<SessionKey, u64>,
    /// Messages delivered by catch-up so far.
    delivered: u64,
}

impl CatchUp {
    /// Records a message routed now (nothing without stamps).
    fn record(&mut self, now: Instant, msg: &Arc<Message>, origin: Option<SessionKey>) {
        let Some(order) = self.order else {
            return;
        };
        let bytes = msg.held_bytes();
        self.bytes += bytes;
        self.ring.push_back(Recent {
            order,
            at: now,
            origin,
            msg: msg.clone(),
            bytes,
        });
        self.evict(now);
    }

    /// Drops what is past the ring's bounds, oldest first.
    fn evict(&mut self, now: Instant) {
        while let Some(first) = self.ring.front() {
            let old = now.as_millis().saturating_sub(first.at.as_millis()) > MAX_AGE_MS;
            if !old && self.ring.len() <= MAX_MESSAGES && self.bytes <= MAX_BYTES {
                break;
            }
            self.bytes -= first.bytes;
            self.ring.pop_front();
            self.first_seq += 1;
        }
        if self.ring.is_empty() {
            self.floors.clear();
        }
    }

    /// The sequence number the next recorded message gets.
    fn next_seq(&self) -> u64 {
        self.first_seq + self.ring.len() as u64
    }

    /// Session `key` removed a subscription: what the ring holds now may
    /// have reached it through that one, and is not caught up to it.
    fn unsubscribed(&mut self, key: SessionKey) {
        if self.order.is_none() || self.ring.is_empty() {
            return;
        }
        let first = self.first_seq;
        // Floors at or below the ring's start say nothing any more.
        self.floors.retain(|_, floor| *floor > first);
        self.floors.insert(key, self.next_seq());
    }
}

/// The messages a SUBSCRIBE may catch up, found before its subscriptions
/// are inserted (see [`Broker::catch_up_candidates`]).
#[derive(Default)]
pub(super) struct Candidates(Vec<(Arc<Message>, Option<SessionKey>)>);

impl Candidates {
    /// Whether there is nothing to catch up (the common case).
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Broker {
    /// Stamps the core's input from now on (for drivers whose connections
    /// read in parallel): everything routed until the next call took effect
    /// at `order`. Take it from the counter the reads are stamped with
    /// ([`Broker::handle_packets_read_at`]), after the reads handled next
    /// were received and before they are handled. Without it the broker
    /// keeps no ring and catches nothing up.
    pub fn set_order(&mut self, order: u64) {
        self.catch_up.order = Some(order);
    }

    /// [`Broker::handle_packets`] for a read stamped `read_at` when its
    /// socket was found readable: a SUBSCRIBE among the packets also gets
    /// the messages routed at a later stamp (see [`Broker::set_order`])
    /// before the core reached it.
    pub fn handle_packets_read_at(
        &mut self,
        id: ConnId,
        now: Instant,
        packets: impl IntoIterator<Item = (Packet, usize)>,
        error: Option<DecodeError>,
        read_at: u64,
    ) {
        self.catch_up.read_at = Some(read_at);
        self.handle_packets(id, now, packets, error);
        self.catch_up.read_at = None;
    }

    /// Messages delivered by late subscriber catch-up so far.
    pub fn caught_up(&self) -> u64 {
        self.catch_up.delivered
    }

    /// Records a message routing just delivered (see [`CatchUp`]).
    #[inline]
    pub(super) fn record_routed(
        &mut self,
        now: Instant,
        msg: &Arc<Message>,
        origin: Option<SessionKey>,
    ) {
        self.catch_up.record(now, msg, origin);
    }

    /// Session `key` removed subscriptions (see [`CatchUp::unsubscribed`]).
    pub(super) fn unsubscribed_for_catch_up(&mut self, key: SessionKey) {
        self.catch_up.unsubscribed(key);
    }

    /// Before a SUBSCRIBE of session `key` is applied: the messages routed
    /// after its read's stamp that one of its (unshared) `filters` matches
    /// and that no subscription of the session matched.
    pub(super) fn catch_up_candidates(
        &mut self,
        key: SessionKey,
        now: Instant,
        filters: &[(TopicFilter, SubscriptionOptions)],
    ) -> Candidates {
        let (Some(_), Some(read_at)) = (self.catch_up.order, self.catch_up.read_at) else {
            return Candidates::default();
        };
        self.catch_up.evict(now);
        let floor = self.catch_up.floors.get(&key).copied().unwrap_or(0);
        let first = self.catch_up.first_seq;
        let mut found = Vec::new();
        for (i, r) in self.catch_up.ring.iter().enumerate().rev() {
            if r.order <= read_at {
                // Stamps only grow along the ring.
                break;
            }
            let later_copy = first + i as u64 >= floor;
            let wanted = filters
                .iter()
                .any(|(f, _)| !f.is_shared() && f.matches(&r.msg.topic));
            if later_copy && wanted && r.origin != Some(key) {
                found.push((r.msg.clone(), r.origin));
            }
        }
        found.reverse();
        found.retain(|(msg, origin)| self.subscription_of(key, msg, *origin).is_none());
        Candidates(found)
    }

    /// After the SUBSCRIBE was applied and its retained replay started
    /// (`replayed`: its filters with one): delivers each candidate the new
    /// subscriptions match, as routing would have.
    pub(super) fn catch_up(
        &mut self,
        key: SessionKey,
        now: Instant,
        candidates: Candidates,
        replayed: &[TopicFilter],
    ) {
        for (msg, origin) in candidates.0 {
            if msg.retain && replayed.iter().any(|f| f.matches(&msg.topic)) {
                continue;
            }
            let Some(opts) = self.subscription_of(key, &msg, origin) else {
                continue;
            };
            if !self.may_read(key, &msg.topic) {
                continue;
            }
            if self.deliver_to(key, now, msg, opts).is_ok() {
                self.catch_up.delivered += 1;
            }
        }
    }

    /// How routing would deliver `msg` from `origin` to session `key`
    /// through its unshared subscriptions, if any matches. (Matching also
    /// draws a member of each shared group the topic matches, which moves
    /// a round-robin group on by one: only for the few messages routed
    /// between a SUBSCRIBE's read and the core reaching it.)
    fn subscription_of(
        &mut self,
        key: SessionKey,
        msg: &Message,
        origin: Option<SessionKey>,
    ) -> Option<DeliveryOptions> {
        let mut matches = core::mem::take(&mut self.matches);
        self.index.match_topic(&msg.topic, origin, &mut matches);
        let opts = matches
            .subscribers()
            .find(|d| d.client == key)
            .map(|d| DeliveryOptions {
                qos: msg.qos.min(d.qos),
                retain: msg.retain && d.retain_as_published,
                subscription_identifiers: d.subscription_ids.to_vec(),
            });
        self.matches = matches;
        opts
    }
}

#[cfg(test)]
mod tests;
