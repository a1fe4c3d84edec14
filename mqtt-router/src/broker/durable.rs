//! Durability, the core's side: store records emitted in order, and the
//! output of a connection held until the records its own input produced
//! are stored (see DESIGN.md, "The durable broker").
//!
//! Without a store (no [`Broker::restore`]) none of this runs: `store` is
//! `None`, no session records its changes, no record is built.

use alloc::sync::Arc;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;

use mqtt_codec::{QoS, Str};
use mqtt_session::{Message, SessionChange};

use super::store::{MessageId, StoreRecord, StoredWill, WallTime};
use super::{Broker, ConnId, SessionKey};
use crate::Instant;

/// One message of a bridge's stored queue, restored: its place, the
/// shared body, the QoS and RETAIN flag it is forwarded with.
pub(super) type StoredBridgeMessage = (u64, Arc<Message>, QoS, bool);

/// The store seam's state, present once the broker is restored.
pub(super) struct Durable {
    /// One reading of both clocks: wall-clock deadlines are converted
    /// through it (the core has no clock of its own).
    anchor: (Instant, WallTime),
    records: Vec<StoreRecord>,
    /// Sequence number of the last record emitted (the first is 1).
    emitted: u64,
    /// Sequence number of the last record an answer may promise (every
    /// record but the end of an outgoing exchange; see [`promises`]).
    promised: u64,
    /// Every record up to this one is durable.
    stored: u64,
    next_message: u64,
    /// The message being routed, and the body identifier it got once some
    /// session queued it: every session that queues it in this routing
    /// names the one body.
    routing: Option<(Arc<Message>, Option<MessageId>)>,
    /// Scratch for session changes.
    changes: Vec<SessionChange>,
    /// Connections whose output waits for records to be stored.
    held: Vec<ConnId>,
    /// The driver reported that its store cannot write.
    failing: bool,
    /// Bridges' stored queues, until a bridge of that name opens.
    bridges: BTreeMap<Str, Vec<StoredBridgeMessage>>,
}

impl Durable {
    pub(super) fn new(now: Instant, wall: WallTime, next_message: u64, emitted: u64) -> Self {
        Durable {
            anchor: (now, wall),
            records: Vec::new(),
            emitted,
            promised: emitted,
            stored: emitted,
            next_message,
            routing: None,
            changes: Vec::new(),
            held: Vec::new(),
            failing: false,
            bridges: BTreeMap::new(),
        }
    }

    pub(super) fn is_failing(&self) -> bool {
        self.failing
    }

    /// Records a QoS 1/2 message queued for bridge `bridge`.
    pub(super) fn bridge_queued(
        &mut self,
        bridge: Str,
        seq: u64,
        msg: Arc<Message>,
        qos: QoS,
        retain: bool,
    ) {
        let message = self.body(msg);
        self.push(StoreRecord::BridgeQueued {
            bridge,
            seq,
            message,
            qos,
            retain,
        });
    }

    /// Keeps a bridge's stored queue until the bridge opens.
    pub(super) fn keep_bridge_queue(&mut self, name: Str, queue: Vec<StoredBridgeMessage>) {
        self.bridges.insert(name, queue);
    }

    /// The stored queue of bridge `name`, once.
    pub(super) fn take_bridge_queue(&mut self, name: &str) -> Option<Vec<StoredBridgeMessage>> {
        let key = Str::try_from(name).ok()?;
        self.bridges.remove(&key)
    }

    /// The wall-clock time of `at`.
    pub(super) fn wall(&self, at: Instant) -> WallTime {
        let (i, w) = self.anchor;
        let ms = if at >= i {
            w.as_millis().saturating_add(at.as_millis() - i.as_millis())
        } else {
            w.as_millis().saturating_sub(i.as_millis() - at.as_millis())
        };
        WallTime::from_millis(ms)
    }

    /// The instant of wall-clock time `at` (the anchor's instant if `at` is
    /// before it: what was due while the broker was down is due now).
    pub(super) fn instant(&self, at: WallTime) -> Instant {
        let (i, w) = self.anchor;
        Instant::from_millis(
            i.as_millis()
                .saturating_add(at.as_millis().saturating_sub(w.as_millis())),
        )
    }

    fn push(&mut self, r: StoreRecord) {
        self.emitted += 1;
        if promises(&r) {
            self.promised = self.emitted;
        }
        self.records.push(r);
    }

