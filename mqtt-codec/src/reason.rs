//! Reason codes: one number space shared by every MQTT 5.0 packet (section 2.4).

use core::fmt;

use crate::types::PacketType;

/// An MQTT reason code (section 2.4 of MQTT 5.0).
///
/// Version 5.0 shares one numeric space across CONNACK, PUBACK, PUBREC, PUBREL,
/// PUBCOMP, SUBACK, UNSUBACK, DISCONNECT and AUTH, so this is one newtype with a
/// constant per code rather than an enum per packet. Codes below `0x80` report
/// success, `0x80` and above report failure. Under 3.1 and 3.1.1 the decoder maps
/// the older return codes onto these, so code above the codec sees only
/// `ReasonCode` whatever the version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u8);

/// Bit for each packet type in the "which packets may carry this code" table.
const fn bit(p: PacketType) -> u16 {
    1 << (p as u16)
}
const CONNACK: u16 = bit(PacketType::ConnAck);
const PUBACK: u16 = bit(PacketType::PubAck);
const PUBREC: u16 = bit(PacketType::PubRec);
const PUBREL: u16 = bit(PacketType::PubRel);
const PUBCOMP: u16 = bit(PacketType::PubComp);
const SUBACK: u16 = bit(PacketType::SubAck);
const UNSUBACK: u16 = bit(PacketType::UnsubAck);
const DISCONNECT: u16 = bit(PacketType::Disconnect);
const AUTH: u16 = bit(PacketType::Auth);

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal, $packets:expr; )*) => {
        impl ReasonCode {
            $( $(#[$doc])* pub const $name: ReasonCode = ReasonCode($code); )*
        }
        /// `(code, description, packets that may carry it)`, in code order, one row per code.
        const TABLE: &[(u8, &str, u16)] = &[ $( ($code, $text, $packets), )* ];
    };
}

reason_codes! {
    /// 0x00 Success (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH); also
    /// Normal disconnection (DISCONNECT) and Granted QoS 0 (SUBACK).
    SUCCESS = 0x00, "success", CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK | UNSUBACK | DISCONNECT | AUTH;
    /// 0x01 Granted QoS 1 (SUBACK).
    GRANTED_QOS_1 = 0x01, "granted QoS 1", SUBACK;
    /// 0x02 Granted QoS 2 (SUBACK).
    GRANTED_QOS_2 = 0x02, "granted QoS 2", SUBACK;
    /// 0x04 Disconnect with Will Message (DISCONNECT from a client).
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "disconnect with will message", DISCONNECT;
    /// 0x10 No matching subscribers (PUBACK, PUBREC).
    NO_MATCHING_SUBSCRIBERS = 0x10, "no matching subscribers", PUBACK | PUBREC;
    /// 0x11 No subscription existed (UNSUBACK).
    NO_SUBSCRIPTION_EXISTED = 0x11, "no subscription existed", UNSUBACK;
    /// 0x18 Continue authentication (AUTH).
    CONTINUE_AUTHENTICATION = 0x18, "continue authentication", AUTH;
    /// 0x19 Re-authenticate (AUTH).
    RE_AUTHENTICATE = 0x19, "re-authenticate", AUTH;
    /// 0x80 Unspecified error; also the 3.1.1 SUBACK failure code.
    UNSPECIFIED_ERROR = 0x80, "unspecified error", CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
    /// 0x81 Malformed Packet.
    MALFORMED_PACKET = 0x81, "malformed packet", CONNACK | DISCONNECT;
    /// 0x82 Protocol Error.
    PROTOCOL_ERROR = 0x82, "protocol error", CONNACK | DISCONNECT;
    /// 0x83 Implementation specific error.
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "implementation specific error", CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
    /// 0x84 Unsupported Protocol Version (CONNACK; 3.1.1 return code 1).
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "unsupported protocol version", CONNACK;
    /// 0x85 Client Identifier not valid (CONNACK; 3.1.1 return code 2).
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "client identifier not valid", CONNACK;
    /// 0x86 Bad User Name or Password (CONNACK; 3.1.1 return code 4).
    BAD_USER_NAME_OR_PASSWORD = 0x86, "bad user name or password", CONNACK;
    /// 0x87 Not authorized (3.1.1 CONNACK return code 5).
    NOT_AUTHORIZED = 0x87, "not authorized", CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
    /// 0x88 Server unavailable (CONNACK; 3.1.1 return code 3).
    SERVER_UNAVAILABLE = 0x88, "server unavailable", CONNACK;
    /// 0x89 Server busy (3.1.1 CONNACK return code 3).
    SERVER_BUSY = 0x89, "server busy", CONNACK | DISCONNECT;
    /// 0x8A Banned (CONNACK).
    BANNED = 0x8A, "banned", CONNACK;
    /// 0x8B Server shutting down (DISCONNECT).
    SERVER_SHUTTING_DOWN = 0x8B, "server shutting down", DISCONNECT;
    /// 0x8C Bad authentication method.
    BAD_AUTHENTICATION_METHOD = 0x8C, "bad authentication method", CONNACK | DISCONNECT;
    /// 0x8D Keep Alive timeout (DISCONNECT).
    KEEP_ALIVE_TIMEOUT = 0x8D, "keep alive timeout", DISCONNECT;
    /// 0x8E Session taken over (DISCONNECT).
    SESSION_TAKEN_OVER = 0x8E, "session taken over", DISCONNECT;
    /// 0x8F Topic Filter invalid.
    TOPIC_FILTER_INVALID = 0x8F, "topic filter invalid", SUBACK | UNSUBACK | DISCONNECT;
    /// 0x90 Topic Name invalid.
    TOPIC_NAME_INVALID = 0x90, "topic name invalid", CONNACK | PUBACK | PUBREC | DISCONNECT;
    /// 0x91 Packet Identifier in use.
    PACKET_IDENTIFIER_IN_USE = 0x91, "packet identifier in use", PUBACK | PUBREC | SUBACK | UNSUBACK;
    /// 0x92 Packet Identifier not found (PUBREL, PUBCOMP).
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "packet identifier not found", PUBREL | PUBCOMP;
    /// 0x93 Receive Maximum exceeded (DISCONNECT).
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "receive maximum exceeded", DISCONNECT;
    /// 0x94 Topic Alias invalid (DISCONNECT).
    TOPIC_ALIAS_INVALID = 0x94, "topic alias invalid", DISCONNECT;
    /// 0x95 Packet too large.
    PACKET_TOO_LARGE = 0x95, "packet too large", CONNACK | DISCONNECT;
    /// 0x96 Message rate too high (DISCONNECT).
    MESSAGE_RATE_TOO_HIGH = 0x96, "message rate too high", DISCONNECT;
    /// 0x97 Quota exceeded.
    QUOTA_EXCEEDED = 0x97, "quota exceeded", CONNACK | PUBACK | PUBREC | SUBACK | DISCONNECT;
    /// 0x98 Administrative action (DISCONNECT).
    ADMINISTRATIVE_ACTION = 0x98, "administrative action", DISCONNECT;
    /// 0x99 Payload format invalid.
    PAYLOAD_FORMAT_INVALID = 0x99, "payload format invalid", CONNACK | PUBACK | PUBREC | DISCONNECT;
    /// 0x9A Retain not supported.
    RETAIN_NOT_SUPPORTED = 0x9A, "retain not supported", CONNACK | DISCONNECT;
    /// 0x9B QoS not supported.
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported", CONNACK | DISCONNECT;
    /// 0x9C Use another server.
    USE_ANOTHER_SERVER = 0x9C, "use another server", CONNACK | DISCONNECT;
    /// 0x9D Server moved.
    SERVER_MOVED = 0x9D, "server moved", CONNACK | DISCONNECT;
    /// 0x9E Shared Subscriptions not supported.
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "shared subscriptions not supported", SUBACK | DISCONNECT;
    /// 0x9F Connection rate exceeded.
    CONNECTION_RATE_EXCEEDED = 0x9F, "connection rate exceeded", CONNACK | DISCONNECT;
    /// 0xA0 Maximum connect time (DISCONNECT).
    MAXIMUM_CONNECT_TIME = 0xA0, "maximum connect time", DISCONNECT;
    /// 0xA1 Subscription Identifiers not supported.
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "subscription identifiers not supported", SUBACK | DISCONNECT;
    /// 0xA2 Wildcard Subscriptions not supported.
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "wildcard subscriptions not supported", SUBACK | DISCONNECT;
}

impl ReasonCode {
    /// 0x00 Normal disconnection, the DISCONNECT name of [`ReasonCode::SUCCESS`].
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::SUCCESS;
    /// 0x00 Granted QoS 0, the SUBACK name of [`ReasonCode::SUCCESS`].
    pub const GRANTED_QOS_0: ReasonCode = ReasonCode::SUCCESS;

    fn row(self) -> Option<&'static (u8, &'static str, u16)> {
        TABLE
            .binary_search_by_key(&self.0, |r| r.0)
            .ok()
            .map(|i| &TABLE[i])
    }

    /// True for failure codes (0x80 and above).
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// True if the specification defines this code at all.
    pub fn is_defined(self) -> bool {
        self.row().is_some()
    }

    /// True if the specification allows this code in packets of type `p`.
    pub fn valid_for(self, p: PacketType) -> bool {
        self.row().is_some_and(|r| r.2 & bit(p) != 0)
    }

    /// The specification's description of the code, or `None` for an undefined code.
    pub fn description(self) -> Option<&'static str> {
        self.row().map(|r| r.1)
    }

    /// The 3.1/3.1.1 CONNACK return code that says the same thing, if any
    /// (section 3.2.2.3 of 3.1.1). `None` means the 3.1.1 server closes the
    /// network connection without a CONNACK [MQTT-3.2.2-6].
    pub const fn to_v311_connack(self) -> Option<u8> {
        match self.0 {
            0x00 => Some(0),
            0x84 => Some(1),
            0x85 => Some(2),
            0x88 | 0x89 => Some(3),
            0x86 => Some(4),
            0x87 => Some(5),
            _ => None,
        }
    }

    /// The reason code a 3.1/3.1.1 CONNACK return code stands for.
    pub const fn from_v311_connack(code: u8) -> Option<ReasonCode> {
        Some(match code {
            0 => ReasonCode::SUCCESS,
            1 => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            2 => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            3 => ReasonCode::SERVER_UNAVAILABLE,
            4 => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            5 => ReasonCode::NOT_AUTHORIZED,
            _ => return None,
        })
    }

    /// The 3.1.1 SUBACK return code: the granted QoS 0 to 2, or 0x80 for any failure.
    pub const fn to_v311_suback(self) -> u8 {
        if self.is_error() {
            0x80
        } else {
            self.0
        }
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(d) => write!(f, "ReasonCode(0x{:02X} {d})", self.0),
            None => write!(f, "ReasonCode(0x{:02X})", self.0),
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(d) => write!(f, "{d} (0x{:02X})", self.0),
            None => write!(f, "reason code 0x{:02X}", self.0),
        }
    }
}

