//! The broker scenarios of `tests/broker.rs` again, with the adapter
//! decoding and encoding in each connection's own task as the tokio broker
//! does (`Broker::handle_packets`, `Broker::poll_packets`): both paths must
//! behave the same.

/// The adapter decodes and encodes packets itself.
const PACKET_PATH: bool = true;

/// The adapter takes `Frame`s (`Broker::poll_frames`) instead of packets.
const FRAMES: bool = false;

mod common;

include!("scenarios/broker.rs");
