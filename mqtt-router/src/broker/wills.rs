//! Wills: published when their connection ends without DISCONNECT, after
//! their delay, or when their session ends first (section 3.1.3.2.2).

use alloc::boxed::Box;
use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::Str;
use mqtt_session::Message;

use super::route::may_publish;
use super::{Broker, Rights, SessionKey, Timer};
use crate::Instant;

impl Broker {
    /// The will of a connection that closed while its session lives on:
    /// published now, or when its delay has passed (section 3.1.3.2.2).
    pub(super) fn will_at_close(
        &mut self,
        key: SessionKey,
        msg: Message,
        delay: Duration,
        now: Instant,
    ) {
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return;
        };
        if delay.is_zero() {
            let (rights, owner) = (entry.reader.rights().clone(), entry.client_id.clone());
            self.publish_will(now, msg, &rights, &owner);
        } else {
            // Published when the delay has passed or the session ends,
            // whichever comes first [MQTT-3.1.3-9]: a delay reaching past
            // the session's expiry needs no timer of its own (that timer
            // would outlive the session in the heap, up to 136 years).
            let due = now.saturating_add(delay);
            let due = entry.expires_at.map_or(due, |at| due.min(at));
            entry.will = Some(Box::new((msg, due)));
            if entry.expires_at != Some(due) {
                let generation = entry.generation;
                self.timers
                    .push(Reverse((due, Timer::Session(key, generation))));
            }
        }
    }

    /// Publishes a will under the rights of its session's owner (a will
    /// is the client's publish, so it needs write access to its topic); a
    /// retained will is charged to client `owner`.
    pub(super) fn publish_will(
        &mut self,
        now: Instant,
        msg: Message,
        rights: &Rights,
        owner: &Str,
    ) {
        if !may_publish(rights, &msg) {
            return;
        }
        self.stats.wills_published += 1;
        if msg.retain {
            self.retain(now, &msg, Some(owner));
        }
        self.route(now, msg, None);
    }
}
