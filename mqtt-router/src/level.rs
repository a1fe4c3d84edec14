//! The building blocks of both tries: a slab of nodes, compact level
//! strings, and the one edge table per trie.

use alloc::boxed::Box;
use alloc::vec::Vec;
use hashbrown::HashTable;

use crate::seed::{finalize, hash_one, KeyedState};

/// Index of a node (or other slab entry). `u32` halves the size of every
/// link compared with `usize`.
pub(crate) type NodeIdx = u32;

/// "No node": the absent link.
pub(crate) const NIL: NodeIdx = u32::MAX;

/// The root of every trie: slot 0, never freed.
pub(crate) const ROOT: NodeIdx = 0;

/// A slab of `T` addressed by `u32`: one vector plus a free list.
///
/// A plain `Vec` doubles when it grows, so a trie of 1 M nodes may hold room
/// for 2 M. This one grows by a quarter at a time past a small size, so at
/// most a fifth of it is unused; the amortised cost of the extra copies stays
/// O(1) per insertion, and large vectors grow in place (the allocator remaps
/// their pages). One vector, not chunks, because matching follows chains of
/// node indices and every extra indirection adds to each step's latency.
pub(crate) struct Slab<T> {
    slots: Vec<T>,
    /// Slots whose contents were released, for reuse.
    free: Vec<u32>,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> &T {
        &self.slots[i as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        &mut self.slots[i as usize]
    }

    /// True if `extra` more entries fit below index `limit`.
    pub(crate) fn has_room(&self, extra: usize, limit: usize) -> bool {
        self.free.len() >= extra || self.slots.len() + extra <= limit
    }

    /// Stores `value` in a free slot and returns its index.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = value;
            return i;
        }
        let len = self.slots.len();
        if len == self.slots.capacity() && len >= 1024 {
            self.slots.reserve_exact(len / 4);
        }
        self.slots.push(value);
        len as u32
    }

    /// Marks slot `i` free; the caller has already reset its contents so they
    /// hold no heap memory.
    pub(crate) fn release(&mut self, i: u32) {
        self.free.push(i);
    }

    /// Slots in use.
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Every slot index with its contents, free ones included.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots.iter().enumerate().map(|(i, t)| (i as u32, t))
    }
}

/// Levels of up to this many bytes live inside the node.
const INLINE: usize = 15;

/// One topic level, stored once, in the trie node it labels: 16 bytes.
///
/// Short levels ("site", "device", "42", "temperature") are inline and
/// zero-padded. MQTT strings never contain U+0000 [MQTT-1.5.4-2], so the
/// padding marks the end unambiguously and two inline levels are equal
/// exactly when their 15-byte arrays are: a fixed-size compare, with no
/// length field and no `memcmp` call. Longer levels are on the heap behind a
/// thin pointer, which keeps the enum at 16 bytes.
#[derive(Clone)]
pub(crate) enum LevelStr {
    Inline([u8; INLINE]),
    #[allow(clippy::redundant_allocation)] // the outer box makes the pointer thin
    Heap(Box<Box<str>>),
}

impl LevelStr {
    /// The empty level, also used for wildcard nodes and free slots.
    pub(crate) const EMPTY: LevelStr = LevelStr::Inline([0; INLINE]);

    pub(crate) fn new(key: &LevelKey<'_>) -> Self {
        match key.inline {
            Some(bytes) => LevelStr::Inline(bytes),
            // Invariant: levels are cut from validated MQTT strings at '/',
            // so they are UTF-8; the fallback is unreachable.
            None => LevelStr::Heap(Box::new(
                core::str::from_utf8(key.bytes).unwrap_or_default().into(),
            )),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            LevelStr::Inline(b) => {
                let len = b.iter().position(|&c| c == 0).unwrap_or(INLINE);
                &b[..len]
            }
            LevelStr::Heap(s) => s.as_bytes(),
        }
    }

    /// The level as text.
    pub(crate) fn as_str(&self) -> &str {
        // Invariant: built from a UTF-8 level, so this never falls back.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// True if this is the level `key` stands for.
    #[inline]
    pub(crate) fn is(&self, key: &LevelKey<'_>) -> bool {
        match (self, &key.inline) {
            (LevelStr::Inline(a), Some(b)) => a == b,
            (LevelStr::Heap(a), None) => a.as_bytes() == key.bytes,
            _ => false,
        }
    }
}

/// A level being looked up: its bytes, their keyed hash, and (when short) the
/// zero-padded inline form, all computed once per level of a topic or filter.
pub(crate) struct LevelKey<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) hash: u64,
    inline: Option<[u8; INLINE]>,
}

impl<'a> LevelKey<'a> {
    #[inline]
    pub(crate) fn new(bytes: &'a [u8], edges: &Edges) -> Self {
        let inline = (bytes.len() <= INLINE).then(|| {
            let mut b = [0; INLINE];
            b[..bytes.len()].copy_from_slice(bytes);
            b
        });
        LevelKey {
            bytes,
            hash: edges.level_hash(bytes),
            inline,
        }
    }

