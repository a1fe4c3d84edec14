//! Byte scans behind string and topic validation.
//!
//! Validating topics and strings was most of the work of decoding a PUBLISH:
//! a separate pass each for wildcards, U+0000 and non-ASCII bytes, one byte at
//! a time. These helpers look at many bytes per step instead, without
//! `unsafe` and without target-specific intrinsics: [`any_byte`] and
//! [`any_inner`] are written so that LLVM turns them into 16-byte vector
//! compares on the baseline of any 64-bit target (SSE2, NEON).
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

/// True if `hit(previous, byte, next)` holds for any byte of `b` but the
/// first and the last, which have only one neighbour.
///
/// Blocked like [`any_byte`]: three overlapping loads (the bytes, shifted one
/// left and one right) give every byte's neighbours, 16 bytes at a time.
#[inline(always)]
pub(crate) fn any_inner(b: &[u8], hit: impl Fn(u8, u8, u8) -> bool + Copy) -> bool {
    /// The `N` bytes from `b[i]` on, as an array.
    #[inline(always)]
    fn at<const N: usize>(b: &[u8], i: usize) -> &[u8; N] {
        match b[i..].first_chunk() {
            Some(a) => a,
            None => panic!("scan block out of bounds"),
        }
    }
    /// True if `hit` holds for any of the bytes `i..i + N` of `b` (which
    /// the caller keeps off both ends: `1 <= i` and `i + N < b.len()`).
    #[inline(always)]
    fn block<const N: usize>(b: &[u8], i: usize, hit: impl Fn(u8, u8, u8) -> bool) -> bool {
        let (prev, this, next) = (at::<N>(b, i - 1), at::<N>(b, i), at::<N>(b, i + 1));
        (0..N).fold(false, |found, k| found | hit(prev[k], this[k], next[k]))
    }

    let n = b.len();
    let inner = n.saturating_sub(2);
    if inner >= 16 {
        let mut i = 1;
        while i + 16 < n {
            if block::<16>(b, i, hit) {
                return true;
            }
            i += 16;
        }
        return i < n - 1 && block::<16>(b, n - 17, hit);
    }
    if inner >= 8 {
        return block::<8>(b, 1, hit) | block::<8>(b, n - 9, hit);
    }
    if inner >= 4 {
        return block::<4>(b, 1, hit) | block::<4>(b, n - 5, hit);
    }
    (1..n.saturating_sub(1)).any(|i| hit(b[i - 1], b[i], b[i + 1]))
}

/// The outcome of [`filter_scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterScan {
    /// ASCII, no U+0000, every `'+'` a whole level and every `'#'` a whole last level.
    Valid,
    /// Something needs the exact check: a U+0000 or non-ASCII byte, or a misplaced wildcard.
    Unsure,
}

/// Whether a topic filter is plainly valid, in two vectorised passes: one
/// for bytes that need the string checks, and one over each byte with its
/// neighbours for a wildcard that is not a whole level (between two `'/'`,
/// or between one and an end of the filter) or a `'#'` that is not last.
#[inline]
pub(crate) fn filter_scan(b: &[u8]) -> FilterScan {
    let misplaced_inside = |prev: u8, c: u8, next: u8| {
        // Inside the filter, a '#' always has something after it.
        (c == b'#') | ((c == b'+') & ((prev != b'/') | (next != b'/')))
    };
    let ends_ok = match b {
        [] | [_] => true,
        [first, second, ..] => {
            let (before_last, last) = (b[b.len() - 2], b[b.len() - 1]);
            let first_ok = match first {
                b'#' => false,
                b'+' => *second == b'/',
                _ => true,
            };
            first_ok && (!is_wildcard(last) || before_last == b'/')
        }
    };
    if ends_ok && !any_byte(b, nul_or_non_ascii) && !any_inner(b, misplaced_inside) {
        FilterScan::Valid
    } else {
        FilterScan::Unsure
    }
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

    /// Every length from 0 to 40 and every position of a marked byte: it is
    /// seen, with both its neighbours, exactly when it is not at an end.
    #[test]
    fn any_inner_sees_every_inner_byte_with_its_neighbours() {
        for len in 0..=40usize {
            let clean: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(!any_inner(&clean, |_, c, _| c == b'*'), "{len}");
            for at in 0..len {
                let mut b = clean.clone();
                b[at] = b'*';
                let inner = at > 0 && at + 1 < len;
                let (p, x) = (b.get(at.wrapping_sub(1)).copied(), b.get(at + 1).copied());
                let seen = any_inner(&b, |prev, c, next| {
                    c == b'*' && Some(prev) == p && Some(next) == x
                });
                assert_eq!(seen, inner, "{len} {at}");
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
