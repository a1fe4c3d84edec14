//! MQTT 5.0 properties (section 2.2.2): one typed struct per packet kind.
//!
//! Each struct lists exactly the properties its packet may carry; anything else
//! is refused while decoding with [`DecodeError::PropertyNotAllowed`]. Properties
//! that may appear once are `Option`s (a repeat is [`DecodeError::DuplicateProperty`]);
//! user properties keep their order and may repeat.

use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::string::{Storage, Str};
use crate::topic::TopicName;
use crate::types::{PacketType, QoS};
use crate::wire::{
    binary_len, put_prefixed, put_variable_byte_integer, variable_byte_integer_len, Reader,
    MAX_VARIABLE_BYTE_INTEGER,
};

/// Property identifiers (section 2.2.2.2).
pub mod id {
    /// Payload Format Indicator (byte).
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Message Expiry Interval (four-byte integer).
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// Content Type (string).
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response Topic (string).
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation Data (binary).
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription Identifier (variable byte integer).
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Session Expiry Interval (four-byte integer).
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// Assigned Client Identifier (string).
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Server Keep Alive (two-byte integer).
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Authentication Method (string).
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Authentication Data (binary).
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Request Problem Information (byte).
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Will Delay Interval (four-byte integer).
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Request Response Information (byte).
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// Response Information (string).
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// Server Reference (string).
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// Reason String (string).
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive Maximum (two-byte integer).
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic Alias Maximum (two-byte integer).
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic Alias (two-byte integer).
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS (byte).
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain Available (byte).
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User Property (string pair).
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum Packet Size (four-byte integer).
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Wildcard Subscription Available (byte).
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Subscription Identifier Available (byte).
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Shared Subscription Available (byte).
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

    /// True for identifiers the specification defines.
    pub const fn is_known(id: u8) -> bool {
        matches!(
            id,
            0x01..=0x03
                | 0x08
                | 0x09
                | 0x0B
                | 0x11..=0x13
                | 0x15..=0x19
                | 0x1A
                | 0x1C
                | 0x1F
                | 0x21..=0x2A
        )
    }
}

/// Payload Format Indicator (section 3.3.2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    #[default]
    Unspecified,
    /// 1: UTF-8 encoded character data; the receiver may check it.
    Utf8,
}

/// A Subscription Identifier: 1 to 268,435,455 (section 3.8.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(NonZeroU32);

impl SubscriptionId {
    /// The largest subscription identifier.
    pub const MAX: u32 = MAX_VARIABLE_BYTE_INTEGER;

    /// The identifier `n`, or `None` outside 1..=268,435,455.
    pub const fn new(n: u32) -> Option<Self> {
        if n > Self::MAX {
            return None;
        }
        match NonZeroU32::new(n) {
            Some(n) => Some(SubscriptionId(n)),
            None => None,
        }
    }

    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

/// User properties: name/value string pairs, kept in order, repeats allowed.
pub type UserProperties<B = Bytes> = Vec<(Str<B>, Str<B>)>;

/// Encoding and decoding of one property value kind.
mod kind {
    use super::*;

    macro_rules! int_kind {
        ($name:ident, $ty:ty, $n:literal, $read:ident, $put:ident) => {
            pub(super) mod $name {
                use super::*;
                pub(crate) fn read<B: Storage>(
                    r: &mut Reader<'_, B>,
                    _: u8,
                ) -> Result<$ty, DecodeError> {
                    r.$read()
                }
                pub(crate) fn len(_: &$ty) -> Result<usize, EncodeError> {
                    Ok($n)
                }
                pub(crate) fn write(out: &mut impl BufMut, v: &$ty) {
                    out.$put(*v)
                }
            }
        };
    }
    int_kind!(u16, u16, 2, u16, put_u16);
    int_kind!(u32, u32, 4, u32, put_u32);

    /// Two-byte integers where 0 is a protocol error (Receive Maximum, Topic Alias).
    pub(super) mod nz_u16 {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            id: u8,
        ) -> Result<NonZeroU16, DecodeError> {
            NonZeroU16::new(r.u16()?).ok_or(DecodeError::InvalidPropertyValue(id))
        }
        pub(crate) fn len(_: &NonZeroU16) -> Result<usize, EncodeError> {
            Ok(2)
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &NonZeroU16) {
            out.put_u16(v.get())
        }
    }

