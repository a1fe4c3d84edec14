//! The outgoing packet queue of one connection, in a compact form.
//!
//! A PUBLISH of a message is queued as a reference to the (shared) message
//! and the few fields that differ per delivery, and encoded straight from the
//! message when it goes out: no `Publish` value is built, moved or dropped
//! per delivery, and no reference count is touched for its topic and
//! payload. Plain acknowledgements are a few bytes; anything else is boxed,
//! so the queue's slots stay small.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::num::NonZeroU16;

use bytes::BufMut;
use mqtt_codec::{
    Ack, EncodeError, Packet, PacketId, PacketType, Publish, PublishProps, QosPid, ReasonCode,
    SubscriptionId,
};

use crate::message::{DeliveryOptions, Message};
use crate::queue::ElasticQueue;
use crate::time::Instant;

/// A PUBLISH waiting to be sent: the message and what this delivery adds.
#[derive(Debug)]
pub(crate) struct OutPublish {
    pub(crate) msg: Arc<Message>,
    pub(crate) qos: QosPid,
    pub(crate) retain: bool,
    pub(crate) dup: bool,
    /// The topic alias to send (5.0), and whether it replaces the topic.
    pub(crate) alias: Option<NonZeroU16>,
    pub(crate) alias_only: bool,
    /// The remaining Message Expiry Interval, fixed when queued.
    pub(crate) expiry: Option<u32>,
    pub(crate) subscription_identifiers: Vec<SubscriptionId>,
    /// Properties go out under 5.0 only.
    pub(crate) v5: bool,
}

impl OutPublish {
    /// The PUBLISH of `msg` for one delivery (`opts`), sent now (the
    /// remaining expiry is fixed here), without a topic alias.
    pub(crate) fn new(
        msg: &Arc<Message>,
        qos: QosPid,
        opts: &DeliveryOptions,
        dup: bool,
        now: Instant,
        v5: bool,
    ) -> OutPublish {
        OutPublish {
            msg: msg.clone(),
            qos,
            retain: opts.retain,
            dup,
            alias: None,
            alias_only: false,
            expiry: msg.remaining_expiry(now),
            subscription_identifiers: opts.subscription_identifiers.clone(),
            v5,
        }
    }

    fn props<B>(&self) -> PublishProps<B> {
        let mut props = PublishProps::default();
        if self.v5 {
            props.payload_format_indicator = self.msg.props.payload_format_indicator;
            props.message_expiry_interval = self.expiry;
            props.topic_alias = self.alias;
            props.subscription_identifiers = self.subscription_identifiers.clone();
        }
        props
    }

    /// The PUBLISH, borrowing the message's topic, payload and properties.
    fn borrowed(&self) -> Publish<&[u8]> {
        let m = &*self.msg;
        let mut props = self.props();
        if self.v5 {
            props.content_type = m.props.content_type.as_ref().map(|s| s.borrowed());
            props.response_topic = m.props.response_topic.as_ref().map(|t| t.borrowed());
            props.correlation_data = m.props.correlation_data.as_deref();
            props.user_properties = m
                .props
                .user_properties
                .iter()
                .map(|(k, v)| (k.borrowed(), v.borrowed()))
                .collect();
        }
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: (!self.alias_only).then(|| m.topic.borrowed()),
            props,
            payload: &m.payload,
        }
    }

    /// The PUBLISH as an owned packet (sharing the message's buffers).
    fn owned(&self) -> Publish {
        let m = &*self.msg;
        let mut props = self.props();
        if self.v5 {
            props.content_type = m.props.content_type.clone();
            props.response_topic = m.props.response_topic.clone();
            props.correlation_data = m.props.correlation_data.clone();
            props.user_properties = m.props.user_properties.clone();
        }
        Publish {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: (!self.alias_only).then(|| m.topic.clone()),
            props,
            payload: m.payload.clone(),
        }
    }
}

/// One entry of the outgoing queue.
#[derive(Debug)]
pub(crate) enum Tx {
    /// A PUBLISH of a message.
    Publish(OutPublish),
    /// PUBACK, PUBREC, PUBREL or PUBCOMP without properties.
    Ack(PacketType, PacketId, ReasonCode),
    /// PINGREQ or PINGRESP.
    Ping(PacketType),
    /// Any other packet.
    Packet(Box<Packet>),
}