    #[inline]
    pub(crate) fn is_dollar(&self) -> bool {
        self.bytes.first() == Some(&b'$')
    }
}

/// The levels of a topic name or filter: split at '/', empty levels included.
#[inline]
pub(crate) fn levels(s: &str) -> impl Iterator<Item = &[u8]> {
    s.as_bytes().split(|&b| b == b'/')
}

/// The literal edges of a trie, all in one hash table.
///
/// An edge is (parent node, level string) → child node. Instead of a map per
/// node (dozens of bytes even when empty), the whole trie shares one
/// `HashTable<NodeIdx>`: an entry is the child's 4-byte index plus one control
/// byte, and the key is read back from the child node itself (its `parent` and
/// `level`), so no level string is stored twice. The hash of a level is
/// computed once per topic level and combined with each parent index by a
/// cheap mix, which lets matching probe many frontier nodes per level without
/// re-hashing the string.
pub(crate) struct Edges {
    table: HashTable<NodeIdx>,
    state: KeyedState,
}

impl Edges {
    pub(crate) fn new(state: KeyedState) -> Self {
        Edges {
            table: HashTable::new(),
            state,
        }
    }

    /// The keyed hash of a level, to combine with parents by [`Edges::edge_hash`].
    #[inline]
    pub(crate) fn level_hash(&self, level: &[u8]) -> u64 {
        hash_one(&self.state, level)
    }

    /// The hash of the edge labelled with a level of hash `level_hash` under `parent`.
    #[inline]
    pub(crate) fn edge_hash(level_hash: u64, parent: NodeIdx) -> u64 {
        finalize(level_hash ^ u64::from(parent).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The child for which `is_child` holds among the edges hashed `hash`.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u64,
        is_child: impl FnMut(&NodeIdx) -> bool,
    ) -> Option<NodeIdx> {
        self.table.find(hash, is_child).copied()
    }

    /// Adds the edge to `child`. `key_of` gives any node's (parent, level), to
    /// re-hash existing edges when the table grows.
    pub(crate) fn insert<'n>(
        &mut self,
        hash: u64,
        child: NodeIdx,
        key_of: impl Fn(NodeIdx) -> (NodeIdx, &'n [u8]),
    ) {
        let state = &self.state;
        self.table.insert_unique(hash, child, |&c| {
            let (parent, level) = key_of(c);
            Edges::edge_hash(hash_one(state, level), parent)
        });
    }

    /// Removes the edge to `child`, whose level is `level` under `parent`.
    pub(crate) fn remove(&mut self, parent: NodeIdx, level: &[u8], child: NodeIdx) {
        let hash = Edges::edge_hash(self.level_hash(level), parent);
        if let Ok(entry) = self.table.find_entry(hash, |&c| c == child) {
            entry.remove();
        }
    }

    /// Number of edges.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(s: &'a str, edges: &Edges) -> LevelKey<'a> {
        LevelKey::new(s.as_bytes(), edges)
    }

    #[test]
    fn level_str_is_16_bytes_and_round_trips() {
        assert_eq!(core::mem::size_of::<LevelStr>(), 16);
        let e = Edges::new(KeyedState::with_seed(1));
        let samples = [
            "",
            "a",
            "temperature",
            "exactly-15-byte",
            "sixteen-bytes-xx",
            "a-level-longer-than-inline",
            "é/ü",
        ];
        for s in samples {
            let l = LevelStr::new(&key(s, &e));
            assert_eq!(l.as_str(), s);
            assert!(l.is(&key(s, &e)), "{s}");
            for other in samples.iter().filter(|&&o| o != s) {
                assert!(!l.is(&key(other, &e)), "{s} vs {other}");
            }
        }
        assert!(matches!(
            LevelStr::new(&key("exactly-15-byte", &e)),
            LevelStr::Inline(_)
        ));
        assert!(matches!(
            LevelStr::new(&key("sixteen-bytes-xx", &e)),
            LevelStr::Heap(_)
        ));
    }

    #[test]
    fn edge_hash_depends_on_parent_and_level() {
        let e = Edges::new(KeyedState::with_seed(7));
        let a = e.level_hash(b"a");
        assert_ne!(Edges::edge_hash(a, 1), Edges::edge_hash(a, 2));
        assert_ne!(
            Edges::edge_hash(a, 1),
            Edges::edge_hash(e.level_hash(b"b"), 1)
        );
    }

    #[test]
    fn slab_reuses_slots_and_grows_by_a_quarter() {
        let mut s = Slab::new();
        for i in 0..5000u32 {
            assert_eq!(s.insert(i), i);
            assert!(s.slots.capacity() <= 1024 || s.slots.capacity() <= s.slots.len() * 5 / 4 + 1);
        }
        assert_eq!(*s.get(4096), 4096);
        s.release(7);
        s.release(4000);
        assert_eq!(s.live(), 4998);
        assert_eq!(s.insert(100), 4000);
        assert_eq!(s.insert(101), 7);
        assert_eq!(s.insert(102), 5000);
        assert!(s.has_room(1, 5002));
        assert!(!s.has_room(2, 5002));
        assert_eq!(s.iter().count(), 5001);
    }
}
