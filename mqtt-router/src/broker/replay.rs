//! Retained messages sent on SUBSCRIBE, in slices (DESIGN.md, "Isolation"):
//! a SUBSCRIBE whose filters match many retained messages does at most
//! [`SLICE`] steps for its session per core turn, so one client's replay
//! does not keep the core from serving the others.
//!
//! Order: while a session's replay is pending, what routing gives that
//! session waits behind it ("held") and follows it in order, so a message
//! never overtakes the retained copy of an older one on the same topic
//! [MQTT-4.6.0-6]. An UNSUBSCRIBE takes its filters out of the pending
//! replay: nothing of theirs is sent after the UNSUBACK [MQTT-3.10.4-6].
//! Sessions of a broker with a store are replayed at once (what is held
//! would not be in the store before the publisher's acknowledgement).

use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use mqtt_codec::{QoS, SubscriptionId, TopicFilter};
use mqtt_session::{DeliverError, DeliveryOptions, Message};

use super::stats::DropReason;
use super::{Broker, SessionKey};
use crate::Instant;

/// Steps (a retained message offered, a filter looked up) per session per turn.
pub(super) const SLICE: usize = 256;

/// The pause between turns of pending replays: the next deadline lies after
/// `now` (the deadline contract), and other work comes first.
const TURN: Duration = Duration::from_millis(1);

/// A filter whose retained messages are still to be sent.
struct Pending {
    filter: TopicFilter,
    qos: QoS,
    id: Option<SubscriptionId>,
}

/// A message routed to a session while its replay is pending.
type Held = (Arc<Message>, DeliveryOptions);

/// One session's pending replay.
#[derive(Default)]
pub(super) struct Replay {
    filters: VecDeque<Pending>,
    /// The retained messages of the filter being sent (looked up at once,
    /// shared, 8 bytes each), with that filter.
    batch: VecDeque<Arc<Message>>,
    current: Option<Pending>,
    /// The subscriber's queue overflowed: the rest is counted as dropped.
    full: bool,
    /// What routing gave the session meanwhile, in order, and its bytes.
    held: VecDeque<Held>,
    held_bytes: usize,
}

impl Broker {
    /// Sends the retained messages of `filters` (granted to session `key`
    /// by one SUBSCRIBE, identifier `id`): a first slice now, the rest over
    /// later turns.
    pub(super) fn start_replay(
        &mut self,
        key: SessionKey,
        now: Instant,
        filters: Vec<(TopicFilter, QoS)>,
        id: Option<SubscriptionId>,
    ) {
        let durable = self.store.is_some();
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        let was_pending = entry.replay.is_some();
        let replay = entry.replay.get_or_insert_with(Default::default);
        replay.filters.extend(
            filters
                .into_iter()
                .map(|(filter, qos)| Pending { filter, qos, id }),
        );
        if was_pending {
            // Behind the replay already pending; its turns go on.
            return;
        }
        let budget = if durable { usize::MAX } else { SLICE };
        if !self.replay_slice(key, now, budget) {
            self.replaying.push_back(key);
            self.slice_at.get_or_insert(now.saturating_add(TURN));
        }
    }

    /// One turn of every pending replay; due when `slice_at` has come.
    pub(super) fn replay_turn(&mut self, now: Instant) {
        if self.slice_at.is_none_or(|t| t > now) {
            return;
        }
        self.slice_at = None;
        for _ in 0..self.replaying.len() {
            let Some(key) = self.replaying.pop_front() else {
                break;
            };
            let pending = self.sessions.get(key as usize).and_then(Option::as_ref);
            if pending.is_some_and(|e| e.replay.is_some()) && !self.replay_slice(key, now, SLICE) {
                self.replaying.push_back(key);
            }
        }
        if !self.replaying.is_empty() {
            self.slice_at = Some(now.saturating_add(TURN));
        }
    }

