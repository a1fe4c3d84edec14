//! Decoding and encoding errors, each mapped to the MQTT 5.0 reason code it calls for.

use crate::reason::ReasonCode;
use crate::string::StrError;
use crate::topic::TopicError;
use crate::types::{PacketType, ProtocolVersion};

/// Why received bytes are not an acceptable MQTT packet.
///
/// Every variant is a fault of the peer that sent the bytes. [`DecodeError::reason_code`]
/// gives the reason code a 5.0 receiver reports it with (in DISCONNECT, or in
/// CONNACK while connecting); the text cites the normative statement broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A Variable Byte Integer (such as the remaining length) runs past four bytes
    /// or does not use the fewest bytes possible [MQTT-1.5.5-1].
    #[error("malformed variable byte integer: more than four bytes or not minimally encoded [MQTT-1.5.5-1]")]
    MalformedVariableByteInteger,
    /// The fixed header announces a packet bigger than the receiver's maximum packet size.
    #[error("the packet is {len} bytes, over the maximum packet size of {max}")]
    PacketTooLarge {
        /// The announced size of the whole packet in bytes.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// Packet type 0 is reserved and never valid.
    #[error("packet type 0 is reserved")]
    ReservedPacketType,
    /// A packet type that the negotiated version does not have (AUTH before 5.0).
    #[error("{packet} packets do not exist in {version}")]
    PacketNotInVersion {
        /// The packet type received.
        packet: PacketType,
        /// The connection's version.
        version: ProtocolVersion,
    },
    /// The reserved flag bits of the fixed header are not the required value [MQTT-2.1.3-1].
    #[error("reserved flags 0x{flags:X} in the {packet} fixed header [MQTT-2.1.3-1]")]
    InvalidFixedHeaderFlags {
        /// The packet type.
        packet: PacketType,
        /// The low nibble received.
        flags: u8,
    },
    /// The first packet on a connection must be CONNECT [MQTT-3.1.0-1].
    #[error("the first packet from a client must be CONNECT, got {0} [MQTT-3.1.0-1]")]
    ExpectedConnect(PacketType),
    /// A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP)
    /// arrived from a client: well-formed or not, it flows the wrong way
    /// (section 2.1.2), a Protocol Error (section 4.13).
    #[error("{0} is sent only by a server, not by a client (section 2.1.2)")]
    ServerOnlyPacket(PacketType),
    /// A UTF-8 string field breaks the string rules.
    #[error("invalid string: {0}")]
    InvalidString(StrError),
    /// QoS 3 is not a QoS level [MQTT-3.3.1-4].
    #[error("QoS 3 is reserved [MQTT-3.3.1-4]")]
    InvalidQoS,
    /// A QoS 0 PUBLISH must have DUP clear [MQTT-3.3.1-2].
    #[error("a QoS 0 PUBLISH must not have the DUP flag set [MQTT-3.3.1-2]")]
    DupWithQoS0,
    /// Packet identifier 0 where one is required [MQTT-2.2.1-3].
    #[error("packet identifier 0 is not allowed [MQTT-2.2.1-3]")]
    ZeroPacketId,
    /// The PUBLISH topic or will topic is not a valid topic name.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A 5.0 PUBLISH with an empty topic name and no topic alias [MQTT-3.3.2-1].
    #[error("PUBLISH has an empty topic and no topic alias [MQTT-3.3.2-1]")]
    MissingTopic,
    /// A SUBSCRIBE or UNSUBSCRIBE filter is not a valid topic filter.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// SUBSCRIBE and UNSUBSCRIBE carry at least one filter [MQTT-3.8.3-3], [MQTT-3.10.3-2].
    #[error("{0} must carry at least one topic filter [MQTT-3.8.3-3]")]
    NoTopicFilters(PacketType),
    /// Reserved bits of a subscription options byte are set [MQTT-3.8.3-5].
    #[error("reserved bits set in subscription options 0x{0:02X} [MQTT-3.8.3-5]")]
    InvalidSubscriptionOptions(u8),
    /// Maximum QoS 3 in subscription options: malformed in 3.1.1 [MQTT-3-8.3-4],
    /// a protocol error in 5.0 (section 3.8.3.1).
    #[error("maximum QoS 3 in subscription options under {0}")]
    InvalidSubscriptionQoS(ProtocolVersion),
    /// Retain Handling 3 is reserved (section 3.8.3.1).
    #[error("retain handling 3 is reserved")]
    InvalidRetainHandling,
    /// No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
    #[error("No Local must not be set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription,
    /// A property identifier the specification does not define.
    #[error("unknown property identifier 0x{0:02X}")]
    UnknownProperty(u8),
    /// A property that may appear once appears twice (section 2.2.2.2).
    #[error("property 0x{0:02X} appears more than once")]
    DuplicateProperty(u8),
    /// A property that this packet type may not carry (section 2.2.2.2).
    #[error("property 0x{property:02X} is not allowed in {packet}")]
    PropertyNotAllowed {
        /// The property identifier.
        property: u8,
        /// The packet type.
        packet: PacketType,
    },
    /// A property value outside its allowed range, such as a Receive Maximum of 0.
    #[error("property 0x{0:02X} has a value the specification forbids")]
    InvalidPropertyValue(u8),
    /// Payload Format Indicator says UTF-8 but the payload is not (section 3.3.2.3.2).
    #[error("the payload format indicator says UTF-8, but the payload is not valid UTF-8")]
    PayloadFormatInvalid,
    /// The CONNECT protocol level is not 3, 4 or 5 [MQTT-3.1.2-2].
    #[error("unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolVersion(u8),
    /// The CONNECT protocol name is not `MQTT` (or `MQIsdp` for 3.1) [MQTT-3.1.2-1].
    #[error("the protocol name does not match the protocol level [MQTT-3.1.2-1]")]
    InvalidProtocolName,
    /// The reserved bit of the CONNECT flags is set [MQTT-3.1.2-3].
    #[error("the reserved CONNECT flag is set [MQTT-3.1.2-3]")]
    ReservedConnectFlag,
    /// Will QoS or Will Retain set without the Will Flag, or Will QoS 3 [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15].
    #[error("will QoS/retain flags are inconsistent with the will flag [MQTT-3.1.2-13]")]
    InvalidWillFlags,
    /// 3.1 and 3.1.1 forbid a password without a user name [MQTT-3.1.2-22].
    #[error("password flag set without the user name flag [MQTT-3.1.2-22]")]
    PasswordWithoutUserName,
    /// Reserved bits of the CONNACK acknowledge flags are set [MQTT-3.2.2-1].
    #[error("reserved CONNACK acknowledge flags are set")]
    InvalidConnAckFlags,
    /// Session Present set in a CONNACK that refuses the connection [MQTT-3.2.2-4].
    #[error("session present must be 0 when the connection is refused [MQTT-3.2.2-4]")]
    SessionPresentOnRefusal,
    /// A reason or return code that this packet type may not carry.
    #[error("reason code 0x{code:02X} is not valid in {packet}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
    /// The packet ends in the middle of a field.
    #[error("the packet ends in the middle of a field")]
    Truncated,
    /// Bytes are left over after the last field of the packet.
    #[error("unexpected bytes after the end of the packet")]
    TrailingBytes,
}

