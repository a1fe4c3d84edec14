//! The unit test's way of driving a simulation: each command settles it
//! (runs until idle; a command that waits for an answer also lets time pass
//! while the answer is on its way over a delayed link) and returns what
//! came of it, read from the recorded events and transcripts.

use mqtt_session::mqtt_codec::{Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};
use mqtt_session::{ClientConfig, ClientEvent, Close, Message};

use super::{PeerId, Sim};
use crate::build::{filter, sub_id};
use crate::observe::Observer;

/// One application message a client received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload, as text.
    pub payload: String,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// The RETAIN flag it was delivered with.
    pub retain: bool,
    /// The subscription identifiers it came with (5.0).
    pub sub_ids: Vec<u32>,
    /// The message itself.
    pub msg: Message,
}

impl<O: Observer> Sim<O> {
    /// Settles, letting time pass while something is on its way (delayed
    /// links), until client `i` reports an event `wanted` picks; returns its
    /// place in the peer's events, `None` if nothing is left to happen.
    fn settle_until(&mut self, i: PeerId, wanted: impl Fn(&ClientEvent) -> bool) -> Option<usize> {
        for _ in 0..100_000 {
            self.run_until_idle();
            if let Some(at) = self.peers[i].events.iter().position(&wanted) {
                return Some(at);
            }
            let next = self.next_due()?;
            self.run_until(next);
        }
        None
    }

    /// Opens a transport to the first broker for a client with `config` and
    /// settles: the CONNECT exchange happens (see [`Sim::connack`]).
    pub fn connect(&mut self, config: ClientConfig) -> PeerId {
        let i = self.open_client(0, config, None);
        self.run_until_idle();
        i
    }

    /// Connects and asserts the CONNACK accepted; returns the peer and
    /// Session Present. Time passes while the CONNACK is on its way (a delayed link, a
    /// durable store's commit latency).
    pub fn connect_ok(&mut self, config: ClientConfig) -> (PeerId, bool) {
        let i = self.open_client(0, config, None);
        self.settle_until(i, |e| {
            matches!(e, ClientEvent::Connected { .. } | ClientEvent::Closed(_))
        });
        match self.connack(i) {
            Ok(present) => (i, present),
            Err(r) => panic!("CONNECT refused with {r:?}"),
        }
    }

    /// Opens a transport to the first broker for a raw peer that will speak
    /// `v` (its bytes come from [`Sim::send_raw`]).
    pub fn raw(&mut self, v: ProtocolVersion) -> PeerId {
        let link = self.default_link.clone();
        self.open(0, None, v, link)
    }

    /// Hands `bytes` to the broker from peer `i` and settles.
    pub fn send_raw(&mut self, i: PeerId, bytes: &[u8]) {
        let now = self.now;
        let p = &mut self.peers[i];
        p.c2s.write(
            now,
            bytes::Bytes::copy_from_slice(bytes),
            &p.link,
            &mut self.rng,
        );
        self.run_until_idle();
    }

    /// Session Present of peer `i`'s CONNACK, or the refusal reason (panics
    /// if neither arrived).
    pub fn connack(&mut self, i: PeerId) -> Result<bool, ReasonCode> {
        for ev in &self.peers[i].events {
            match ev {
                ClientEvent::Connected {
                    session_present, ..
                } => return Ok(*session_present),
                ClientEvent::Closed(c) => return Err(c.reason),
                _ => {}
            }
        }
        panic!("no CONNACK yet for peer {i}")
    }

    /// The client of peer `i` disconnects with `reason` (DISCONNECT, then
    /// its transport closes), and the simulation settles.
    pub fn disconnect(&mut self, i: PeerId, reason: ReasonCode) {
        let now = self.now;
        self.client(i).disconnect(now, reason);
        self.run_until_idle();
    }

