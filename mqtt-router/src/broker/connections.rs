//! The connection slab and the bookkeeping after each change to a
//! connection: its timer re-armed, its output announced, its events handled.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use mqtt_codec::Str;
use mqtt_session::{Connection, Server, ServerEvent};

use super::auth::Progress;
use super::flow::{Flow, Sink};
use super::throttle::Throttle;
use super::{Broker, ConnId, PeerInfo, Rights, SessionKey, Timer};
use crate::Instant;

/// The connection slab: slots reused under a new generation, so a stale
/// [`ConnId`] never reaches a newer connection.
#[derive(Default)]
pub(super) struct Conns {
    /// Boxed: a `Conn` is about a kilobyte, and a growing vector of them
    /// would keep up to as much again unused; a box costs 8 bytes a slot.
    pub(super) slots: Vec<Option<Box<Conn>>>,
    pub(super) generations: Vec<u32>,
    pub(super) free: Vec<u32>,
    pub(super) open: usize,
    /// The most open at once since start.
    pub(super) peak: usize,
}

impl Conns {
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index as usize)?
            .as_deref()
            .filter(|c| c.generation == id.generation)
    }

    pub(super) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.index as usize)?
            .as_deref_mut()
            .filter(|c| c.generation == id.generation)
    }

    pub(super) fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.generations[index as usize].wrapping_add(1);
        self.generations[index as usize] = generation;
        self.slots[index as usize] = Some(Box::new(make(generation)));
        self.open += 1;
        self.peak = self.peak.max(self.open);
        ConnId { index, generation }
    }

    pub(super) fn remove(&mut self, id: ConnId) {
        if self.get_mut(id).is_some() {
            self.slots[id.index as usize] = None;
            self.free.push(id.index);
            self.open -= 1;
        }
    }

    pub(super) fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref().map(|c| ConnId {
                    index: i as u32,
                    generation: c.generation,
                })
            })
            .collect()
    }
}

pub(super) struct Conn {
    pub(super) generation: u32,
    pub(super) conn: Connection<Server>,
    pub(super) session: Option<SessionKey>,
    /// Shared with the session entry.
    pub(super) peer: Arc<PeerInfo>,
    /// The authenticated user name: the session's owner.
    pub(super) username: Option<Str>,
    /// What the client may publish and subscribe to (its session has the
    /// same rights for reading).
    pub(super) rights: Rights,
    /// Authentication in progress (boxed: most connections have none).
    pub(super) auth: Option<Box<Progress>>,
    /// A 3.1/3.1.1 bridge (Mosquitto's `try_private` marker in its CONNECT):
    /// it never gets its own publications back, and gets retain flags as
    /// published, as Mosquitto treats bridges.
    pub(super) try_private: bool,
    /// Flow control of this connection as a subscriber: the publishers'
    /// acknowledgements it holds, and whether it drains. See
    /// [`Broker::flow_control`].
    pub(super) flow: Flow,
    /// Flow control of this connection as a publisher: its input waits
    /// while one of its acknowledgements is held.
    pub(super) throttle: Throttle,
    /// The one live entry of this connection on the timer heap: never later
    /// than the connection's deadline (see [`Broker::rearm`]).
    pub(super) timer_at: Option<Instant>,
    pub(super) ready: bool,
    pub(super) closed: bool,
    /// The store record this connection's output waits for: its input made
    /// it, and the output may promise it (see `durable.rs`). 0: none.
    pub(super) gate: u64,
    /// Listed among the connections whose output waits for the store.
    pub(super) held: bool,
}

impl Broker {
    /// After an input or command: re-arms the connection's timer and marks it
    /// writable (it may have produced packets).
    pub(super) fn note_change(&mut self, id: ConnId) {
        self.count_expired(id);
        self.rearm(id);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !c.ready {
            c.ready = true;
            self.ready.push_back(id);
        }
    }

    /// Makes sure the timer heap wakes the connection by its next deadline.
    ///
    /// Only a deadline *earlier* than the entry already queued is pushed: the
    /// keep-alive deadline moves later with every packet read, and pushing
    /// each move would grow the heap by one entry per read until those
    /// entries came due (1.5 × keep alive later). A later deadline is queued
    /// when the earlier entry fires (see `handle_timeout`), so each
    /// connection has one live entry and few stale ones.
    pub(super) fn rearm(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(at) = c.conn.poll_timeout() else {
            return;
        };
        if c.timer_at.is_none_or(|queued| at < queued) {
            c.timer_at = Some(at);
            self.timers.push(Reverse((at, Timer::Conn(id))));
        }
    }

    pub(super) fn free_conn(&mut self, id: ConnId) {
        self.count_expired(id);
        self.release_acks(Sink::Conn(id));
        self.conns.remove(id);
    }

    /// Handles everything the connection reported.
    pub(super) fn drain(&mut self, id: ConnId, now: Instant) {
        let mark = self.store_mark();
        loop {
            if self.conns.get(id).is_none() {
                return;
            }
            let Some(ev) = self.next_event(id) else {
                break;
            };
            match ev {
                ServerEvent::Connect(connect) => self.on_connect(id, now, connect),
                ServerEvent::Publish { msg, id: pid } => self.on_publish(id, now, msg, pid),
                ServerEvent::Subscribe {
                    id: pid,
                    subscription_identifier,
                    filters,
                } => self.on_subscribe(id, now, pid, subscription_identifier, filters),
                ServerEvent::Unsubscribe { id: pid, filters } => {
                    self.on_unsubscribe(id, pid, filters)
                }
                ServerEvent::Auth { reason, props } => self.on_auth(id, now, reason, props),
                ServerEvent::Closed(close) => self.on_closed(id, now, close),
            }
        }
        self.flow_control(id, now);
        self.journal_conn(id);
        self.gate_output(id, mark);
        self.note_change(id);
    }

    /// Counts the queued messages connection `id` dropped as expired (after
    /// each input or command, and before it goes).
    fn count_expired(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(id) {
            let n = c.conn.take_expired();
            if n > 0 {
                let reason = super::stats::DropReason::Expired;
                self.stats.count_dropped(reason, u64::from(n));
            }
        }
    }
}