    /// Four-byte integers where 0 is a protocol error (Maximum Packet Size).
    pub(super) mod nz_u32 {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            id: u8,
        ) -> Result<NonZeroU32, DecodeError> {
            NonZeroU32::new(r.u32()?).ok_or(DecodeError::InvalidPropertyValue(id))
        }
        pub(crate) fn len(_: &NonZeroU32) -> Result<usize, EncodeError> {
            Ok(4)
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &NonZeroU32) {
            out.put_u32(v.get())
        }
    }

    /// Byte properties that may only be 0 or 1.
    pub(super) mod flag {
        use super::*;
        pub(crate) fn read<B: Storage>(r: &mut Reader<'_, B>, id: u8) -> Result<bool, DecodeError> {
            match r.u8()? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        pub(crate) fn len(_: &bool) -> Result<usize, EncodeError> {
            Ok(1)
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &bool) {
            out.put_u8(u8::from(*v))
        }
    }

    pub(super) mod format {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            id: u8,
        ) -> Result<PayloadFormat, DecodeError> {
            Ok(match flag::read(r, id)? {
                false => PayloadFormat::Unspecified,
                true => PayloadFormat::Utf8,
            })
        }
        pub(crate) fn len(_: &PayloadFormat) -> Result<usize, EncodeError> {
            Ok(1)
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &PayloadFormat) {
            out.put_u8(matches!(v, PayloadFormat::Utf8) as u8)
        }
    }

    /// Maximum QoS: 0 or 1 only; a server supporting QoS 2 omits it [MQTT-3.2.2-9].
    pub(super) mod max_qos {
        use super::*;
        pub(crate) fn read<B: Storage>(r: &mut Reader<'_, B>, id: u8) -> Result<QoS, DecodeError> {
            match r.u8()? {
                0 => Ok(QoS::AtMostOnce),
                1 => Ok(QoS::AtLeastOnce),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        pub(crate) fn len(q: &QoS) -> Result<usize, EncodeError> {
            match q {
                QoS::ExactlyOnce => Err(EncodeError::NotInVersion {
                    what: "Maximum QoS 2 (omit the property instead)",
                    version: crate::types::ProtocolVersion::V5,
                }),
                _ => Ok(1),
            }
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &QoS) {
            out.put_u8(*v as u8)
        }
    }

    pub(super) mod sub_id {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            id: u8,
        ) -> Result<SubscriptionId, DecodeError> {
            SubscriptionId::new(r.variable_byte_integer()?)
                .ok_or(DecodeError::InvalidPropertyValue(id))
        }
        pub(crate) fn len(v: &SubscriptionId) -> Result<usize, EncodeError> {
            Ok(variable_byte_integer_len(v.get()))
        }
        pub(crate) fn write(out: &mut impl BufMut, v: &SubscriptionId) {
            put_variable_byte_integer(out, v.get())
        }
    }

    pub(super) mod string {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            _: u8,
        ) -> Result<Str<B>, DecodeError> {
            r.string()
        }
        pub(crate) fn len<B: AsRef<[u8]>>(v: &Str<B>) -> Result<usize, EncodeError> {
            Ok(2 + v.len())
        }
        pub(crate) fn write<B: AsRef<[u8]>>(out: &mut impl BufMut, v: &Str<B>) {
            put_prefixed(out, v.as_bytes())
        }
    }

    /// Response Topic: a topic name, never a filter [MQTT-3.3.2-14].
    pub(super) mod topic {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            _: u8,
        ) -> Result<TopicName<B>, DecodeError> {
            r.topic_name()
        }
        pub(crate) fn len<B: AsRef<[u8]>>(v: &TopicName<B>) -> Result<usize, EncodeError> {
            Ok(2 + v.len())
        }
        pub(crate) fn write<B: AsRef<[u8]>>(out: &mut impl BufMut, v: &TopicName<B>) {
            put_prefixed(out, v.as_bytes())
        }
    }

    pub(super) mod binary {
        use super::*;
        pub(crate) fn read<B: Storage>(r: &mut Reader<'_, B>, _: u8) -> Result<B, DecodeError> {
            r.binary()
        }
        pub(crate) fn len<B: AsRef<[u8]>>(v: &B) -> Result<usize, EncodeError> {
            binary_len(v.as_ref())
        }
        pub(crate) fn write<B: AsRef<[u8]>>(out: &mut impl BufMut, v: &B) {
            put_prefixed(out, v.as_ref())
        }
    }

    pub(super) mod pair {
        use super::*;
        pub(crate) fn read<B: Storage>(
            r: &mut Reader<'_, B>,
            _: u8,
        ) -> Result<(Str<B>, Str<B>), DecodeError> {
            Ok((r.string()?, r.string()?))
        }
        pub(crate) fn len<B: AsRef<[u8]>>(v: &(Str<B>, Str<B>)) -> Result<usize, EncodeError> {
            Ok(4 + v.0.len() + v.1.len())
        }
        pub(crate) fn write<B: AsRef<[u8]>>(out: &mut impl BufMut, v: &(Str<B>, Str<B>)) {
            put_prefixed(out, v.0.as_bytes());
            put_prefixed(out, v.1.as_bytes());
        }
    }
}

