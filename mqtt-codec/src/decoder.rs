//! Streaming decoding: whole packets out of the bytes read so far.

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{FixedHeader, Packet, MAX_PACKET_SIZE};
use crate::types::ProtocolVersion;

/// A packet borrowed from the caller's buffer, and the bytes it took there.
pub type Borrowed<'a> = (Packet<&'a [u8]>, usize);

/// Splits a byte stream into packets.
///
/// Feed it the bytes read so far; it returns one whole packet, or `None`
/// ("need more bytes") without consuming anything, or an error. Splitting the
/// same stream at any byte positions yields the same packets.
///
/// A decoder created with [`Decoder::new`] expects CONNECT first (the server
/// side) and adopts the version that CONNECT carries; a client creates it with
/// [`Decoder::with_version`], the version it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that accepts only CONNECT until one has been decoded, with no
    /// size limit below the protocol's own.
    pub const fn new() -> Self {
        Decoder {
            version: None,
            max_packet_size: MAX_PACKET_SIZE,
        }
    }

    /// A decoder for a connection whose version is already known.
    pub const fn with_version(version: ProtocolVersion) -> Self {
        Decoder {
            version: Some(version),
            max_packet_size: MAX_PACKET_SIZE,
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

    fn adopt(&mut self, p: &Packet<impl AsRef<[u8]>>) {
        if let (None, Packet::Connect(c)) = (self.version, p) {
            self.version = Some(c.protocol);
        }
    }

    /// Decodes one packet from the front of `buf`, splitting it off without copying.
    ///
    /// On `Ok(None)` nothing is consumed; if the fixed header is complete, `buf`
    /// has reserved room for the rest of the packet. On an error in a packet's
    /// body that packet has already been split off `buf`; the connection is
    /// over at that point anyway. The returned packet's
    /// strings and payload share `buf`'s memory.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet<Bytes>>, DecodeError> {
        let Some(header) = FixedHeader::parse(buf, self.version, self.max_packet_size)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        let frame = buf.split_to(len).freeze();
        let p = Packet::decode_frame(frame, &header, self.version)?;
        self.adopt(&p);
        Ok(Some(p))
    }

    /// Decodes one packet from the front of a frozen buffer, advancing it.
    pub fn decode_bytes(&mut self, buf: &mut Bytes) -> Result<Option<Packet<Bytes>>, DecodeError> {
        let Some(header) = FixedHeader::parse(buf, self.version, self.max_packet_size)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        if buf.len() < len {
            return Ok(None);
        }
        let frame = buf.split_to(len);
        let p = Packet::decode_frame(frame, &header, self.version)?;
        self.adopt(&p);
        Ok(Some(p))
    }

    /// Decodes one packet borrowed from the front of `buf`, returning it with
    /// the number of bytes it took. Allocates nothing for topics and payloads.
    pub fn decode_slice<'a>(&mut self, buf: &'a [u8]) -> Result<Option<Borrowed<'a>>, DecodeError> {
        let Some(header) = FixedHeader::parse(buf, self.version, self.max_packet_size)? else {
            return Ok(None);
        };
        let len = header.packet_len();
        if buf.len() < len {
            return Ok(None);
        }
        let p = Packet::decode_frame(&buf[..len], &header, self.version)?;
        self.adopt(&p);
        Ok(Some((p, len)))
    }
}
