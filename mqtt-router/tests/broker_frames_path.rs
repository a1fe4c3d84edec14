//! The broker scenarios of `tests/broker.rs` again, with the adapter
//! decoding in each connection's own task and encoding the broker's
//! `Frame`s there, as the tokio broker does (`Broker::handle_packets`,
//! `Broker::poll_frames`): all paths must behave the same.

/// The adapter decodes and encodes packets itself.
const PACKET_PATH: bool = true;

/// The adapter takes `Frame`s (`Broker::poll_frames`) instead of packets.
const FRAMES: bool = true;

mod common;

include!("scenarios/broker.rs");
