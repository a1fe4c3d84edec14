//! Storage behind decoded packets, and the validated UTF-8 string type.

use core::fmt;
use core::ops::Range;

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use crate::scan::{any_byte, nul_or_non_ascii};

/// The bytes behind a decoded packet: [`Bytes`] (shared with the read buffer,
/// zero-copy) or `&[u8]` (borrowed from the caller's buffer, no allocation for
/// topics and payloads).
pub trait Storage: AsRef<[u8]> + Clone {
    /// A sub-range of these bytes, sharing them where the storage allows.
    fn slice(&self, range: Range<usize>) -> Self;

    /// These bytes from `start` on, reusing this handle (no reference count change for `Bytes`).
    fn into_tail(self, start: usize) -> Self;
}

// Each method below first makes the bounds check `bytes` makes, panicking
// with a fixed message: `bytes` formats the bounds into its panic message,
// which needs them in memory, on every packet, and their stack slot ended up
// shared with the packet being decoded (which was then read back with a
// store-forwarding stall). With the check made first, the compiler drops
// `bytes`'s own. Out-of-bounds calls panic as before.
impl Storage for Bytes {
    #[inline]
    fn slice(&self, range: Range<usize>) -> Self {
        if range.start > range.end || range.end > self.len() {
            panic!("Storage::slice: range out of bounds");
        }
        Bytes::slice(self, range)
    }

    #[inline(always)]
    fn into_tail(mut self, start: usize) -> Self {
        if start > self.len() {
            panic!("Storage::into_tail: start past the end");
        }
        bytes::Buf::advance(&mut self, start);
        self
    }
}

impl Storage for &[u8] {
    #[inline]
    fn slice(&self, range: Range<usize>) -> Self {
        &self[range]
    }

    #[inline]
    fn into_tail(self, start: usize) -> Self {
        &self[start..]
    }
}

/// Why bytes are not an MQTT UTF-8 Encoded String (section 1.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StrError {
    /// Not well-formed UTF-8, which includes encoded UTF-16 surrogates [MQTT-1.5.4-1].
    #[error("the string is not valid UTF-8 (surrogate code points included) [MQTT-1.5.4-1]")]
    InvalidUtf8,
    /// The null character U+0000 is forbidden in MQTT strings [MQTT-1.5.4-2].
    #[error("the string contains the null character U+0000 [MQTT-1.5.4-2]")]
    ContainsNull,
    /// A control character U+0001–U+001F or U+007F–U+009F: senders SHOULD
    /// NOT send them and a receiver MAY treat them as malformed (section
    /// 1.5.4). The decoder accepts them; [`has_control_characters`] finds
    /// them for a receiver that refuses them.
    #[error(
        "the string contains a control character (U+0001-U+001F, U+007F-U+009F; section 1.5.4)"
    )]
    ControlCharacter,
    /// A string's length prefix is two bytes, so 65,535 bytes is the most it can hold.
    #[error("the string is {len} bytes long; MQTT strings hold at most 65535")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
}

/// Checks the MQTT string rules on raw bytes: UTF-8, no U+0000, at most 65,535 bytes.
#[inline]
pub(crate) fn check_str(b: &[u8]) -> Result<(), StrError> {
    if b.len() > u16::MAX as usize {
        return Err(StrError::TooLong { len: b.len() });
    }
    // Most strings (identifiers, topics, user names) are ASCII: one vectorised
    // pass finds that nothing more is to be checked.
    if !any_byte(b, nul_or_non_ascii) {
        return Ok(());
    }
    check_str_exact(b)
}

/// Whether valid UTF-8 `b` holds a control character U+0001–U+001F or
/// U+007F–U+009F, which section 1.5.4 says senders SHOULD NOT send and a
/// receiver MAY treat as a Malformed Packet.
pub fn has_control_characters(b: &[u8]) -> bool {
    // U+0080–U+009F are 0xC2 0x80–0x9F in UTF-8.
    any_byte(b, |c| c < 0x20 || c == 0x7F) || b.windows(2).any(|w| w[0] == 0xC2 && w[1] < 0xA0)
}

/// The full check, for strings with a U+0000 or non-ASCII byte. UTF-8 is
/// judged first, so a string both malformed and holding a U+0000 is reported
/// as [`StrError::InvalidUtf8`].
#[inline(never)]
fn check_str_exact(b: &[u8]) -> Result<(), StrError> {
    core::str::from_utf8(b).map_err(|_| StrError::InvalidUtf8)?;
    if any_byte(b, |c| c == 0) {
        return Err(StrError::ContainsNull);
    }
    Ok(())
}

/// An MQTT UTF-8 Encoded String: well-formed UTF-8, no U+0000, at most 65,535 bytes.
///
/// The rules are checked once, when the value is built or decoded, so
/// [`Str::as_str`] cannot fail. With `B = Bytes` the string shares the packet's
/// read buffer.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<B = Bytes>(B);

impl<B: AsRef<[u8]>> Str<B> {
    /// Validates `bytes` as an MQTT string.
    pub fn new(bytes: B) -> Result<Self, StrError> {
        check_str(bytes.as_ref())?;
        Ok(Str(bytes))
    }

