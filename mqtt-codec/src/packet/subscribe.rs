//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (sections 3.8 to 3.11).

use alloc::vec::Vec;

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{block_len, SubAckProps, SubscribeProps, UnsubscribeProps};
use crate::reason::ReasonCode;
use crate::string::Storage;
use crate::topic::TopicFilter;
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS};
use crate::wire::{put_prefixed, Reader};

/// When retained messages are sent for a new subscription (section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not already exist.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry (section 3.8.3.1). Under 3.1 and
/// 3.1.1 only `qos` is on the wire; the other fields are ignored when encoding
/// and default when decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the server may deliver with on this subscription.
    pub qos: QoS,
    /// No Local: do not send the client its own publications.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// When to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with the given maximum QoS and 5.0 defaults otherwise.
    pub fn new(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn from_byte(b: u8, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if v.is_v5() { 0b1100_0000 } else { 0b1111_1100 };
        if b & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(b));
        }
        let qos = QoS::from_u8(b & 0b11).ok_or(DecodeError::InvalidSubscriptionQoS(v))?;
        let retain_handling = match (b >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0b0100 != 0,
            retain_as_published: b & 0b1000 != 0,
            retain_handling,
        })
    }

    fn to_byte(self, v: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if v.is_v5() {
            b |= (u8::from(self.no_local) << 2)
                | (u8::from(self.retain_as_published) << 3)
                | ((self.retain_handling as u8) << 4);
        }
        b
    }
}

/// SUBSCRIBE: one or more subscriptions to create or replace (section 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe<B = Bytes> {
    /// Packet identifier, echoed in SUBACK.
    pub id: PacketId,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: SubscribeProps<B>,
    /// The filters and their options, at least one [MQTT-3.8.3-3].
    pub filters: Vec<(TopicFilter<B>, SubscriptionOptions)>,
}

/// UNSUBSCRIBE: subscriptions to remove (section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe<B = Bytes> {
    /// Packet identifier, echoed in UNSUBACK.
    pub id: PacketId,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: UnsubscribeProps<B>,
    /// The filters to remove, at least one [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter<B>>,
}

/// SUBACK (section 3.9) and UNSUBACK (section 3.11): one reason code per filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck<B = Bytes> {
    /// Packet identifier of the SUBSCRIBE or UNSUBSCRIBE answered.
    pub id: PacketId,
    /// 5.0 properties; empty under 3.1 and 3.1.1.
    pub props: SubAckProps<B>,
    /// One code per filter, in order. For SUBACK, the granted QoS (0x00 to 0x02)
    /// or a failure. For UNSUBACK under 3.1 and 3.1.1 this is empty: those
    /// versions carry no per-filter result.
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBACK has the same shape as SUBACK.
pub type UnsubAck<B = Bytes> = SubAck<B>;

/// Most entries preallocated for a SUBSCRIBE or UNSUBSCRIBE; past that
/// (hundreds of filters in one packet) the vector grows as usual. The bound
/// keeps a large malformed packet from reserving much before it is refused.
const MAX_PREALLOCATED: usize = 256;

/// The number of entries in a SUBSCRIBE or UNSUBSCRIBE payload `b`, each a
/// length-prefixed filter followed by `trailing` bytes (the options byte),
/// found by hopping over the length prefixes without validating anything,
/// and capped at [`MAX_PREALLOCATED`]. The filter vector is sized with it:
/// grown one push at a time it was reallocated three times for ten filters
/// (about a tenth of a SUBSCRIBE's decoding), and sized from the remaining
/// length alone it would overshoot many times for typical filters.
fn count_entries(b: &[u8], trailing: usize) -> usize {
    let mut n = 0;
    let mut at = 0;
    while n < MAX_PREALLOCATED {
        let Some(&[hi, lo]) = b.get(at..at + 2) else {
            break;
        };
        at += 2 + usize::from(u16::from_be_bytes([hi, lo])) + trailing;
        n += 1;
    }
    n
}

impl<B: Storage> Subscribe<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let id = r.packet_id()?;
        let props = if v.is_v5() {
            SubscribeProps::read(r)?
        } else {
            SubscribeProps::default()
        };
        let mut filters = Vec::with_capacity(count_entries(r.rest(), 1));
        while !r.is_empty() {
            let filter = r.topic_filter()?;
            let opts = SubscriptionOptions::from_byte(r.u8()?, v)?;
            if opts.no_local && filter.is_shared() {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            filters.push((filter, opts));
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
        }
        Ok(Subscribe { id, props, filters })
    }
}

