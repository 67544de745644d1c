//! An in-memory store that answers every range query in O(log n).

use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

use crate::blocks::Blocks;
use crate::own_index::OwnIndex;
use crate::{Fingerprint, Interval, Range, RangeEntry, RangeKey, Store, Summary};

/// The most keys a leaf holds, and the most children an inner node has, between changes. The
/// arrays of a node have one slot more: a node overflows by one before it is split.
const CAP: usize = 32;
/// How full [`MemStore::compact`] packs the nodes: room for a few inserts before a split.
const FILL: usize = 28;
/// "No node": the end of the leaf chain.
const NIL: usize = usize::MAX;
/// [`MemStore::insert`] compacts the store when it has doubled since the last compaction, from
/// this size on, and [`MemStore::remove`] when it has halved.
const COMPACT_FROM: usize = 1024;

/// An in-memory [`Store`]: a B+-tree whose inner nodes keep, for each child, the number of
/// entries and the XOR of their fingerprints up to and including that child, and whose leaves
/// keep the running XOR of their entries' fingerprints.
///
/// * `count`, `fingerprint`, `summary` and `key_at` of any interval take O(log n) time: one
///   descent per bound (or per rank), with O(1) aggregate work per level, since the prefix
///   arrays say at once what lies left of the child it goes down to; [`Store::pivots`] takes
///   one descent per pivot and no key comparisons;
/// * an index from each entry's fingerprint to its place (a table of 8-byte buckets, each a
///   slot and 4 bytes of its fingerprint, linear probing, at most half full) answers [`Store::entry_by_fingerprint`] in expected amortized
///   O(1): the entries added since the last lookup are indexed first, in one pass;
/// * [`Store::insert`] is last-write-wins: a new key is added; an existing key is replaced only if
///   the new value is strictly greater.
///
/// Queries are dominated by cache misses. A node holds its keys' aggregates in flat arrays, and
/// for a key type with [`RangeKey::order_bytes`] a node also holds the bytes all its keys start
/// with and, for each key, the next 16 bytes as an integer and how many bytes follow the prefix:
/// a search compares integers in one contiguous array and reads a key itself only where the
/// integers tie and both keys run past those 16 bytes. The entries live in an array of their
/// own, and a leaf holds no copies of their keys, only the entries' places in that array: a key
/// is read from its entry where a search needs it whole, and an insert writes no key but the
/// entry's own. [`MemStore::compact`] rebuilds the tree from sorted order with that array
/// sorted too.
///
/// It is the reference the property tests check the algorithm with, and a store for tests and
/// benchmarks. It does not do prefix deletion; a store that needs it wraps or replaces this one.
pub struct MemStore<E: RangeEntry> {
    /// Chained in key order from `leaves[0]`, the leftmost (a split adds its new leaf to the
    /// right).
    leaves: Vec<Leaf>,
    inners: Vec<Inner<E::Key>>,
    /// An index into `inners` if `height > 0`, else into `leaves`.
    root: usize,
    /// The number of levels of inner nodes. Every leaf is this deep.
    height: usize,
    /// The entries, in no particular order (key order right after a compaction), in blocks:
    /// growing never copies them.
    entries: Blocks<E>,
    /// `owns[i]` is the fingerprint of `entries[i]`.
    owns: Blocks<Fingerprint>,
    /// The slot of each entry fingerprint.
    by_own: OwnIndex,
    /// The number of entries at the last compaction.
    compacted_at: usize,
    /// Every insert since the last compaction added a key above all others, and nothing was
    /// removed: the entries are still in key order and the nodes packed (appends leave full
    /// nodes behind, see [`MemStore::split_up`]), so the next compaction would change nothing
    /// worth its O(n) and is skipped.
    in_order: bool,
    /// The bounds of the last [`Store::range_summaries`] call with what lies below each,
    /// sorted and distinct: the ranges that are split next start and end there. Emptied by
    /// every change.
    memo: Vec<(E::Key, (u64, Fingerprint))>,
    /// A buffer for the way down of [`MemStore::insert`], kept so that an insert allocates
    /// nothing unless it adds a node.
    path: Vec<(usize, usize)>,
}

/// The sorted keys of an inner node, with their [`Hints`].
#[derive(Clone)]
struct Keys<K> {
    keys: Vec<K>,
    hints: Hints,
}

/// What a search of a node needs to compare its sorted keys cheaply; the keys themselves are
/// kept elsewhere (in [`Keys`], or in the entries of a leaf) and passed in as `key(i)`, the
/// key of rank `i` in the node.
#[derive(Clone)]
struct Hints {
    /// Bytes every key of the node starts with, if the keys have
    /// [`order_bytes`](RangeKey::order_bytes); `hints` are valid only then.
    prefix: Option<Prefix>,
    /// `(hints[i], lens[i])`: the [`hint`] of key `i` after `prefix`.
    hints: [u128; CAP + 1],
    lens: [u8; CAP + 1],
}

/// The common prefix of a node's keys, cut to [`PREFIX_MAX`] bytes (a cut prefix is still
/// common), kept inline: comparing a query with it reads no other memory.
#[derive(Clone)]
struct Prefix {
    len: usize,
    bytes: [u8; PREFIX_MAX],
}

/// The longest [`Prefix`]: the 64 bytes of an iroh-docs namespace and author and some of the key.
const PREFIX_MAX: usize = 96;