impl DecodeError {
    /// The MQTT 5.0 reason code that reports this error to the peer.
    pub const fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            UnsupportedProtocolVersion(_) => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            PayloadFormatInvalid => ReasonCode::PAYLOAD_FORMAT_INVALID,
            InvalidTopicName(e) => e.name_reason(),
            InvalidTopicFilter(e) => e.filter_reason(),
            InvalidSubscriptionQoS(ProtocolVersion::V5) => ReasonCode::PROTOCOL_ERROR,
            InvalidSubscriptionQoS(_) => ReasonCode::MALFORMED_PACKET,
            ExpectedConnect(_)
            | ServerOnlyPacket(_)
            | PacketNotInVersion { .. }
            | MissingTopic
            | NoTopicFilters(_)
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription
            | DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | InvalidProtocolName
            | SessionPresentOnRefusal => ReasonCode::PROTOCOL_ERROR,
            MalformedVariableByteInteger
            | ReservedPacketType
            | InvalidFixedHeaderFlags { .. }
            | InvalidString(_)
            | InvalidQoS
            | DupWithQoS0
            | ZeroPacketId
            | InvalidSubscriptionOptions(_)
            | UnknownProperty(_)
            | PropertyNotAllowed { .. }
            | ReservedConnectFlag
            | InvalidWillFlags
            | PasswordWithoutUserName
            | InvalidConnAckFlags
            | InvalidReasonCode { .. }
            | Truncated
            | TrailingBytes => ReasonCode::MALFORMED_PACKET,
        }
    }
}

impl From<DecodeError> for ReasonCode {
    fn from(e: DecodeError) -> ReasonCode {
        e.reason_code()
    }
}

/// Why a packet cannot be encoded. Nothing is written when encoding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet would exceed the peer's maximum packet size, or the protocol's
    /// own limit of 268,435,460 bytes.
    #[error("the packet would be {len} bytes, over the maximum packet size of {max}")]
    PacketTooLarge {
        /// Size of the whole encoded packet in bytes.
        len: usize,
        /// The limit it exceeds.
        max: u32,
    },
    /// A binary field (password, correlation data, will payload, authentication
    /// data) is longer than its two-byte length prefix can say.
    #[error("a binary field of {len} bytes exceeds the 65535-byte limit")]
    BinaryTooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The packet, or a field value in it, does not exist in this protocol version.
    #[error("{what} cannot be sent in {version}")]
    NotInVersion {
        /// What cannot be expressed.
        what: &'static str,
        /// The connection's version.
        version: ProtocolVersion,
    },
    /// The reason code is not one this packet type may carry (section 2.4).
    #[error("reason code 0x{code:02X} is not valid in {packet}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code.
        code: u8,
    },
    /// A PUBLISH needs a topic name, or under 5.0 at least a topic alias.
    #[error("PUBLISH has neither a topic name nor a topic alias")]
    MissingTopic,
    /// SUBSCRIBE and UNSUBSCRIBE must carry at least one topic filter.
    #[error("{0} must carry at least one topic filter")]
    NoTopicFilters(PacketType),
    /// A fixed-size output buffer has less room than the packet needs.
    #[error("the output buffer has room for {available} bytes, the packet needs {needed}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has room for.
        available: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_follow_the_specification_categories() {
        assert_eq!(
            DecodeError::PacketTooLarge { len: 9, max: 1 }.reason_code(),
            ReasonCode::PACKET_TOO_LARGE
        );
        assert_eq!(
            DecodeError::DuplicateProperty(0x11).reason_code(),
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            DecodeError::TrailingBytes.reason_code(),
            ReasonCode::MALFORMED_PACKET
        );
        assert_eq!(
            ReasonCode::from(DecodeError::PayloadFormatInvalid),
            ReasonCode::PAYLOAD_FORMAT_INVALID
        );
        assert_eq!(
            DecodeError::InvalidTopicName(TopicError::WildcardInName).reason_code(),
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(
            DecodeError::UnsupportedProtocolVersion(6).reason_code(),
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        );
    }
}
