//! Generation of arbitrary *valid* packets from fuzzer or property-test input
//! (feature `arbitrary`).
//!
//! Every packet built here encodes under its version and decodes back to
//! itself, so `decode(encode(p)) == p` can be checked for any input bytes.

use alloc::string::String;
use alloc::vec::Vec;
use core::num::{NonZeroU16, NonZeroU32};

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

use crate::packet::*;
use crate::properties::*;
use crate::reason::ReasonCode;
use crate::string::Str;
use crate::topic::{TopicFilter, TopicName};
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS, QosPid};

/// A packet together with the version it is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedPacket {
    /// The protocol version the packet is encoded and decoded with.
    pub version: ProtocolVersion,
    /// The packet.
    pub packet: Packet<Bytes>,
}

impl<'a> Arbitrary<'a> for VersionedPacket {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let version = version(u)?;
        Ok(VersionedPacket {
            version,
            packet: packet(u, version)?,
        })
    }
}

/// One of the three protocol versions.
pub fn version(u: &mut Unstructured<'_>) -> Result<ProtocolVersion> {
    Ok(*u.choose(&[
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ])?)
}

fn text(u: &mut Unstructured<'_>, max_chars: usize, exclude: &[char]) -> Result<String> {
    let n = u.int_in_range(0..=max_chars)?;
    let mut s = String::new();
    for _ in 0..n {
        let c = if u.ratio(7, 8)? {
            char::from(u.int_in_range(0x20u8..=0x7E)?)
        } else {
            char::arbitrary(u)?
        };
        if c != '\0' && !exclude.contains(&c) {
            s.push(c);
        }
    }
    Ok(s)
}

fn owned(s: String) -> Bytes {
    Bytes::from(s.into_bytes())
}

/// An MQTT string of up to 24 characters.
pub fn string(u: &mut Unstructured<'_>) -> Result<Str<Bytes>> {
    Ok(Str::new(owned(text(u, 24, &[])?)).unwrap_or_default())
}

fn binary(u: &mut Unstructured<'_>, max: usize) -> Result<Bytes> {
    let n = u.int_in_range(0..=max)?;
    Ok(Bytes::copy_from_slice(u.bytes(n.min(u.len()))?))
}

/// A topic name of one to four levels.
pub fn topic_name(u: &mut Unstructured<'_>) -> Result<TopicName<Bytes>> {
    let levels = u.int_in_range(1..=4)?;
    let mut s = String::new();
    for i in 0..levels {
        if i > 0 {
            s.push('/');
        }
        s.push_str(&text(u, 6, &['+', '#', '/'])?);
    }
    if s.is_empty() {
        s.push('t');
    }
    Ok(TopicName::new(owned(s)).unwrap_or_else(|_| TopicName::from_static("t")))
}

/// A topic filter with wildcards, empty levels and shared forms.
pub fn topic_filter(u: &mut Unstructured<'_>) -> Result<TopicFilter<Bytes>> {
    let mut s = String::new();
    if u.ratio(1, 6)? {
        s.push_str("$share/");
        let name = text(u, 5, &['+', '#', '/'])?;
        s.push_str(if name.is_empty() { "g" } else { &name });
        s.push('/');
    }
    let levels = u.int_in_range(1..=4)?;
    for i in 0..levels {
        if i > 0 {
            s.push('/');
        }
        match u.int_in_range(0..=5)? {
            0 => s.push('+'),
            1 if i + 1 == levels => s.push('#'),
            _ => s.push_str(&text(u, 6, &['+', '#', '/'])?),
        }
    }
    if s.is_empty() || s.ends_with("$share/g/") {
        s.push('x');
    }
    Ok(TopicFilter::new(owned(s)).unwrap_or_else(|_| TopicFilter::from_static("f")))
}

fn packet_id(u: &mut Unstructured<'_>) -> Result<PacketId> {
    PacketId::new(u.int_in_range(1..=u16::MAX)?).ok_or(arbitrary::Error::IncorrectFormat)
}

