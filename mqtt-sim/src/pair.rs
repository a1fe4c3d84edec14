//! One client against one server connection (placeholder).

/// Which side wrote a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// A pair (placeholder).
#[derive(Debug, Default)]
pub struct Pair;
