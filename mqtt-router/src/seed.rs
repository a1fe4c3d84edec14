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
