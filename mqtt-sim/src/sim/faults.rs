//! Faults: cut connections, stalls, hung clients, crashed clients and
//! crashed brokers, and the hook that brings a broker back.

use core::time::Duration;

use mqtt_router::broker::{Broker, BrokerConfig};
use mqtt_router::Instant;

use super::{PeerId, Sim};
use crate::observe::Observer;

/// What survives a broker crash, as the oracle may expect it.
///
/// A crash loses everything the core holds in memory. A durable store will
/// keep some of it; its restart hook then says here what it restored, and an
/// oracle checks exactly that much across the crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durability {
    /// Sessions, their subscriptions and their queued messages.
    pub sessions: bool,
    /// Retained messages.
    pub retained: bool,
}

impl Durability {
    /// Nothing survives: the broker starts empty.
    pub const NOTHING: Durability = Durability {
        sessions: false,
        retained: false,
    };
}

/// Brings a broker back after a crash.
///
/// The crashed core is dropped, not handed here: like a real process, it
/// leaves behind only what it wrote to durable storage as it went. A store
/// is therefore shared between the running core and its `Restart` (the core
/// writes to it, the hook reads it back when it builds the next core).
pub trait Restart {
    /// The broker that runs from `now` on, its `incarnation`-th restart.
    fn restart(&mut self, config: &BrokerConfig, now: Instant, incarnation: u32) -> Broker;

    /// What the brokers this hook builds keep across a crash.
    fn durability(&self) -> Durability;
}

/// A broker without a store: after a crash it starts empty (with a new seed
/// drawn from the old one and the incarnation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Volatile;

impl Restart for Volatile {
    fn restart(&mut self, config: &BrokerConfig, _: Instant, incarnation: u32) -> Broker {
        let mut config = config.clone();
        config.seed = crate::Rng::new(config.seed ^ u64::from(incarnation)).next_u64();
        Broker::new(config)
    }

    fn durability(&self) -> Durability {
        Durability::NOTHING
    }
}

impl<O: Observer> Sim<O> {
    /// Cuts peer `i`'s transport: bytes in flight are lost, and each end
    /// notices within the link's `eof_delay_ms` (a half-open connection
    /// until then). Neither side sends DISCONNECT.
    pub fn cut(&mut self, i: PeerId) {
        let now = self.now;
        let p = &mut self.peers[i];
        let delay = p.link.eof_delay_ms;
        let to_broker = now.saturating_add(crate::net::ms(self.rng.below(delay + 1)));
        let to_client = now.saturating_add(crate::net::ms(self.rng.below(delay + 1)));
        p.c2s.cut(to_broker);
        p.s2c.cut(to_client);
        p.open = false;
        if !self.active.contains(&i) {
            self.active.push(i);
        }
    }

    /// Breaks peer `i`'s transport at once, without any DISCONNECT: both
    /// ends see the end of the stream now, and the simulation settles.
    pub fn drop_transport(&mut self, i: PeerId) {
        let now = self.now;
        let p = &mut self.peers[i];
        p.c2s.cut(now);
        p.s2c.cut(now);
        p.open = false;
        self.run_until_idle();
    }

    /// Nothing on peer `i`'s link arrives, either way, before `now + d`
    /// (bytes wait, in order).
    pub fn stall(&mut self, i: PeerId, d: Duration) {
        let until = self.now.saturating_add(d);
        let p = &mut self.peers[i];
        p.c2s.stall(until);
        p.s2c.stall(until);
    }

    /// Peer `i`'s client hangs: it stops reading, writing and keeping time,
    /// with its transport still open (a hung process, a dead path).
    pub fn freeze(&mut self, i: PeerId) {
        self.peers[i].frozen = true;
    }

    /// Peer `i`'s client hangs for `d`, then wakes up by itself.
    pub fn freeze_for(&mut self, i: PeerId, d: Duration) {
        let p = &mut self.peers[i];
        p.frozen = true;
        p.thaw_at = Some(self.now.saturating_add(d));
        if !self.active.contains(&i) {
            self.active.push(i);
        }
    }

    /// Broker `b` refuses new connections (connection refused, before any
    /// MQTT) until `now + d`.
    pub fn refuse(&mut self, b: usize, d: Duration) {
        self.brokers[b].refuse_until = self.now.saturating_add(d);
    }

    /// Peer `i`'s client wakes up and handles what piled up meanwhile.
    pub fn thaw(&mut self, i: PeerId) {
        self.peers[i].frozen = false;
        self.peers[i].thaw_at = None;
        self.run_until_idle();
    }

    /// Peer `i`'s client process dies: its state is gone (take its session
    /// first if it should survive, which a crash does not allow), no
    /// DISCONNECT is sent, and the broker notices the transport end within
    /// the link's `eof_delay_ms`.
    pub fn crash_client(&mut self, i: PeerId) {
        let now = self.now;
        let p = &mut self.peers[i];
        let delay = p.link.eof_delay_ms;
        p.conn = None;
        p.frozen = false;
        p.open = false;
        p.c2s
            .cut(now.saturating_add(crate::net::ms(self.rng.below(delay + 1))));
        p.s2c.cut(now);
        p.s2c.take_eof();
    }

    /// Broker `b` crashes: its core and everything in it are gone, every
    /// connection to it ends for its client within the link's
    /// `eof_delay_ms`, and new connections are refused until it restarts
    /// after `downtime` (`None`: until [`Sim::restart_broker`]).
    pub fn crash_broker(&mut self, b: usize, downtime: Option<Duration>) {
        let now = self.now;
        let node = &mut self.brokers[b];
        if node.core.take().is_none() {
            return;
        }
        node.restart_at = downtime.map(|d| now.saturating_add(d));
        node.blocked.clear();
        node.events.clear();
        self.stats.broker_crashes += 1;
        let peers: Vec<PeerId> = core::mem::take(&mut node.peers).into_values().collect();
        self.lose_uncommitted(b);
        for i in peers {
            let p = &mut self.peers[i];
            let delay = p.link.eof_delay_ms;
            p.broker_gone = true;
            p.open = false;
            p.c2s.cut(now);
            p.c2s.take_eof();
            p.s2c
                .cut(now.saturating_add(crate::net::ms(self.rng.below(delay + 1))));
            if !self.active.contains(&i) {
                self.active.push(i);
            }
        }
        self.observer.broker_crashed(now, b);
    }

    /// The first broker crashes, stays down for `down` (time passes for
    /// everything else), and comes back, built by its restart hook.
    pub fn crash_and_restart(&mut self, down: Duration) {
        self.crash_broker(0, Some(down));
        self.advance(down);
    }

    /// Broker `b` comes back after a crash, built by its restart hook.
    pub fn restart_broker(&mut self, b: usize) {
        let now = self.now;
        let node = &mut self.brokers[b];
        node.restart_at = None;
        if node.core.is_some() {
            return;
        }
        let restart = node
            .restart
            .as_mut()
            .expect("a broker that crashes has a restart hook (Sim::set_restart)");
        node.incarnation += 1;
        let core = restart.restart(&node.config, now, node.incarnation);
        let durability = restart.durability();
        node.core = Some(core);
        self.observer.broker_restarted(now, b, durability);
    }
}
