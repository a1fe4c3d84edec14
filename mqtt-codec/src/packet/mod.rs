//! The MQTT control packets, one module per packet family, and the fixed header.

mod ack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;

use alloc::boxed::Box;

use bytes::{BufMut, Bytes};

pub use ack::Ack;
pub use connect::{ConnAck, Connect, Will};
pub use disconnect::{Auth, Disconnect};
pub use publish::Publish;
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use crate::error::{DecodeError, EncodeError};
use crate::string::Storage;
use crate::types::{PacketType, ProtocolVersion};
use crate::wire::{
    put_variable_byte_integer, read_variable_byte_integer, variable_byte_integer_len, Reader,
    MAX_VARIABLE_BYTE_INTEGER,
};

/// The largest packet the protocol can express: a one-byte type, a four-byte
/// remaining length and 268,435,455 bytes after it.
pub const MAX_PACKET_SIZE: u32 = 1 + 4 + MAX_VARIABLE_BYTE_INTEGER;

/// An MQTT control packet of any version.
///
/// `B` is the storage of strings and payloads: [`Bytes`] (owned, sharing the
/// read buffer) or `&[u8]` (borrowed). CONNECT and CONNACK are boxed because
/// they are large and rare, which keeps the common packets small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<B = Bytes> {
    /// CONNECT (section 3.1).
    Connect(Box<Connect<B>>),
    /// CONNACK (section 3.2).
    ConnAck(Box<ConnAck<B>>),
    /// PUBLISH (section 3.3).
    Publish(Publish<B>),
    /// PUBACK (section 3.4).
    PubAck(Ack<B>),
    /// PUBREC (section 3.5).
    PubRec(Ack<B>),
    /// PUBREL (section 3.6).
    PubRel(Ack<B>),
    /// PUBCOMP (section 3.7).
    PubComp(Ack<B>),
    /// SUBSCRIBE (section 3.8).
    Subscribe(Subscribe<B>),
    /// SUBACK (section 3.9).
    SubAck(SubAck<B>),
    /// UNSUBSCRIBE (section 3.10).
    Unsubscribe(Unsubscribe<B>),
    /// UNSUBACK (section 3.11).
    UnsubAck(UnsubAck<B>),
    /// PINGREQ (section 3.12).
    PingReq,
    /// PINGRESP (section 3.13).
    PingResp,
    /// DISCONNECT (section 3.14).
    Disconnect(Disconnect<B>),
    /// AUTH (section 3.15), 5.0 only.
    Auth(Auth<B>),
}

/// The fixed header at the start of every packet (section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low four bits of the first byte.
    pub flags: u8,
    /// Bytes after the fixed header.
    pub remaining_length: u32,
    /// Bytes the fixed header itself takes (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Bytes of the whole packet.
    #[inline]
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length as usize
    }

    /// Parses the fixed header at the start of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed. Everything that can be judged
    /// from the header is judged here, before the body is buffered: the packet
    /// type for the version (`None`: nothing negotiated yet, so only CONNECT is
    /// accepted [MQTT-3.1.0-1]), the reserved flags [MQTT-2.1.3-1], and the size
    /// against `max_packet_size`, so an oversized packet is refused after at most
    /// five bytes.
    // Always inlined: called out of line, its `Result<Option<FixedHeader>, _>`
    // went through memory and was read back right after being written, a
    // store-forwarding stall on every packet.
    #[inline(always)]
    pub fn parse(
        buf: &[u8],
        version: Option<ProtocolVersion>,
        max_packet_size: u32,
    ) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type =
            PacketType::from_nibble(first >> 4).ok_or(DecodeError::ReservedPacketType)?;
        let flags = first & 0x0F;
        match version {
            None if packet_type != PacketType::Connect => {
                return Err(DecodeError::ExpectedConnect(packet_type))
            }
            Some(v) if packet_type == PacketType::Auth && !v.is_v5() => {
                return Err(DecodeError::PacketNotInVersion {
                    packet: packet_type,
                    version: v,
                })
            }
            _ => {}
        }
        if let Some(required) = packet_type.required_flags() {
            // MQTT 3.1 (section 2.1, DUP) re-delivers PUBREL, SUBSCRIBE and
            // UNSUBSCRIBE like PUBLISH, with the DUP bit set; 3.1.1 forbids it.
            let v31_dup =
                version == Some(ProtocolVersion::V31) && required == 0b0010 && flags == 0b1010;
            if flags != required && !v31_dup {
                return Err(DecodeError::InvalidFixedHeaderFlags {
                    packet: packet_type,
                    flags,
                });
            }
        }
        let Some((remaining_length, n)) = read_variable_byte_integer(&buf[1..])? else {
            return Ok(None);
        };
        let header = FixedHeader {
            packet_type,
            flags,
            remaining_length,
            header_len: 1 + n,
        };
        if header.packet_len() > max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                len: header.packet_len(),
                max: max_packet_size,
            });
        }
        Ok(Some(header))
    }
}

