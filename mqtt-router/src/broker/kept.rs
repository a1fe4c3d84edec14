//! Retained messages as the broker keeps them: shared (one `Arc` for every
//! subscriber it is replayed to) and charged, in bytes, to the broker-wide
//! total and to the client identifier that set them, until they leave the
//! store however they leave it (replaced, cleared, expired, purged).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashMap;
use mqtt_codec::Str;
use mqtt_session::Message;

use crate::retained::RetainedMessage;
use crate::seed::KeyedState;

/// One retained message and its charge; dropping it releases the charge.
#[derive(Debug)]
pub(super) struct Kept {
    pub(super) message: Arc<Message>,
    bytes: usize,
    owner: Option<Arc<AtomicUsize>>,
    total: Arc<AtomicUsize>,
}

impl Kept {
    /// The bytes it is charged ([`Message::held_bytes`]).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether it is charged to `counter`.
    fn charged_to(&self, counter: &Arc<AtomicUsize>) -> bool {
        self.owner.as_ref().is_some_and(|o| Arc::ptr_eq(o, counter))
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
        if let Some(owner) = &self.owner {
            owner.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

impl RetainedMessage for Kept {
    fn is_empty_payload(&self) -> bool {
        self.message.payload.is_empty()
    }
}

/// The bytes retained messages hold: in all, and per client identifier.
///
/// The counters are shared with the [`Kept`] messages (atomics only so the
/// broker stays `Send`; the core runs on one thread), so no removal path
/// of the retained store can forget to release a charge.
#[derive(Debug)]
pub(super) struct RetainedBytes {
    total: Arc<AtomicUsize>,
    owners: HashMap<Str, Arc<AtomicUsize>, KeyedState>,
}

impl RetainedBytes {
    pub(super) fn new(state: KeyedState) -> Self {
        RetainedBytes {
            total: Arc::default(),
            owners: HashMap::with_hasher(state),
        }
    }

    /// Bytes of all retained messages.
    pub(super) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Bytes of the retained messages `owner` set.
    pub(super) fn of(&self, owner: &Str) -> usize {
        self.owners
            .get(owner)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Whether `kept` is charged to `owner`.
    pub(super) fn is_charged_to(&self, kept: &Kept, owner: &Str) -> bool {
        self.owners.get(owner).is_some_and(|c| kept.charged_to(c))
    }

    /// `message`, charged to the total and to `owner` (the broker's own
    /// messages and restored ones have none).
    pub(super) fn charge(&mut self, message: Arc<Message>, owner: Option<&Str>) -> Kept {
        let bytes = message.held_bytes();
        self.total.fetch_add(bytes, Ordering::Relaxed);
        let owner = owner.map(|o| {
            let c = self.owners.entry(o.clone()).or_default().clone();
            c.fetch_add(bytes, Ordering::Relaxed);
            c
        });
        Kept {
            message,
            bytes,
            owner,
            total: self.total.clone(),
        }
    }

    /// Forgets the owners no retained message is charged to any more
    /// (housekeeping: visits every owner).
    pub(super) fn sweep(&mut self) {
        self.owners.retain(|_, c| Arc::strong_count(c) > 1);
    }

    /// Sweeps once owners outnumber the `retained` messages kept (plus some
    /// slack): the table stays proportional to the store, at O(1) amortised
    /// cost, even with `$SYS` publication off.
    pub(super) fn sweep_if_sparse(&mut self, retained: usize) {
        if self.owners.len() > 2 * retained + 64 {
            self.sweep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{QoS, TopicName};

    #[test]
    fn a_charge_is_released_whichever_way_the_message_goes() {
        let mut b = RetainedBytes::new(KeyedState::with_seed(1));
        let alice = Str::from_static("alice");
        let msg = |n: usize| {
            Arc::new(Message::new(
                TopicName::from_static("t"),
                alloc::vec![1u8; n],
                QoS::AtMostOnce,
                true,
            ))
        };
        let a = b.charge(msg(9), Some(&alice));
        let own = b.charge(msg(19), None);
        assert_eq!((b.total(), b.of(&alice)), (30, 10));
        assert!(b.is_charged_to(&a, &alice) && !b.is_charged_to(&own, &alice));
        drop(a);
        assert_eq!((b.total(), b.of(&alice)), (20, 0));
        b.sweep();
        assert!(b.owners.is_empty());
        drop(own);
        assert_eq!(b.total(), 0);
    }
}
