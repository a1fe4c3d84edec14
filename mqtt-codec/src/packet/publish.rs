//! PUBLISH (section 3.3).

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::packet::connect::check_payload_format;
use crate::packet::{check_room, check_size};
use crate::properties::{block_len, PublishProps};
use crate::string::Storage;
use crate::topic::TopicName;
use crate::types::{PacketId, ProtocolVersion, QoS, QosPid};
use crate::wire::Reader;

/// PUBLISH: an application message on its way (section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<B = Bytes> {
    /// DUP: this may be a re-delivery of an earlier attempt (always false at QoS 0).
    pub dup: bool,
    /// QoS and, for QoS 1 and 2, the packet identifier.
    pub qos: QosPid,
    /// RETAIN: the server keeps the message for future subscribers.
    pub retain: bool,
    /// The topic name. `None` only under 5.0 when a topic alias stands for it
    /// (sent as a zero-length topic, section 3.3.2.3.4).
    pub topic: Option<TopicName<B>>,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: PublishProps<B>,
    /// The application payload; with `B = Bytes` it shares the read buffer.
    pub payload: B,
}

impl<B> Publish<B> {
    /// A QoS 0 PUBLISH of `payload` to `topic`, not retained, without properties.
    pub fn new(topic: TopicName<B>, payload: B) -> Self {
        Publish {
            dup: false,
            qos: QosPid::AtMostOnce,
            retain: false,
            topic: Some(topic),
            props: PublishProps::default(),
            payload,
        }
    }

    /// The QoS level.
    pub fn qos_level(&self) -> QoS {
        self.qos.qos()
    }

    /// The packet identifier (QoS 1 and 2).
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos.packet_id()
    }
}

impl<B: Storage> Publish<B> {
    /// Decodes a PUBLISH from `packet_bytes[start..end]`, taking the packet's bytes by value so the
    /// payload reuses its handle.
    #[inline]
    pub(crate) fn read(
        packet_bytes: B,
        start: usize,
        end: usize,
        flags: u8,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        // `read_into` wants the packet's own bytes, nothing after them.
        let packet_bytes = if packet_bytes.as_ref().len() > end {
            packet_bytes.slice(0..end)
        } else {
            packet_bytes
        };
        Self::read_into(|| packet_bytes, start, flags, v, |p| p)
    }

    /// Decodes the PUBLISH that is the whole of the packet's bytes `packet_bytes()` returns
    /// (its body from `start` on) and hands it to `wrap`, whose result (a
    /// `Packet`, an `Option` of one, ...) is returned.
    ///
    /// A `Publish<Bytes>` is 232 bytes, 160 of them the 5.0 properties, and
    /// the decoders return it inside two or three enums. Built in one
    /// function and moved from there to the caller, it was copied several
    /// times (a `memmove` call each) and read back right after being written.
    /// Here, inlined into the decoder, the packet is assembled once, in the
    /// decoder's return value, from values held in registers: the fields
    /// read from the wire and, for the common packet without properties, a
    /// `PublishProps::default()` that is a handful of constant stores.
    ///
    /// The payload is the handle on the packet's bytes itself, advanced past
    /// the header. The bytes are never cut short here (`Publish::read` does
    /// that for longer ones): the out-of-line `slice` call would need the handle's address
    /// and keep it in memory.
    #[inline(always)]
    pub(crate) fn read_into<R>(
        packet_bytes: impl FnOnce() -> B,
        start: usize,
        flags: u8,
        v: ProtocolVersion,
        wrap: impl FnOnce(Self) -> R,
    ) -> Result<R, DecodeError> {
        // Made here, not by the caller, so that the handle is built where it
        // stays: passed in by value it was copied once more, with a
        // store-forwarding stall (a `Bytes::split_to` result is written field
        // by field and was read back 16 bytes at a time). First, so that a
        // decoder has split the packet off its buffer whatever happens next.
        let packet_bytes = packet_bytes();
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupWithQoS0);
        }
        let end = packet_bytes.as_ref().len();
        let mut r = Reader::new(&packet_bytes, start, end);
        let topic = r.topic_name_or_empty()?;
        let qos = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id()?),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id()?),
        };
        if v.is_v5() && r.peek_u8() != Some(0) {
            // Properties present (or the packet ends early: `read_props`
            // reports that as `PublishProps::read` always has).
            let at = r.position();
            return Self::read_props(packet_bytes, at, dup, qos, retain, topic).map(wrap);
        }
        // No properties: 3.1/3.1.1, or a 5.0 block of length 0.
        if v.is_v5() {
            r.skip(1);
            if topic.is_none() {
                return Err(DecodeError::MissingTopic);
            }
        } else if topic.is_none() {
            return Err(DecodeError::InvalidTopicName(
                crate::topic::TopicError::Empty,
            ));
        }
        let payload_start = r.position();
        let payload = packet_bytes.into_tail(payload_start);
        Ok(wrap(Publish {
            dup,
            qos,
            retain,
            topic,
            props: PublishProps::default(),
            payload,
        }))
    }

    /// The rest of a 5.0 PUBLISH (the whole of `packet_bytes`) that has properties,
    /// from the property length at `at` on. Out of line: it is the less
    /// common case and its property parser is large.
    #[inline(never)]
    fn read_props(
        packet_bytes: B,
        at: usize,
        dup: bool,
        qos: QosPid,
        retain: bool,
        topic: Option<TopicName<B>>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(&packet_bytes, at, packet_bytes.as_ref().len());
        let props = PublishProps::read(&mut r)?;
        if topic.is_none() && props.topic_alias.is_none() {
            return Err(DecodeError::MissingTopic);
        }
        let payload_start = r.position();
        let payload = packet_bytes.into_tail(payload_start);
        check_payload_format(props.payload_format_indicator, &payload)?;
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            props,
            payload,
        })
    }
}

