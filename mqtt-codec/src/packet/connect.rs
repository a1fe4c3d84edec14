//! CONNECT (section 3.1) and CONNACK (section 3.2).

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{block_len, ConnAckProps, ConnectProps, PayloadFormat, WillProps};
use crate::reason::ReasonCode;
use crate::string::{Storage, Str};
use crate::topic::TopicName;
use crate::types::{PacketType, ProtocolVersion, QoS};
use crate::wire::{binary_len, put_prefixed, Reader};

/// CONNECT: the first packet a client sends (section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<B = Bytes> {
    /// The protocol version; it fixes the version of the whole connection.
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.1.1): discard any existing session.
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: ConnectProps<B>,
    /// The client identifier; may be empty (the server then assigns one, where allowed).
    pub client_id: Str<B>,
    /// The Last Will and Testament, if any.
    pub will: Option<Will<B>>,
    /// User name, if any.
    pub username: Option<Str<B>>,
    /// Password, if any (binary data).
    pub password: Option<B>,
    /// A 3.1/3.1.1 bridge: the protocol level has its top bit set (0x83,
    /// 0x84), Mosquitto's `try_private` convention, asking the server not to
    /// send the bridge its own publications back. 5.0 bridges use No Local
    /// instead, so the flag is never sent (or read) with 5.0.
    pub bridge: bool,
}

/// The Will Message of a CONNECT: published by the server when the client vanishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<B = Bytes> {
    /// Topic the will is published to.
    pub topic: TopicName<B>,
    /// Will payload.
    pub payload: B,
    /// QoS the will is published with.
    pub qos: QoS,
    /// Whether the will is published as a retained message.
    pub retain: bool,
    /// 5.0 will properties; empty under 3.1 and 3.1.1.
    pub props: WillProps<B>,
}

impl<B> Connect<B> {
    /// A CONNECT with the given version and client identifier, clean start, a
    /// 60-second keep alive, and nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: Str<B>) -> Self {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            props: ConnectProps::default(),
            client_id,
            will: None,
            username: None,
            password: None,
            bridge: false,
        }
    }
}

mod flags {
    pub(super) const USERNAME: u8 = 0x80;
    pub(super) const PASSWORD: u8 = 0x40;
    pub(super) const WILL_RETAIN: u8 = 0x20;
    pub(super) const WILL_QOS_SHIFT: u8 = 3;
    pub(super) const WILL: u8 = 0x04;
    pub(super) const CLEAN_START: u8 = 0x02;
    pub(super) const RESERVED: u8 = 0x01;
}

/// The top bit of the protocol level that marks a 3.1/3.1.1 bridge.
const BRIDGE_BIT: u8 = 0x80;

/// Reads the protocol name and level that open every CONNECT (section
/// 3.1.2.1-2), and whether the level carries the bridge bit.
fn read_protocol<B: Storage>(
    r: &mut Reader<'_, B>,
) -> Result<(ProtocolVersion, bool), DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let bridge = level & BRIDGE_BIT != 0;
    let version = ProtocolVersion::from_level(level & !BRIDGE_BIT)
        .filter(|v| !(bridge && v.is_v5()))
        .ok_or(DecodeError::UnsupportedProtocolVersion(level))?;
    if name.as_ref() != version.protocol_name().as_bytes() {
        return Err(DecodeError::InvalidProtocolName);
    }
    Ok((version, bridge))
}

/// Checks a payload marked as UTF-8 by its Payload Format Indicator (section 3.3.2.3.2).
pub(crate) fn check_payload_format<B: AsRef<[u8]>>(
    format: Option<PayloadFormat>,
    payload: &B,
) -> Result<(), DecodeError> {
    if format == Some(PayloadFormat::Utf8) && core::str::from_utf8(payload.as_ref()).is_err() {
        return Err(DecodeError::PayloadFormatInvalid);
    }
    Ok(())
}

impl<B: Storage> Connect<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>) -> Result<Self, DecodeError> {
        let (protocol, bridge) = read_protocol(r)?;
        let v5 = protocol.is_v5();
        let f = r.u8()?;
        if f & flags::RESERVED != 0 {
            return Err(DecodeError::ReservedConnectFlag);
        }
        let has_will = f & flags::WILL != 0;
        let will_qos =
            QoS::from_u8((f >> flags::WILL_QOS_SHIFT) & 3).ok_or(DecodeError::InvalidWillFlags)?;
        let will_retain = f & flags::WILL_RETAIN != 0;
        if !has_will && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::InvalidWillFlags);
        }
        let has_username = f & flags::USERNAME != 0;
        let has_password = f & flags::PASSWORD != 0;
        if !v5 && has_password && !has_username {
            return Err(DecodeError::PasswordWithoutUserName);
        }
        let keep_alive = r.u16()?;
        let props = if v5 {
            ConnectProps::read(r)?
        } else {
            ConnectProps::default()
        };
        let client_id = r.string()?;
        // MQTT 3.1 says 1 to 23 characters. Both an empty identifier and a
        // longer one are let through to the server, which treats an empty
        // one as 3.1.1 does (assigned with a clean session, refused with
        // return code 2 without) [MQTT-3.1.3-6], [MQTT-3.1.3-8]: 3.1
        // clients send both, and refusing them buys nothing.
        let will = if has_will {
            let props = if v5 {
                WillProps::read(r)?
            } else {
                WillProps::default()
            };
            let topic = r.topic_name()?;
            let payload = r.binary()?;
            check_payload_format(props.payload_format_indicator, &payload)?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                props,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Connect {
            bridge,
            protocol,
            clean_start: f & flags::CLEAN_START != 0,
            keep_alive,
            props,
            client_id,
            will,
            username,
            password,
        })
    }
}