/// Where a decoded property value goes: an `Option` takes one, a `Vec` any number.
trait Slot<T> {
    fn put(&mut self, v: T, id: u8) -> Result<(), DecodeError>;
}

impl<T> Slot<T> for Option<T> {
    #[inline]
    fn put(&mut self, v: T, id: u8) -> Result<(), DecodeError> {
        if self.is_some() {
            return Err(DecodeError::DuplicateProperty(id));
        }
        *self = Some(v);
        Ok(())
    }
}

impl<T> Slot<T> for Vec<T> {
    #[inline]
    fn put(&mut self, v: T, _: u8) -> Result<(), DecodeError> {
        self.push(v);
        Ok(())
    }
}

/// Reads the property length and returns a reader bounded to the properties.
#[inline]
pub(crate) fn properties_reader<'s, B: Storage>(
    r: &mut Reader<'s, B>,
) -> Result<Reader<'s, B>, DecodeError> {
    let len = r.variable_byte_integer()? as usize;
    r.sub(len)
}

/// Bytes a property block takes, its length prefix included.
#[inline]
pub(crate) fn block_len(props_len: usize) -> usize {
    variable_byte_integer_len(props_len as u32) + props_len
}

macro_rules! properties {
    ($(
        $(#[$doc:meta])*
        $name:ident for $packet:expr => {
            $( $(#[$fdoc:meta])* $field:ident : $fty:ty = $id:path, $kind:ident; )*
        }
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name<B = Bytes> {
            $( $(#[$fdoc])* pub $field: $fty, )*
            /// User Property (0x26): name/value pairs in the order received.
            pub user_properties: UserProperties<B>,
        }

        impl<B> Default for $name<B> {
            fn default() -> Self {
                $name { $( $field: Default::default(), )* user_properties: Vec::new() }
            }
        }

        impl<B: AsRef<[u8]>> $name<B> {
            /// True when no property is set, so the block encodes as a single 0 byte.
            pub fn is_empty(&self) -> bool {
                $( self.$field.is_none_or_empty() && )* self.user_properties.is_empty()
            }

            /// Bytes of the properties, without the length prefix.
            pub(crate) fn len(&self) -> Result<usize, EncodeError> {
                let mut n = 0;
                $( for v in self.$field.iter() { n += 1 + kind::$kind::len(v)?; } )*
                for v in self.user_properties.iter() { n += 1 + kind::pair::len(v)?; }
                Ok(n)
            }

            /// Writes the length prefix and the properties; `len` is what [`Self::len`] returned.
            pub(crate) fn write(&self, out: &mut impl BufMut, len: usize) {
                put_variable_byte_integer(out, len as u32);
                $( for v in self.$field.iter() { out.put_u8($id); kind::$kind::write(out, v); } )*
                for v in self.user_properties.iter() { out.put_u8(id::USER_PROPERTY); kind::pair::write(out, v); }
            }
        }

        impl<B: Storage> $name<B> {
            /// Reads a property block, its length prefix included.
            pub(crate) fn read(r: &mut Reader<'_, B>) -> Result<Self, DecodeError> {
                let mut p = properties_reader(r)?;
                let mut out = Self::default();
                while !p.is_empty() {
                    // Identifiers are Variable Byte Integers; every defined one fits in one byte.
                    let pid = p.variable_byte_integer()?;
                    let pid = u8::try_from(pid).map_err(|_| DecodeError::UnknownProperty(0xFF))?;
                    match pid {
                        $( $id => { let v = kind::$kind::read(&mut p, pid)?; out.$field.put(v, pid)?; } )*
                        id::USER_PROPERTY => out.user_properties.push(kind::pair::read(&mut p, pid)?),
                        other if id::is_known(other) => {
                            return Err(DecodeError::PropertyNotAllowed { property: other, packet: $packet })
                        }
                        other => return Err(DecodeError::UnknownProperty(other)),
                    }
                }
                Ok(out)
            }
        }
    )*};
}

/// `is_none` for `Option` fields and `is_empty` for `Vec` fields, so the macro treats both alike.
trait NoneOrEmpty {
    fn is_none_or_empty(&self) -> bool;
}
impl<T> NoneOrEmpty for Option<T> {
    fn is_none_or_empty(&self) -> bool {
        self.is_none()
    }
}
impl<T> NoneOrEmpty for Vec<T> {
    fn is_none_or_empty(&self) -> bool {
        self.is_empty()
    }
}

properties! {
    /// CONNECT properties (section 3.1.2.11).
    ConnectProps for PacketType::Connect => {
        /// Session Expiry Interval in seconds; absent means 0, 0xFFFFFFFF means never.
        session_expiry_interval: Option<u32> = id::SESSION_EXPIRY_INTERVAL, u32;
        /// How many QoS 1/2 publishes the client will process at once (never 0).
        receive_maximum: Option<NonZeroU16> = id::RECEIVE_MAXIMUM, nz_u16;
        /// The largest packet the client accepts (never 0).
        maximum_packet_size: Option<NonZeroU32> = id::MAXIMUM_PACKET_SIZE, nz_u32;
        /// The highest topic alias the client accepts from the server.
        topic_alias_maximum: Option<u16> = id::TOPIC_ALIAS_MAXIMUM, u16;
        /// Asks the server for Response Information in CONNACK.
        request_response_information: Option<bool> = id::REQUEST_RESPONSE_INFORMATION, flag;
        /// Whether the server may send Reason Strings and User Properties on failures.
        request_problem_information: Option<bool> = id::REQUEST_PROBLEM_INFORMATION, flag;
        /// Name of the enhanced authentication method.
        authentication_method: Option<Str<B>> = id::AUTHENTICATION_METHOD, string;
        /// Data of the enhanced authentication method.
        authentication_data: Option<B> = id::AUTHENTICATION_DATA, binary;
    }

    /// Will properties, in the CONNECT payload (section 3.1.3.2).
    WillProps for PacketType::Connect => {
        /// Seconds the server waits before publishing the will.
        will_delay_interval: Option<u32> = id::WILL_DELAY_INTERVAL, u32;
        /// Whether the will payload is UTF-8.
        payload_format_indicator: Option<PayloadFormat> = id::PAYLOAD_FORMAT_INDICATOR, format;
        /// Lifetime of the will message in seconds.
        message_expiry_interval: Option<u32> = id::MESSAGE_EXPIRY_INTERVAL, u32;
        /// MIME-like description of the payload.
        content_type: Option<Str<B>> = id::CONTENT_TYPE, string;
        /// Topic for a response to the will message.
        response_topic: Option<TopicName<B>> = id::RESPONSE_TOPIC, topic;
        /// Data that ties a response to its request.
        correlation_data: Option<B> = id::CORRELATION_DATA, binary;
    }

    /// CONNACK properties (section 3.2.2.3).
    ConnAckProps for PacketType::ConnAck => {
        /// The session expiry interval the server will use.
        session_expiry_interval: Option<u32> = id::SESSION_EXPIRY_INTERVAL, u32;
        /// How many QoS 1/2 publishes the server will process at once.
        receive_maximum: Option<NonZeroU16> = id::RECEIVE_MAXIMUM, nz_u16;
        /// The highest QoS the server supports (0 or 1; absent means 2).
        maximum_qos: Option<QoS> = id::MAXIMUM_QOS, max_qos;
        /// Whether the server supports retained messages (absent means yes).
        retain_available: Option<bool> = id::RETAIN_AVAILABLE, flag;
        /// The largest packet the server accepts.
        maximum_packet_size: Option<NonZeroU32> = id::MAXIMUM_PACKET_SIZE, nz_u32;
        /// The client identifier the server assigned to an empty one.
        assigned_client_identifier: Option<Str<B>> = id::ASSIGNED_CLIENT_IDENTIFIER, string;
        /// The highest topic alias the server accepts from the client.
        topic_alias_maximum: Option<u16> = id::TOPIC_ALIAS_MAXIMUM, u16;
        /// Human-readable diagnostics.
        reason_string: Option<Str<B>> = id::REASON_STRING, string;
        /// Whether wildcard subscriptions are supported (absent means yes).
        wildcard_subscription_available: Option<bool> = id::WILDCARD_SUBSCRIPTION_AVAILABLE, flag;
        /// Whether subscription identifiers are supported (absent means yes).
        subscription_identifiers_available: Option<bool> = id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, flag;
        /// Whether shared subscriptions are supported (absent means yes).
        shared_subscription_available: Option<bool> = id::SHARED_SUBSCRIPTION_AVAILABLE, flag;
        /// The keep alive the server imposes, replacing the client's.
        server_keep_alive: Option<u16> = id::SERVER_KEEP_ALIVE, u16;
        /// Basis for response topics, if requested.
        response_information: Option<Str<B>> = id::RESPONSE_INFORMATION, string;
        /// Another server the client should use.
        server_reference: Option<Str<B>> = id::SERVER_REFERENCE, string;
        /// Name of the enhanced authentication method.
        authentication_method: Option<Str<B>> = id::AUTHENTICATION_METHOD, string;
        /// Data of the enhanced authentication method.
        authentication_data: Option<B> = id::AUTHENTICATION_DATA, binary;
    }

    /// PUBLISH properties (section 3.3.2.3).
    PublishProps for PacketType::Publish => {
        /// Whether the payload is UTF-8.
        payload_format_indicator: Option<PayloadFormat> = id::PAYLOAD_FORMAT_INDICATOR, format;
        /// Remaining lifetime of the message in seconds.
        message_expiry_interval: Option<u32> = id::MESSAGE_EXPIRY_INTERVAL, u32;
        /// Topic alias standing for the topic name (never 0).
        topic_alias: Option<NonZeroU16> = id::TOPIC_ALIAS, nz_u16;
        /// Topic for a response.
        response_topic: Option<TopicName<B>> = id::RESPONSE_TOPIC, topic;
        /// Data that ties a response to its request.
        correlation_data: Option<B> = id::CORRELATION_DATA, binary;
        /// Identifiers of the subscriptions that matched (server to client; may repeat).
        subscription_identifiers: Vec<SubscriptionId> = id::SUBSCRIPTION_IDENTIFIER, sub_id;
        /// MIME-like description of the payload.
        content_type: Option<Str<B>> = id::CONTENT_TYPE, string;
    }

    /// Properties of PUBACK, PUBREC, PUBREL and PUBCOMP (section 3.4.2.2).
    AckProps for PacketType::PubAck => {
        /// Human-readable diagnostics.
        reason_string: Option<Str<B>> = id::REASON_STRING, string;
    }

    /// SUBSCRIBE properties (section 3.8.2.1).
    SubscribeProps for PacketType::Subscribe => {
        /// Identifier attached to messages delivered through these subscriptions.
        subscription_identifier: Option<SubscriptionId> = id::SUBSCRIPTION_IDENTIFIER, sub_id;
    }

    /// Properties of SUBACK and UNSUBACK (sections 3.9.2.1, 3.11.2.1).
    SubAckProps for PacketType::SubAck => {
        /// Human-readable diagnostics.
        reason_string: Option<Str<B>> = id::REASON_STRING, string;
    }

    /// UNSUBSCRIBE properties (section 3.10.2.1): user properties only.
    UnsubscribeProps for PacketType::Unsubscribe => {}

    /// DISCONNECT properties (section 3.14.2.2).
    DisconnectProps for PacketType::Disconnect => {
        /// A new session expiry interval (client to server only).
        session_expiry_interval: Option<u32> = id::SESSION_EXPIRY_INTERVAL, u32;
        /// Human-readable diagnostics.
        reason_string: Option<Str<B>> = id::REASON_STRING, string;
        /// Another server the client should use.
        server_reference: Option<Str<B>> = id::SERVER_REFERENCE, string;
    }

    /// AUTH properties (section 3.15.2.2).
    AuthProps for PacketType::Auth => {
        /// Name of the enhanced authentication method.
        authentication_method: Option<Str<B>> = id::AUTHENTICATION_METHOD, string;
        /// Data of the enhanced authentication method.
        authentication_data: Option<B> = id::AUTHENTICATION_DATA, binary;
        /// Human-readable diagnostics.
        reason_string: Option<Str<B>> = id::REASON_STRING, string;
    }
}

impl<B: Storage> AckProps<B> {
    /// Reads the block, reporting a disallowed property against the actual ack type.
    pub(crate) fn read_for(r: &mut Reader<'_, B>, packet: PacketType) -> Result<Self, DecodeError> {
        Self::read(r).map_err(|e| retag(e, packet))
    }
}

impl<B: Storage> SubAckProps<B> {
    /// Reads the block, reporting a disallowed property against SUBACK or UNSUBACK.
    pub(crate) fn read_for(r: &mut Reader<'_, B>, packet: PacketType) -> Result<Self, DecodeError> {
        Self::read(r).map_err(|e| retag(e, packet))
    }
}

fn retag(e: DecodeError, packet: PacketType) -> DecodeError {
    match e {
        DecodeError::PropertyNotAllowed { property, .. } => {
            DecodeError::PropertyNotAllowed { property, packet }
        }
        e => e,
    }
}
