//! PUBLISH (section 3.3).

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::packet::connect::check_payload_format;
use crate::properties::{block_len, PublishProps};
use crate::string::Storage;
use crate::topic::TopicName;
use crate::types::{PacketId, ProtocolVersion, QoS, QosPid};
use crate::wire::{put_prefixed, Reader};

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
    /// Decodes a PUBLISH from `frame[start..end]`, taking the frame by value so the
    /// payload reuses its handle.
    pub(crate) fn read(
        frame: B,
        start: usize,
        end: usize,
        flags: u8,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::DupWithQoS0);
        }
        let mut r = Reader::new(&frame, start, end);
        let topic = r.topic_name_or_empty()?;
        let qos = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id()?),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id()?),
        };
        let props = if v.is_v5() {
            let props = PublishProps::read(&mut r)?;
            if topic.is_none() && props.topic_alias.is_none() {
                return Err(DecodeError::MissingTopic);
            }
            props
        } else {
            if topic.is_none() {
                return Err(DecodeError::InvalidTopicName(
                    crate::topic::TopicError::Empty,
                ));
            }
            PublishProps::default()
        };
        let payload_start = r.position();
        let mut payload = frame.into_tail(payload_start);
        if payload.as_ref().len() > end - payload_start {
            payload = payload.slice(0..end - payload_start);
        }
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

    /// Writes everything after the fixed header except the payload.
    pub(crate) fn write_head(&self, v: ProtocolVersion, out: &mut impl BufMut, props_len: usize) {
        match &self.topic {
            Some(t) => put_prefixed(out, t.as_bytes()),
            None => out.put_u16(0),
        }
        if let Some(id) = self.qos.packet_id() {
            out.put_u16(id.get());
        }
        if v.is_v5() {
            self.props.write(out, props_len);
        }
    }
}
