//! An in-memory store that answers every range query in O(log n).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

use crate::{Fingerprint, Interval, Range, RangeEntry, Store, Summary};

/// Index of a node in the arena; `NIL` is "no node".
type Idx = usize;
const NIL: Idx = usize::MAX;

/// [`MemStore::insert`] compacts the store when its size reaches a power of two from here on.
const COMPACT_FROM: usize = 1024;

/// An in-memory [`Store`]: a treap (a binary search tree kept balanced by heap-ordered node
/// priorities) whose nodes carry the size and the XOR of the entry fingerprints of their subtree.
///
/// * `count`, `fingerprint`, `summary` and `key_at` of any interval take O(log n) expected
///   time, from one root-to-leaf walk per bound; [`Store::pivots`] takes one more walk per
///   pivot and [`Store::range_summaries`] one walk shared by all the bounds of a message;
/// * a hash map from each entry's fingerprint to its node answers
///   [`Store::entry_by_fingerprint`] in O(1);
/// * [`Store::insert`] is last-write-wins: a new key is added; an existing key is replaced only if
///   the new value is strictly greater;
/// * node priorities come from a fixed-seed generator, so the shape (and the run time) is
///   deterministic; the crate has no randomness of its own.
///
/// The tree nodes hold only what a walk reads (the key, the links and the aggregates, the
/// aggregates of the left subtree included, so that a walk never reads a node it does not
/// descend into); the entries themselves live in an array of their own, read only when an
/// entry is returned. Walks are dominated by cache misses, so this keeps them few, and so does
/// the node order: the store lays its nodes out breadth-first whenever its size reaches a power
/// of two, and in every clone (see [`MemStore::compact`]).
///
/// It is the reference the property tests check the algorithm with, and a store for tests and
/// benchmarks. It does not do prefix deletion; a store that needs it wraps or replaces this one.
pub struct MemStore<E: RangeEntry> {
    nodes: Vec<Node<E::Key>>,
    /// `entries[i]` is the entry of `nodes[i]`.
    entries: Vec<E>,
    /// The node of each entry fingerprint. Distinct entries with equal fingerprints would share
    /// a slot; the lookup checks the node it finds.
    by_own: HashMap<Fingerprint, Idx>,
    root: Idx,
    next_priority: u64,
    /// The bounds of the last [`Store::range_summaries`] call with what lies below each,
    /// sorted and distinct: the ranges that are split next start and end there. Emptied by
    /// every change.
    memo: Vec<(E::Key, (u64, Fingerprint))>,
}

#[derive(Clone)]
struct Node<K> {
    key: K,
    /// The fingerprint of this node's entry, cached.
    own: Fingerprint,
    /// XOR of the fingerprints of the left subtree and of this node's entry: what a walk that
    /// passes this node to the right leaves behind.
    left_xor: Fingerprint,
    /// XOR of the fingerprints of the whole subtree (not seeded).
    xor: Fingerprint,
    /// The number of entries in the left subtree.
    left_size: u64,
    /// The number of entries in the subtree.
    size: u64,
    priority: u64,
    left: Idx,
    right: Idx,
}

impl<E: RangeEntry> Default for MemStore<E> {
    fn default() -> Self {
        MemStore {
            nodes: Vec::new(),
            entries: Vec::new(),
            by_own: HashMap::new(),
            root: NIL,
            next_priority: 0x9e37_79b9_7f4a_7c15,
            memo: Vec::new(),
        }
    }
}

