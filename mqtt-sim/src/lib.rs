//! A deterministic simulator of MQTT brokers and clients: no sockets, no
//! clocks, no threads, one seed.
//!
//! The core crates do no IO, which is what makes this possible: [`Sim`]
//! runs one or more `mqtt_router::broker::Broker` cores and any number of
//! `mqtt_session::Connection<Client>`s over simulated links ([`net`]) on a
//! virtual clock, playing every adapter itself. Faults are the network's
//! (latency, chunking at arbitrary byte boundaries, stalls, cuts, refused
//! connections), the clock's (jumps forward) and the processes' (a client
//! or a broker that crashes).
//!
//! On top of it:
//!
//! - [`workload`] generates scenarios (clients connecting with clean or
//!   persistent sessions, subscribing, publishing, disconnecting with or
//!   without wills, faults, time passing) as proptest strategies;
//! - [`oracle`] watches every run through the [`Observer`] hooks, keeps a
//!   reference model of the broker, and checks what the clients saw against
//!   it (delivery guarantees, order, subscription options, retained
//!   messages, wills, session expiry, shared groups, bounded queues);
//! - [`run`] runs a seed end to end, replays one (`MQTT_SIM_SEED`), and
//!   shrinks a failing scenario to a small one to keep as a regression test.
//!
//! With the `arbitrary` feature, `fuzz` decodes a scenario from a fuzz
//! target's bytes and runs it under the oracle.
//!
//! The `sim` binary runs seeds for as long as it is given and reports what
//! the oracle checked and how fast.
//!
//! Unit tests of the broker and the session use [`Sim`] directly, with its
//! instant links and in-order scheduling, through the commands that settle
//! the simulation and return what came of them ([`Sim::subscribe`],
//! [`Sim::publish`], [`Sim::messages`], ...), and [`Pair`] for one client
//! against one server connection.
#![forbid(unsafe_code)]

pub mod build;
#[cfg(feature = "arbitrary")]
pub mod fuzz;
pub mod net;
mod observe;
pub mod oracle;
pub mod pair;
mod rng;
pub mod run;
mod sim;
pub mod workload;

pub use net::LinkConfig;
pub use observe::{Observer, Quiet};
pub use pair::{Encoding, Pair, ServerPolicy, Side};
pub use rng::Rng;
pub use sim::{
    wall_at, AdapterPath, Authority, Durability, Durable, Peer, PeerId, Received, Restart,
    Scheduling, Sim, SimStats, Volatile, WALL0,
};
