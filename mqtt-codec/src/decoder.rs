//! Streaming decoding: whole packets out of the bytes read so far.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{Ack, FixedHeader, Packet, Publish, MAX_PACKET_SIZE};
use crate::string::Storage;
use crate::types::{PacketId, PacketType, ProtocolVersion};

/// A packet borrowed from the caller's buffer, and the bytes it took there.
pub type Borrowed<'a> = (Packet<&'a [u8]>, usize);

/// Splits a byte stream into packets.
///
/// Feed it the bytes read so far; it returns one whole packet, or `None`
/// ("need more bytes") without consuming anything, or an error. Splitting the
/// same stream at any byte positions yields the same packets.
///
/// A decoder created with [`Decoder::new`] reads what a client sends (the
/// server side): CONNECT first, whose version it adopts, and never a packet
/// only a server sends ([`DecodeError::ServerOnlyPacket`]). A client creates
/// it with [`Decoder::with_version`], the version it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
    /// Reads a client's packets: those only a server sends are refused.
    from_client: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A server's decoder: it accepts only CONNECT until one has been
    /// decoded, then what a client may send, with no size limit below the
    /// protocol's own.
    pub const fn new() -> Self {
        Decoder {
            version: None,
            max_packet_size: MAX_PACKET_SIZE,
            from_client: true,
        }
    }

    /// A decoder for a connection whose version is already known, taking
    /// packets of every type (a client's decoder, or a dissector's).
    pub const fn with_version(version: ProtocolVersion) -> Self {
        Decoder {
            version: Some(version),
            max_packet_size: MAX_PACKET_SIZE,
            from_client: false,
        }
    }

    /// Sets the largest packet (in bytes, fixed header included) this decoder
    /// accepts. Bigger packets are refused from their fixed header alone, so
    /// at most this much is ever buffered for one packet.
    pub const fn with_max_packet_size(mut self, max_packet_size: u32) -> Self {
        self.max_packet_size = max_packet_size;
        self
    }

    /// Changes the maximum packet size.
    pub fn set_max_packet_size(&mut self, max_packet_size: u32) {
        self.max_packet_size = max_packet_size;
    }

    /// The maximum packet size in force.
    pub const fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// The connection's version, once known.
    pub const fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Fixes the connection's version.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// Parses the fixed header at the front of `buf`. A server's decoder
    /// refuses a packet only a server sends from its first byte, before its
    /// flags or body: it is a Protocol Error whatever follows (section
    /// 2.1.2), as Mosquitto answers.
    #[inline(always)]
    fn header(&self, buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        if let (true, Some(_), Some(&first)) = (self.from_client, self.version, buf.first()) {
            if let Some(t) = PacketType::from_nibble(first >> 4) {
                if t.sent_by_server_only() {
                    return Err(DecodeError::ServerOnlyPacket(t));
                }
            }
        }
        FixedHeader::parse(buf, self.version, self.max_packet_size)
    }

    fn adopt(&mut self, p: &Packet<impl AsRef<[u8]>>) {
        if let (None, Packet::Connect(c)) = (self.version, p) {
            self.version = Some(c.protocol);
        }
    }

    /// Decodes one packet from the front of `buf`, splitting it off without copying.
    ///
    /// On `Ok(None)` nothing is consumed; if the fixed header is complete, `buf`
    /// has room for more of the packet, at most as much as it holds (memory
    /// follows the bytes received, not the length a peer announces). On an error in a packet's
    /// body that packet has already been split off `buf`; the connection is
    /// over at that point anyway. The returned packet's
    /// strings and payload share `buf`'s memory.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet<Bytes>>, DecodeError> {
        let Some(header) = self.header(buf)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        if buf.len() < len {
            // Room grows with the bytes that came (at most doubling them),
            // never to the size the header announces: five bytes that
            // announce a packet of the maximum size do not reserve it.
            buf.reserve((len - buf.len()).min(buf.len()));
            return Ok(None);
        }
        if let Some(ack) = self.plain_ack(&header, buf) {
            buf.advance(len);
            return Ok(Some(ack));
        }
        // Split here: `freeze` builds the handle from plain values, so moving
        // it on costs nothing (unlike `Bytes::split_to`, see `decode_bytes`).
        let packet_bytes = buf.split_to(len).freeze();
        self.decode_packet_bytes(|| packet_bytes, &header, Some)
    }

    /// A PUBACK, PUBREC, PUBREL or PUBCOMP that is only a packet identifier
    /// (every one under 3.1/3.1.1, a success without properties under 5.0,
    /// section 3.4.2.1), read straight from the buffer: most of a busy
    /// subscriber's input, and it needs no handle on the packet's bytes of its own (two
    /// atomic operations on the read buffer's count fewer) nor the general
    /// path. `None` sends everything else, an identifier of 0 included, the
    /// general way, so the errors stay the general path's.
    #[inline(always)]
    fn plain_ack<B>(&self, header: &FixedHeader, buf: &[u8]) -> Option<Packet<B>> {
        if header.remaining_length != 2 || self.version.is_none() {
            return None;
        }
        let at = header.header_len;
        let id = PacketId::new(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))?;
        Some(match header.packet_type {
            PacketType::PubAck => Packet::PubAck(Ack::new(id)),
            PacketType::PubRec => Packet::PubRec(Ack::new(id)),
            PacketType::PubRel => Packet::PubRel(Ack::new(id)),
            PacketType::PubComp => Packet::PubComp(Ack::new(id)),
            _ => return None,
        })
    }

    /// Decodes one packet from the front of a frozen buffer, advancing it.
    #[inline]
    pub fn decode_bytes(&mut self, buf: &mut Bytes) -> Result<Option<Packet<Bytes>>, DecodeError> {
        let Some(header) = self.header(buf)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        if buf.len() < len {
            return Ok(None);
        }
        // Split where the packet's bytes are used (see `Publish::read_into`).
        self.decode_packet_bytes(|| split(buf, len), &header, Some)
    }

    /// Decodes one packet borrowed from the front of `buf`, returning it with
    /// the number of bytes it took. Allocates nothing for topics and payloads.
    #[inline]
    pub fn decode_slice<'a>(&mut self, buf: &'a [u8]) -> Result<Option<Borrowed<'a>>, DecodeError> {
        let Some(header) = self.header(buf)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        let Some(packet_bytes) = buf.get(..len) else {
            return Ok(None);
        };
        self.decode_packet_bytes(|| packet_bytes, &header, |p| Some((p, len)))
    }

    /// Decodes the packet whose bytes (exactly those) `packet_bytes()` splits off
    /// and returns `wrap(packet)`: the `decode*` methods' own return value,
    /// so that a PUBLISH is built right where the caller receives it instead
    /// of being moved out through several enums (see [`Publish::read_into`]).
    /// The other packets are rarer or boxed (CONNECT) and take the general,
    /// out-of-line path.
    #[inline(always)]
    fn decode_packet_bytes<B: Storage, R>(
        &mut self,
        packet_bytes: impl FnOnce() -> B,
        header: &FixedHeader,
        wrap: impl FnOnce(Packet<B>) -> R,
    ) -> Result<R, DecodeError> {
        if let (PacketType::Publish, Some(v)) = (header.packet_type, self.version) {
            return Publish::read_into(packet_bytes, header.header_len, header.flags, v, |p| {
                wrap(Packet::Publish(p))
            });
        }
        self.decode_other(packet_bytes(), header).map(wrap)
    }

    /// Every packet but a PUBLISH, and adopting the version of a CONNECT.
    #[inline(never)]
    fn decode_other<B: Storage>(
        &mut self,
        packet_bytes: B,
        header: &FixedHeader,
    ) -> Result<Packet<B>, DecodeError> {
        let p = Packet::decode_packet_bytes(packet_bytes, header, self.version)?;
        self.adopt(&p);
        Ok(p)
    }
}