    /// Up to `budget` steps of session `key`'s replay; true once it is done
    /// (what was held then delivered, in order).
    fn replay_slice(&mut self, key: SessionKey, now: Instant, budget: usize) -> bool {
        let Some(mut r) = self.take_replay(key) else {
            return true;
        };
        let mut steps = 0;
        while steps < budget {
            steps += 1;
            if let Some(msg) = r.batch.pop_front() {
                let Some(p) = r.current.as_ref() else {
                    continue;
                };
                if !self.may_read(key, &msg.topic) {
                    // Read access per delivery, retained messages included.
                    continue;
                }
                let opts = DeliveryOptions {
                    qos: msg.qos.min(p.qos),
                    // Retained messages sent on subscribe keep RETAIN set [MQTT-3.3.1-8].
                    retain: true,
                    subscription_identifiers: p.id.into_iter().collect(),
                };
                if let Err(DeliverError::QueueFull { .. }) = self.deliver_to(key, now, msg, opts) {
                    r.full = true;
                    self.stats
                        .count_dropped(DropReason::QueueFull, r.batch.len() as u64);
                    r.batch.clear();
                }
                continue;
            }
            let Some(p) = r.filters.pop_front() else {
                self.finish_replay(key, now, r.held);
                return true;
            };
            if r.full {
                // Counted, not copied nor offered: each would be refused.
                let mut n = 0;
                self.retained.for_each_match(now, &p.filter, |_| n += 1);
                self.stats.count_dropped(DropReason::QueueFull, n);
                continue;
            }
            let batch = &mut r.batch;
            self.retained.for_each_match(now, &p.filter, |m| {
                batch.push_back(m.message.message.clone())
            });
            r.current = Some(p);
        }
        if let Some(e) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) {
            e.replay = Some(r);
        }
        false
    }

    fn take_replay(&mut self, key: SessionKey) -> Option<alloc::boxed::Box<Replay>> {
        self.sessions.get_mut(key as usize)?.as_mut()?.replay.take()
    }

    /// The replay is done: what was held for the session follows it.
    fn finish_replay(&mut self, key: SessionKey, now: Instant, held: VecDeque<Held>) {
        for (msg, opts) in held {
            let _ = self.deliver_to(key, now, msg, opts);
        }
    }

    /// Holds a message routed to session `key` while its replay is pending;
    /// `None` when there is none (deliver it now). A full hold (the queue
    /// limits, in count and bytes) refuses the new message.
    pub(super) fn hold_for_replay(
        &mut self,
        key: SessionKey,
        msg: &Arc<Message>,
        opts: &DeliveryOptions,
    ) -> Option<Result<(), DeliverError>> {
        let limits = &self.config.server.limits;
        let (max, max_bytes) = (limits.max_queued, limits.max_queued_bytes);
        let r = self
            .sessions
            .get_mut(key as usize)?
            .as_mut()?
            .replay
            .as_mut()?;
        let bytes = msg.held_bytes();
        if r.held.len() >= max || r.held_bytes.saturating_add(bytes) > max_bytes {
            self.stats.count_dropped(DropReason::QueueFull, 1);
            return Some(Err(DeliverError::QueueFull { limit: max }));
        }
        r.held_bytes += bytes;
        r.held.push_back((msg.clone(), opts.clone()));
        Some(Ok(()))
    }

    /// An UNSUBSCRIBE of `filters` by session `key`: their retained
    /// messages still pending are not sent [MQTT-3.10.4-6].
    pub(super) fn unsubscribe_replay(&mut self, key: SessionKey, filters: &[TopicFilter]) {
        let Some(r) = self
            .sessions
            .get_mut(key as usize)
            .and_then(Option::as_mut)
            .and_then(|e| e.replay.as_mut())
        else {
            return;
        };
        let gone: BTreeSet<&str> = filters.iter().map(TopicFilter::as_str).collect();
        r.filters.retain(|p| !gone.contains(p.filter.as_str()));
        if r.current
            .as_ref()
            .is_some_and(|p| gone.contains(p.filter.as_str()))
        {
            r.current = None;
            r.batch.clear();
        }
    }

    /// Whether a replay is pending; for `poll_timeout`.
    pub(super) fn replay_due(&self) -> Option<Instant> {
        self.slice_at
    }
}
