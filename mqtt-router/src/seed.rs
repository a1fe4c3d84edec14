//! Injected randomness: a SplitMix64 stream and the keyed hasher built from it.
//!
//! The router has no randomness of its own. One `seed: u64` from the caller
//! keys the hashers of attacker-chosen keys (topic levels, client keys) and
//! drives the `Random` shared-subscription strategy, so tests are
//! deterministic and an outsider who does not know the seed cannot predict
//! where a topic level lands in a table.

use core::hash::BuildHasher;

/// The hasher state for every table in this crate: foldhash keyed by a value
/// derived from the injected seed.
pub(crate) type KeyedState = foldhash::fast::FixedState;

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and good enough to
/// key hashers and pick shared-subscription members. Not for cryptography.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalize(self.0)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-shift: no division
    /// and a bias below 2^-32 for the member counts a group can have.
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        let high = self.next_u64() >> 32;
        ((high * u64::from(n)) >> 32) as u32
    }

    /// A hasher state keyed by the next value of this stream.
    pub(crate) fn keyed_state(&mut self) -> KeyedState {
        KeyedState::with_seed(self.next_u64())
    }
}

/// The SplitMix64 output function: a bijective mix of all 64 bits.
#[inline]
pub(crate) const fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A one-multiply hasher for the merge filter of a match: client keys are
/// chosen by the broker, and a collision there only sends a client down the
/// exact (sorting) path, so speed matters more than strength. Keyed by the
/// seed all the same.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuickHasher(u64);

impl QuickHasher {
    pub(crate) const fn new(key: u64) -> Self {
        QuickHasher(key)
    }

    /// The hash of `value`.
    #[inline]
    pub(crate) fn hash<T: core::hash::Hash + ?Sized>(self, value: &T) -> u64 {
        let mut h = self;
        value.hash(&mut h);
        core::hash::Hasher::finish(&h)
    }

    #[inline]
    fn mix(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(26) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl core::hash::Hasher for QuickHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

/// Hashes one value with a keyed state.
#[inline]
pub(crate) fn hash_one<T: core::hash::Hash + ?Sized>(state: &KeyedState, value: &T) -> u64 {
    state.hash_one(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_sequence() {
        // First outputs for seed 0 as published with the algorithm.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SplitMix64::new(42);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            let i = r.below(7);
            assert!(i < 7);
            seen[i as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn quick_hasher_spreads_small_keys_over_the_top_bits() {
        let h = QuickHasher::new(3);
        let mut seen = [false; 4096];
        let distinct = (0u32..1000)
            .filter(|c| !core::mem::replace(&mut seen[(h.hash(c) >> 52) as usize], true))
            .count();
        // 1000 keys into 4096 buckets: about 890 distinct if uniform.
        assert!(distinct > 850, "{distinct}");
        assert_ne!(h.hash(&1u32), QuickHasher::new(4).hash(&1u32));
        assert_ne!(h.hash("ab"), h.hash("ba"));
    }

    #[test]
    fn keyed_states_differ_per_seed() {
        let a = SplitMix64::new(1).keyed_state();
        let b = SplitMix64::new(2).keyed_state();
        assert_ne!(hash_one(&a, "sport/tennis"), hash_one(&b, "sport/tennis"));
        assert_eq!(
            hash_one(&a, "sport"),
            hash_one(&SplitMix64::new(1).keyed_state(), "sport")
        );
    }
}
