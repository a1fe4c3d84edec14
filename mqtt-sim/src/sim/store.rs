//! A durable store, simulated: what the broker binary's store thread does,
//! in memory, with the commit latency drawn from the seed.
//!
//! The core's records ([`Broker::poll_store`]) are taken as soon as it makes
//! them, in batches; each batch is committed (applied to a
//! [`StoreImage`], the records' meaning as a plain map) and reported
//! ([`Broker::handle_stored`]) after a delay drawn from the seed, batches in
//! the order they were taken. A crash loses the batches not committed yet,
//! and whatever the core had not handed over: exactly what a real crash
//! loses. The [`Durable`] restart hook then builds the next core from the
//! image, as the broker binary does at start-up ([`Broker::restore`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use mqtt_router::broker::{Broker, BrokerConfig, RestoredState, StoreImage, StoreRecord, WallTime};
use mqtt_router::Instant;

use super::{Durability, Restart, Sim};
use crate::observe::Observer;

/// The wall clock (milliseconds since the Unix epoch) when a simulation's
/// clock reads 0: the store keeps wall-clock deadlines (session expiry,
/// message expiry, will delays) across a restart.
pub const WALL0: u64 = 1_700_000_000_000;

/// The wall-clock time when the simulation's clock reads `now`.
pub fn wall_at(now: Instant) -> WallTime {
    WallTime::from_millis(WALL0 + now.as_millis())
}

/// A batch taken from the core and not yet committed.
struct Batch {
    due: Instant,
    records: Vec<StoreRecord>,
    up_to: u64,
}

/// One broker's simulated store.
pub(crate) struct SimStore {
    /// What is committed; shared with the [`Durable`] hook.
    image: Rc<RefCell<StoreImage>>,
    pending: VecDeque<Batch>,
    /// The commit latency, in milliseconds, drawn in `min..=max`.
    delay_ms: (u64, u64),
    /// While paused, nothing is taken from the core (a store that hangs).
    paused: bool,
}

/// Brings a broker back from what its simulated store committed, as the
/// broker binary does at start-up: a new core, restored from the image.
pub struct Durable {
    image: Rc<RefCell<StoreImage>>,
}

impl Restart for Durable {
    fn restart(&mut self, config: &BrokerConfig, now: Instant, incarnation: u32) -> Broker {
        let mut config = config.clone();
        // A new process: a new seed, as the broker binary draws one.
        config.seed = crate::Rng::new(config.seed ^ u64::from(incarnation)).next_u64();
        let mut core = Broker::new(config);
        let state = self.image.borrow().restored();
        core.restore(now, wall_at(now), state)
            .expect("what the store committed restores");
        core
    }

    fn durability(&self) -> Durability {
        Durability {
            sessions: true,
            retained: true,
        }
    }
}

impl<O: Observer> Sim<O> {
    /// Gives broker `b` a durable store committing each batch of records
    /// `commit_delay_ms` (`min..=max`, drawn from the seed) after the core
    /// made it, and a [`Durable`] restart hook that builds the next core
    /// from what was committed. Call it before anything connects (the core
    /// must still be fresh).
    pub fn make_durable(&mut self, b: usize, commit_delay_ms: (u64, u64)) {
        let now = self.now;
        let image = Rc::new(RefCell::new(StoreImage::new()));
        let node = &mut self.brokers[b];
        node.core
            .as_mut()
            .expect("the broker is up")
            .restore(now, wall_at(now), RestoredState::default())
            .expect("a fresh broker takes a store");
        node.store = Some(SimStore {
            image: image.clone(),
            pending: VecDeque::new(),
            delay_ms: (commit_delay_ms.0, commit_delay_ms.1.max(commit_delay_ms.0)),
            paused: false,
        });
        node.restart = Some(Box::new(Durable { image }));
    }

    /// What broker `b`'s store has committed (a copy).
    ///
    /// # Panics
    /// If the broker has no store ([`Sim::make_durable`]).
    pub fn store_image(&self, b: usize) -> StoreImage {
        let store = self.brokers[b].store.as_ref().expect("a durable broker");
        store.image.borrow().clone()
    }

    /// Broker `b`'s store stops taking records (`true`: they wait in the
    /// core, and its output that needs them waits too) or takes them again.
    pub fn pause_store(&mut self, b: usize, paused: bool) {
        if let Some(store) = self.brokers[b].store.as_mut() {
            store.paused = paused;
        }
        self.run_until_idle();
    }

    /// The wall-clock time now (what a durable broker is restored with).
    pub fn wall(&self) -> WallTime {
        wall_at(self.now)
    }

    /// Takes the records broker `b`'s core made, as one batch due after the
    /// commit latency (never before an earlier batch).
    pub(crate) fn take_records(&mut self, b: usize) {
        let now = self.now;
        let node = &mut self.brokers[b];
        let (Some(store), Some(core)) = (node.store.as_mut(), node.core.as_mut()) else {
            return;
        };
        if store.paused {
            return;
        }
        let mut records = Vec::new();
        let Some(up_to) = core.poll_store(&mut records) else {
            return;
        };
        let (min, max) = store.delay_ms;
        let delay = min + self.rng.below(max - min + 1);
        let mut due = now.saturating_add(crate::net::ms(delay));
        if let Some(last) = store.pending.back() {
            due = due.max(last.due);
        }
        store.pending.push_back(Batch {
            due,
            records,
            up_to,
        });
    }

    /// When broker `b`'s store commits its next batch, if it has one.
    pub(crate) fn commit_due(&self, b: usize) -> Option<Instant> {
        let store = self.brokers[b].store.as_ref()?;
        store.pending.front().map(|batch| batch.due)
    }

    /// Broker `b`'s store commits its next batch and reports it stored.
    pub(crate) fn commit(&mut self, b: usize) {
        let node = &mut self.brokers[b];
        let Some(store) = node.store.as_mut() else {
            return;
        };
        let Some(batch) = store.pending.pop_front() else {
            return;
        };
        let mut image = store.image.borrow_mut();
        for r in batch.records {
            image.apply(r);
        }
        drop(image);
        if let Some(core) = node.core.as_mut() {
            core.handle_stored(batch.up_to);
        }
        self.drain_broker(b);
    }

    /// Broker `b` crashed: the batches not committed are lost, and the
    /// next process's store runs (a pause was the old process's).
    pub(crate) fn lose_uncommitted(&mut self, b: usize) {
        if let Some(store) = self.brokers[b].store.as_mut() {
            store.pending.clear();
            store.paused = false;
        }
    }
}