/// The first `len` bytes of `buf`, split off. Always inlined, so that the
/// closure calling it is small enough to be inlined too.
#[inline(always)]
fn split(buf: &mut Bytes, len: usize) -> Bytes {
    buf.split_to(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The shortcut for plain acknowledgements gives what the general path
    /// gives (`decode_bytes` has no shortcut), errors included, and consumes
    /// the same bytes when it decodes; a decoder that has not seen CONNECT
    /// and a small packet size limit refuse the same way on both.
    #[test]
    fn plain_acknowledgements_decode_as_on_the_general_path() {
        let versions = [
            ProtocolVersion::V31,
            ProtocolVersion::V311,
            ProtocolVersion::V5,
        ];
        // PUBACK, PUBREC, PUBREL (flags 0b0010, and 3.1's DUP variant),
        // PUBCOMP, and a CONNACK that is not an acknowledgement of a publish.
        let firsts = [0x40u8, 0x50, 0x62, 0x6A, 0x70, 0x20, 0x60];
        for v in versions {
            for first in firsts {
                for id in [0u16, 1, 2, 255, 256, 0x1234, 65535] {
                    let [hi, lo] = id.to_be_bytes();
                    let mut wire = Vec::from([first, 2, hi, lo]);
                    // A second packet behind it, so consuming is checked too.
                    wire.extend_from_slice(&[0x40, 2, 0, 9]);
                    let fast = BytesMut::from(&wire[..]);
                    let general = Bytes::from(wire.clone());
                    let decoders = [
                        Decoder::with_version(v),
                        Decoder::new(),
                        Decoder::with_version(v).with_max_packet_size(3),
                    ];
                    for d in decoders {
                        let mut fast = fast.clone();
                        let mut general = general.clone();
                        let (mut d1, mut d2) = (d, d);
                        let a = d1.decode(&mut fast);
                        let b = d2.decode_bytes(&mut general);
                        assert_eq!(a, b, "{v:?} {first:#x} id {id} {d:?}");
                        if a.is_ok() {
                            assert_eq!(&fast[..], &general[..], "{v:?} {first:#x} id {id}");
                        }
                    }
                }
            }
        }
    }
}