impl Prefix {
    fn new(bytes: &[u8]) -> Self {
        let len = bytes.len().min(PREFIX_MAX);
        let mut this = Prefix {
            len,
            bytes: [0; PREFIX_MAX],
        };
        this.bytes[..len].copy_from_slice(&bytes[..len]);
        this
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A leaf: the places of its entries, in key order, with their hints and running XOR. Its
/// keys are its entries' keys (see [`Leaf::key`]).
#[derive(Clone)]
struct Leaf {
    hints: Hints,
    /// The number of entries.
    len: usize,
    /// `xors[i]`: the XOR of the fingerprints of the entries of keys `0..=i`.
    xors: [Fingerprint; CAP + 1],
    /// `slots[i]`: the index in `MemStore::entries` of the entry of key `i`.
    slots: [usize; CAP + 1],
    /// The leaf with the next keys, or `NIL`.
    next: usize,
}

#[derive(Clone)]
struct Inner<K> {
    /// `seps.keys[i]` is the smallest key child `i + 1` may hold; child `i` holds the keys from
    /// `seps.keys[i - 1]` (inclusive) to `seps.keys[i]` (exclusive).
    seps: Keys<K>,
    children: [usize; CAP + 1],
    /// `counts[i]`: the number of entries in children `0..=i`.
    counts: [u64; CAP + 1],
    /// `xors[i]`: the XOR of their fingerprints.
    xors: [Fingerprint; CAP + 1],
    /// The number of children.
    len: usize,
}

/// How many bytes of a key after its node's prefix a hint holds.
const WINDOW: usize = 16;

/// The hint of `bytes` after its first `at`: the next [`WINDOW`] bytes as a big-endian
/// integer, zero-padded, and how many bytes there are from `at` on (`WINDOW + 1` for more
/// than the window holds).
///
/// Of two byte strings that agree on their first `at` bytes, the one with the smaller integer
/// is the smaller. With equal integers, if either fits in the window it is a prefix of the
/// other (its padding matches the other's bytes), so the shorter is the smaller and equal
/// lengths mean equal strings; only two strings longer than the window need a full comparison.
fn hint(bytes: &[u8], at: usize) -> (u128, u8) {
    let mut buf = [0u8; WINDOW];
    let rest = bytes.get(at..).unwrap_or_default();
    let n = rest.len().min(WINDOW);
    buf[..n].copy_from_slice(&rest[..n]);
    let len = rest.len().min(WINDOW + 1) as u8;
    (u128::from_be_bytes(buf), len)
}

/// The first `i` in `0..n` for which `pred(i)` is false, if `pred` holds for a prefix of
/// `0..n` only (a binary search).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl Hints {
    fn new() -> Self {
        Hints {
            prefix: None,
            hints: [0; CAP + 1],
            lens: [0; CAP + 1],
        }
    }

    /// Recomputes the common prefix of the `n` keys (that of the first and the last, as they
    /// are sorted) and every hint.
    fn refresh<'k, K: RangeKey + 'k>(&mut self, n: usize, key: impl Fn(usize) -> &'k K) {
        self.prefix = None;
        let Some(last) = n.checked_sub(1) else {
            return;
        };
        let (Some(a), Some(b)) = (key(0).order_bytes(), key(last).order_bytes()) else {
            return;
        };
        let common = a
            .iter()
            .zip(b)
            .take_while(|(x, y)| x == y)
            .count()
            .min(PREFIX_MAX);
        for i in 0..n {
            let Some(bytes) = key(i).order_bytes() else {
                return;
            };
            (self.hints[i], self.lens[i]) = hint(bytes, common);
        }
        self.prefix = Some(Prefix::new(&a[..common]));
    }

    /// The number of the `n` keys below `q` (`inclusive`: not above `q`).
    fn position<'k, K: RangeKey + 'k>(
        &self,
        n: usize,
        q: &K,
        inclusive: bool,
        key: impl Fn(usize) -> &'k K,
    ) -> usize {
        let (Some(prefix), Some(qb)) = (self.prefix.as_ref().map(Prefix::bytes), q.order_bytes())
        else {
            return partition(n, |i| if inclusive { key(i) <= q } else { key(i) < q });
        };
        match qb.get(..prefix.len()).unwrap_or(qb).cmp(prefix) {
            Ordering::Less => return 0,
            Ordering::Greater => return n,
            Ordering::Equal => {}
        }
        let (qh, ql) = hint(qb, prefix.len());
        // Branch-free counts over one small array; keys whose hint ties with the query's are
        // told apart by their lengths or, if both are longer than the window, in full.
        let hints = &self.hints[..n];
        let lo = hints.iter().filter(|&&h| h < qh).count();
        let hi = hints.iter().filter(|&&h| h <= qh).count();
        let counted = |&i: &usize| {
            let order = if usize::from(self.lens[i].min(ql)) <= WINDOW {
                self.lens[i].cmp(&ql)
            } else {
                key(i).cmp(q)
            };
            order.is_lt() || (inclusive && order.is_eq())
        };
        lo + (lo..hi).take_while(counted).count()
    }

    /// Key `at` of the `n` keys is new; the ones from `at` on were `at..n - 1` before.
    fn insert<'k, K: RangeKey + 'k>(&mut self, at: usize, n: usize, key: impl Fn(usize) -> &'k K) {
        let prefix = self.prefix.as_ref().map(Prefix::bytes);
        match (prefix, key(at).order_bytes()) {
            // A key that starts with the prefix leaves it common to all.
            (Some(prefix), Some(bytes)) if bytes.starts_with(prefix) => {
                let len = prefix.len();
                self.hints.copy_within(at..n - 1, at + 1);
                self.lens.copy_within(at..n - 1, at + 1);
                (self.hints[at], self.lens[at]) = hint(bytes, len);
            }
            _ => self.refresh(n, key),
        }
    }

    /// Key `at` of the `n` keys is gone. The prefix stays common to the rest.
    fn remove(&mut self, at: usize, n: usize) {
        self.hints.copy_within(at + 1..n, at);
        self.lens.copy_within(at + 1..n, at);
    }
}

impl<K: RangeKey> Keys<K> {
    fn new(mut keys: Vec<K>) -> Self {
        // Room for every key the node may hold: inserts never reallocate.
        keys.reserve_exact((CAP + 1).saturating_sub(keys.len()));
        let mut hints = Hints::new();
        hints.refresh(keys.len(), |i| &keys[i]);
        Keys { keys, hints }
    }