fn qos(u: &mut Unstructured<'_>) -> Result<QoS> {
    Ok(*u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?)
}

fn opt<T>(
    u: &mut Unstructured<'_>,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if u.ratio(1, 3)? {
        Ok(Some(f(u)?))
    } else {
        Ok(None)
    }
}

fn user_properties(u: &mut Unstructured<'_>) -> Result<UserProperties<Bytes>> {
    let n = if u.ratio(1, 3)? {
        u.int_in_range(1..=3)?
    } else {
        0
    };
    (0..n).map(|_| Ok((string(u)?, string(u)?))).collect()
}

fn nz16(u: &mut Unstructured<'_>) -> Result<NonZeroU16> {
    Ok(NonZeroU16::new(u.int_in_range(1..=u16::MAX)?).unwrap_or(NonZeroU16::MIN))
}

fn nz32(u: &mut Unstructured<'_>) -> Result<NonZeroU32> {
    Ok(NonZeroU32::new(u.int_in_range(1..=u32::MAX)?).unwrap_or(NonZeroU32::MIN))
}

fn sub_id(u: &mut Unstructured<'_>) -> Result<SubscriptionId> {
    SubscriptionId::new(u.int_in_range(1..=SubscriptionId::MAX)?)
        .ok_or(arbitrary::Error::IncorrectFormat)
}

fn reason_for(u: &mut Unstructured<'_>, p: PacketType) -> Result<ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=u8::MAX)
        .map(ReasonCode)
        .filter(|r| r.valid_for(p))
        .collect();
    Ok(*u.choose(&codes)?)
}

fn will(u: &mut Unstructured<'_>, v5: bool) -> Result<Will<Bytes>> {
    let mut props = WillProps::default();
    if v5 {
        props.will_delay_interval = opt(u, |u| u.arbitrary())?;
        props.payload_format_indicator = opt(u, |u| {
            Ok(if bool::arbitrary(u)? {
                PayloadFormat::Utf8
            } else {
                PayloadFormat::Unspecified
            })
        })?;
        props.message_expiry_interval = opt(u, |u| u.arbitrary())?;
        props.content_type = opt(u, string)?;
        props.response_topic = opt(u, topic_name)?;
        props.correlation_data = opt(u, |u| binary(u, 16))?;
        props.user_properties = user_properties(u)?;
    }
    let payload = if props.payload_format_indicator == Some(PayloadFormat::Utf8) {
        owned(text(u, 16, &[])?)
    } else {
        binary(u, 32)?
    };
    Ok(Will {
        topic: topic_name(u)?,
        payload,
        qos: qos(u)?,
        retain: u.arbitrary()?,
        props,
    })
}