impl<E: RangeEntry> fmt::Debug for MemStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<E: RangeEntry> Clone for MemStore<E> {
    /// The copy has its nodes in breadth-first order (see [`MemStore::compact`]).
    fn clone(&self) -> Self {
        let mut copy = MemStore {
            nodes: self.nodes.clone(),
            entries: self.entries.clone(),
            by_own: self.by_own.clone(),
            root: self.root,
            next_priority: self.next_priority,
            memo: self.memo.clone(),
        };
        copy.compact();
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
        self.nodes.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The entry with this key.
    pub fn get(&self, key: &E::Key) -> Option<&E> {
        self.find(key).and_then(|t| self.entries.get(t))
    }

    /// Inserts `entry` with last-write-wins: returns `true` if the key was new or its value was
    /// strictly smaller than `entry`'s (and is now replaced), `false` if the store is unchanged.
    pub fn insert(&mut self, entry: E) -> bool {
        if let Some(t) = self.find(entry.key()) {
            if entry.value() <= self.entries[t].value() {
                return false;
            }
            self.replace(entry);
            return true;
        }
        self.memo.clear();
        let idx = self.nodes.len();
        let own = entry.fingerprint();
        let priority = self.priority();
        self.by_own.insert(own, idx);
        self.nodes.push(Node {
            key: entry.key().clone(),
            own,
            left_xor: own,
            xor: own,
            left_size: 0,
            size: 1,
            priority,
            left: NIL,
            right: NIL,
        });
        self.entries.push(entry);
        self.root = self.insert_at(self.root, idx);
        if self.nodes.len() >= COMPACT_FROM && self.nodes.len().is_power_of_two() {
            self.compact();
        }
        true
    }

    /// Removes the entry with this key and returns it.
    pub fn remove(&mut self, key: &E::Key) -> Option<E> {
        self.memo.clear();
        let (root, removed) = self.remove_rec(self.root, key);
        self.root = root;
        let removed = removed?;
        self.unindex(removed);
        let last = self.nodes.len() - 1;
        if removed != last {
            // The last node moves into the freed slot; repoint whoever points at it.
            self.repoint(last, removed);
            if let Some(slot) = self.by_own.get_mut(&self.nodes[last].own)
                && *slot == last
            {
                *slot = removed;
            }
        }
        self.nodes.swap_remove(removed);
        Some(self.entries.swap_remove(removed))
    }

    /// Lays the nodes out in breadth-first order, so that the top of the tree, which every
    /// query walks through, lies together in memory; O(n). Walks are dominated by cache
    /// misses, and a tree built by inserts in random key order has its nodes scattered: after
    /// this, queries are faster (about 1.5× at 100 000 entries on the benchmark machine).
    /// [`insert`](Self::insert) does it by itself whenever the size reaches a power of two
    /// (amortized O(1) per insert), and a clone is laid out this way.
    pub fn compact(&mut self) {
        let mut place = self.breadth_first();
        let map = |t: Idx| place.get(t).copied().unwrap_or(NIL);
        for node in &mut self.nodes {
            node.left = map(node.left);
            node.right = map(node.right);
        }
        for t in self.by_own.values_mut() {
            *t = map(*t);
        }
        self.root = map(self.root);
        // Every node and entry to its place, in place, one cycle of the permutation at a time.
        let len = place.len();
        for i in 0..len {
            while let Some(&j) = place.get(i)
                && j != i
                && j < len
            {
                self.nodes.swap(i, j);
                self.entries.swap(i, j);
                place.swap(i, j);
            }
        }
    }

    /// For each node its place in breadth-first order from the root.
    fn breadth_first(&self) -> Vec<Idx> {
        let mut order = Vec::with_capacity(self.nodes.len());
        if self.root != NIL {
            order.push(self.root);
        }
        let mut i = 0;
        while let Some(&t) = order.get(i) {
            let node = &self.nodes[t];
            order.extend([node.left, node.right].into_iter().filter(|&c| c != NIL));
            i += 1;
        }
        let mut place = vec![NIL; self.nodes.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old] = new;
        }
        place
    }

