//! Byte scans behind string and topic validation.
//!
//! Validating topics and strings was most of the work of decoding a PUBLISH:
//! a separate pass each for wildcards, U+0000 and non-ASCII bytes, one byte at
//! a time. These helpers look at many bytes per step instead, without
//! `unsafe` and without target-specific intrinsics: [`any_byte`] is written so
//! that LLVM turns it into 16-byte vector compares on the baseline of any
//! 64-bit target (SSE2, NEON), and [`filter_scan`] works on `u64` words.
//! Both only answer "is there anything unusual here"; the callers keep the
//! exact, byte-by-byte rules (and their error precedence) for the rare inputs
//! where the answer is yes.

/// True if `hit` holds for any byte of `b`.
///
/// The bytes are tested in fixed-size blocks, each folded without an early
/// exit, so that every block compiles to straight-line vector compares (for
/// 16 bytes on x86-64: `pcmpeqb`/`pcmpgtb`, `por`, `pmovmskb`). The loop over
/// the blocks does exit early, which also keeps LLVM from vectorising it
/// *across* blocks (it would gather bytes from 16 blocks at once). The last,
/// partial block is handled by testing the last 16 bytes again, overlapping
/// what was already tested, and inputs under 16 bytes by two overlapping
/// blocks of 8 or 4: no byte-at-a-time tail for typical 10 to 60-byte topics.
#[inline(always)]
pub(crate) fn any_byte(b: &[u8], hit: impl Fn(u8) -> bool + Copy) -> bool {
    #[inline(always)]
    fn block<const N: usize>(block: &[u8; N], hit: impl Fn(u8) -> bool) -> bool {
        block.iter().fold(false, |found, &c| found | hit(c))
    }

    if let Some((_, last)) = b.split_last_chunk::<16>() {
        let mut rest = b;
        while let Some((chunk, tail)) = rest.split_first_chunk::<16>() {
            if block(chunk, hit) {
                return true;
            }
            rest = tail;
        }
        return !rest.is_empty() && block(last, hit);
    }
    if let (Some((first, _)), Some((_, last))) = (b.split_first_chunk::<8>(), b.split_last_chunk())
    {
        return block::<8>(first, hit) | block::<8>(last, hit);
    }
    if let (Some((first, _)), Some((_, last))) = (b.split_first_chunk::<4>(), b.split_last_chunk())
    {
        return block::<4>(first, hit) | block::<4>(last, hit);
    }
    b.iter().any(|&c| hit(c))
}

/// A byte that MQTT strings forbid outright (U+0000) or that needs the full
/// UTF-8 check (anything outside ASCII).
#[inline(always)]
pub(crate) fn nul_or_non_ascii(c: u8) -> bool {
    c == 0 || c >= 0x80
}

/// `'+'` (0x2B) or `'#'` (0x23): they differ only in bit 3, so one compare does.
#[inline(always)]
pub(crate) fn is_wildcard(c: u8) -> bool {
    c | 0x08 == b'+'
}

const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HIGH: u64 = !LOW7;
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit 7 set in exactly those bytes of `x` that are zero.
///
/// The textbook `(x - 0x01..) & !x & 0x80..` can also flag the byte above a
/// zero byte (through the borrow); this form adds within each byte's low
/// seven bits, which cannot carry into the next byte, so every flag is exact
/// and can be used as a position.
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// Flags of one little-endian word: bit 7 of each wildcard byte, and whether
/// any byte is U+0000 or non-ASCII.
#[inline(always)]
const fn word_flags(w: u64) -> (u64, bool) {
    let wildcards = zero_bytes((w | (ONES * 0x08)) ^ (ONES * b'+' as u64));
    let unusual = (w & HIGH) | zero_bytes(w);
    (wildcards, unusual != 0)
}

/// The outcome of [`filter_scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterScan {
    /// ASCII, no U+0000, every `'+'` a whole level and every `'#'` a whole last level.
    Valid,
    /// Something needs the exact check: a U+0000 or non-ASCII byte, or a misplaced wildcard.
    Unsure,
}

