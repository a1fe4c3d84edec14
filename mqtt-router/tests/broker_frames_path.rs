//! The broker scenarios of `tests/broker.rs` again, with the adapter
//! decoding in each connection's own task and encoding the broker's
//! `Frame`s there, as the tokio broker does (`Broker::handle_packets`,
//! `Broker::poll_frames`): all paths must behave the same.

/// The adapter decodes packets and encodes frames itself.
const PACKET_PATH: bool = true;

mod common;

include!("scenarios/broker.rs");