    /// The number of keys below `q` (`inclusive`: not above `q`).
    fn position(&self, q: &K, inclusive: bool) -> usize {
        let keys = &self.keys;
        self.hints.position(keys.len(), q, inclusive, |i| &keys[i])
    }

    fn insert(&mut self, at: usize, key: K) {
        self.keys.insert(at, key);
        let keys = &self.keys;
        self.hints.insert(at, keys.len(), |i| &keys[i]);
    }

    /// Removes key `at`. The prefix stays common to the rest.
    fn remove(&mut self, at: usize) -> K {
        self.hints.remove(at, self.keys.len());
        self.keys.remove(at)
    }

    /// Moves the keys from `at` on into a new `Keys`.
    fn split_off(&mut self, at: usize) -> Keys<K> {
        let right = Keys::new(self.keys.split_off(at));
        let keys = &self.keys;
        self.hints.refresh(keys.len(), |i| &keys[i]);
        right
    }
}

impl Leaf {
    fn empty() -> Self {
        Leaf {
            hints: Hints::new(),
            len: 0,
            xors: [Fingerprint::ZERO; CAP + 1],
            slots: [0; CAP + 1],
            next: NIL,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Key `at`: that of its entry in `entries`.
    fn key<'e, E: RangeEntry>(&self, entries: &'e Blocks<E>, at: usize) -> &'e E::Key {
        entries[self.slots[at]].key()
    }

    /// The number of keys below `q` (`inclusive`: not above `q`).
    fn position<E: RangeEntry>(&self, entries: &Blocks<E>, q: &E::Key, inclusive: bool) -> usize {
        let slots = &self.slots;
        self.hints
            .position(self.len, q, inclusive, |i| entries[slots[i]].key())
    }

    /// Recomputes the hints from the entries.
    fn refresh<E: RangeEntry>(&mut self, entries: &Blocks<E>) {
        let slots = &self.slots;
        self.hints.refresh(self.len, |i| entries[slots[i]].key());
    }

    /// The XOR of the fingerprints of the first `n` keys.
    fn xor_below(&self, n: usize) -> Fingerprint {
        n.checked_sub(1)
            .map_or(Fingerprint::ZERO, |last| self.xors[last])
    }

    fn own(&self, at: usize) -> Fingerprint {
        self.xors[at] ^ self.xor_below(at)
    }

    fn total(&self) -> (u64, Fingerprint) {
        (self.len() as u64, self.xor_below(self.len()))
    }

    /// Makes the entry at `slot` of `entries`, whose fingerprint is `own`, key `at`.
    fn insert<E: RangeEntry>(
        &mut self,
        entries: &Blocks<E>,
        at: usize,
        own: Fingerprint,
        slot: usize,
    ) {
        let n = self.len();
        self.slots.copy_within(at..n, at + 1);
        self.slots[at] = slot;
        self.xors.copy_within(at..n, at + 1);
        self.xors[at] = self.xor_below(at) ^ own;
        self.xors[at + 1..=n].iter_mut().for_each(|x| *x ^= own);
        self.len = n + 1;
        let slots = &self.slots;
        self.hints.insert(at, n + 1, |i| entries[slots[i]].key());
    }

    /// Removes key `at`; returns its slot and fingerprint.
    fn remove(&mut self, at: usize) -> (usize, Fingerprint) {
        let n = self.len();
        let (slot, own) = (self.slots[at], self.own(at));
        self.hints.remove(at, n);
        self.slots.copy_within(at + 1..n, at);
        self.xors.copy_within(at + 1..n, at);
        self.xors[at..n - 1].iter_mut().for_each(|x| *x ^= own);
        self.len = n - 1;
        (slot, own)
    }

    /// XORs `delta` into the aggregates from key `at` on: key `at`'s entry changed.
    fn change(&mut self, at: usize, delta: Fingerprint) {
        let n = self.len();
        self.xors[at..n].iter_mut().for_each(|x| *x ^= delta);
    }