impl From<Packet> for Tx {
    fn from(p: Packet) -> Tx {
        let plain = |a: &Ack| a.props.is_empty();
        match p {
            Packet::PubAck(a) if plain(&a) => Tx::Ack(PacketType::PubAck, a.id, a.reason),
            Packet::PubRec(a) if plain(&a) => Tx::Ack(PacketType::PubRec, a.id, a.reason),
            Packet::PubRel(a) if plain(&a) => Tx::Ack(PacketType::PubRel, a.id, a.reason),
            Packet::PubComp(a) if plain(&a) => Tx::Ack(PacketType::PubComp, a.id, a.reason),
            Packet::PingReq => Tx::Ping(PacketType::PingReq),
            Packet::PingResp => Tx::Ping(PacketType::PingResp),
            other => Tx::Packet(Box::new(other)),
        }
    }
}

impl Tx {
    /// The packet, owned.
    pub(crate) fn into_packet(self) -> Packet {
        match self {
            Tx::Publish(o) => Packet::Publish(o.owned()),
            Tx::Ack(t, id, reason) => ack_packet(t, Ack::with_reason(id, reason)),
            Tx::Ping(PacketType::PingReq) => Packet::PingReq,
            Tx::Ping(_) => Packet::PingResp,
            Tx::Packet(p) => *p,
        }
    }

    /// A QoS 0 PUBLISH (counted against the QoS 0 bound while queued).
    pub(crate) fn is_qos0_publish(&self) -> bool {
        match self {
            Tx::Publish(o) => o.qos == QosPid::AtMostOnce,
            Tx::Packet(p) => matches!(&**p, Packet::Publish(pb) if pb.qos == QosPid::AtMostOnce),
            _ => false,
        }
    }

    /// Its size on the wire in version `v`.
    pub(crate) fn encoded_len(&self, v: mqtt_codec::ProtocolVersion) -> Result<usize, EncodeError> {
        match self {
            Tx::Publish(o) => o.borrowed().encoded_len(v),
            Tx::Ack(t, id, reason) => {
                ack_packet::<&[u8]>(*t, Ack::with_reason(*id, *reason)).encoded_len(v)
            }
            Tx::Ping(_) => Ok(2),
            Tx::Packet(p) => p.encoded_len(v),
        }
    }

    /// Encodes it like [`Packet::encode_limited`].
    pub(crate) fn encode_limited(
        &self,
        v: mqtt_codec::ProtocolVersion,
        max: u32,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        match self {
            Tx::Publish(o) => Packet::Publish(o.borrowed()).encode_limited(v, max, out),
            Tx::Ack(t, id, reason) => {
                ack_packet::<&[u8]>(*t, Ack::with_reason(*id, *reason)).encode_limited(v, max, out)
            }
            Tx::Ping(PacketType::PingReq) => Packet::<&[u8]>::PingReq.encode_limited(v, max, out),
            Tx::Ping(_) => Packet::<&[u8]>::PingResp.encode_limited(v, max, out),
            Tx::Packet(p) => p.encode_limited(v, max, out),
        }
    }
}

fn ack_packet<B>(t: PacketType, a: Ack<B>) -> Packet<B> {
    match t {
        PacketType::PubAck => Packet::PubAck(a),
        PacketType::PubRec => Packet::PubRec(a),
        PacketType::PubRel => Packet::PubRel(a),
        _ => Packet::PubComp(a),
    }
}

/// A packet ready to be encoded, as [`Connection::poll_frames`] hands it
/// out: a PUBLISH is a reference to its message (shared by every subscriber
/// it goes to) and what this delivery adds, and is encoded straight from the
/// message; other packets are small or boxed.
///
/// [`Connection::poll_frames`]: crate::Connection::poll_frames
#[derive(Debug)]
pub struct Frame(pub(crate) Tx);

impl Frame {
    /// Appends the packet's bytes in `version` to `out`, returning how many.
    /// The connection has checked the packet against the peer's limits.
    pub fn encode(
        &self,
        version: mqtt_codec::ProtocolVersion,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        self.0.encode_limited(version, u32::MAX, out)
    }

    /// The packet's size on the wire in `version`.
    pub fn encoded_len(&self, version: mqtt_codec::ProtocolVersion) -> Result<usize, EncodeError> {
        self.0.encoded_len(version)
    }