/// One pass over a topic filter's bytes, eight at a time, checking the
/// neighbours of each wildcard it meets.
///
/// Filters usually have a wildcard or two, so unlike [`any_byte`] this needs
/// their positions; a `u64` word gives them exactly (see [`zero_bytes`]).
#[inline]
pub(crate) fn filter_scan(b: &[u8]) -> FilterScan {
    let n = b.len();
    // A wildcard at `p` must fill its level: '/' (or the start) before it, and
    // after it '/' or the end for '+', the end for '#'.
    let placed = |p: usize| {
        let starts_level = p == 0 || b[p - 1] == b'/';
        let ends_level = if b[p] == b'#' {
            p + 1 == n
        } else {
            p + 1 == n || b[p + 1] == b'/'
        };
        starts_level && ends_level
    };
    if n < 8 {
        for (p, &c) in b.iter().enumerate() {
            if nul_or_non_ascii(c) || (is_wildcard(c) && !placed(p)) {
                return FilterScan::Unsure;
            }
        }
        return FilterScan::Valid;
    }
    let mut at = 0;
    while at < n {
        // The last word is the last eight bytes; the ones already seen are
        // masked out of its wildcard flags (testing them again for unusual
        // bytes is harmless).
        let (start, seen) = if at + 8 <= n {
            (at, 0)
        } else {
            (n - 8, at + 8 - n)
        };
        let word = match b[start..].first_chunk::<8>() {
            Some(w) => u64::from_le_bytes(*w),
            None => return FilterScan::Unsure,
        };
        let (mut wildcards, unusual) = word_flags(word);
        if unusual {
            return FilterScan::Unsure;
        }
        wildcards &= u64::MAX << (8 * seen);
        while wildcards != 0 {
            let p = start + (wildcards.trailing_zeros() / 8) as usize;
            if !placed(p) {
                return FilterScan::Unsure;
            }
            wildcards &= wildcards - 1;
        }
        at = start + 8;
    }
    FilterScan::Valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Every length from 0 to 40 and every position of the odd byte out, so
    /// each block size, the overlapping tails and the short paths are covered.
    #[test]
    fn any_byte_finds_a_byte_at_every_position_and_length() {
        for len in 0..=40 {
            let clean = alloc::vec![b'a'; len];
            assert!(!any_byte(&clean, nul_or_non_ascii), "{len}");
            for at in 0..len {
                for odd in [0u8, 0x80, 0xFF] {
                    let mut b = clean.clone();
                    b[at] = odd;
                    assert!(any_byte(&b, nul_or_non_ascii), "{len} {at} {odd:#x}");
                    assert!(!any_byte(&b, is_wildcard), "{len} {at} {odd:#x}");
                }
                for w in [b'+', b'#'] {
                    let mut b = clean.clone();
                    b[at] = w;
                    assert!(any_byte(&b, is_wildcard), "{len} {at}");
                    assert!(!any_byte(&b, nul_or_non_ascii), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn only_plus_and_hash_are_wildcards() {
        let all: Vec<u8> = (0..=255).filter(|&c| is_wildcard(c)).collect();
        assert_eq!(all, [b'#', b'+']);
    }

    #[test]
    fn zero_bytes_flags_exactly_the_zero_bytes() {
        for w in [
            0u64,
            u64::MAX,
            0x0100_0100_0001_0001,
            0x0001_0203_0405_0607,
            0x8000_0080_0100_FF00,
        ] {
            let flags = zero_bytes(w);
            for (i, byte) in w.to_le_bytes().into_iter().enumerate() {
                assert_eq!(flags >> (8 * i + 7) & 1 == 1, byte == 0, "{w:#x} byte {i}");
            }
        }
    }

    /// The straightforward rules, level by level, for comparison.
    fn reference(b: &[u8]) -> FilterScan {
        if b.iter().any(|&c| nul_or_non_ascii(c)) {
            return FilterScan::Unsure;
        }
        let levels: Vec<&[u8]> = b.split(|&c| c == b'/').collect();
        for (i, level) in levels.iter().enumerate() {
            let last = i + 1 == levels.len();
            if level.contains(&b'#') && (*level != b"#" || !last) {
                return FilterScan::Unsure;
            }
            if level.contains(&b'+') && *level != b"+" {
                return FilterScan::Unsure;
            }
        }
        FilterScan::Valid
    }

    /// Every filter of up to six bytes over an alphabet of the interesting
    /// bytes, plus the same patterns at the ends of longer filters.
    #[test]
    fn filter_scan_agrees_with_the_level_rules() {
        let alphabet = [b'a', b'/', b'+', b'#', 0, 0xC3];
        let mut patterns: Vec<Vec<u8>> = alloc::vec![Vec::new()];
        let mut shorter = patterns.clone();
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = shorter
                .iter()
                .flat_map(|p| {
                    alphabet.iter().map(move |&c| {
                        let mut q = p.clone();
                        q.push(c);
                        q
                    })
                })
                .collect();
            patterns.extend_from_slice(&longer);
            shorter = longer;
        }
        for p in &patterns {
            assert_eq!(filter_scan(p), reference(p), "{p:?}");
            for pad in [b"abcdefghijk/".as_slice(), b"a/b/c/d/e/f/g/h/", b"x"] {
                let mut before = pad.to_vec();
                before.extend_from_slice(p);
                assert_eq!(filter_scan(&before), reference(&before), "{before:?}");
                let mut after = p.clone();
                after.extend_from_slice(pad);
                assert_eq!(filter_scan(&after), reference(&after), "{after:?}");
            }
        }
    }
}
