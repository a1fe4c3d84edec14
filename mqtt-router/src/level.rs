//! Compact storage of one topic level, and the edge table of the tries.

use alloc::boxed::Box;
use hashbrown::HashTable;

use crate::seed::{finalize, hash_one, KeyedState};

/// Index of a node in a trie's slab. `u32` halves the size of every link
/// compared with `usize` and still addresses four billion nodes.
pub(crate) type NodeIdx = u32;

/// "No node": the absent link.
pub(crate) const NIL: NodeIdx = u32::MAX;

/// The root of every trie: slot 0, never freed.
pub(crate) const ROOT: NodeIdx = 0;

/// Levels of up to this many bytes live inside the node, without a heap
/// allocation; most real levels ("site", "device", "42", "temperature") do.
const INLINE: usize = 22;

/// One topic level, stored once in the trie node it labels.
///
/// 24 bytes: short levels inline, longer ones in a `Box<str>`.
#[derive(Clone)]
pub(crate) enum LevelStr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl LevelStr {
    /// The empty level, also used for wildcard nodes and free slots.
    pub(crate) const EMPTY: LevelStr = LevelStr::Inline {
        len: 0,
        bytes: [0; INLINE],
    };

    pub(crate) fn new(level: &str) -> Self {
        if level.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..level.len()].copy_from_slice(level.as_bytes());
            LevelStr::Inline {
                len: level.len() as u8,
                bytes,
            }
        } else {
            LevelStr::Heap(level.into())
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            LevelStr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            LevelStr::Heap(s) => s.as_bytes(),
        }
    }

    /// The level as text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Invariant: built from a `&str` cut at a '/' boundary, so the
            // bytes are UTF-8 and this never falls back to "".
            LevelStr::Inline { len, bytes } => {
                core::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            LevelStr::Heap(s) => s,
        }
    }

    #[inline]
    pub(crate) fn is(&self, level: &str) -> bool {
        self.as_bytes() == level.as_bytes()
    }
}

/// The literal edges of a trie, all in one hash table.
///
/// An edge is (parent node, level string) → child node. Instead of a map per
/// node (dozens of bytes even when empty), the whole trie shares one
/// `HashTable<NodeIdx>`: an entry is the child's 4-byte index plus one control
/// byte, and the key is read back from the child node itself (its `parent` and
/// `level`), so no level string is stored twice. The hash of a level is
/// computed once per topic level and combined with each parent index by a
/// cheap mix, which is what lets matching visit many frontier nodes per level
/// without re-hashing the string.
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

    /// The keyed hash of a level string, to combine with parents by [`Edges::edge_hash`].
    #[inline]
    pub(crate) fn level_hash(&self, level: &str) -> u64 {
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
        key_of: impl Fn(NodeIdx) -> (NodeIdx, &'n str),
    ) {
        let state = &self.state;
        self.table.insert_unique(hash, child, |&c| {
            let (parent, level) = key_of(c);
            Edges::edge_hash(hash_one(state, level), parent)
        });
    }

    /// Number of edges.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Removes the edge to `child`, which is hashed `hash`.
    pub(crate) fn remove(&mut self, hash: u64, child: NodeIdx) {
        if let Ok(entry) = self.table.find_entry(hash, |&c| c == child) {
            entry.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_str_is_compact_and_round_trips() {
        assert_eq!(core::mem::size_of::<LevelStr>(), 24);
        for s in [
            "",
            "a",
            "temperature",
            "exactly-22-bytes-long!",
            "a-level-that-is-longer-than-inline",
            "é/ü",
        ] {
            let l = LevelStr::new(s);
            assert_eq!(l.as_str(), s);
            assert!(l.is(s));
            assert!(!l.is("x"));
        }
        assert!(matches!(
            LevelStr::new("exactly-22-bytes-long!"),
            LevelStr::Inline { .. }
        ));
        assert!(matches!(
            LevelStr::new("exactly-23-bytes-long!!"),
            LevelStr::Heap(_)
        ));
    }

    #[test]
    fn edge_hash_depends_on_parent_and_level() {
        let e = Edges::new(KeyedState::with_seed(7));
        let a = e.level_hash("a");
        assert_ne!(Edges::edge_hash(a, 1), Edges::edge_hash(a, 2));
        assert_ne!(
            Edges::edge_hash(a, 1),
            Edges::edge_hash(e.level_hash("b"), 1)
        );
    }
}
