//! Manual acknowledgement: the token of a received message and what
//! [`Client::next_delivery`](crate::Client::next_delivery) hands out.

use mqtt_session::mqtt_codec::PacketId;
use mqtt_session::Message;

/// What acknowledges one received QoS 1/2 message under manual
/// acknowledgement (`ClientConfig::manual_acks`), for
/// [`Client::ack`](crate::Client::ack): the packet identifier it came with
/// and a fingerprint of the message, so that the token of a message
/// received by an earlier client (whose identifier the server may have
/// given to another message since) is refused with
/// [`Error::StaleAck`](crate::Error::StaleAck) rather than acknowledge the
/// wrong message. The same message sent again after a reconnection has the
/// same token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    packet_id: PacketId,
    fingerprint: u64,
}

impl AckToken {
    pub(crate) fn new(packet_id: PacketId, message: &Message) -> AckToken {
        AckToken {
            packet_id,
            fingerprint: fingerprint(message),
        }
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The packet identifier the message came with.
    pub fn packet_id(&self) -> PacketId {
        self.packet_id
    }
}

/// A received message, with its acknowledgement token under manual
/// acknowledgement.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Under manual acknowledgement, for a QoS 1/2 message: what
    /// [`Client::ack`](crate::Client::ack) takes once the application is
    /// done with the message. `None` otherwise: it is already acknowledged.
    pub ack: Option<AckToken>,
}

/// FNV-1a over the topic, QoS and payload: what a redelivery shares with
/// the first delivery (the DUP flag aside).
fn fingerprint(m: &Message) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let topic = m.topic.as_str().as_bytes();
    let parts: [&[u8]; 4] = [
        &(topic.len() as u64).to_be_bytes(),
        topic,
        &[m.qos as u8],
        &m.payload,
    ];
    for part in parts {
        for &b in part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