impl<B: AsRef<[u8]>> Publish<B> {
    /// The fixed header's first byte.
    #[inline]
    pub(crate) fn first_byte(&self) -> u8 {
        let mut b = 0x30 | ((self.qos.qos() as u8) << 1);
        // DUP is meaningless at QoS 0 and must be 0 there [MQTT-3.3.1-2].
        if self.dup && self.qos != QosPid::AtMostOnce {
            b |= 0b1000;
        }
        if self.retain {
            b |= 1;
        }
        b
    }

    /// Size of everything after the fixed header except the payload, and the property length.
    #[inline]
    pub(crate) fn head_len(&self, v: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        let topic_len = match &self.topic {
            Some(t) => t.len(),
            None if v.is_v5() && self.props.topic_alias.is_some() => 0,
            None => return Err(EncodeError::MissingTopic),
        };
        let mut n = 2 + topic_len;
        if self.qos != QosPid::AtMostOnce {
            n += 2;
        }
        let mut props_len = 0;
        if v.is_v5() {
            props_len = self.props.len()?;
            n += block_len(props_len);
        }
        Ok((n, props_len))
    }

    /// Writes the fixed header (`body_len` is its remaining length) and
    /// everything after it except the payload; `props_len` is what
    /// [`Publish::head_len`] returned.
    ///
    /// Each `BufMut` call checks the room left and, for a `BytesMut`, copies
    /// through `memcpy`: so the small fields are gathered in a register and
    /// written with one fixed-size copy per group (which compiles to a plain
    /// store), and the only variable-length copies are the topic and, in the
    /// caller, the payload. (A byte array filled one index at a time would be
    /// read back from the stack with a store-forwarding stall.)
    #[inline]
    pub(crate) fn write_head(
        &self,
        v: ProtocolVersion,
        body_len: usize,
        props_len: usize,
        out: &mut impl BufMut,
    ) {
        let topic = self.topic.as_ref().map_or(&[][..], |t| t.as_bytes());
        // First byte, remaining length (1 to 4 bytes; the caller checked the
        // size), topic length: 4 to 7 bytes, little-endian in `head`.
        let mut head = u64::from(self.first_byte());
        let mut len = 1;
        let mut rest = body_len as u32;
        loop {
            let byte = rest & 0x7F;
            rest >>= 7;
            let more = if rest == 0 { 0 } else { 0x80 };
            head |= u64::from(byte | more) << (8 * len);
            len += 1;
            if more == 0 || len == 5 {
                break;
            }
        }
        head |= u64::from((topic.len() as u16).swap_bytes()) << (8 * len);
        let head = head.to_le_bytes();
        match len {
            2 => out.put_slice(&head[..4]),
            3 => out.put_slice(&head[..5]),
            4 => out.put_slice(&head[..6]),
            _ => out.put_slice(&head[..7]),
        }
        out.put_slice(topic);
        // Packet identifier, and under 5.0 the property length (a single 0
        // byte without properties, the common case).
        let empty_props = v.is_v5() && props_len == 0;
        match (self.qos.packet_id(), empty_props) {
            (Some(id), true) => {
                let [hi, lo] = id.get().to_be_bytes();
                out.put_slice(&[hi, lo, 0]);
            }
            (Some(id), false) => out.put_u16(id.get()),
            (None, true) => out.put_u8(0),
            (None, false) => {}
        }
        if v.is_v5() && !empty_props {
            self.props.write(out, props_len);
        }
    }

    /// Encodes the whole packet: [`Packet::encode_limited`] for a PUBLISH.
    ///
    /// [`Packet::encode_limited`]: crate::Packet::encode_limited
    #[inline]
    pub(crate) fn encode_packet(
        &self,
        v: ProtocolVersion,
        max_packet_size: u32,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        let (head, props_len) = self.head_len(v)?;
        let payload = self.payload.as_ref();
        let body_len = head + payload.len();
        let total = check_size(body_len, max_packet_size)?;
        check_room(out, total)?;
        self.write_head(v, body_len, props_len, out);
        out.put_slice(payload);
        Ok(total)
    }
}