    /// Moves the keys from `at` on into a new leaf, returned; the caller links it in.
    fn split<E: RangeEntry>(&mut self, entries: &Blocks<E>, at: usize) -> Leaf {
        let n = self.len();
        let base = self.xor_below(at);
        let mut right = Leaf::empty();
        right.len = n - at;
        right.slots[..n - at].copy_from_slice(&self.slots[at..n]);
        for (r, x) in right.xors.iter_mut().zip(&self.xors[at..n]) {
            *r = *x ^ base;
        }
        right.refresh(entries);
        self.len = at;
        // The prefix stays common to what is left, so the hints stay right; with more keys
        // gone, a longer prefix may now be common and tell them apart better.
        if at + 1 < n {
            self.refresh(entries);
        }
        right
    }
}

impl<K: RangeKey> Inner<K> {
    /// A node over `children`, each with its count and XOR, separated by `seps`.
    fn new(seps: Keys<K>, children: impl IntoIterator<Item = (usize, (u64, Fingerprint))>) -> Self {
        let mut inner = Inner {
            seps,
            children: [0; CAP + 1],
            counts: [0; CAP + 1],
            xors: [Fingerprint::ZERO; CAP + 1],
            len: 0,
        };
        let (mut count, mut xor) = (0, Fingerprint::ZERO);
        for (k, (child, (c, x))) in children.into_iter().enumerate() {
            count += c;
            xor ^= x;
            inner.children[k] = child;
            inner.counts[k] = count;
            inner.xors[k] = xor;
            inner.len = k + 1;
        }
        inner
    }

    fn total(&self) -> (u64, Fingerprint) {
        self.below(self.len)
    }

    /// What lies in children `0..i`.
    fn below(&self, i: usize) -> (u64, Fingerprint) {
        match i.checked_sub(1) {
            Some(last) => (self.counts[last], self.xors[last]),
            None => (0, Fingerprint::ZERO),
        }
    }

    /// Child `i` gained `count` entries (or lost `-count`) whose fingerprints XOR to `delta`.
    fn change(&mut self, i: usize, count: i64, delta: Fingerprint) {
        let n = self.len;
        for c in &mut self.counts[i..n] {
            *c = c.wrapping_add_signed(count);
        }
        self.xors[i..n].iter_mut().for_each(|x| *x ^= delta);
    }

    /// Child `i` was split: its upper part, with `right` (count and XOR), is now child
    /// `i + 1`, which holds the keys from `sep` on.
    fn insert_child(&mut self, i: usize, sep: K, child: usize, right: (u64, Fingerprint)) {
        let n = self.len;
        self.seps.insert(i, sep);
        self.children.copy_within(i + 1..n, i + 2);
        self.children[i + 1] = child;
        self.counts.copy_within(i..n, i + 1);
        self.xors.copy_within(i..n, i + 1);
        self.counts[i] -= right.0;
        self.xors[i] ^= right.1;
        self.len += 1;
    }

    /// Moves the children from `at` on into a new node; returns it with the key from which on
    /// it holds the keys.
    fn split(&mut self, at: usize) -> (K, Inner<K>) {
        // Children `0..at` keep separators `0..at - 1`; separator `at - 1`, between the
        // halves, goes up to the parent (`at >= 1`: a node splits with `CAP + 1` children).
        let right_seps = self.seps.split_off(at);
        let up = self.seps.remove(at - 1);
        let right = Inner::new(
            right_seps,
            (at..self.len).map(|i| {
                let ((c0, x0), (c1, x1)) = (self.below(i), self.below(i + 1));
                (self.children[i], (c1 - c0, x1 ^ x0))
            }),
        );
        self.len = at;
        (up, right)
    }
}

impl<E: RangeEntry> Default for MemStore<E> {
    fn default() -> Self {
        MemStore {
            leaves: vec![Leaf::empty()],
            inners: Vec::new(),
            root: 0,
            height: 0,
            entries: Blocks::default(),
            owns: Blocks::default(),
            by_own: OwnIndex::default(),
            compacted_at: 0,
            in_order: true,
            memo: Vec::new(),
            path: Vec::new(),
        }
    }
}

impl<E: RangeEntry> fmt::Debug for MemStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<E: RangeEntry> Clone for MemStore<E> {
    /// The copy is compacted (see [`MemStore::compact`]): built from the entries in key order.
    fn clone(&self) -> Self {
        let mut copy = MemStore::new();
        for slot in self.slots_in_order() {
            copy.entries.push(self.entries[slot].clone());
            copy.owns.push(self.owns[slot]);
        }
        copy.build();
        copy
    }
}

impl<E: RangeEntry> MemStore<E> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry with this key.
    pub fn get(&self, key: &E::Key) -> Option<&E> {
        let (leaf, at, found) = self.locate(key, None);
        found.then(|| &self.entries[self.leaves[leaf].slots[at]])
    }

    /// Inserts `entry` with last-write-wins: returns `true` if the key was new or its value was
    /// strictly smaller than `entry`'s (and is now replaced), `false` if the store is unchanged.
    pub fn insert(&mut self, entry: E) -> bool {
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        let stored = self.insert_along(entry, &mut path);
        self.path = path;
        stored
    }