    /// The body identifier of `msg`, emitting it first when new.
    fn body(&mut self, msg: Arc<Message>) -> MessageId {
        if let Some((m, id)) = &self.routing {
            if Arc::ptr_eq(m, &msg) {
                if let Some(id) = id {
                    return *id;
                }
            }
        }
        let id = MessageId(self.next_message);
        self.next_message += 1;
        let expires_at = msg.props.expires_at.map(|t| self.wall(t));
        if let Some((m, slot)) = &mut self.routing {
            if Arc::ptr_eq(m, &msg) {
                *slot = Some(id);
            }
        }
        self.push(StoreRecord::MessageStored {
            id,
            message: msg,
            expires_at,
        });
        id
    }

    /// Turns the changes in `self.changes` into records for session `client_id`.
    fn apply_changes(&mut self, client_id: &Str) {
        let mut changes = core::mem::take(&mut self.changes);
        for change in changes.drain(..) {
            let client_id = client_id.clone();
            let r = match change {
                SessionChange::Queued { id, msg, opts } => {
                    let message = self.body(msg);
                    StoreRecord::Queued {
                        client_id,
                        packet_id: id,
                        message,
                        options: opts,
                        order: self.emitted + 1,
                    }
                }
                SessionChange::PubRelSent { id, .. } => StoreRecord::PubRelSent {
                    client_id,
                    packet_id: id,
                },
                SessionChange::Completed { id, .. } => StoreRecord::Completed {
                    client_id,
                    packet_id: id,
                },
                SessionChange::IncomingReceived { id } => StoreRecord::IncomingReceived {
                    client_id,
                    packet_id: id,
                },
                SessionChange::IncomingReleased { id } => StoreRecord::IncomingReleased {
                    client_id,
                    packet_id: id,
                },
            };
            self.push(r);
        }
        self.changes = changes;
    }
}

/// Whether an answer may promise what `r` records. The end of an outgoing
/// exchange promises the subscriber nothing: lost in a crash, the broker
/// sends the PUBLISH (QoS 1, a duplicate the protocol allows) or the PUBREL
/// (QoS 2, answered with PUBCOMP) again; so a subscriber's PUBACK and
/// PUBCOMP never hold its next messages. "PUBREL sent" does promise: once
/// the subscriber has the PUBREL it may forget the message, and a PUBLISH
/// sent again after a crash would then be delivered twice.
fn promises(r: &StoreRecord) -> bool {
    !matches!(
        r,
        StoreRecord::Completed { .. } | StoreRecord::BridgeSettled { .. }
    )
}

impl Broker {
    /// Whether the broker runs with a store (it was [restored](Self::restore)).
    pub fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    /// Moves the store records made since the last call to `out`, in order,
    /// and returns the sequence number of the last: once the driver has
    /// committed them (all in one transaction), it reports that number with
    /// [`Broker::handle_stored`]. `None` when there are none, or the broker
    /// runs without a store.
    #[must_use = "records must be stored and reported"]
    pub fn poll_store(&mut self, out: &mut Vec<StoreRecord>) -> Option<u64> {
        let d = self.store.as_deref_mut()?;
        if d.records.is_empty() {
            return None;
        }
        out.append(&mut d.records);
        Some(d.emitted)
    }

    /// Every record up to sequence number `up_to` (from
    /// [`Broker::poll_store`]) is durable: output held for them is released
    /// ([`Broker::poll_writable`] names those connections).
    pub fn handle_stored(&mut self, up_to: u64) {
        let Some(d) = self.store.as_deref_mut() else {
            return;
        };
        d.stored = d.stored.max(up_to.min(d.emitted));
        let stored = d.stored;
        let mut held = core::mem::take(&mut d.held);
        held.retain(|&id| {
            let Some(c) = self.conns.get_mut(id) else {
                return false;
            };
            if c.gate > stored {
                return true;
            }
            c.held = false;
            if !c.ready {
                c.ready = true;
                self.ready.push_back(id);
            }
            false
        });
        if let Some(d) = self.store.as_deref_mut() {
            d.held = held;
        }
    }

    /// The driver's store cannot write (`true`) or writes again (`false`).
    /// While it cannot, what needs it stays held, `$SYS/broker/store/failing`
    /// says 1, and new QoS 1/2 messages for persistent sessions are refused
    /// with 0x97 Quota exceeded where the publisher speaks 5.0.
    pub fn set_store_failing(&mut self, failing: bool) {
        if let Some(d) = self.store.as_deref_mut() {
            d.failing = failing;
        }
    }