    /// Subscribes client `i` to `filters` and returns the SUBACK's results.
    pub fn subscribe_with(
        &mut self,
        i: PeerId,
        filters: &[(&str, SubscriptionOptions)],
        id: Option<u32>,
    ) -> Vec<ReasonCode> {
        let now = self.now;
        let list = filters.iter().map(|(f, o)| (filter(f), *o)).collect();
        let pid = self
            .client(i)
            .subscribe(now, list, id.map(sub_id))
            .expect("client may subscribe");
        let at = self
            .settle_until(
                i,
                |e| matches!(e, ClientEvent::Subscribed { id, .. } if *id == pid),
            )
            .expect("SUBACK arrived");
        let evs = &mut self.peers[i].events;
        match evs.remove(at) {
            ClientEvent::Subscribed { results, .. } => results,
            other => unreachable!("found by position: {other:?}"),
        }
    }

    /// Subscribes client `i` to one filter at `qos`; returns the SUBACK result.
    pub fn subscribe(&mut self, i: PeerId, f: &str, qos: QoS) -> ReasonCode {
        self.subscribe_with(i, &[(f, SubscriptionOptions::new(qos))], None)[0]
    }

    /// Unsubscribes client `i` from `f`; returns the UNSUBACK's results.
    pub fn unsubscribe(&mut self, i: PeerId, f: &str) -> Vec<ReasonCode> {
        let now = self.now;
        let pid = self
            .client(i)
            .unsubscribe(now, vec![filter(f)])
            .expect("client may unsubscribe");
        let at = self
            .settle_until(
                i,
                |e| matches!(e, ClientEvent::Unsubscribed { id, .. } if *id == pid),
            )
            .expect("UNSUBACK arrived");
        let evs = &mut self.peers[i].events;
        match evs.remove(at) {
            ClientEvent::Unsubscribed { results, .. } => results,
            other => unreachable!("found by position: {other:?}"),
        }
    }

    /// Client `i` publishes `m` and the simulation settles. For QoS 1/2,
    /// returns the reason of the PUBACK / PUBREC that completed the flow.
    pub fn publish(&mut self, i: PeerId, m: Message) -> Option<ReasonCode> {
        let now = self.now;
        let pid = self.client(i).publish(now, m).expect("client may publish");
        let Some(pid) = pid else {
            self.run_until_idle();
            return None;
        };
        let at = self
            .settle_until(
                i,
                |e| matches!(e, ClientEvent::Published { id, .. } if *id == pid),
            )
            .expect("the publish flow completed");
        let evs = &mut self.peers[i].events;
        match evs.remove(at) {
            ClientEvent::Published { reason, .. } => Some(reason),
            other => unreachable!("found by position: {other:?}"),
        }
    }

    /// Takes the application messages client `i` received so far.
    pub fn messages(&mut self, i: PeerId) -> Vec<Received> {
        let evs = core::mem::take(&mut self.peers[i].events);
        let mut out = Vec::new();
        for ev in evs {
            match ev {
                ClientEvent::Message {
                    msg,
                    subscription_identifiers,
                    ..
                } => out.push(Received {
                    topic: msg.topic.as_str().to_owned(),
                    payload: String::from_utf8_lossy(&msg.payload).into_owned(),
                    qos: msg.qos,
                    retain: msg.retain,
                    sub_ids: subscription_identifiers.iter().map(|i| i.get()).collect(),
                    msg,
                }),
                other => self.peers[i].events.push(other),
            }
        }
        out
    }

    /// The payloads client `i` received so far (taking them).
    pub fn payloads(&mut self, i: PeerId) -> Vec<String> {
        self.messages(i).into_iter().map(|m| m.payload).collect()
    }

    /// How client `i`'s connection ended, if it did.
    pub fn client_closed(&self, i: PeerId) -> Option<&Close> {
        self.peers[i].events.iter().find_map(|e| match e {
            ClientEvent::Closed(c) => Some(c),
            _ => None,
        })
    }

    /// The reason of the DISCONNECT the broker sent to peer `i`, if any.
    pub fn disconnect_reason(&self, i: PeerId) -> Option<ReasonCode> {
        self.peers[i].received.iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        })
    }

    /// Whether the broker ended peer `i`'s connection.
    pub fn broker_closed(&self, i: PeerId) -> bool {
        self.peers[i].broker_close.is_some()
    }
}