impl<B: AsRef<[u8]>> Connect<B> {
    /// Size of the variable header and payload, with the property lengths they need.
    pub(crate) fn body_len(&self) -> Result<(usize, usize, usize), EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::NotInVersion {
                what: "a password without a user name",
                version: self.protocol,
            });
        }
        let mut n = 2 + self.protocol.protocol_name().len() + 1 + 1 + 2;
        let props_len = if v5 { self.props.len()? } else { 0 };
        if v5 {
            n += block_len(props_len);
        }
        n += 2 + self.client_id.len();
        let mut will_props_len = 0;
        if let Some(w) = &self.will {
            if v5 {
                will_props_len = w.props.len()?;
                n += block_len(will_props_len);
            }
            n += 2 + w.topic.len() + binary_len(w.payload.as_ref())?;
        }
        if let Some(u) = &self.username {
            n += 2 + u.len();
        }
        if let Some(p) = &self.password {
            n += binary_len(p.as_ref())?;
        }
        Ok((n, props_len, will_props_len))
    }

    pub(crate) fn write(&self, out: &mut impl BufMut, props_len: usize, will_props_len: usize) {
        let v5 = self.protocol.is_v5();
        put_prefixed(out, self.protocol.protocol_name().as_bytes());
        let bridge = if self.bridge && !v5 { BRIDGE_BIT } else { 0 };
        out.put_u8(self.protocol.level() | bridge);
        let mut f = 0;
        if self.username.is_some() {
            f |= flags::USERNAME;
        }
        if self.password.is_some() {
            f |= flags::PASSWORD;
        }
        if let Some(w) = &self.will {
            f |= flags::WILL | ((w.qos as u8) << flags::WILL_QOS_SHIFT);
            if w.retain {
                f |= flags::WILL_RETAIN;
            }
        }
        if self.clean_start {
            f |= flags::CLEAN_START;
        }
        out.put_u8(f);
        out.put_u16(self.keep_alive);
        if v5 {
            self.props.write(out, props_len);
        }
        put_prefixed(out, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if v5 {
                w.props.write(out, will_props_len);
            }
            put_prefixed(out, w.topic.as_bytes());
            put_prefixed(out, w.payload.as_ref());
        }
        if let Some(u) = &self.username {
            put_prefixed(out, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_prefixed(out, p.as_ref());
        }
    }
}

/// CONNACK: the server's answer to CONNECT (section 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck<B = Bytes> {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// The outcome; 3.1/3.1.1 return codes are mapped onto reason codes
    /// (see [`ReasonCode::from_v311_connack`]).
    pub reason: ReasonCode,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: ConnAckProps<B>,
}

impl<B> ConnAck<B> {
    /// A CONNACK with the given outcome and no properties.
    pub fn new(session_present: bool, reason: ReasonCode) -> Self {
        ConnAck {
            session_present,
            reason,
            props: ConnAckProps::default(),
        }
    }
}

impl<B: Storage> ConnAck<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        // 3.1 has no Session Present: the first byte is "reserved, not used".
        let flags = if v == ProtocolVersion::V31 { 0 } else { flags };
        if flags & !1 != 0 {
            return Err(DecodeError::InvalidConnAckFlags);
        }
        let session_present = flags & 1 != 0;
        let code = r.u8()?;
        let invalid = DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        };
        let (reason, props) = if v.is_v5() {
            let reason = ReasonCode(code);
            if !reason.valid_for(PacketType::ConnAck) {
                return Err(invalid);
            }
            (reason, ConnAckProps::read(r)?)
        } else {
            let reason = ReasonCode::from_v311_connack(code).ok_or(invalid)?;
            (reason, ConnAckProps::default())
        };
        // [MQTT-3.2.2-4] (3.1.1) and [MQTT-3.2.2-6] (5.0).
        if session_present && reason.is_error() {
            return Err(DecodeError::SessionPresentOnRefusal);
        }
        r.finish()?;
        Ok(ConnAck {
            session_present,
            reason,
            props,
        })
    }
}

impl<B: AsRef<[u8]>> ConnAck<B> {
    /// The return code byte for this version.
    fn code(&self, v: ProtocolVersion) -> Result<u8, EncodeError> {
        if v.is_v5() {
            if !self.reason.valid_for(PacketType::ConnAck) {
                return Err(EncodeError::InvalidReasonCode {
                    packet: PacketType::ConnAck,
                    code: self.reason.0,
                });
            }
            Ok(self.reason.0)
        } else {
            self.reason
                .to_v311_connack()
                .ok_or(EncodeError::NotInVersion {
                    what: "this CONNACK reason code",
                    version: v,
                })
        }
    }

    pub(crate) fn body_len(&self, v: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        self.code(v)?;
        if v.is_v5() {
            let p = self.props.len()?;
            Ok((2 + block_len(p), p))
        } else {
            Ok((2, 0))
        }
    }

    pub(crate) fn write(&self, v: ProtocolVersion, out: &mut impl BufMut, props_len: usize) {
        out.put_u8(u8::from(self.session_present && v != ProtocolVersion::V31));
        // Invariant: `body_len` already checked that the code exists in `v`.
        out.put_u8(self.code(v).unwrap_or(0x80));
        if v.is_v5() {
            self.props.write(out, props_len);
        }
    }
}