    /// [`insert`](Self::insert), with `path` an empty buffer for the way down.
    fn insert_along(&mut self, entry: E, path: &mut Vec<(usize, usize)>) -> bool {
        let (leaf_id, at, found) = match self.append_at(entry.key(), path) {
            Some((leaf_id, at)) => (leaf_id, at, false),
            None => {
                self.in_order = false;
                path.clear();
                self.locate(entry.key(), Some(path))
            }
        };
        let leaf = &mut self.leaves[leaf_id];
        if found {
            let slot = leaf.slots[at];
            if entry.value() <= self.entries[slot].value() {
                return false;
            }
            self.memo.clear();
            let (old, own) = (self.owns[slot], entry.fingerprint());
            leaf.change(at, old ^ own);
            for &(inner, i) in path.iter() {
                self.inners[inner].change(i, 0, old ^ own);
            }
            self.by_own.remove(slot, &self.owns);
            self.owns[slot] = own;
            self.by_own.insert(slot, &self.owns);
            self.entries[slot] = entry;
            return true;
        }
        self.memo.clear();
        let (slot, own) = (self.entries.len(), entry.fingerprint());
        // The index places it at its next lookup.
        self.owns.push(own);
        // In the array first: the leaf reads the new key from there.
        self.entries.push(entry);
        self.leaves[leaf_id].insert(&self.entries, at, own, slot);
        for &(inner, i) in path.iter() {
            self.inners[inner].change(i, 1, own);
        }
        self.split_up(leaf_id, path, at + 1 == self.leaves[leaf_id].len());
        if self.len() >= COMPACT_FROM && self.len() >= 2 * self.compacted_at {
            if self.in_order {
                self.compacted_at = self.len();
            } else {
                self.compact();
            }
        }
        true
    }