impl<B: AsRef<[u8]>> Subscribe<B> {
    pub(crate) fn body_len(&self, v: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Subscribe));
        }
        let mut n = 2;
        let mut p = 0;
        if v.is_v5() {
            p = self.props.len()?;
            n += block_len(p);
        }
        n += self.filters.iter().map(|(f, _)| 3 + f.len()).sum::<usize>();
        Ok((n, p))
    }

    pub(crate) fn write(&self, v: ProtocolVersion, out: &mut impl BufMut, props_len: usize) {
        out.put_u16(self.id.get());
        if v.is_v5() {
            self.props.write(out, props_len);
        }
        for (f, o) in &self.filters {
            put_prefixed(out, f.as_bytes());
            out.put_u8(o.to_byte(v));
        }
    }
}

impl<B: Storage> Unsubscribe<B> {
    pub(crate) fn read(r: &mut Reader<'_, B>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let id = r.packet_id()?;
        let props = if v.is_v5() {
            UnsubscribeProps::read(r)?
        } else {
            UnsubscribeProps::default()
        };
        let mut filters = Vec::with_capacity(count_entries(r.rest(), 0));
        while !r.is_empty() {
            filters.push(r.topic_filter()?);
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
        }
        Ok(Unsubscribe { id, props, filters })
    }
}

impl<B: AsRef<[u8]>> Unsubscribe<B> {
    pub(crate) fn body_len(&self, v: ProtocolVersion) -> Result<(usize, usize), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe));
        }
        let mut n = 2;
        let mut p = 0;
        if v.is_v5() {
            p = self.props.len()?;
            n += block_len(p);
        }
        n += self.filters.iter().map(|f| 2 + f.len()).sum::<usize>();
        Ok((n, p))
    }

    pub(crate) fn write(&self, v: ProtocolVersion, out: &mut impl BufMut, props_len: usize) {
        out.put_u16(self.id.get());
        if v.is_v5() {
            self.props.write(out, props_len);
        }
        for f in &self.filters {
            put_prefixed(out, f.as_bytes());
        }
    }
}

impl<B: Storage> SubAck<B> {
    pub(crate) fn read(
        r: &mut Reader<'_, B>,
        packet: PacketType,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let id = r.packet_id()?;
        let mut ack = SubAck {
            id,
            props: SubAckProps::default(),
            reasons: Vec::new(),
        };
        if v.is_v5() {
            ack.props = SubAckProps::read_for(r, packet)?;
        } else if packet == PacketType::UnsubAck {
            // 3.1/3.1.1 UNSUBACK is the packet identifier alone.
            r.finish()?;
            return Ok(ack);
        }
        ack.reasons.reserve(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            let valid = match v {
                ProtocolVersion::V5 => ReasonCode(code).valid_for(packet),
                // 3.1.1 adds the 0x80 failure code; 3.1 has only granted QoS values.
                ProtocolVersion::V311 => code <= 2 || code == 0x80,
                ProtocolVersion::V31 => code <= 2,
            };
            if !valid {
                return Err(DecodeError::InvalidReasonCode { packet, code });
            }
            ack.reasons.push(ReasonCode(code));
        }
        Ok(ack)
    }
}

impl<B: AsRef<[u8]>> SubAck<B> {
    pub(crate) fn body_len(
        &self,
        packet: PacketType,
        v: ProtocolVersion,
    ) -> Result<(usize, usize), EncodeError> {
        if !v.is_v5() && packet == PacketType::UnsubAck {
            return Ok((2, 0));
        }
        for r in &self.reasons {
            if !r.valid_for(packet) {
                return Err(EncodeError::InvalidReasonCode { packet, code: r.0 });
            }
            if v == ProtocolVersion::V31 && r.is_error() {
                return Err(EncodeError::NotInVersion {
                    what: "a SUBACK failure code",
                    version: v,
                });
            }
        }
        let mut n = 2 + self.reasons.len();
        let mut p = 0;
        if v.is_v5() {
            p = self.props.len()?;
            n += block_len(p);
        }
        Ok((n, p))
    }

    pub(crate) fn write(
        &self,
        packet: PacketType,
        v: ProtocolVersion,
        out: &mut impl BufMut,
        props_len: usize,
    ) {
        out.put_u16(self.id.get());
        if v.is_v5() {
            self.props.write(out, props_len);
            for r in &self.reasons {
                out.put_u8(r.0);
            }
        } else if packet == PacketType::SubAck {
            for r in &self.reasons {
                out.put_u8(r.to_v311_suback());
            }
        }
    }
}
