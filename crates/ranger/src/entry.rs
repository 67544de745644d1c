//! What reconciliation needs to know about the things it reconciles.

use std::fmt::Debug;

use crate::Fingerprint;

/// A key: totally ordered; ranges are ranges of keys.
pub trait RangeKey: Ord + Clone + Debug {
    /// An upper bound of the number of bytes this key takes in an encoded message; used to keep
    /// messages under the size budget.
    ///
    /// The budget is only as good as this number: it must be at least the bytes the network
    /// layer writes for the key (for iroh-docs' postcard `RecordIdentifier`: the varint length
    /// prefix plus the 64 + key bytes). Ranges carry two keys; the per-part overheads are the
    /// `*_OVERHEAD` constants of this crate.
    fn encoded_len(&self) -> usize;

    /// The smallest key greater than this one, if the key type has one that a peer accepts in
    /// a range bound. It lets a session cut a range right after one of its entries (see
    /// [`Config::with_eager_leaves`](crate::Config::with_eager_leaves)). `None` by default.
    fn successor(&self) -> Option<Self> {
        None
    }

    /// Bytes whose lexicographic order is the order of the keys, if the key type has them:
    /// for any two keys `a` and `b`, `a.cmp(&b)` must equal
    /// `a.order_bytes().cmp(&b.order_bytes())`, and either every key of the type has them or
    /// none has. `None` by default.
    ///
    /// A store may use them to compare keys by short integers it keeps inline instead of
    /// comparing whole keys ([`MemStore`](crate::MemStore) does). Bytes that break the rule
    /// make such a store answer wrongly, never panic.
    fn order_bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// A value: ordered by last-write-wins (the greater value wins).
pub trait RangeValue: Ord + Clone + Debug {}

/// An element of the reconciled set.
pub trait RangeEntry: Clone + Debug {
    /// The key type.
    type Key: RangeKey;
    /// The value type.
    type Value: RangeValue;

    /// The key of this entry. At most one entry per key is in a set.
    fn key(&self) -> &Self::Key;
    /// The value of this entry.
    fn value(&self) -> &Self::Value;
    /// The per-entry fingerprint. Two entries with the same fingerprint are treated as equal.
    fn fingerprint(&self) -> Fingerprint;
    /// An upper bound of the number of bytes this entry takes in an encoded message (including
    /// whatever per-item metadata the wire format attaches), used for the size budget.
    ///
    /// For iroh-docs that is the postcard `SignedEntry` (two 64-byte signatures, the
    /// length-prefixed record identifier, the record) plus 1 byte of `ContentStatus`.
    fn encoded_len(&self) -> usize;
}