    /// Where `key` goes if it is above every stored key, as when a peer's entries arrive in
    /// ascending order: the end of the last leaf, reached by taking the last child at every
    /// level (recorded in `path`) without comparing keys. `None` if `key` is not above them
    /// (or the last leaf is empty below inner nodes, which removals can leave behind).
    ///
    /// The last leaf's largest key is at least every separator on the way down, so a larger
    /// key is one the search in [`locate`](Self::locate) would send down the same path.
    fn append_at(&self, key: &E::Key, path: &mut Vec<(usize, usize)>) -> Option<(usize, usize)> {
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = &self.inners[node];
            let last = inner.len - 1;
            path.push((node, last));
            node = inner.children[last];
        }
        let leaf = &self.leaves[node];
        match leaf.len().checked_sub(1) {
            Some(last) => (leaf.key(&self.entries, last) < key).then_some((node, leaf.len())),
            // An empty store that is a single leaf takes any key there.
            None => (self.height == 0).then_some((node, 0)),
        }
    }

    /// Removes the entry with this key and returns it.
    pub fn remove(&mut self, key: &E::Key) -> Option<E> {
        let mut path = Vec::with_capacity(self.height);
        let (leaf_id, at, found) = self.locate(key, Some(&mut path));
        if !found {
            return None;
        }
        self.memo.clear();
        self.in_order = false;
        // A leaf may be left underfull, even empty: queries stay O(height), and compaction
        // packs the nodes again once the store has halved.
        let (slot, own) = self.leaves[leaf_id].remove(at);
        for &(inner, i) in &path {
            self.inners[inner].change(i, -1, own);
        }
        self.by_own.remove(slot, &self.owns);
        let last = self.entries.len() - 1;
        if slot != last {
            // The last entry moves into the freed slot; repoint its leaf, and index it there
            // once its fingerprint is.
            let (moved_leaf, pos, _) = self.locate(self.entries[last].key(), None);
            self.leaves[moved_leaf].slots[pos] = slot;
            self.by_own.remove(last, &self.owns);
        }
        self.owns.swap_remove(slot);
        self.by_own.truncate(last);
        let removed = self.entries.swap_remove(slot)?;
        if slot != last {
            self.by_own.insert(slot, &self.owns);
        }
        if self.len() < self.compacted_at / 2 {
            self.compact();
        }
        Some(removed)
    }

    /// Rebuilds the tree from the entries in key order, with the nodes packed and laid out
    /// level by level and the entries array sorted by key; O(n). Queries are dominated by
    /// cache misses, and this keeps them few: a tree grown by inserts in random key order has
    /// half-full nodes and entries scattered over memory. [`insert`](Self::insert) does it by
    /// itself whenever the store has doubled since the last time, and
    /// [`remove`](Self::remove) whenever it has halved (amortized O(1) per change); a clone is
    /// compacted.
    pub fn compact(&mut self) {
        // Each entry's place in key order, then every entry moved there in place, one cycle
        // of the permutation at a time (no second copy of the entries).
        let mut place = vec![NIL; self.entries.len()];
        for (new, slot) in self.slots_in_order().enumerate() {
            place[slot] = new;
        }
        for i in 0..place.len() {
            while place[i] != i {
                let j = place[i];
                self.entries.swap(i, j);
                self.owns.swap(i, j);
                place.swap(i, j);
            }
        }
        self.build();
    }

    /// The slot of each entry, in key order.
    fn slots_in_order(&self) -> impl Iterator<Item = usize> + '_ {
        let mut leaf = 0;
        std::iter::from_fn(move || {
            let l = self.leaves.get(leaf)?;
            leaf = l.next;
            Some(&l.slots[..l.len()])
        })
        .flatten()
        .copied()
    }

    /// Builds the tree over `entries`, which are in key order.
    fn build(&mut self) {
        self.memo.clear();
        self.compacted_at = self.entries.len();
        self.in_order = true;
        self.by_own.reindex(&self.owns);
        self.leaves.clear();
        self.inners.clear();
        // (node, its count and XOR, its first key) of the level being built.
        let mut level: Vec<(usize, (u64, Fingerprint), E::Key)> = Vec::new();
        let len = self.entries.len();
        for start in (0..len).step_by(FILL) {
            let chunk = start..len.min(start + FILL);
            let mut leaf = Leaf::empty();
            let mut acc = Fingerprint::ZERO;
            for (k, slot) in chunk.enumerate() {
                acc ^= self.owns[slot];
                leaf.xors[k] = acc;
                leaf.slots[k] = slot;
                leaf.len = k + 1;
            }
            leaf.refresh(&self.entries);
            let id = self.leaves.len();
            if let Some(prev) = self.leaves.last_mut() {
                prev.next = id;
            }
            level.push((id, leaf.total(), leaf.key(&self.entries, 0).clone()));
            self.leaves.push(leaf);
        }
        if self.leaves.is_empty() {
            self.leaves.push(Leaf::empty());
        }
        self.root = 0;
        self.height = 0;
        while level.len() > 1 {
            let mut up = Vec::with_capacity(level.len().div_ceil(FILL));
            for group in level.chunks(FILL) {
                let inner = Inner::new(
                    Keys::new(group[1..].iter().map(|(_, _, k)| k.clone()).collect()),
                    group.iter().map(|(child, total, _)| (*child, *total)),
                );
                let id = self.inners.len();
                up.push((id, inner.total(), group[0].2.clone()));
                self.inners.push(inner);
            }
            level = up;
            self.root = level[0].0;
            self.height += 1;
        }
    }

    /// Splits the leaf `leaf_id` if it overflows, and every node on `path` (the inner nodes
    /// above it with the child taken in each) that overflows in turn. `appended`: the key that
    /// overflowed the leaf is its last.
    ///
    /// A node splits in halves, except where keys are appended: then it stays full and the new
    /// node takes only the last key (or child), so that inserts in ascending key order, as a
    /// peer's entries arrive, leave full nodes behind instead of half-full ones.
    fn split_up(&mut self, leaf_id: usize, path: &[(usize, usize)], appended: bool) {
        let n = self.leaves[leaf_id].len();
        if n <= CAP {
            return;
        }
        let new_id = self.leaves.len();
        let leaf = &mut self.leaves[leaf_id];
        let mut right = leaf.split(&self.entries, if appended { n - 1 } else { n / 2 });
        right.next = leaf.next;
        leaf.next = new_id;
        let mut sep = right.key(&self.entries, 0).clone();
        let mut total = right.total();
        let mut child = new_id;
        self.leaves.push(right);
        for &(inner_id, i) in path.iter().rev() {
            let inner = &mut self.inners[inner_id];
            inner.insert_child(i, sep, child, total);
            let n = inner.len;
            if n <= CAP {
                return;
            }
            let appended = i + 2 == n;
            let (up, right) = inner.split(if appended { n - 1 } else { n / 2 });
            (sep, total, child) = (up, right.total(), self.inners.len());
            self.inners.push(right);
        }
        // The root split: a new root above the two halves.
        let root = Inner::new(
            Keys::new(vec![sep]),
            [(self.root, self.total()), (child, total)],
        );
        self.root = self.inners.len();
        self.inners.push(root);
        self.height += 1;
    }

    /// All entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, E> {
        Iter {
            store: self,
            leaf: 0,
            at: 0,
        }
    }

    /// Where `key` is or would be: its leaf, its position there and whether it is there; with
    /// `path`, records the inner nodes on the way and the child taken in each.
    fn locate(&self, key: &E::Key, path: Option<&mut Vec<(usize, usize)>>) -> (usize, usize, bool) {
        let id = self.descend(key, path);
        let leaf = &self.leaves[id];
        let at = leaf.position(&self.entries, key, false);
        (
            id,
            at,
            at < leaf.len() && leaf.key(&self.entries, at) == key,
        )
    }

    /// The leaf where `key` is or would be; with `path`, records the inner nodes on the way
    /// and the child taken in each.
    fn descend(&self, key: &E::Key, mut path: Option<&mut Vec<(usize, usize)>>) -> usize {
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = &self.inners[node];
            let i = inner.seps.position(key, true);
            if let Some(path) = path.as_deref_mut() {
                path.push((node, i));
            }
            node = inner.children[i];
        }
        node
    }

    /// The number of entries with key `< key` and the XOR of their fingerprints (unseeded),
    /// from one descent (or the memo).
    fn below(&self, key: &E::Key) -> (u64, Fingerprint) {
        if !self.memo.is_empty()
            && let Ok(i) = self.memo.binary_search_by(|(k, _)| k.cmp(key))
            && let Some((_, below)) = self.memo.get(i)
        {
            return *below;
        }
        let (mut node, mut rank, mut acc) = (self.root, 0, Fingerprint::ZERO);
        for _ in 0..self.height {
            self.below_step(key, &mut node, &mut rank, &mut acc);
        }
        self.below_leaf(key, node, rank, acc)
    }

    /// One level of a [`below`](Self::below) descent: from inner node `node` to the child
    /// `key` goes down to, adding what lies left of that child.
    fn below_step(&self, key: &E::Key, node: &mut usize, rank: &mut u64, acc: &mut Fingerprint) {
        let inner = &self.inners[*node];
        let i = inner.seps.position(key, true);
        let (c, x) = inner.below(i);
        *rank += c;
        *acc ^= x;
        *node = inner.children[i];
    }

    /// The end of a [`below`](Self::below) descent, in leaf `leaf`.
    fn below_leaf(
        &self,
        key: &E::Key,
        leaf: usize,
        rank: u64,
        acc: Fingerprint,
    ) -> (u64, Fingerprint) {
        let leaf = &self.leaves[leaf];
        let at = leaf.position(&self.entries, key, false);
        (rank + at as u64, acc ^ leaf.xor_below(at))
    }

    /// [`below`](Self::below) of each of `keys` (without the memo), the descents taken level by
    /// level together: the nodes they read at one level are independent of each other, so
    /// their cache misses overlap, where one descent after another waits for each in turn.
    fn below_all(&self, keys: &[&E::Key]) -> Vec<(u64, Fingerprint)> {
        let mut at: Vec<(usize, u64, Fingerprint)> =
            vec![(self.root, 0, Fingerprint::ZERO); keys.len()];
        for _ in 0..self.height {
            for (key, (node, rank, acc)) in keys.iter().zip(at.iter_mut()) {
                self.below_step(key, node, rank, acc);
            }
        }
        keys.iter()
            .zip(at)
            .map(|(key, (node, rank, acc))| self.below_leaf(key, node, rank, acc))
            .collect()
    }

    /// The count and XOR of all entries.
    fn total(&self) -> (u64, Fingerprint) {
        if self.height == 0 {
            self.leaves[self.root].total()
        } else {
            self.inners[self.root].total()
        }
    }

    /// [`below`](Self::below) of an interval's start (nothing below an unbounded start).
    fn below_start(&self, interval: &Interval<'_, E::Key>) -> (u64, Fingerprint) {
        interval
            .start()
            .map_or((0, Fingerprint::ZERO), |s| self.below(s))
    }

    /// [`below`](Self::below) of an interval's end (everything below an unbounded end).
    fn below_end(&self, interval: &Interval<'_, E::Key>) -> (u64, Fingerprint) {
        interval
            .end()
            .map_or_else(|| self.total(), |e| self.below(e))
    }

    /// For each of `ranks` (overall, ascending), the key of that rank and the XOR of the
    /// fingerprints of the entries below it (unseeded); stops at the first rank that is not
    /// below the store's size. Descents without key comparisons, taken level by level
    /// together, as in [`below_all`](Self::below_all).
    fn select_all(&self, ranks: &[u64]) -> Vec<(&E::Key, Fingerprint)> {
        let len = self.len() as u64;
        // (node, rank within it, XOR of what lies left of it); `None` once a rank is found
        // to be past the node's entries.
        let mut at: Vec<Option<(usize, u64, Fingerprint)>> = ranks
            .iter()
            .take_while(|&&rank| rank < len)
            .map(|&rank| Some((self.root, rank, Fingerprint::ZERO)))
            .collect();
        for _ in 0..self.height {
            for state in at.iter_mut() {
                let Some((node, rank, acc)) = state else {
                    continue;
                };
                let inner = &self.inners[*node];
                let n = inner.len;
                let i = inner.counts[..n].iter().filter(|&&c| c <= *rank).count();
                if i == n {
                    *state = None;
                    continue;
                }
                let (c, x) = inner.below(i);
                *rank -= c;
                *acc ^= x;
                *node = inner.children[i];
            }
        }
        at.into_iter()
            .map_while(|state| {
                let (node, rank, acc) = state?;
                let leaf = &self.leaves[node];
                let at = usize::try_from(rank).ok().filter(|&at| at < leaf.len())?;
                Some((leaf.key(&self.entries, at), acc ^ leaf.xor_below(at)))
            })
            .collect()
    }
}