impl<B: Storage> Packet<B> {
    /// Decodes the body of one whole packet.
    ///
    /// `packet_bytes` holds exactly the packet whose header is `header` (as returned by
    /// [`FixedHeader::parse`] with the same `version`). Strings and payloads are
    /// slices of `packet_bytes`; nothing is copied.
    pub fn decode_packet_bytes(
        packet_bytes: B,
        header: &FixedHeader,
        version: Option<ProtocolVersion>,
    ) -> Result<Packet<B>, DecodeError> {
        let start = header.header_len;
        let end = header.packet_len();
        if packet_bytes.as_ref().len() < end {
            return Err(DecodeError::Truncated);
        }
        let t = header.packet_type;
        let v = match (version, t) {
            (_, PacketType::Connect) => {
                let mut r = Reader::new(&packet_bytes, start, end);
                return Ok(Packet::Connect(Box::new(Connect::read(&mut r)?)));
            }
            (Some(v), _) => v,
            (None, _) => return Err(DecodeError::ExpectedConnect(t)),
        };
        if t == PacketType::Publish {
            return Ok(Packet::Publish(Publish::read(
                packet_bytes,
                start,
                end,
                header.flags,
                v,
            )?));
        }
        let mut r = Reader::new(&packet_bytes, start, end);
        let r = &mut r;
        Ok(match t {
            PacketType::ConnAck => Packet::ConnAck(Box::new(ConnAck::read(r, v)?)),
            PacketType::PubAck => Packet::PubAck(Ack::read(r, t, v)?),
            PacketType::PubRec => Packet::PubRec(Ack::read(r, t, v)?),
            PacketType::PubRel => Packet::PubRel(Ack::read(r, t, v)?),
            PacketType::PubComp => Packet::PubComp(Ack::read(r, t, v)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::read(r, v)?),
            PacketType::SubAck => Packet::SubAck(SubAck::read(r, t, v)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::read(r, v)?),
            PacketType::UnsubAck => Packet::UnsubAck(SubAck::read(r, t, v)?),
            PacketType::PingReq => {
                r.finish()?;
                Packet::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Packet::PingResp
            }
            PacketType::Disconnect => Packet::Disconnect(Disconnect::read(r, v)?),
            PacketType::Auth => Packet::Auth(Auth::read(r)?),
            PacketType::Connect | PacketType::Publish => unreachable!("handled above"),
        })
    }
}

/// What encoding one packet takes: computed (and validated) before anything is written.
#[derive(Clone, Copy)]
struct Plan {
    first: u8,
    body_len: usize,
    props_len: usize,
    will_props_len: usize,
}

#[inline]
pub(crate) fn check_size(body_len: usize, max_packet_size: u32) -> Result<usize, EncodeError> {
    let total = 1 + variable_byte_integer_len(body_len.min(u32::MAX as usize) as u32) + body_len;
    if body_len > MAX_VARIABLE_BYTE_INTEGER as usize || total > max_packet_size as usize {
        return Err(EncodeError::PacketTooLarge {
            len: total,
            max: max_packet_size.min(MAX_PACKET_SIZE),
        });
    }
    Ok(total)
}

