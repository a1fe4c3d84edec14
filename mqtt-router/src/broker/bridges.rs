//! Bridges: subscribers that are not client connections.
//!
//! A bridge joins this broker to another one. Its driver (the adapter that
//! keeps the connection to the remote broker) opens it here with the local
//! topic filters it carries out ([`Broker::open_bridge`]); from then on the
//! bridge is a subscriber like a session, with three differences:
//!
//! - It has no client identifier. Its subscriptions sit in the index under
//!   a key from a range no session key reaches ([`BRIDGE_KEY`]), and
//!   bridges are not in the client-identifier table, so no client can take
//!   a bridge over, resume its state or end it, whatever identifier it
//!   connects with.
//! - What it brings in enters the ordinary publish path
//!   ([`Broker::publish_from_bridge`]: rights, retained store, routing,
//!   `$SYS` counters) tagged with the bridge's key as its origin, and its
//!   subscriptions are No Local, so a message never goes back out over the
//!   bridge it came from, while other bridges and local subscribers get it.
//! - What routing gives it waits in the core, in a queue bounded by its
//!   `queue_limit` (the broker's [`QueueFullPolicy`], every drop counted,
//!   per bridge too), until the driver takes it ([`Broker::poll_bridge`])
//!   and, once the remote broker has acknowledged it, settles it
//!   ([`Broker::bridge_settled`]). Messages in flight to the remote broker
//!   are accounted here, in the queue limit and in flow control: a local
//!   QoS 1/2 publisher's acknowledgement is held while a bridge it reaches
//!   is past half its queue limit and draining, as for a slow subscriber.
//!
//! The drive loop, after any call into the broker:
//!
//! ```text
//! while let Some(id) = broker.poll_bridge_ready() {
//!     while let Some(m) = broker.poll_bridge(id, now) {
//!         send m to the remote broker; later:
//!         broker.bridge_settled(id, now, m.token, BridgeOutcome::Delivered);
//!     }
//! }
//! messages from the remote broker: broker.publish_from_bridge(id, now, msg)
//! connection changes, for $SYS:    broker.set_bridge_state(id, state)
//! ```
//!
//! Bridges are configuration, not clients: there is no CONNECT and no
//! authentication. Their [`Rights`] come with their [`BridgeOptions`] (every
//! right by default) and are checked as a client's are (subscribe, publish,
//! read per delivery), so an ACL can confine what a bridge carries.
//! Mosquitto applies no ACL to bridge traffic; the default does the same.