fn connect(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Connect<Bytes>> {
    let v5 = v.is_v5();
    let client_id = string(u)?;
    let mut c = Connect::new(v, client_id);
    c.clean_start = u.arbitrary()?;
    c.keep_alive = u.arbitrary()?;
    c.bridge = !v5 && u.arbitrary()?;
    if v5 {
        let p = &mut c.props;
        p.session_expiry_interval = opt(u, |u| u.arbitrary())?;
        p.receive_maximum = opt(u, nz16)?;
        p.maximum_packet_size = opt(u, nz32)?;
        p.topic_alias_maximum = opt(u, |u| u.arbitrary())?;
        p.request_response_information = opt(u, |u| u.arbitrary())?;
        p.request_problem_information = opt(u, |u| u.arbitrary())?;
        p.authentication_method = opt(u, string)?;
        p.authentication_data = opt(u, |u| binary(u, 16))?;
        p.user_properties = user_properties(u)?;
    }
    c.will = opt(u, |u| will(u, v5))?;
    c.username = opt(u, string)?;
    c.password = opt(u, |u| binary(u, 16))?;
    if !v5 && c.username.is_none() {
        c.password = None;
    }
    Ok(c)
}

fn connack(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<ConnAck<Bytes>> {
    let reason = if v.is_v5() {
        reason_for(u, PacketType::ConnAck)?
    } else {
        ReasonCode::from_v311_connack(u.int_in_range(0..=5)?).unwrap_or(ReasonCode::SUCCESS)
    };
    let present = !reason.is_error() && v != ProtocolVersion::V31 && u.arbitrary()?;
    let mut c = ConnAck::new(present, reason);
    if v.is_v5() {
        let p = &mut c.props;
        p.session_expiry_interval = opt(u, |u| u.arbitrary())?;
        p.receive_maximum = opt(u, nz16)?;
        p.maximum_qos = opt(u, |u| Ok(*u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce])?))?;
        p.retain_available = opt(u, |u| u.arbitrary())?;
        p.maximum_packet_size = opt(u, nz32)?;
        p.assigned_client_identifier = opt(u, string)?;
        p.topic_alias_maximum = opt(u, |u| u.arbitrary())?;
        p.reason_string = opt(u, string)?;
        p.wildcard_subscription_available = opt(u, |u| u.arbitrary())?;
        p.subscription_identifiers_available = opt(u, |u| u.arbitrary())?;
        p.shared_subscription_available = opt(u, |u| u.arbitrary())?;
        p.server_keep_alive = opt(u, |u| u.arbitrary())?;
        p.response_information = opt(u, string)?;
        p.server_reference = opt(u, string)?;
        p.authentication_method = opt(u, string)?;
        p.authentication_data = opt(u, |u| binary(u, 16))?;
        p.user_properties = user_properties(u)?;
    }
    Ok(c)
}

