//! The broker core end to end, without sockets: real mqtt-session clients
//! (`Connection<Client>`) talk to one `Broker` through in-memory pipes on a
//! virtual clock (mqtt-sim, see `common`). Each test names the behaviour it shows
//! and cites the specification statements it checks; "v5" is MQTT 5.0,
//! "v311" is MQTT 3.1.1.

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

mod common;

include!("scenarios/broker.rs");