mod queue;
mod types;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{QoS, ReasonCode, Str, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_session::{DeliverError, DeliveryOptions, Message};

use super::flow::{Flow, Sink};
use super::route::may_publish;
use super::stats::{DropReason, Stats};
use super::{Broker, QueueFullPolicy, Rights, SessionKey, StoreRecord};
use crate::{Instant, Subscription};
use queue::{Queue, Queued};
pub use types::{
    BridgeError, BridgeId, BridgeMessage, BridgeOptions, BridgeOutcome, BridgeState, BridgeStats,
    BridgeToken, OpenedBridge, PublishOutcome,
};

/// The bit that marks a bridge's key in the subscription index. Session
/// keys index the session table, which cannot reach 2^31 entries (each is
/// about a hundred bytes: 200 GiB), so no session key has it.
pub(super) const BRIDGE_KEY: SessionKey = 1 << 31;

/// The bridge slot a subscription index key names, if it is a bridge's.
pub(super) fn bridge_index(key: SessionKey) -> Option<u32> {
    (key & BRIDGE_KEY != 0).then_some(key & !BRIDGE_KEY)
}

/// One bridge in the core.
#[derive(Debug)]
pub(super) struct Bridge {
    name: String,
    rights: Rights,
    queue_limit: usize,
    max_in_flight: usize,
    queue: Queue,
    /// Taken by the driver, not yet settled, by token.
    in_flight: BTreeMap<u64, Queued>,
    next_seq: u64,
    /// In the ready list, not yet named by `poll_bridge_ready`.
    ready: bool,
    /// Flow control of the bridge as a subscriber.
    pub(super) flow: Flow,
    state: BridgeState,
    received: u64,
    sent: u64,
    dropped: u64,
}

impl Bridge {
    fn new(name: &str, options: BridgeOptions, now: Instant) -> Bridge {
        Bridge {
            name: String::from(name),
            rights: options.rights,
            queue_limit: options.queue_limit,
            max_in_flight: options.max_in_flight.max(1),
            queue: Queue::default(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            ready: false,
            flow: Flow::new(now),
            state: BridgeState::default(),
            received: 0,
            sent: 0,
            dropped: 0,
        }
    }

    /// What the bridge may carry.
    pub(super) fn rights(&self) -> &Rights {
        &self.rights
    }

    /// Messages that count against the queue limit.
    fn waiting(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Past its high-water mark and still draining (flow control).
    pub(super) fn congested(&self, now: Instant) -> bool {
        self.flow.congested(self.queue_limit, now)
    }

    /// Queues a message, applying the queue-full policy at the limit: as
    /// for a session, queued QoS 0 messages give way first, and exactly one
    /// message is dropped (and counted in `dropped` and the bridge's own
    /// counter). Messages in flight are never dropped: when only they fill
    /// the limit, the new message is.
    fn enqueue(
        &mut self,
        message: Arc<Message>,
        opts: &DeliveryOptions,
        policy: QueueFullPolicy,
        stats: &mut Stats,
    ) -> Result<u64, DeliverError> {
        if self.waiting() >= self.queue_limit {
            let made_room = policy.make_room(opts.qos, &mut self.queue);
            self.dropped += 1;
            stats.count_dropped(DropReason::QueueFull, 1);
            if !made_room {
                return Err(DeliverError::QueueFull {
                    limit: self.queue_limit,
                });
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Queued {
            seq,
            message,
            qos: opts.qos,
            retain: opts.retain,
        });
        Ok(seq)
    }

    /// The bridge's name, as the store records it.
    fn store_name(&self) -> Str {
        Str::try_from(self.name.as_str()).unwrap_or_default()
    }

    /// Puts back what the store held for this bridge, in order, before
    /// anything new is queued.
    fn restore_queue(&mut self, queued: Vec<Queued>) {
        for q in queued {
            self.next_seq = self.next_seq.max(q.seq + 1);
            self.queue.push(q);
        }
    }

    fn stats(&self) -> BridgeStats {
        BridgeStats {
            state: self.state,
            messages_received: self.received,
            messages_sent: self.sent,
            messages_dropped: self.dropped,
            queued: self.waiting(),
            in_flight: self.in_flight.len(),
        }
    }
}

/// The bridge slab: slots reused under a new generation, so a stale
/// [`BridgeId`] never reaches a newer bridge; and the ready list.
#[derive(Debug, Default)]
pub(super) struct Bridges {
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: VecDeque<BridgeId>,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    /// Boxed: bridges are few, their slots need not be large.
    bridge: Option<alloc::boxed::Box<Bridge>>,
}

impl Bridges {
    pub(super) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(super) fn get(&self, id: BridgeId) -> Option<&Bridge> {
        let slot = self.slots.get(id.index as usize)?;
        slot.bridge
            .as_deref()
            .filter(|_| slot.generation == id.generation)
    }

    pub(super) fn get_mut(&mut self, id: BridgeId) -> Option<&mut Bridge> {
        let slot = self.slots.get_mut(id.index as usize)?;
        let generation = slot.generation;
        slot.bridge
            .as_deref_mut()
            .filter(|_| generation == id.generation)
    }

    /// The bridge in slot `index`.
    pub(super) fn get_index(&self, index: u32) -> Option<&Bridge> {
        self.slots.get(index as usize)?.bridge.as_deref()
    }

    /// The bridge in slot `index`, with its id.
    pub(super) fn by_index(&self, index: u32) -> Option<(BridgeId, &Bridge)> {
        let slot = self.slots.get(index as usize)?;
        let id = BridgeId {
            index,
            generation: slot.generation,
        };
        slot.bridge.as_deref().map(|b| (id, b))
    }

    fn by_index_mut(&mut self, index: u32) -> Option<(BridgeId, &mut Bridge)> {
        let slot = self.slots.get_mut(index as usize)?;
        let id = BridgeId {
            index,
            generation: slot.generation,
        };
        slot.bridge.as_deref_mut().map(|b| (id, b))
    }

    fn insert(&mut self, bridge: Bridge) -> Result<BridgeId, BridgeError> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|i| i & BRIDGE_KEY == 0)
                    .ok_or(BridgeError::TooManyBridges)?;
                self.slots.push(Slot {
                    generation: 0,
                    bridge: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.bridge = Some(alloc::boxed::Box::new(bridge));
        Ok(BridgeId {
            index,
            generation: slot.generation,
        })
    }

    fn remove(&mut self, id: BridgeId) -> Option<alloc::boxed::Box<Bridge>> {
        self.get(id)?;
        self.free.push(id.index);
        self.slots[id.index as usize].bridge.take()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Bridge> {
        self.slots.iter().filter_map(|s| s.bridge.as_deref())
    }

    /// Puts bridge `id` on the ready list unless it is there already.
    fn mark_ready(&mut self, id: BridgeId) {
        if let Some(b) = self.get_mut(id) {
            if !b.ready {
                b.ready = true;
                self.ready.push_back(id);
            }
        }
    }
}

impl Broker {
    /// Opens a bridge named `name` (in `$SYS/broker/bridges/<name>/...`, and
    /// in logs) that carries out the messages
    /// published here on `subscriptions`, each at most at its QoS (and the
    /// broker's maximum QoS). Its subscriptions are No Local by origin and
    /// Retain As Published; the retained messages matching each one are
    /// queued for it at once, RETAIN set [MQTT-3.3.1-8], as for a client
    /// subscribing with Retain Handling 0.
    ///
    /// Then drain [`Broker::poll_bridge_ready`].
    pub fn open_bridge(
        &mut self,
        now: Instant,
        name: &str,
        subscriptions: Vec<(TopicFilter, QoS)>,
        options: BridgeOptions,
    ) -> Result<OpenedBridge, BridgeError> {
        self.start(now);
        let sys_topic = alloc::format!("$SYS/broker/bridges/{name}/state");
        if name.is_empty()
            || name.contains(['/', '+', '#', '\0'])
            || TopicName::<bytes::Bytes>::try_from(sys_topic.as_str()).is_err()
        {
            return Err(BridgeError::InvalidName);
        }
        if self.bridges.iter().any(|b| b.name == name) {
            return Err(BridgeError::NameTaken);
        }
        if options.queue_limit == 0 {
            return Err(BridgeError::ZeroQueueLimit);
        }
        let mut bridge = Bridge::new(name, options, now);
        if let Some(queued) = self.restored_bridge_queue(name) {
            bridge.restore_queue(queued);
        }
        let waiting = bridge.queue.len() > 0;
        let id = self.bridges.insert(bridge)?;
        if waiting {
            self.bridges.mark_ready(id);
        }
        let results = self.subscribe_bridge(id, now, subscriptions);
        Ok(OpenedBridge { id, results })
    }

    /// Makes a bridge's subscriptions, each checked against its rights, and
    /// queues the retained messages they match.
    fn subscribe_bridge(
        &mut self,
        id: BridgeId,
        now: Instant,
        subscriptions: Vec<(TopicFilter, QoS)>,
    ) -> Vec<ReasonCode> {
        let max_qos = self.config.server.maximum_qos;
        let mut results = Vec::with_capacity(subscriptions.len());
        let mut retained_for = Vec::new();
        for (filter, qos) in subscriptions {
            let Some(b) = self.bridges.get(id) else {
                break;
            };
            let reason = if filter.is_shared() {
                // One member of a group would get a message regardless of
                // where it came from: No Local cannot be set on a shared
                // subscription [MQTT-3.8.3-4].
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
            } else if !b.rights.may_subscribe(&filter) {
                ReasonCode::NOT_AUTHORIZED
            } else {
                let mut opts = SubscriptionOptions::new(qos.min(max_qos));
                // No Local: what the bridge brought in does not go back out
                // over it [MQTT-3.8.3-3]. Retain As Published: retained
                // messages cross as retained (what Mosquitto's bridges do).
                opts.no_local = true;
                opts.retain_as_published = true;
                match self
                    .index
                    .insert(id.key(), &filter, Subscription::new(opts, None))
                {
                    Ok(ins) => {
                        if ins.is_new() {
                            retained_for.push((filter, opts.qos));
                        }
                        ReasonCode(opts.qos as u8)
                    }
                    Err(e) => e.reason_code(),
                }
            };
            results.push(reason);
        }
        self.send_retained(id.key(), now, retained_for, &[]);
        results
    }

    /// Closes bridge `id`: its subscriptions go, what waited for it is
    /// dropped (counted), and the acknowledgements it held go out. The id
    /// is stale afterwards.
    pub fn close_bridge(&mut self, id: BridgeId) {
        let Some(b) = self.bridges.remove(id) else {
            return;
        };
        self.index.remove_client(id.key());
        self.stats
            .count_dropped(DropReason::Closed, b.waiting() as u64);
        self.forget_holder(&b.flow);
        self.send_acks(Sink::Bridge(id), b.flow.held_acks);
    }

    /// A bridge with messages for [`Broker::poll_bridge`], each at most once
    /// per change: a bridge is named again only once a message was queued
    /// for it after this call, so take all its messages now.
    #[must_use]
    pub fn poll_bridge_ready(&mut self) -> Option<BridgeId> {
        while let Some(id) = self.bridges.ready.pop_front() {
            if let Some(b) = self.bridges.get_mut(id) {
                b.ready = false;
                return Some(id);
            }
        }
        None
    }

    /// The next message for bridge `id`'s remote broker, in routing order;
    /// `None` when none waits, while the bridge is not connected
    /// ([`Broker::set_bridge_state`]), or while its window
    /// ([`BridgeOptions::max_in_flight`]) is full. It stays in flight,
    /// counted against the queue limit, until [`Broker::bridge_settled`]. A message whose
    /// expiry passed while it waited is dropped (counted) instead
    /// [MQTT-3.3.2-5].
    pub fn poll_bridge(&mut self, id: BridgeId, now: Instant) -> Option<BridgeMessage> {
        let b = self.bridges.get_mut(id)?;
        // A message handed out is out of the queue-full policy's reach: only
        // what the connected remote end can carry leaves the queue.
        if b.state != BridgeState::Connected || b.in_flight.len() >= b.max_in_flight {
            return None;
        }
        let mut expired = Vec::new();
        let mut next = None;
        while let Some(q) = b.queue.pop_front() {
            if q.message.props.expires_at.is_some_and(|at| at <= now) {
                b.dropped += 1;
                self.stats.count_dropped(DropReason::Expired, 1);
                if q.qos != QoS::AtMostOnce {
                    expired.push(q.seq);
                }
                continue;
            }
            next = Some(BridgeMessage {
                message: q.message.clone(),
                qos: q.qos,
                retain: q.retain,
                token: BridgeToken(q.seq),
            });
            b.in_flight.insert(q.seq, q);
            break;
        }
        if !expired.is_empty() && self.store.is_some() {
            let bridge = b.store_name();
            for seq in expired {
                let bridge = bridge.clone();
                self.emit(|| StoreRecord::BridgeSettled { bridge, seq });
            }
        }
        next
    }

    /// What became of a message bridge `id`'s driver took: the remote
    /// broker took it, it is dropped, or it goes back in the queue to be
    /// sent again (then drain [`Broker::poll_bridge_ready`]). Acknowledgements
    /// the bridge held go out once it has drained. An unknown token (settled
    /// already, or of a closed bridge) is ignored.
    pub fn bridge_settled(
        &mut self,
        id: BridgeId,
        now: Instant,
        token: BridgeToken,
        outcome: BridgeOutcome,
    ) {
        let Some(b) = self.bridges.get_mut(id) else {
            return;
        };
        let Some(q) = b.in_flight.remove(&token.0) else {
            return;
        };
        let settled = match outcome {
            BridgeOutcome::Delivered => {
                b.sent += 1;
                true
            }
            BridgeOutcome::Dropped => {
                b.dropped += 1;
                self.stats.count_dropped(DropReason::BridgeRefused, 1);
                true
            }
            BridgeOutcome::Retry => {
                b.queue.requeue(q.clone());
                false
            }
        };
        if settled && q.qos != QoS::AtMostOnce && self.store.is_some() {
            let bridge = b.store_name();
            self.emit(|| StoreRecord::BridgeSettled { bridge, seq: q.seq });
        }
        let Some(b) = self.bridges.get_mut(id) else {
            return;
        };
        // Room in the window: what waits may go.
        if b.queue.len() > 0 {
            self.bridges.mark_ready(id);
        }
        self.bridge_flow_control(id, now);
    }

    /// A message from bridge `id`'s remote broker, its topic already the
    /// local one: it takes the publish path of a client's message (the
    /// bridge's write rights checked, `$` topics refused, the
    /// retained store, routing, `$SYS` counters), with the broker's maximum
    /// QoS and Retain Available applied, and is never routed back to this
    /// bridge (No Local by origin). The outcome says what to answer the
    /// remote broker. Then drain [`Broker::poll_writable`] and
    /// [`Broker::poll_bridge_ready`].
    ///
    /// The remote broker has its acknowledgement from the driver, so flow
    /// control holds nothing here: a slow local subscriber sheds load by the
    /// queue-full policy.
    pub fn publish_from_bridge(
        &mut self,
        id: BridgeId,
        now: Instant,
        mut msg: Message,
    ) -> Result<PublishOutcome, BridgeError> {
        self.start(now);
        let b = self.bridges.get_mut(id).ok_or(BridgeError::UnknownBridge)?;
        b.received += 1;
        self.stats.received(&msg);
        msg.qos = msg.qos.min(self.config.server.maximum_qos);
        msg.retain &= self.config.server.retain_available;
        let allowed = match self.bridges.get(id) {
            Some(b) => may_publish(&b.rights, &msg),
            None => false,
        };
        let (reason, routed) = self.publish_checked(now, msg, Some(id.key()), allowed);
        if reason.is_error() {
            if let Some(b) = self.bridges.get_mut(id) {
                b.dropped += 1;
            }
        }
        Ok(PublishOutcome {
            reason,
            delivered: routed.delivered,
            congested: routed.congested.is_some(),
        })
    }

    /// Bridge `id`'s connection to the remote broker changed state; `$SYS`
    /// shows it. Messages are handed out only while it is connected.
    pub fn set_bridge_state(&mut self, id: BridgeId, state: BridgeState) {
        let Some(b) = self.bridges.get_mut(id) else {
            return;
        };
        b.state = state;
        // Connected again: what waited may go.
        if state == BridgeState::Connected && b.queue.len() > 0 {
            self.bridges.mark_ready(id);
        }
    }

    /// What the broker has counted for bridge `id`.
    pub fn bridge_stats(&self, id: BridgeId) -> Option<BridgeStats> {
        self.bridges.get(id).map(Bridge::stats)
    }

    /// Every open bridge's name and counts (for metrics).
    pub fn bridges_stats(&self) -> impl Iterator<Item = (&str, BridgeStats)> {
        self.bridges.iter().map(|b| (b.name.as_str(), b.stats()))
    }

    /// Queues a routed message for the bridge in slot `index`; returns the
    /// bridge when it is past its high-water mark and draining (flow
    /// control).
    pub(super) fn deliver_to_bridge(
        &mut self,
        index: u32,
        now: Instant,
        msg: Arc<Message>,
        opts: DeliveryOptions,
    ) -> Result<Option<Sink>, DeliverError> {
        let policy = self.config.queue_full;
        let Some((id, b)) = self.bridges.by_index_mut(index) else {
            return Err(DeliverError::Closed);
        };
        let payload = msg.payload.len();
        let r = b.enqueue(msg.clone(), &opts, policy, &mut self.stats);
        let capacity = b.queue_limit;
        b.flow.observe(b.waiting(), capacity, now);
        let congested = b.flow.congested(capacity, now).then_some(Sink::Bridge(id));
        if self.store.is_some() {
            self.record_bridge_queued(id, r.as_ref().ok().copied(), msg, &opts);
        }
        r?;
        self.stats.sent(opts.qos, payload);
        self.bridges.mark_ready(id);
        Ok(congested)
    }

    /// Records what the queue-full policy dropped from bridge `id` and the
    /// QoS 1/2 message just queued for it (`seq`), for the store.
    fn record_bridge_queued(
        &mut self,
        id: BridgeId,
        seq: Option<u64>,
        msg: Arc<Message>,
        opts: &DeliveryOptions,
    ) {
        let Some(b) = self.bridges.get_mut(id) else {
            return;
        };
        let dropped = b.queue.take_dropped();
        let bridge = b.store_name();
        if let Some(seq) = dropped {
            let bridge = bridge.clone();
            self.emit(|| StoreRecord::BridgeSettled { bridge, seq });
        }
        if let (Some(seq), Some(d)) = (seq, self.store.as_deref_mut()) {
            if opts.qos != QoS::AtMostOnce {
                d.bridge_queued(bridge, seq, msg, opts.qos, opts.retain);
            }
        }
    }

    /// The queue the store held for a bridge named `name`, if any.
    fn restored_bridge_queue(&mut self, name: &str) -> Option<Vec<Queued>> {
        let stored = self.store.as_deref_mut()?.take_bridge_queue(name)?;
        Some(
            stored
                .into_iter()
                .map(|(seq, message, qos, retain)| Queued {
                    seq,
                    message,
                    qos,
                    retain,
                })
                .collect(),
        )
    }

    /// Flow control after a bridge's backlog went down: the acknowledgements
    /// it held go out once it is down to a quarter of its queue limit.
    fn bridge_flow_control(&mut self, id: BridgeId, now: Instant) {
        let Some(b) = self.bridges.get_mut(id) else {
            return;
        };
        let capacity = b.queue_limit;
        b.flow.observe(b.waiting(), capacity, now);
        if !b.flow.held_acks.is_empty() && b.flow.drained(capacity) {
            self.release_acks(Sink::Bridge(id));
            self.run_resumed(now);
        }
    }

    /// Each bridge's `$SYS/broker/bridges/<name>/...` values.
    pub(super) fn bridge_sys_values(&self) -> Vec<(String, String)> {
        let mut values = Vec::with_capacity(self.bridges.len() * 5);
        for b in self.bridges.iter() {
            let s = b.stats();
            let name = &b.name;
            for (what, value) in [
                ("state", String::from(s.state.as_str())),
                ("messages/sent", alloc::format!("{}", s.messages_sent)),
                (
                    "messages/received",
                    alloc::format!("{}", s.messages_received),
                ),
                ("queue", alloc::format!("{}", s.queued)),
                ("dropped", alloc::format!("{}", s.messages_dropped)),
            ] {
                values.push((alloc::format!("bridges/{name}/{what}"), value));
            }
        }
        values
    }
}
