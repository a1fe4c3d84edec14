//! What a store holds once records are applied, as plain data: the meaning
//! of each [`StoreRecord`], written once. An in-memory store is this; a
//! disk store keeps the same state in its tables and is tested against it.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{PacketId, Str, TopicFilter, TopicName};
use mqtt_session::Message;

use super::{
    ConnectedWill, MessageId, OutgoingState, RestoredBridge, RestoredBridgeMessage,
    RestoredMessage, RestoredOutgoing, RestoredSession, RestoredState, RestoredSubscription,
    StoreRecord, StoredWill, WallTime,
};

/// The durable state after applying [`StoreRecord`]s in order. Message
/// bodies are counted by the sessions that hold them (queued or in flight
/// before PUBREC) and dropped with the last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreImage {
    sessions: BTreeMap<Str, ImageSession>,
    messages: BTreeMap<MessageId, Body>,
    retained: BTreeMap<TopicName, (Message, Option<WallTime>)>,
    bridges: BTreeMap<(Str, u64), RestoredBridgeMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Body {
    message: Arc<Message>,
    expires_at: Option<WallTime>,
    holders: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageSession {
    username: Option<Str>,
    expiry: u32,
    detached: Option<Option<WallTime>>,
    will: Option<StoredWill>,
    connected_will: Option<ConnectedWill>,
    subscriptions: BTreeMap<TopicFilter, RestoredSubscription>,
    outgoing: BTreeMap<PacketId, RestoredOutgoing>,
    incoming: BTreeSet<PacketId>,
}

impl StoreImage {
    /// An empty store.
    pub fn new() -> Self {
        StoreImage::default()
    }

    /// Number of sessions held.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of message bodies held.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    /// Number of retained messages held.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Applies one record.
    pub fn apply(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::SessionOpened {
                client_id,
                username,
                expiry,
                will,
            } => {
                self.end_session(&client_id);
                self.sessions.insert(
                    client_id,
                    ImageSession {
                        username,
                        expiry,
                        detached: None,
                        will: None,
                        connected_will: will,
                        subscriptions: BTreeMap::new(),
                        outgoing: BTreeMap::new(),
                        incoming: BTreeSet::new(),
                    },
                );
            }
            StoreRecord::SessionResumed {
                client_id,
                username,
                expiry,
                will,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    (s.username, s.expiry, s.detached, s.will) = (username, expiry, None, None);
                    s.connected_will = will;
                }
            }
            StoreRecord::SessionDetached {
                client_id,
                expires_at,
                will,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    (s.detached, s.will) = (Some(expires_at), will);
                    s.connected_will = None;
                }
            }
            StoreRecord::SessionEnded { client_id } => self.end_session(&client_id),
            r @ (StoreRecord::Subscribed { .. } | StoreRecord::Unsubscribed { .. }) => {
                self.apply_subscription(r)
            }
            StoreRecord::MessageStored {
                id,
                message,
                expires_at,
            } => {
                self.messages.insert(
                    id,
                    Body {
                        message,
                        expires_at,
                        holders: 0,
                    },
                );
            }
            r @ (StoreRecord::Queued { .. }
            | StoreRecord::PubRelSent { .. }
            | StoreRecord::Completed { .. }
            | StoreRecord::IncomingReceived { .. }
            | StoreRecord::IncomingReleased { .. }) => self.apply_exchange(r),
            StoreRecord::RetainedSet {
                message,
                expires_at,
            } => {
                self.retained
                    .insert(message.topic.clone(), (message, expires_at));
            }
            StoreRecord::RetainedCleared { topic } => {
                self.retained.remove(&topic);
            }
            r @ (StoreRecord::BridgeQueued { .. } | StoreRecord::BridgeSettled { .. }) => {
                self.apply_bridge(r)
            }
        }
    }

    fn apply_bridge(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::BridgeQueued {
                bridge,
                seq,
                message,
                qos,
                retain,
            } => {
                if let Some(b) = self.messages.get_mut(&message) {
                    b.holders += 1;
                }
                let m = RestoredBridgeMessage {
                    seq,
                    message,
                    qos,
                    retain,
                };
                if let Some(old) = self.bridges.insert((bridge, seq), m) {
                    self.release_body(old.message);
                }
            }
            StoreRecord::BridgeSettled { bridge, seq } => {
                if let Some(old) = self.bridges.remove(&(bridge, seq)) {
                    self.release_body(old.message);
                }
            }
            // `apply` sends only the records above here; listed, not `_`,
            // so a new record must be placed (see `StoreRecord`).
            StoreRecord::SessionOpened { .. }
            | StoreRecord::SessionResumed { .. }
            | StoreRecord::SessionDetached { .. }
            | StoreRecord::SessionEnded { .. }
            | StoreRecord::Subscribed { .. }
            | StoreRecord::Unsubscribed { .. }
            | StoreRecord::MessageStored { .. }
            | StoreRecord::Queued { .. }
            | StoreRecord::PubRelSent { .. }
            | StoreRecord::Completed { .. }
            | StoreRecord::IncomingReceived { .. }
            | StoreRecord::IncomingReleased { .. }
            | StoreRecord::RetainedSet { .. }
            | StoreRecord::RetainedCleared { .. } => {}
        }
    }

    fn apply_subscription(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::Subscribed {
                client_id,
                filter,
                options,
                identifier,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    let sub = RestoredSubscription {
                        filter: filter.clone(),
                        options,
                        identifier,
                    };
                    s.subscriptions.insert(filter, sub);
                }
            }
            StoreRecord::Unsubscribed { client_id, filter } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.subscriptions.remove(&filter);
                }
            }
            // `apply` sends only the records above here; listed, not `_`,
            // so a new record must be placed (see `StoreRecord`).
            StoreRecord::SessionOpened { .. }
            | StoreRecord::SessionResumed { .. }
            | StoreRecord::SessionDetached { .. }
            | StoreRecord::SessionEnded { .. }
            | StoreRecord::MessageStored { .. }
            | StoreRecord::Queued { .. }
            | StoreRecord::PubRelSent { .. }
            | StoreRecord::Completed { .. }
            | StoreRecord::IncomingReceived { .. }
            | StoreRecord::IncomingReleased { .. }
            | StoreRecord::BridgeQueued { .. }
            | StoreRecord::BridgeSettled { .. }
            | StoreRecord::RetainedSet { .. }
            | StoreRecord::RetainedCleared { .. } => {}
        }
    }

    fn apply_exchange(&mut self, record: StoreRecord) {
        match record {
            StoreRecord::Queued {
                client_id,
                packet_id,
                message,
                options,
                order,
            } => {
                let Some(s) = self.sessions.get_mut(&client_id) else {
                    return;
                };
                let o = RestoredOutgoing {
                    packet_id,
                    order,
                    state: OutgoingState::Publish { message, options },
                };
                let old = s.outgoing.insert(packet_id, o);
                if let Some(b) = self.messages.get_mut(&message) {
                    b.holders += 1;
                }
                self.release(old);
            }
            StoreRecord::PubRelSent {
                client_id,
                packet_id,
            } => {
                let Some(o) = self
                    .sessions
                    .get_mut(&client_id)
                    .and_then(|s| s.outgoing.get_mut(&packet_id))
                else {
                    return;
                };
                let old = core::mem::replace(&mut o.state, OutgoingState::PubRel);
                self.release_state(old);
            }
            StoreRecord::Completed {
                client_id,
                packet_id,
            } => {
                let old = self
                    .sessions
                    .get_mut(&client_id)
                    .and_then(|s| s.outgoing.remove(&packet_id));
                self.release(old);
            }
            StoreRecord::IncomingReceived {
                client_id,
                packet_id,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.incoming.insert(packet_id);
                }
            }
            StoreRecord::IncomingReleased {
                client_id,
                packet_id,
            } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.incoming.remove(&packet_id);
                }
            }
            // `apply` sends only the records above here; listed, not `_`,
            // so a new record must be placed (see `StoreRecord`).
            StoreRecord::SessionOpened { .. }
            | StoreRecord::SessionResumed { .. }
            | StoreRecord::SessionDetached { .. }
            | StoreRecord::SessionEnded { .. }
            | StoreRecord::Subscribed { .. }
            | StoreRecord::Unsubscribed { .. }
            | StoreRecord::MessageStored { .. }
            | StoreRecord::BridgeQueued { .. }
            | StoreRecord::BridgeSettled { .. }
            | StoreRecord::RetainedSet { .. }
            | StoreRecord::RetainedCleared { .. } => {}
        }
    }

    fn end_session(&mut self, client_id: &Str) {
        if let Some(s) = self.sessions.remove(client_id) {
            for o in s.outgoing.into_values() {
                self.release_state(o.state);
            }
        }
    }

    fn release(&mut self, o: Option<RestoredOutgoing>) {
        if let Some(o) = o {
            self.release_state(o.state);
        }
    }

    /// One holder of a body is done with it; the last one deletes it.
    fn release_state(&mut self, state: OutgoingState) {
        if let OutgoingState::Publish { message, .. } = state {
            self.release_body(message);
        }
    }

    fn release_body(&mut self, message: MessageId) {
        if let Some(b) = self.messages.get_mut(&message) {
            b.holders = b.holders.saturating_sub(1);
            if b.holders == 0 {
                self.messages.remove(&message);
            }
        }
    }

    /// The state to give [`Broker::restore`](crate::broker::Broker::restore).
    pub fn restored(&self) -> RestoredState {
        RestoredState {
            messages: self
                .messages
                .iter()
                .map(|(id, b)| RestoredMessage {
                    id: *id,
                    message: (*b.message).clone(),
                    expires_at: b.expires_at,
                })
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(client_id, s)| RestoredSession {
                    client_id: client_id.clone(),
                    username: s.username.clone(),
                    expiry: s.expiry,
                    detached: s.detached,
                    will: s.will.clone(),
                    connected_will: s.connected_will.clone(),
                    subscriptions: s.subscriptions.values().cloned().collect(),
                    outgoing: s.outgoing.values().cloned().collect(),
                    incoming: s.incoming.iter().copied().collect(),
                })
                .collect(),
            retained: self
                .retained
                .values()
                .map(|(message, expires_at)| RestoredMessage {
                    id: MessageId(0),
                    message: message.clone(),
                    expires_at: *expires_at,
                })
                .collect(),
            bridges: self.restored_bridges(),
        }
    }

    fn restored_bridges(&self) -> Vec<RestoredBridge> {
        let mut out: Vec<RestoredBridge> = Vec::new();
        for ((name, _), m) in &self.bridges {
            match out.last_mut() {
                Some(b) if b.name == *name => b.queue.push(m.clone()),
                _ => out.push(RestoredBridge {
                    name: name.clone(),
                    queue: alloc::vec![m.clone()],
                }),
            }
        }
        out
    }
}
