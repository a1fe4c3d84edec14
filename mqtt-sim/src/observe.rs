//! What the simulator tells an observer (the oracle) as a run goes on.

use mqtt_router::broker::Broker;
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::Packet;
use mqtt_session::{Client, ClientEvent, Close, Connection};

use crate::PeerId;

/// Hooks the simulator calls at each step, in the order things happen. Every
/// method does nothing by default.
///
/// The packet hook sees each packet a broker handled, in exactly the order
/// it handled them, right after it did and before anything it produced
/// (writes, closes) is taken; a packet on which the broker closed the
/// connection for a broken rule was not acted on and is not shown. The close
/// hook sees each connection the broker ends, as it ends it. An observer
/// that keeps a model of the broker updates it there, so its notion of
/// "when" is the broker's own.
pub trait Observer {
    /// Whether [`Observer::to_broker`] is wanted: on the bytes path the
    /// simulator then decodes the stream a second time to report packets.
    fn wants_packets(&self) -> bool {
        false
    }

    /// Broker `broker` handled `packet` from `peer` (see above).
    /// `core` is the broker as it is right after handling it.
    fn to_broker(
        &mut self,
        now: Instant,
        broker: usize,
        peer: PeerId,
        packet: &Packet,
        core: &Broker,
    ) {
        let _ = (now, broker, peer, packet, core);
    }

    /// Broker `broker` is about to act on its deadlines at `now`; `core` is
    /// the broker as it is before (`None` while it is down).
    fn broker_timeout(&mut self, now: Instant, broker: usize, core: Option<&Broker>) {
        let _ = (now, broker, core);
    }

    /// Broker `broker` ended the connection of `peer` with `close`.
    fn broker_closed(&mut self, now: Instant, broker: usize, peer: PeerId, close: &Close) {
        let _ = (now, broker, peer, close);
    }

    /// Broker `broker` was handed something and everything it produced was
    /// taken; look at it (its statistics, its sessions).
    fn after_broker(&mut self, now: Instant, broker: usize, core: &Broker) {
        let _ = (now, broker, core);
    }

    /// Nothing is left to do at `now`: broker `broker` has acted on every
    /// deadline and every input due, and the clock is about to move.
    fn at_rest(&mut self, now: Instant, broker: usize, core: &Broker) {
        let _ = (now, broker, core);
    }

    /// Broker `broker` crashed: everything it held in memory is gone.
    fn broker_crashed(&mut self, now: Instant, broker: usize) {
        let _ = (now, broker);
    }

    /// Broker `broker` runs again after a crash, with what its restart hook
    /// restored (see [`crate::Restart`]).
    fn broker_restarted(&mut self, now: Instant, broker: usize, durability: crate::Durability) {
        let _ = (now, broker, durability);
    }

    /// The client of `peer` reported `event`.
    fn client_event(&mut self, now: Instant, peer: PeerId, event: &ClientEvent) {
        let _ = (now, peer, event);
    }

    /// The client of `peer` was handed something and its output was taken.
    fn after_client(&mut self, now: Instant, peer: PeerId, client: &Connection<Client>) {
        let _ = (now, peer, client);
    }
}

/// The observer that looks at nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}
