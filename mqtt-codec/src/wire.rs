//! Primitive data representations of section 1.5: integers, variable byte
//! integers, strings and binary data, read from a packet's bytes and written to a buffer.

use bytes::BufMut;

use crate::error::{DecodeError, EncodeError};
use crate::string::{check_str, Storage, Str};
use crate::topic::{check_topic_filter, check_topic_name, TopicFilter, TopicName};
use crate::types::PacketId;

/// The largest value a Variable Byte Integer can hold (section 1.5.5).
pub const MAX_VARIABLE_BYTE_INTEGER: u32 = 268_435_455;

/// Reads a Variable Byte Integer from the start of `buf`.
///
/// `Ok(None)` means `buf` ends before the integer does. Rejects more than four
/// bytes and non-minimal encodings [MQTT-1.5.5-1].
#[inline]
pub(crate) fn read_variable_byte_integer(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(DecodeError::MalformedVariableByteInteger);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::MalformedVariableByteInteger)
}

/// Bytes a Variable Byte Integer takes on the wire.
#[inline]
pub(crate) const fn variable_byte_integer_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a Variable Byte Integer; `v` must be at most [`MAX_VARIABLE_BYTE_INTEGER`].
#[inline]
pub(crate) fn put_variable_byte_integer(out: &mut impl BufMut, mut v: u32) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Writes a two-byte length prefix and the bytes; the caller checked the length.
#[inline]
pub(crate) fn put_prefixed(out: &mut impl BufMut, b: &[u8]) {
    out.put_u16(b.len() as u16);
    out.put_slice(b);
}

/// Length of a binary data field, or an error past its 65,535-byte limit.
#[inline]
pub(crate) fn binary_len(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > u16::MAX as usize {
        return Err(EncodeError::BinaryTooLong { len: b.len() });
    }
    Ok(2 + b.len())
}

/// A cursor over one packet's bytes that hands out sub-slices of the storage.
pub(crate) struct Reader<'s, B> {
    src: &'s B,
    buf: &'s [u8],
    pos: usize,
    end: usize,
}

// The small readers on a PUBLISH's path are always inlined: left out of line
// (as LLVM sometimes chose, depending on the caller), each forced the reader,
// and with it the handle on the packet's bytes, into memory.
impl<'s, B: Storage> Reader<'s, B> {
    /// A reader over `src[pos..end]`.
    #[inline]
    pub(crate) fn new(src: &'s B, pos: usize, end: usize) -> Self {
        Reader {
            src,
            buf: src.as_ref(),
            pos,
            end,
        }
    }

    /// Bytes not yet read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Offset of the next unread byte within the storage.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not yet read.
    #[inline]
    pub(crate) fn rest(&self) -> &'s [u8] {
        &self.buf[self.pos..self.end]
    }

    /// The next byte, without consuming it.
    #[inline]
    pub(crate) fn peek_u8(&self) -> Option<u8> {
        if self.pos < self.end {
            self.buf.get(self.pos).copied()
        } else {
            None
        }
    }

    /// Skips `n` bytes the caller has seen (with [`Reader::peek_u8`]) are there.
    #[inline]
    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<usize, DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let at = self.pos;
        self.pos += n;
        Ok(at)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let at = self.take(1)?;
        Ok(self.buf[at])
    }

    #[inline(always)]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let at = self.take(2)?;
        Ok(u16::from_be_bytes([self.buf[at], self.buf[at + 1]]))
    }

    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let at = self.take(4)?;
        let b = &self.buf[at..at + 4];
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub(crate) fn variable_byte_integer(&mut self) -> Result<u32, DecodeError> {
        match read_variable_byte_integer(&self.buf[self.pos..self.end])? {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(DecodeError::Truncated),
        }
    }

    /// A packet identifier, refusing 0 [MQTT-2.2.1-3].
    #[inline(always)]
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ZeroPacketId)
    }

    /// The byte range of a two-byte-length-prefixed field.
    #[inline(always)]
    fn prefixed_range(&mut self) -> Result<(usize, usize), DecodeError> {
        let len = usize::from(self.u16()?);
        let at = self.take(len)?;
        Ok((at, at + len))
    }

    /// Binary Data (section 1.5.6), sharing the storage.
    #[inline]
    pub(crate) fn binary(&mut self) -> Result<B, DecodeError> {
        let (a, b) = self.prefixed_range()?;
        Ok(self.src.slice(a..b))
    }

    /// A UTF-8 Encoded String (section 1.5.4), validated.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<Str<B>, DecodeError> {
        let (a, b) = self.prefixed_range()?;
        check_str(&self.buf[a..b]).map_err(DecodeError::InvalidString)?;
        Ok(Str::new_unchecked(self.src.slice(a..b)))
    }

    /// A topic name; `Ok(None)` for a zero-length one (allowed only with a 5.0 topic alias).
    // Always inlined: it is on every PUBLISH, and out of line it kept the
    // reader in memory, read back (with stalls) right after being written.
    #[inline(always)]
    pub(crate) fn topic_name_or_empty(&mut self) -> Result<Option<TopicName<B>>, DecodeError> {
        let (a, b) = self.prefixed_range()?;
        if a == b {
            return Ok(None);
        }
        check_topic_name(&self.buf[a..b]).map_err(DecodeError::InvalidTopicName)?;
        Ok(Some(TopicName::new_unchecked(self.src.slice(a..b))))
    }

    /// A non-empty topic name.
    pub(crate) fn topic_name(&mut self) -> Result<TopicName<B>, DecodeError> {
        let (a, b) = self.prefixed_range()?;
        check_topic_name(&self.buf[a..b]).map_err(DecodeError::InvalidTopicName)?;
        Ok(TopicName::new_unchecked(self.src.slice(a..b)))
    }

    /// A topic filter.
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter<B>, DecodeError> {
        let (a, b) = self.prefixed_range()?;
        check_topic_filter(&self.buf[a..b]).map_err(DecodeError::InvalidTopicFilter)?;
        Ok(TopicFilter::new_unchecked(self.src.slice(a..b)))
    }

    /// A reader over the next `len` bytes; this reader skips past them.
    pub(crate) fn sub(&mut self, len: usize) -> Result<Reader<'s, B>, DecodeError> {
        let at = self.take(len)?;
        Ok(Reader::new(self.src, at, at + len))
    }

    /// Fails if anything is left unread.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn variable_byte_integer_boundaries_of_table_1_5() {
        for (v, bytes) in [
            (0u32, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            put_variable_byte_integer(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(variable_byte_integer_len(v), bytes.len());
            assert_eq!(
                read_variable_byte_integer(bytes),
                Ok(Some((v, bytes.len())))
            );
            assert_eq!(
                read_variable_byte_integer(&bytes[..bytes.len() - 1]),
                Ok(None)
            );
        }
    }

    #[test]
    fn mqtt_1_5_5_1_five_bytes_and_non_minimal_encodings_are_malformed() {
        assert_eq!(
            read_variable_byte_integer(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(
            read_variable_byte_integer(&[0x80, 0x00]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(
            read_variable_byte_integer(&[0x81, 0x80, 0x00]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
    }
}