impl From<ReasonCode> for u8 {
    fn from(r: ReasonCode) -> u8 {
        r.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_so_lookup_is_a_binary_search() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(TABLE.len(), 43);
    }

    #[test]
    fn packets_per_code_follow_section_2_4() {
        assert!(ReasonCode::NO_MATCHING_SUBSCRIBERS.valid_for(PacketType::PubAck));
        assert!(!ReasonCode::NO_MATCHING_SUBSCRIBERS.valid_for(PacketType::PubRel));
        assert!(ReasonCode::SESSION_TAKEN_OVER.valid_for(PacketType::Disconnect));
        assert!(!ReasonCode::SESSION_TAKEN_OVER.valid_for(PacketType::ConnAck));
        assert!(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND.valid_for(PacketType::PubComp));
        assert!(!ReasonCode(0x03).is_defined());
        assert!(!ReasonCode(0x03).valid_for(PacketType::SubAck));
    }

    #[test]
    fn v311_connack_mapping_both_ways() {
        for code in 0..=5u8 {
            let r = ReasonCode::from_v311_connack(code).unwrap();
            assert_eq!(r.to_v311_connack(), Some(code));
        }
        assert_eq!(ReasonCode::SERVER_BUSY.to_v311_connack(), Some(3));
        assert_eq!(ReasonCode::BANNED.to_v311_connack(), None);
        assert_eq!(ReasonCode::from_v311_connack(6), None);
    }

    #[test]
    fn v311_suback_collapses_failures_to_0x80() {
        assert_eq!(ReasonCode::GRANTED_QOS_2.to_v311_suback(), 2);
        assert_eq!(ReasonCode::NOT_AUTHORIZED.to_v311_suback(), 0x80);
    }
}