    /// Whether the store was reported failing.
    pub fn store_failing(&self) -> bool {
        self.store.as_deref().is_some_and(|d| d.failing)
    }

    /// Whether connection `id`'s output waits for records to be stored.
    pub fn output_held(&self, id: ConnId) -> bool {
        let stored = self.store.as_deref().map_or(0, |d| d.stored);
        self.conns.get(id).is_some_and(|c| c.gate > stored)
    }

    /// Holds `id`'s output if it is waiting for records (called where the
    /// output would be taken); true when held.
    pub(super) fn hold_output(&mut self, id: ConnId) -> bool {
        let Some(d) = self.store.as_deref_mut() else {
            return false;
        };
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        if c.gate <= d.stored {
            return false;
        }
        if !c.held {
            c.held = true;
            d.held.push(id);
        }
        true
    }

    /// The number of the last record an answer may promise so far (0
    /// without a store).
    pub(super) fn store_mark(&self) -> u64 {
        self.store.as_deref().map_or(0, |d| d.promised)
    }

    /// Connection `id`'s input made records after `mark` that its answers
    /// may promise (a PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, CONNACK):
    /// its output waits until they, and every record before them, are
    /// stored.
    pub(super) fn gate_output(&mut self, id: ConnId, mark: u64) {
        let promised = self.store_mark();
        if promised > mark {
            if let Some(c) = self.conns.get_mut(id) {
                c.gate = promised;
            }
        }
    }

    /// Emits one record (nothing without a store).
    pub(super) fn emit(&mut self, make: impl FnOnce() -> StoreRecord) {
        if let Some(d) = self.store.as_deref_mut() {
            d.push(make());
        }
    }

    /// Records what changed in the session connection `id` holds.
    pub(super) fn journal_conn(&mut self, id: ConnId) {
        let Some(d) = self.store.as_deref_mut() else {
            return;
        };
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.conn.take_session_changes(&mut d.changes);
        if d.changes.is_empty() {
            return;
        }
        let key = c.session;
        self.apply_session_changes(key);
    }

    /// Records what changed in detached session `key`.
    pub(super) fn journal_detached(&mut self, key: SessionKey) {
        let Some(d) = self.store.as_deref_mut() else {
            return;
        };
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some(s) = entry.stored.as_mut() {
            s.take_changes(&mut d.changes);
        }
        if !d.changes.is_empty() {
            self.apply_session_changes(Some(key));
        }
    }

    fn apply_session_changes(&mut self, key: Option<SessionKey>) {
        let client_id = key
            .and_then(|k| self.sessions.get(k as usize))
            .and_then(Option::as_ref)
            .filter(|e| e.durable)
            .map(|e| e.client_id.clone());
        let Some(d) = self.store.as_deref_mut() else {
            return;
        };
        match client_id {
            Some(client_id) => d.apply_changes(&client_id),
            // A session no longer in the store: its changes mean nothing.
            None => d.changes.clear(),
        }
    }

    /// Names `msg` as the message being routed (`None`: routing is over),
    /// so every session that queues it shares one stored body.
    pub(super) fn set_routing(&mut self, msg: Option<&Arc<Message>>) {
        if let Some(d) = self.store.as_deref_mut() {
            d.routing = msg.map(|m| (m.clone(), None));
        }
    }

    /// Records that durable session `key` waits for its client now.
    pub(super) fn record_detached(&mut self, key: SessionKey) {
        let Some(d) = self.store.as_deref() else {
            return;
        };
        let Some(e) = self.sessions.get(key as usize).and_then(Option::as_ref) else {
            return;
        };
        if !e.durable {
            return;
        }
        let will = e.will.as_ref().map(|w| StoredWill {
            message: w.0.clone(),
            expires_at: w.0.props.expires_at.map(|t| d.wall(t)),
            due: d.wall(w.1),
        });
        let r = StoreRecord::SessionDetached {
            client_id: e.client_id.clone(),
            expires_at: e.expires_at.map(|t| d.wall(t)),
            will,
        };
        self.emit(|| r);
    }

    /// Records a retained message set or cleared.
    pub(super) fn record_retained(&mut self, msg: &Message) {
        let Some(d) = self.store.as_deref() else {
            return;
        };
        let r = if msg.payload.is_empty() {
            StoreRecord::RetainedCleared {
                topic: msg.topic.clone(),
            }
        } else {
            StoreRecord::RetainedSet {
                message: msg.clone(),
                expires_at: msg.props.expires_at.map(|t| d.wall(t)),
            }
        };
        self.emit(|| r);
    }
}