impl<E: RangeEntry> Store<E> for MemStore<E> {
    type Error = Infallible;

    fn count(&mut self, interval: Interval<'_, E::Key>) -> Result<u64, Infallible> {
        Ok(self.summary(interval)?.count)
    }

    fn fingerprint(&mut self, interval: Interval<'_, E::Key>) -> Result<Fingerprint, Infallible> {
        Ok(self.summary(interval)?.fingerprint)
    }

    fn summary(&mut self, interval: Interval<'_, E::Key>) -> Result<Summary, Infallible> {
        let (start, start_xor) = self.below_start(&interval);
        let (end, end_xor) = self.below_end(&interval);
        Ok(Summary {
            count: end.saturating_sub(start),
            fingerprint: Fingerprint::EMPTY ^ start_xor ^ end_xor,
        })
    }

    fn key_at(
        &mut self,
        interval: Interval<'_, E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Infallible> {
        Ok(self
            .pivots(interval, &[rank])?
            .into_iter()
            .next()
            .map(|(key, _)| key))
    }

    /// One descent per distinct bound (all taken together level by level), remembered for the
    /// pivots and summaries that follow.
    fn range_summaries(&mut self, ranges: &[&Range<E::Key>]) -> Result<Vec<Summary>, Infallible> {
        // Slot 2i is range i's `x`, 2i + 1 its `y`.
        let mut bounds: Vec<(&E::Key, usize)> = Vec::with_capacity(2 * ranges.len());
        for (i, r) in ranges.iter().enumerate() {
            if !r.is_all() {
                bounds.push((&r.x, 2 * i));
                bounds.push((&r.y, 2 * i + 1));
            }
        }
        bounds.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // The distinct bounds with what lies below each, and for each slot the index of its
        // bound. Bounds that were bounds of the last call too are answered from the memo, in
        // one merge of the two sorted lists; the others by a descent each.
        let old = std::mem::take(&mut self.memo);
        let mut remembered = old.iter().peekable();
        let mut memo: Vec<(E::Key, (u64, Fingerprint))> = Vec::with_capacity(bounds.len());
        let mut index = vec![0usize; 2 * ranges.len()];
        // The places in `memo` of the bounds to descend for, and those bounds.
        let mut unknown: Vec<usize> = Vec::new();
        let mut keys: Vec<&E::Key> = Vec::new();
        for &(key, slot) in &bounds {
            if memo.last().is_none_or(|(k, _)| k != key) {
                while remembered.next_if(|(k, _)| k < key).is_some() {}
                let below = match remembered.peek() {
                    Some((k, below)) if k == key => *below,
                    _ => {
                        unknown.push(memo.len());
                        keys.push(key);
                        (0, Fingerprint::ZERO)
                    }
                };
                memo.push((key.clone(), below));
            }
            index[slot] = memo.len() - 1;
        }
        for (i, below) in unknown.into_iter().zip(self.below_all(&keys)) {
            memo[i].1 = below;
        }
        let (len, all) = self.total();
        let summaries = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.is_all() {
                    return Summary {
                        count: len,
                        fingerprint: Fingerprint::EMPTY ^ all,
                    };
                }
                let (ix, iy) = (index[2 * i], index[2 * i + 1]);
                let ((rx, fx), (ry, fy)) = (memo[ix].1, memo[iy].1);
                if ix < iy {
                    Summary {
                        count: ry.saturating_sub(rx),
                        fingerprint: Fingerprint::EMPTY ^ fx ^ fy,
                    }
                } else {
                    // [x, ∞) and (-∞, y).
                    Summary {
                        count: len.saturating_sub(rx) + ry,
                        fingerprint: Fingerprint::EMPTY ^ all ^ fx ^ fy,
                    }
                }
            })
            .collect();
        self.memo = memo;
        Ok(summaries)
    }

    /// Descents for the interval's bounds (usually remembered from the summaries before), then
    /// one per rank, all taken together level by level, each summing what it skips.
    fn pivots(
        &mut self,
        interval: Interval<'_, E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Infallible> {
        let (start, start_xor) = self.below_start(&interval);
        let end = self.below_end(&interval).0;
        let overall: Vec<u64> = ranks
            .iter()
            .take_while(|&&rank| start.saturating_add(rank) < end)
            .map(|&rank| start + rank)
            .collect();
        Ok(self
            .select_all(&overall)
            .into_iter()
            .zip(ranks)
            .map(|((key, below), &rank)| {
                (
                    key.clone(),
                    Summary {
                        count: rank,
                        fingerprint: Fingerprint::EMPTY ^ start_xor ^ below,
                    },
                )
            })
            .collect())
    }

    fn for_each<F>(&mut self, interval: Interval<'_, E::Key>, mut f: F) -> Result<(), Infallible>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        let (mut leaf, mut at) = match interval.start() {
            None => (0, 0),
            Some(start) => {
                let (leaf, at, _) = self.locate(start, None);
                (leaf, at)
            }
        };
        while leaf != NIL {
            let l = &self.leaves[leaf];
            for &slot in l.slots.get(at..l.len()).unwrap_or_default() {
                let entry = &self.entries[slot];
                if interval.end().is_some_and(|end| entry.key() >= end) {
                    return Ok(());
                }
                if f(entry.clone()).is_break() {
                    return Ok(());
                }
            }
            (leaf, at) = (l.next, 0);
        }
        Ok(())
    }

    fn insert(&mut self, entry: &E) -> Result<bool, Infallible> {
        Ok(MemStore::insert(self, entry.clone()))
    }

    fn entry_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Option<E>, Infallible> {
        Ok(self
            .by_own
            .get(fingerprint, &self.owns)
            .and_then(|slot| self.entries.get(slot))
            .cloned())
    }
}

impl<E: RangeEntry> FromIterator<E> for MemStore<E> {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        let mut store = MemStore::new();
        store.extend(iter);
        store
    }
}

impl<E: RangeEntry> Extend<E> for MemStore<E> {
    fn extend<I: IntoIterator<Item = E>>(&mut self, iter: I) {
        for e in iter {
            MemStore::insert(self, e);
        }
    }
}

/// In-order iterator over a [`MemStore`], from [`MemStore::iter`].
pub struct Iter<'a, E: RangeEntry> {
    store: &'a MemStore<E>,
    leaf: usize,
    at: usize,
}

impl<'a, E: RangeEntry> Iterator for Iter<'a, E> {
    type Item = &'a E;

    fn next(&mut self) -> Option<&'a E> {
        let store = self.store;
        loop {
            let leaf = store.leaves.get(self.leaf)?;
            if let Some(&slot) = leaf.slots[..leaf.len()].get(self.at) {
                self.at += 1;
                return store.entries.get(slot);
            }
            (self.leaf, self.at) = (leaf.next, 0);
        }
    }
}

impl<E: RangeEntry> fmt::Debug for Iter<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("leaf", &self.leaf)
            .field("at", &self.at)
            .finish()
    }
}