#[inline]
pub(crate) fn check_room(out: &impl BufMut, needed: usize) -> Result<(), EncodeError> {
    let available = out.remaining_mut();
    if available < needed {
        return Err(EncodeError::BufferTooSmall { needed, available });
    }
    Ok(())
}

impl<B: AsRef<[u8]>> Packet<B> {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    fn plan(&self, v: ProtocolVersion) -> Result<Plan, EncodeError> {
        let t = self.packet_type();
        let fixed_flags = t.required_flags().unwrap_or(0);
        let mut plan = Plan {
            first: ((t as u8) << 4) | fixed_flags,
            body_len: 0,
            props_len: 0,
            will_props_len: 0,
        };
        let (body_len, props_len) = match self {
            Packet::Connect(c) => {
                let (n, p, w) = c.body_len()?;
                plan.will_props_len = w;
                (n, p)
            }
            Packet::ConnAck(c) => c.body_len(v)?,
            Packet::Publish(p) => {
                plan.first = p.first_byte();
                let (head, props) = p.head_len(v)?;
                (head + p.payload.as_ref().len(), props)
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                a.body_len(t, v)?
            }
            Packet::Subscribe(s) => s.body_len(v)?,
            Packet::SubAck(s) | Packet::UnsubAck(s) => s.body_len(t, v)?,
            Packet::Unsubscribe(u) => u.body_len(v)?,
            Packet::PingReq | Packet::PingResp => (0, 0),
            Packet::Disconnect(d) => d.body_len(v)?,
            Packet::Auth(a) => {
                if !v.is_v5() {
                    return Err(EncodeError::NotInVersion {
                        what: "AUTH",
                        version: v,
                    });
                }
                a.body_len()?
            }
        };
        plan.body_len = body_len;
        plan.props_len = props_len;
        Ok(plan)
    }

    /// The exact number of bytes [`Packet::encode`] writes under version `v`.
    ///
    /// CONNECT is always encoded with its own `protocol`, whatever `v` says.
    pub fn encoded_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let plan = self.plan(v)?;
        check_size(plan.body_len, MAX_PACKET_SIZE)
    }

    /// Encodes the packet for version `v` into `out`, returning the bytes written.
    ///
    /// Properties are a 5.0 feature and are not written under 3.1 and 3.1.1;
    /// a value those versions cannot express (a failure reason code in an
    /// acknowledgement, AUTH) is an error. Nothing is written on error.
    #[inline]
    pub fn encode(&self, v: ProtocolVersion, out: &mut impl BufMut) -> Result<usize, EncodeError> {
        self.encode_limited(v, MAX_PACKET_SIZE, out)
    }

    /// Like [`Packet::encode`], refusing a packet over the peer's `max_packet_size`.
    #[inline]
    pub fn encode_limited(
        &self,
        v: ProtocolVersion,
        max_packet_size: u32,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        // PUBLISH, by far the most frequent, skips the general size planning.
        if let Packet::Publish(p) = self {
            return p.encode_packet(v, max_packet_size, out);
        }
        self.encode_other(v, max_packet_size, out)
    }

    /// Every packet but a PUBLISH: planned, checked, then written.
    fn encode_other(
        &self,
        v: ProtocolVersion,
        max_packet_size: u32,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        let plan = self.plan(v)?;
        let total = check_size(plan.body_len, max_packet_size)?;
        check_room(out, total)?;
        out.put_u8(plan.first);
        put_variable_byte_integer(out, plan.body_len as u32);
        self.write_body(v, out, &plan);
        Ok(total)
    }

    fn write_body(&self, v: ProtocolVersion, out: &mut impl BufMut, plan: &Plan) {
        let p = plan.props_len;
        match self {
            Packet::Connect(c) => c.write(out, p, plan.will_props_len),
            Packet::ConnAck(c) => c.write(v, out, p),
            // `encode_limited` hands PUBLISH to `Publish::encode_packet`.
            Packet::Publish(_) => unreachable!("PUBLISH is encoded by Publish::encode_packet"),
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                a.write(out, plan.body_len, p)
            }
            Packet::Subscribe(s) => s.write(v, out, p),
            Packet::SubAck(s) => s.write(PacketType::SubAck, v, out, p),
            Packet::UnsubAck(s) => s.write(PacketType::UnsubAck, v, out, p),
            Packet::Unsubscribe(u) => u.write(v, out, p),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => d.write(out, plan.body_len, p),
            Packet::Auth(a) => a.write(out, plan.body_len, p),
        }
    }
}