    /// The packet as a value (sharing the message's buffers).
    pub fn into_packet(self) -> Packet {
        self.0.into_packet()
    }
}

/// The outgoing queue: takes packets or queued publishes.
#[derive(Debug, Default)]
pub(crate) struct TxQueue(ElasticQueue<Tx>);

impl TxQueue {
    pub(crate) const fn new() -> Self {
        TxQueue(ElasticQueue::new())
    }

    pub(crate) fn push_back(&mut self, t: impl Into<Tx>) {
        self.0.push_back(t.into());
    }

    pub(crate) fn push_front(&mut self, t: impl Into<Tx>) {
        self.0.push_front(t.into());
    }

    pub(crate) fn pop_front(&mut self) -> Option<Tx> {
        self.0.pop_front()
    }

    pub(crate) fn front(&self) -> Option<&Tx> {
        self.0.front()
    }

    pub(crate) fn front_mut(&mut self) -> Option<&mut Tx> {
        self.0.front_mut()
    }

    pub(crate) fn back(&self) -> Option<&Tx> {
        self.0.back()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tx> {
        self.0.iter_mut()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn settle(&mut self) {
        self.0.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageProps;
    use bytes::{Bytes, BytesMut};
    use mqtt_codec::{ProtocolVersion, QoS, Str, TopicName};

    fn message() -> Arc<Message> {
        let mut m = Message::new(
            TopicName::from_static("a/b"),
            Bytes::from_static(b"payload"),
            QoS::AtLeastOnce,
            false,
        );
        m.props = MessageProps {
            content_type: Some(Str::from_static("text/plain")),
            response_topic: Some(TopicName::from_static("reply/here")),
            correlation_data: Some(Bytes::from_static(b"c1")),
            user_properties: alloc::vec![(Str::from_static("k"), Str::from_static("v"))],
            ..Default::default()
        };
        Arc::new(m)
    }

    fn out(alias: Option<u16>, alias_only: bool, v5: bool) -> OutPublish {
        OutPublish {
            msg: message(),
            qos: QosPid::from_qos(QoS::AtLeastOnce, PacketId::new(7).unwrap()),
            retain: true,
            dup: true,
            alias: alias.and_then(NonZeroU16::new),
            alias_only,
            expiry: Some(30),
            subscription_identifiers: alloc::vec![SubscriptionId::new(5).unwrap()],
            v5,
        }
    }

    #[test]
    fn a_queued_publish_encodes_like_the_owned_packet() {
        for (v, v5) in [(ProtocolVersion::V311, false), (ProtocolVersion::V5, true)] {
            // Aliases exist under 5.0 only (the session never sets one before).
            let aliases: &[(Option<u16>, bool)] = if v5 {
                &[(None, false), (Some(3), false), (Some(3), true)]
            } else {
                &[(None, false)]
            };
            for &(alias, only) in aliases {
                let t = Tx::Publish(out(alias, only, v5));
                let mut a = BytesMut::new();
                let n = t.encode_limited(v, u32::MAX, &mut a).unwrap();
                assert_eq!(t.encoded_len(v).unwrap(), n);
                let mut b = BytesMut::new();
                t.into_packet().encode(v, &mut b).unwrap();
                assert_eq!(a, b, "{v:?} alias {alias:?} only {only}");
            }
        }
    }

    #[test]
    fn plain_acks_and_pings_are_compact_and_encode_unchanged() {
        let id = PacketId::new(9).unwrap();
        let packets = [
            Packet::PubAck(Ack::new(id)),
            Packet::PubRec(Ack::with_reason(id, ReasonCode::NO_MATCHING_SUBSCRIBERS)),
            Packet::PubRel(Ack::new(id)),
            Packet::PubComp(Ack::with_reason(
                id,
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            )),
            Packet::PingReq,
            Packet::PingResp,
        ];
        for p in packets {
            let t = Tx::from(p.clone());
            assert!(!matches!(t, Tx::Packet(_)), "{p:?}");
            for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
                // Both refuse a failure reason under 3.1.1 alike.
                let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
                let ra = t.encode_limited(v, u32::MAX, &mut a);
                let rb = p.encode(v, &mut b);
                assert_eq!(ra, rb);
                assert_eq!(a, b);
            }
            assert_eq!(t.into_packet(), p);
        }
        assert!(core::mem::size_of::<Tx>() <= 80);
    }
}