/// A PUBLISH valid under `v`.
pub fn publish(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Publish<Bytes>> {
    let topic = topic_name(u)?;
    let mut p = Publish::new(topic, Bytes::new());
    p.qos = QosPid::from_qos(qos(u)?, packet_id(u)?);
    p.dup = p.qos != QosPid::AtMostOnce && u.arbitrary()?;
    p.retain = u.arbitrary()?;
    if v.is_v5() {
        let pr = &mut p.props;
        pr.payload_format_indicator = opt(u, |u| {
            Ok(if bool::arbitrary(u)? {
                PayloadFormat::Utf8
            } else {
                PayloadFormat::Unspecified
            })
        })?;
        pr.message_expiry_interval = opt(u, |u| u.arbitrary())?;
        pr.topic_alias = opt(u, nz16)?;
        pr.response_topic = opt(u, topic_name)?;
        pr.correlation_data = opt(u, |u| binary(u, 16))?;
        pr.subscription_identifiers = (0..u.int_in_range(0..=2)?)
            .map(|_| sub_id(u))
            .collect::<Result<_>>()?;
        pr.content_type = opt(u, string)?;
        pr.user_properties = user_properties(u)?;
        if pr.topic_alias.is_some() && u.arbitrary()? {
            p.topic = None;
        }
    }
    p.payload = if p.props.payload_format_indicator == Some(PayloadFormat::Utf8) {
        owned(text(u, 64, &[])?)
    } else {
        binary(u, 256)?
    };
    Ok(p)
}

fn ack(u: &mut Unstructured<'_>, t: PacketType, v: ProtocolVersion) -> Result<Ack<Bytes>> {
    let mut a = Ack::new(packet_id(u)?);
    if v.is_v5() {
        a.reason = reason_for(u, t)?;
        a.props.reason_string = opt(u, string)?;
        a.props.user_properties = user_properties(u)?;
    }
    Ok(a)
}

fn suback(u: &mut Unstructured<'_>, t: PacketType, v: ProtocolVersion) -> Result<SubAck<Bytes>> {
    let n = u.int_in_range(1..=4)?;
    let mut reasons = Vec::new();
    for _ in 0..n {
        reasons.push(match v {
            ProtocolVersion::V5 => reason_for(u, t)?,
            ProtocolVersion::V311 => ReasonCode(*u.choose(&[0u8, 1, 2, 0x80])?),
            ProtocolVersion::V31 => ReasonCode(u.int_in_range(0..=2)?),
        });
    }
    if !v.is_v5() && t == PacketType::UnsubAck {
        reasons.clear();
    }
    let mut props = SubAckProps::default();
    if v.is_v5() {
        props.reason_string = opt(u, string)?;
        props.user_properties = user_properties(u)?;
    }
    Ok(SubAck {
        id: packet_id(u)?,
        props,
        reasons,
    })
}

fn subscribe(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Subscribe<Bytes>> {
    let n = u.int_in_range(1..=4)?;
    let mut filters = Vec::new();
    for _ in 0..n {
        let f = topic_filter(u)?;
        let mut o = SubscriptionOptions::new(qos(u)?);
        if v.is_v5() {
            o.no_local = !f.is_shared() && u.arbitrary()?;
            o.retain_as_published = u.arbitrary()?;
            o.retain_handling = *u.choose(&[
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendAtSubscribeIfNew,
                RetainHandling::DoNotSend,
            ])?;
        }
        filters.push((f, o));
    }
    let mut props = SubscribeProps::default();
    if v.is_v5() {
        props.subscription_identifier = opt(u, sub_id)?;
        props.user_properties = user_properties(u)?;
    }
    Ok(Subscribe {
        id: packet_id(u)?,
        props,
        filters,
    })
}

fn unsubscribe(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Unsubscribe<Bytes>> {
    let n = u.int_in_range(1..=4)?;
    let filters = (0..n).map(|_| topic_filter(u)).collect::<Result<_>>()?;
    let mut props = UnsubscribeProps::default();
    if v.is_v5() {
        props.user_properties = user_properties(u)?;
    }
    Ok(Unsubscribe {
        id: packet_id(u)?,
        props,
        filters,
    })
}

fn disconnect(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Disconnect<Bytes>> {
    let mut d = Disconnect::default();
    if v.is_v5() {
        d.reason = reason_for(u, PacketType::Disconnect)?;
        d.props.session_expiry_interval = opt(u, |u| u.arbitrary())?;
        d.props.reason_string = opt(u, string)?;
        d.props.server_reference = opt(u, string)?;
        d.props.user_properties = user_properties(u)?;
    }
    Ok(d)
}

fn auth(u: &mut Unstructured<'_>) -> Result<Auth<Bytes>> {
    let props = AuthProps {
        authentication_method: opt(u, string)?,
        authentication_data: opt(u, |u| binary(u, 16))?,
        reason_string: opt(u, string)?,
        user_properties: user_properties(u)?,
    };
    let reason = reason_for(u, PacketType::Auth)?;
    Ok(Auth { reason, props })
}

/// Any packet valid under `v`.
pub fn packet(u: &mut Unstructured<'_>, v: ProtocolVersion) -> Result<Packet<Bytes>> {
    let max_kind = if v.is_v5() { 15 } else { 14 };
    let t = PacketType::from_nibble(u.int_in_range(1..=max_kind)?).unwrap_or(PacketType::PingReq);
    Ok(match t {
        PacketType::Connect => Packet::Connect(alloc::boxed::Box::new(connect(u, v)?)),
        PacketType::ConnAck => Packet::ConnAck(alloc::boxed::Box::new(connack(u, v)?)),
        PacketType::Publish => Packet::Publish(publish(u, v)?),
        PacketType::PubAck => Packet::PubAck(ack(u, t, v)?),
        PacketType::PubRec => Packet::PubRec(ack(u, t, v)?),
        PacketType::PubRel => Packet::PubRel(ack(u, t, v)?),
        PacketType::PubComp => Packet::PubComp(ack(u, t, v)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe(u, v)?),
        PacketType::SubAck => Packet::SubAck(suback(u, t, v)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe(u, v)?),
        PacketType::UnsubAck => Packet::UnsubAck(suback(u, t, v)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(disconnect(u, v)?),
        PacketType::Auth => Packet::Auth(auth(u)?),
    })
}