    /// All entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, E> {
        let mut iter = Iter {
            store: self,
            stack: Vec::new(),
        };
        iter.push_left(self.root);
        iter
    }

    /// The node with this key.
    fn find(&self, key: &E::Key) -> Option<Idx> {
        let mut t = self.root;
        while t != NIL {
            let node = &self.nodes[t];
            match key.cmp(&node.key) {
                Ordering::Less => t = node.left,
                Ordering::Greater => t = node.right,
                Ordering::Equal => return Some(t),
            }
        }
        None
    }

    /// The number of entries with key `< key` and the XOR of their fingerprints (unseeded),
    /// from one walk (or the memo).
    fn below(&self, key: &E::Key) -> (u64, Fingerprint) {
        if !self.memo.is_empty()
            && let Ok(i) = self.memo.binary_search_by(|(k, _)| k.cmp(key))
            && let Some((_, below)) = self.memo.get(i)
        {
            return *below;
        }
        let mut t = self.root;
        let mut rank = 0;
        let mut acc = Fingerprint::ZERO;
        while t != NIL {
            let node = &self.nodes[t];
            if node.key < *key {
                rank += node.left_size + 1;
                acc ^= node.left_xor;
                t = node.right;
            } else {
                t = node.left;
            }
        }
        (rank, acc)
    }

    /// [`below`](Self::below) of each of `keys` (ascending) into `out`, in one walk of the
    /// subtree `t` shared by all of them; `acc` is what lies below the subtree.
    fn below_many(
        &self,
        t: Idx,
        keys: &[&E::Key],
        out: &mut [(u64, Fingerprint)],
        acc: (u64, Fingerprint),
    ) {
        if keys.is_empty() {
            return;
        }
        if t == NIL {
            out.iter_mut().for_each(|o| *o = acc);
            return;
        }
        let node = &self.nodes[t];
        // Keys up to the node's own do not count it.
        let at = keys.partition_point(|k| **k <= node.key);
        let (keys_left, keys_right) = keys.split_at(at);
        let (out_left, out_right) = out.split_at_mut(at);
        self.below_many(node.left, keys_left, out_left, acc);
        let right_acc = (acc.0 + node.left_size + 1, acc.1 ^ node.left_xor);
        self.below_many(node.right, keys_right, out_right, right_acc);
    }

    /// [`below`](Self::below) of an interval's start (nothing below an unbounded start).
    fn below_start(&self, interval: &Interval<'_, E::Key>) -> (u64, Fingerprint) {
        interval
            .start()
            .map_or((0, Fingerprint::ZERO), |s| self.below(s))
    }

    /// [`below`](Self::below) of an interval's end (everything below an unbounded end).
    fn below_end(&self, interval: &Interval<'_, E::Key>) -> (u64, Fingerprint) {
        interval.end().map_or_else(
            || (self.nodes.len() as u64, self.xor(self.root)),
            |e| self.below(e),
        )
    }

    /// The node of rank `rank` overall and the XOR of the fingerprints of the entries below it
    /// (unseeded), from one walk without key comparisons.
    fn select(&self, mut rank: u64) -> Option<(Idx, Fingerprint)> {
        let mut t = self.root;
        let mut acc = Fingerprint::ZERO;
        while t != NIL {
            let node = &self.nodes[t];
            match rank.cmp(&node.left_size) {
                Ordering::Less => t = node.left,
                Ordering::Equal => return Some((t, acc ^ node.left_xor ^ node.own)),
                Ordering::Greater => {
                    rank -= node.left_size + 1;
                    acc ^= node.left_xor;
                    t = node.right;
                }
            }
        }
        None
    }

    fn size(&self, t: Idx) -> u64 {
        if t == NIL { 0 } else { self.nodes[t].size }
    }

    fn xor(&self, t: Idx) -> Fingerprint {
        if t == NIL {
            Fingerprint::ZERO
        } else {
            self.nodes[t].xor
        }
    }

    /// Recomputes the aggregates of `t` from its children.
    fn pull(&mut self, t: Idx) {
        let (l, r) = (self.nodes[t].left, self.nodes[t].right);
        let left_size = self.size(l);
        let left_xor = self.xor(l) ^ self.nodes[t].own;
        let size = left_size + 1 + self.size(r);
        let xor = left_xor ^ self.xor(r);
        let node = &mut self.nodes[t];
        node.left_size = left_size;
        node.left_xor = left_xor;
        node.size = size;
        node.xor = xor;
    }

    /// splitmix64 over a counter: deterministic, well-spread priorities.
    fn priority(&mut self) -> u64 {
        self.next_priority = self.next_priority.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.next_priority;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Puts the lone node `idx` (whose key is not in `t`) into the subtree `t`: down to where
    /// its priority belongs, then the subtree there is split around it. Returns the new root.
    fn insert_at(&mut self, t: Idx, idx: Idx) -> Idx {
        if t == NIL {
            return idx;
        }
        if self.nodes[idx].priority > self.nodes[t].priority {
            let key = self.nodes[idx].key.clone();
            let (l, r) = self.split(t, &key);
            self.nodes[idx].left = l;
            self.nodes[idx].right = r;
            self.pull(idx);
            return idx;
        }
        if self.nodes[idx].key < self.nodes[t].key {
            let left = self.insert_at(self.nodes[t].left, idx);
            self.nodes[t].left = left;
        } else {
            let right = self.insert_at(self.nodes[t].right, idx);
            self.nodes[t].right = right;
        }
        self.pull(t);
        t
    }

    /// Splits `t` into (keys `< key`, keys `>= key`).
    fn split(&mut self, t: Idx, key: &E::Key) -> (Idx, Idx) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.nodes[t].key < *key {
            let (l, r) = self.split(self.nodes[t].right, key);
            self.nodes[t].right = l;
            self.pull(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.nodes[t].left, key);
            self.nodes[t].left = r;
            self.pull(t);
            (l, t)
        }
    }

    /// Joins two treaps where every key of `l` is below every key of `r`.
    fn merge(&mut self, l: Idx, r: Idx) -> Idx {
        if l == NIL {
            return r;
        }
        if r == NIL {
            return l;
        }
        if self.nodes[l].priority >= self.nodes[r].priority {
            let right = self.nodes[l].right;
            self.nodes[l].right = self.merge(right, r);
            self.pull(l);
            l
        } else {
            let left = self.nodes[r].left;
            self.nodes[r].left = self.merge(l, left);
            self.pull(r);
            r
        }
    }

    /// Replaces the entry at `entry`'s key (which must exist) and fixes the aggregates.
    fn replace(&mut self, entry: E) {
        let mut path = Vec::new();
        let mut t = self.root;
        while t != NIL {
            path.push(t);
            match entry.key().cmp(&self.nodes[t].key) {
                Ordering::Less => t = self.nodes[t].left,
                Ordering::Greater => t = self.nodes[t].right,
                Ordering::Equal => break,
            }
        }
        if t == NIL {
            return;
        }
        self.memo.clear();
        self.unindex(t);
        let own = entry.fingerprint();
        self.by_own.insert(own, t);
        self.nodes[t].own = own;
        self.entries[t] = entry;
        for &t in path.iter().rev() {
            self.pull(t);
        }
    }

    fn remove_rec(&mut self, t: Idx, key: &E::Key) -> (Idx, Option<Idx>) {
        if t == NIL {
            return (NIL, None);
        }
        match key.cmp(&self.nodes[t].key) {
            Ordering::Equal => {
                let (l, r) = (self.nodes[t].left, self.nodes[t].right);
                (self.merge(l, r), Some(t))
            }
            Ordering::Less => {
                let (left, removed) = self.remove_rec(self.nodes[t].left, key);
                self.nodes[t].left = left;
                self.pull(t);
                (t, removed)
            }
            Ordering::Greater => {
                let (right, removed) = self.remove_rec(self.nodes[t].right, key);
                self.nodes[t].right = right;
                self.pull(t);
                (t, removed)
            }
        }
    }

    /// Forgets node `t` in the fingerprint index (unless another node took its slot).
    fn unindex(&mut self, t: Idx) {
        let own = self.nodes[t].own;
        if self.by_own.get(&own) == Some(&t) {
            self.by_own.remove(&own);
        }
    }

    /// Replaces the link to node `from` (still in the tree) by a link to `to`.
    fn repoint(&mut self, from: Idx, to: Idx) {
        if self.root == from {
            self.root = to;
            return;
        }
        let key = self.nodes[from].key.clone();
        let mut t = self.root;
        while t != NIL {
            let node = &mut self.nodes[t];
            let child = if key < node.key {
                &mut node.left
            } else {
                &mut node.right
            };
            if *child == from {
                *child = to;
                return;
            }
            t = *child;
        }
    }

    fn visit<F>(&self, t: Idx, interval: &Interval<'_, E::Key>, f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        if t == NIL {
            return ControlFlow::Continue(());
        }
        let node = &self.nodes[t];
        let key = &node.key;
        let above_start = interval.start().is_none_or(|s| s <= key);
        let below_end = interval.end().is_none_or(|e| key < e);
        if above_start {
            self.visit(node.left, interval, f)?;
        }
        if above_start && below_end {
            f(self.entries[t].clone())?;
        }
        if below_end {
            self.visit(node.right, interval, f)?;
        }
        ControlFlow::Continue(())
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

    /// One walk shared by all the bounds, sorted.
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
        // Distinct keys, and for each bound the index of its key.
        let mut keys: Vec<&E::Key> = Vec::with_capacity(bounds.len());
        let mut slot_key = vec![0usize; 2 * ranges.len()];
        for (key, slot) in &bounds {
            if keys.last() != Some(key) {
                keys.push(key);
            }
            if let Some(s) = slot_key.get_mut(*slot) {
                *s = keys.len() - 1;
            }
        }
        let mut found = vec![(0, Fingerprint::ZERO); keys.len()];
        self.below_many(self.root, &keys, &mut found, (0, Fingerprint::ZERO));
        let slots: Vec<(u64, Fingerprint)> = slot_key
            .iter()
            .map(|&k| found.get(k).copied().unwrap_or_default())
            .collect();
        self.memo = keys.iter().map(|k| (*k).clone()).zip(found).collect();
        let (len, all) = (self.nodes.len() as u64, self.xor(self.root));
        Ok(ranges
            .iter()
            .zip(slots.chunks_exact(2))
            .map(|(r, ends)| {
                let ((rx, fx), (ry, fy)) = (ends[0], ends[1]);
                if r.is_all() {
                    Summary {
                        count: len,
                        fingerprint: Fingerprint::EMPTY ^ all,
                    }
                } else if r.x < r.y {
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
            .collect())
    }

    /// Two walks for the interval's bounds, then one per rank, which sums what it skips.
    fn pivots(
        &mut self,
        interval: Interval<'_, E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Infallible> {
        let (start, start_xor) = self.below_start(&interval);
        let end = self.below_end(&interval).0;
        let mut out = Vec::with_capacity(ranks.len());
        for &rank in ranks {
            if start.saturating_add(rank) >= end {
                break;
            }
            let Some((t, below)) = self.select(start + rank) else {
                break;
            };
            out.push((
                self.nodes[t].key.clone(),
                Summary {
                    count: rank,
                    fingerprint: Fingerprint::EMPTY ^ start_xor ^ below,
                },
            ));
        }
        Ok(out)
    }

    fn for_each<F>(&mut self, interval: Interval<'_, E::Key>, mut f: F) -> Result<(), Infallible>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        let _ = self.visit(self.root, &interval, &mut f);
        Ok(())
    }

    fn insert(&mut self, entry: &E) -> Result<bool, Infallible> {
        Ok(MemStore::insert(self, entry.clone()))
    }

    fn entry_by_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<Option<E>, Infallible> {
        Ok(self
            .by_own
            .get(fingerprint)
            .filter(|&&t| self.nodes.get(t).is_some_and(|n| n.own == *fingerprint))
            .and_then(|&t| self.entries.get(t))
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
    stack: Vec<Idx>,
}

impl<E: RangeEntry> Iter<'_, E> {
    fn push_left(&mut self, mut t: Idx) {
        while t != NIL {
            self.stack.push(t);
            t = self.store.nodes[t].left;
        }
    }
}

impl<'a, E: RangeEntry> Iterator for Iter<'a, E> {
    type Item = &'a E;

    fn next(&mut self) -> Option<&'a E> {
        let t = self.stack.pop()?;
        let store = self.store;
        self.push_left(store.nodes[t].right);
        store.entries.get(t)
    }
}

impl<E: RangeEntry> fmt::Debug for Iter<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("pending", &self.stack.len())
            .finish()
    }
}
