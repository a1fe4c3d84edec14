//! Wills: published when their connection ends without DISCONNECT, after
//! their delay, or when their session ends first (section 3.1.3.2.2).

use alloc::boxed::Box;
use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::Str;
use mqtt_session::Message;

use super::{Broker, ClientInfo, PeerInfo, Policy, SessionKey, Timer};
use crate::Instant;

impl<P: Policy> Broker<P> {
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
            let (client_id, username, peer) = (
                entry.client_id.clone(),
                entry.username.clone(),
                entry.peer.clone(),
            );
            self.publish_will(now, msg, &client_id, username.as_ref(), &peer);
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

    pub(super) fn publish_will(
        &mut self,
        now: Instant,
        msg: Message,
        client_id: &Str,
        username: Option<&Str>,
        peer: &PeerInfo,
    ) {
        let info = ClientInfo {
            client_id: client_id.as_str(),
            username: username.map(Str::as_str),
            peer,
        };
        if !self.may_publish(&info, &msg) {
            return;
        }
        self.stats.wills_published += 1;
        if msg.retain {
            self.retain(now, &msg, Some(client_id));
        }
        self.route(now, msg, None);
    }
}