    /// Wraps bytes the caller already validated with [`check_str`].
    #[inline]
    pub(crate) fn new_unchecked(bytes: B) -> Self {
        Str(bytes)
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Invariant: the bytes were validated as UTF-8 when this value was built,
        // so this check always succeeds; it is kept instead of an unsafe call.
        core::str::from_utf8(self.0.as_ref()).unwrap_or_default()
    }

    /// The string's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.as_ref().len()
    }

    /// True for the empty string.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_empty()
    }

    /// The storage behind the string.
    #[inline]
    pub fn into_inner(self) -> B {
        self.0
    }

    /// The storage behind the string, borrowed.
    #[inline]
    pub fn inner(&self) -> &B {
        &self.0
    }

    /// The same string over borrowed storage: no check, no copy, no
    /// reference count touched (to encode a packet from shared data).
    #[inline]
    pub fn borrowed(&self) -> Str<&[u8]> {
        Str(self.0.as_ref())
    }
}

impl Str<Bytes> {
    /// A string from a literal.
    ///
    /// # Panics
    /// If the literal breaks the MQTT string rules (contains U+0000 or is over
    /// 65,535 bytes): that is a bug in the calling program, not input to handle.
    pub fn from_static(s: &'static str) -> Self {
        match Str::new(Bytes::from_static(s.as_bytes())) {
            Ok(s) => s,
            Err(e) => panic!("invalid MQTT string literal: {e}"),
        }
    }

    /// Copies a borrowed string into owned storage.
    pub fn copy_from(s: &Str<&[u8]>) -> Self {
        Str(Bytes::copy_from_slice(s.0))
    }
}

impl<'a> Str<&'a [u8]> {
    /// The string, borrowed for as long as the underlying buffer.
    pub fn as_borrowed_str(&self) -> &'a str {
        // Invariant: validated as UTF-8 when built (see `as_str`).
        core::str::from_utf8(self.0).unwrap_or_default()
    }
}

impl TryFrom<&str> for Str<Bytes> {
    type Error = StrError;
    fn try_from(s: &str) -> Result<Self, StrError> {
        check_str(s.as_bytes())?;
        Ok(Str(Bytes::copy_from_slice(s.as_bytes())))
    }
}

impl TryFrom<String> for Str<Bytes> {
    type Error = StrError;
    fn try_from(s: String) -> Result<Self, StrError> {
        check_str(s.as_bytes())?;
        Ok(Str(Bytes::from(Vec::from(s))))
    }
}

impl<'a> TryFrom<&'a str> for Str<&'a [u8]> {
    type Error = StrError;
    fn try_from(s: &'a str) -> Result<Self, StrError> {
        Str::new(s.as_bytes())
    }
}

impl<B: AsRef<[u8]>> AsRef<str> for Str<B> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<B: AsRef<[u8]>> PartialEq<str> for Str<B> {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<B: AsRef<[u8]>> PartialEq<&str> for Str<B> {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Shows the storage's own `Debug` (`b"..."` for [`Bytes`]), so that packets
/// can derive `Debug` for any storage.
impl<B: fmt::Debug> fmt::Debug for Str<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<B: AsRef<[u8]>> fmt::Display for Str<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_1_5_4_1_surrogates_and_bad_utf8_are_refused() {
        // U+D800 encoded the way CESU-8 would: ED A0 80.
        assert_eq!(Str::new(&b"a\xED\xA0\x80"[..]), Err(StrError::InvalidUtf8));
        assert_eq!(Str::new(&b"\xFF"[..]), Err(StrError::InvalidUtf8));
    }

    #[test]
    fn mqtt_1_5_4_2_null_is_refused() {
        assert_eq!(Str::new(&b"a\0b"[..]), Err(StrError::ContainsNull));
        assert_eq!(Str::new("é\0".as_bytes()), Err(StrError::ContainsNull));
    }

    #[test]
    fn mqtt_1_5_4_3_bom_is_kept_not_stripped() {
        let s = Str::new("\u{FEFF}x".as_bytes()).unwrap();
        assert_eq!(s.as_str(), "\u{FEFF}x");
    }

    #[test]
    fn section_1_5_4_control_characters_are_found_and_nothing_else() {
        for c in (1u32..=0x1F).chain(0x7F..=0x9F) {
            let s = alloc::format!("a{}b", char::from_u32(c).unwrap());
            assert!(has_control_characters(s.as_bytes()), "U+{c:04X}");
        }
        for s in [
            "",
            "a/b",
            "\u{A0}",
            "\u{C2A0}é",
            "\u{100}",
            "\u{FEFF}",
            " ~",
        ] {
            assert!(!has_control_characters(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn over_65535_bytes_is_refused() {
        let long = alloc::vec![b'a'; 65_536];
        assert_eq!(Str::new(&long[..]), Err(StrError::TooLong { len: 65_536 }));
        assert!(Str::new(&long[..65_535]).is_ok());
    }
}
