//! The token that acknowledges one received message under manual
//! acknowledgement.

use mqtt_session::mqtt_codec::PacketId;

/// What acknowledges one received QoS 1/2 message under manual
/// acknowledgement ([`OptionSetters::manual_acks`](crate::OptionSetters::manual_acks)):
/// the packet identifier it came with and the connection it came on, so an
/// acknowledgement meant for a message of an earlier connection (which the
/// broker sends again, maybe under the same identifier) is refused with
/// [`ClientError::StaleAck`](crate::ClientError::StaleAck) rather than acknowledge another message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    connection: u64,
    packet_id: PacketId,
}

impl AckToken {
    /// The token of the message with `packet_id` on connection number
    /// `connection`.
    pub(crate) fn new(connection: u64, packet_id: PacketId) -> AckToken {
        AckToken {
            connection,
            packet_id,
        }
    }

    pub(crate) fn connection(&self) -> u64 {
        self.connection
    }

    /// The packet identifier the message came with.
    pub fn packet_id(&self) -> PacketId {
        self.packet_id
    }

    /// A token of connection 0, which no driver ever has.
    #[cfg(test)]
    pub(crate) fn for_tests(packet_id: PacketId) -> AckToken {
        AckToken {
            connection: 0,
            packet_id,
        }
    }
}