impl<B: AsRef<[u8]>> Publish<B> {
    /// Encodes everything of this PUBLISH except the payload, for a vectored
    /// write: send the bytes written here, then the payload itself, so a large
    /// payload is never copied. Returns the bytes written; the packet's full
    /// size is that plus the payload length.
    #[inline]
    pub fn encode_head(
        &self,
        v: ProtocolVersion,
        max_packet_size: u32,
        out: &mut impl BufMut,
    ) -> Result<usize, EncodeError> {
        let (head, props_len) = self.head_len(v)?;
        let body_len = head + self.payload.as_ref().len();
        let total = check_size(body_len, max_packet_size)?;
        let head_total = total - self.payload.as_ref().len();
        check_room(out, head_total)?;
        self.write_head(v, body_len, props_len, out);
        Ok(head_total)
    }

    /// The exact size of the encoded PUBLISH under version `v`, payload included.
    pub fn encoded_len(&self, v: ProtocolVersion) -> Result<usize, EncodeError> {
        let (head, _) = self.head_len(v)?;
        check_size(head + self.payload.as_ref().len(), MAX_PACKET_SIZE)
    }
}

impl<B> From<Publish<B>> for Packet<B> {
    fn from(p: Publish<B>) -> Self {
        Packet::Publish(p)
    }
}

impl<B> From<Connect<B>> for Packet<B> {
    fn from(c: Connect<B>) -> Self {
        Packet::Connect(Box::new(c))
    }
}

impl<B> From<ConnAck<B>> for Packet<B> {
    fn from(c: ConnAck<B>) -> Self {
        Packet::ConnAck(Box::new(c))
    }
}

impl<B> From<Subscribe<B>> for Packet<B> {
    fn from(s: Subscribe<B>) -> Self {
        Packet::Subscribe(s)
    }
}

impl<B> From<Unsubscribe<B>> for Packet<B> {
    fn from(u: Unsubscribe<B>) -> Self {
        Packet::Unsubscribe(u)
    }
}

impl<B> From<Disconnect<B>> for Packet<B> {
    fn from(d: Disconnect<B>) -> Self {
        Packet::Disconnect(d)
    }
}

impl<B> From<Auth<B>> for Packet<B> {
    fn from(a: Auth<B>) -> Self {
        Packet::Auth(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_256_megabyte_announcement_is_refused_after_five_bytes() {
        let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_eq!(
            FixedHeader::parse(&header, Some(ProtocolVersion::V311), 1024 * 1024),
            Err(DecodeError::PacketTooLarge {
                len: 5 + 268_435_455,
                max: 1024 * 1024
            })
        );
    }

    #[test]
    fn encoding_into_a_full_fixed_buffer_writes_nothing() {
        let mut buf = [0u8; 1];
        let mut out = &mut buf[..];
        let p: Packet<&[u8]> = Packet::PingReq;
        assert_eq!(
            p.encode(ProtocolVersion::V311, &mut out),
            Err(EncodeError::BufferTooSmall {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(buf, [0]);
    }

    #[test]
    fn packet_size_limits_are_checked_before_writing() {
        let payload = alloc::vec![0u8; 100];
        let p = Packet::Publish(Publish::new(
            crate::TopicName::new(&b"t"[..]).unwrap(),
            &payload[..],
        ));
        let mut out = alloc::vec::Vec::new();
        assert_eq!(
            p.encode_limited(ProtocolVersion::V5, 50, &mut out),
            Err(EncodeError::PacketTooLarge { len: 106, max: 50 })
        );
        assert!(out.is_empty());
    }
}
