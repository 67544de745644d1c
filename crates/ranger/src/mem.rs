//! An in-memory store that answers every range query in O(log n).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;

use crate::{Fingerprint, Interval, RangeEntry, Store};

/// Index of a node in the arena; `NIL` is "no node".
type Idx = usize;
const NIL: Idx = usize::MAX;

/// An in-memory [`Store`]: a treap (a binary search tree kept balanced by heap-ordered node
/// priorities) whose nodes carry the size and the XOR of the entry fingerprints of their subtree.
///
/// * `count`, `fingerprint` and `key_at` of any interval take O(log n) expected time, from two
///   root-to-leaf walks;
/// * a hash map from each entry's fingerprint to its node answers
///   [`Store::entry_by_fingerprint`] in O(1);
/// * [`Store::insert`] is last-write-wins: a new key is added; an existing key is replaced only if
///   the new value is strictly greater;
/// * node priorities come from a fixed-seed generator, so the shape (and the run time) is
///   deterministic; the crate has no randomness of its own.
///
/// It is the reference the property tests check the algorithm with, and a store for tests and
/// benchmarks. It does not do prefix deletion; a store that needs it wraps or replaces this one.
pub struct MemStore<E> {
    nodes: Vec<Node<E>>,
    /// The node of each entry fingerprint (`Node::own`). Distinct entries with equal
    /// fingerprints would share a slot; the lookup checks the node it finds.
    by_own: HashMap<Fingerprint, Idx>,
    root: Idx,
    next_priority: u64,
}

struct Node<E> {
    entry: E,
    /// The entry's own fingerprint, cached.
    own: Fingerprint,
    /// XOR of `own` over the subtree (not seeded).
    xor: Fingerprint,
    size: u64,
    priority: u64,
    left: Idx,
    right: Idx,
}

impl<E> Default for MemStore<E> {
    fn default() -> Self {
        MemStore {
            nodes: Vec::new(),
            by_own: HashMap::new(),
            root: NIL,
            next_priority: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl<E: RangeEntry> fmt::Debug for MemStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<E: RangeEntry> Clone for MemStore<E> {
    fn clone(&self) -> Self {
        MemStore {
            nodes: self
                .nodes
                .iter()
                .map(|n| Node {
                    entry: n.entry.clone(),
                    own: n.own,
                    xor: n.xor,
                    size: n.size,
                    priority: n.priority,
                    left: n.left,
                    right: n.right,
                })
                .collect(),
            by_own: self.by_own.clone(),
            root: self.root,
            next_priority: self.next_priority,
        }
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
        let mut t = self.root;
        while t != NIL {
            let node = &self.nodes[t];
            match key.cmp(node.entry.key()) {
                Ordering::Less => t = node.left,
                Ordering::Greater => t = node.right,
                Ordering::Equal => return Some(&node.entry),
            }
        }
        None
    }

    /// Inserts `entry` with last-write-wins: returns `true` if the key was new or its value was
    /// strictly smaller than `entry`'s (and is now replaced), `false` if the store is unchanged.
    pub fn insert(&mut self, entry: E) -> bool {
        if let Some(existing) = self.get(entry.key()) {
            if entry.value() <= existing.value() {
                return false;
            }
            self.replace(entry);
            return true;
        }
        let idx = self.nodes.len();
        let own = entry.fingerprint();
        let priority = self.priority();
        self.by_own.insert(own, idx);
        self.nodes.push(Node {
            entry,
            own,
            xor: own,
            size: 1,
            priority,
            left: NIL,
            right: NIL,
        });
        let key = self.nodes[idx].entry.key().clone();
        let (l, r) = self.split(self.root, &key);
        let l = self.merge(l, idx);
        self.root = self.merge(l, r);
        true
    }

    /// Removes the entry with this key and returns it.
    pub fn remove(&mut self, key: &E::Key) -> Option<E> {
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
        Some(self.nodes.swap_remove(removed).entry)
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

    /// The number of entries with key `< key`.
    fn rank_of(&self, key: &E::Key) -> u64 {
        let mut t = self.root;
        let mut rank = 0;
        while t != NIL {
            let node = &self.nodes[t];
            if node.entry.key() < key {
                rank += self.size(node.left) + 1;
                t = node.right;
            } else {
                t = node.left;
            }
        }
        rank
    }

    /// XOR of the fingerprints of the entries with key `< key` (unseeded).
    fn xor_below(&self, key: &E::Key) -> Fingerprint {
        let mut t = self.root;
        let mut acc = Fingerprint::ZERO;
        while t != NIL {
            let node = &self.nodes[t];
            if node.entry.key() < key {
                acc ^= self.xor(node.left) ^ node.own;
                t = node.right;
            } else {
                t = node.left;
            }
        }
        acc
    }

    /// The entry of rank `rank` overall.
    fn select(&self, mut rank: u64) -> Option<&E> {
        let mut t = self.root;
        while t != NIL {
            let node = &self.nodes[t];
            let left = self.size(node.left);
            match rank.cmp(&left) {
                Ordering::Less => t = node.left,
                Ordering::Equal => return Some(&node.entry),
                Ordering::Greater => {
                    rank -= left + 1;
                    t = node.right;
                }
            }
        }
        None
    }

    fn start_rank(&self, interval: &Interval<'_, E::Key>) -> u64 {
        interval.start().map_or(0, |s| self.rank_of(s))
    }

    fn end_rank(&self, interval: &Interval<'_, E::Key>) -> u64 {
        interval
            .end()
            .map_or(self.nodes.len() as u64, |e| self.rank_of(e))
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

    fn pull(&mut self, t: Idx) {
        let (l, r) = (self.nodes[t].left, self.nodes[t].right);
        let size = 1 + self.size(l) + self.size(r);
        let xor = self.nodes[t].own ^ self.xor(l) ^ self.xor(r);
        let node = &mut self.nodes[t];
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

    /// Splits `t` into (keys `< key`, keys `>= key`).
    fn split(&mut self, t: Idx, key: &E::Key) -> (Idx, Idx) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.nodes[t].entry.key() < key {
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
            match entry.key().cmp(self.nodes[t].entry.key()) {
                Ordering::Less => t = self.nodes[t].left,
                Ordering::Greater => t = self.nodes[t].right,
                Ordering::Equal => break,
            }
        }
        if t == NIL {
            return;
        }
        self.unindex(t);
        let own = entry.fingerprint();
        self.by_own.insert(own, t);
        self.nodes[t].own = own;
        self.nodes[t].entry = entry;
        for &t in path.iter().rev() {
            self.pull(t);
        }
    }

    fn remove_rec(&mut self, t: Idx, key: &E::Key) -> (Idx, Option<Idx>) {
        if t == NIL {
            return (NIL, None);
        }
        match key.cmp(self.nodes[t].entry.key()) {
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
        let key = self.nodes[from].entry.key().clone();
        let mut t = self.root;
        while t != NIL {
            let node = &mut self.nodes[t];
            let child = if &key < node.entry.key() {
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
        let key = node.entry.key();
        let above_start = interval.start().is_none_or(|s| s <= key);
        let below_end = interval.end().is_none_or(|e| key < e);
        if above_start {
            self.visit(node.left, interval, f)?;
        }
        if above_start && below_end {
            f(node.entry.clone())?;
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
        Ok(self
            .end_rank(&interval)
            .saturating_sub(self.start_rank(&interval)))
    }

    fn fingerprint(&mut self, interval: Interval<'_, E::Key>) -> Result<Fingerprint, Infallible> {
        let below_end = match interval.end() {
            Some(e) => self.xor_below(e),
            None => self.xor(self.root),
        };
        let below_start = match interval.start() {
            Some(s) => self.xor_below(s),
            None => Fingerprint::ZERO,
        };
        Ok(Fingerprint::EMPTY ^ below_end ^ below_start)
    }

    fn key_at(
        &mut self,
        interval: Interval<'_, E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Infallible> {
        let start = self.start_rank(&interval);
        let end = self.end_rank(&interval);
        if start.saturating_add(rank) >= end {
            return Ok(None);
        }
        Ok(self.select(start + rank).map(|e| e.key().clone()))
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
            .and_then(|&t| self.nodes.get(t))
            .filter(|node| node.own == *fingerprint)
            .map(|node| node.entry.clone()))
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
pub struct Iter<'a, E> {
    store: &'a MemStore<E>,
    stack: Vec<Idx>,
}

impl<E> Iter<'_, E> {
    fn push_left(&mut self, mut t: Idx) {
        while t != NIL {
            self.stack.push(t);
            t = self.store.nodes[t].left;
        }
    }
}

impl<'a, E> Iterator for Iter<'a, E> {
    type Item = &'a E;

    fn next(&mut self) -> Option<&'a E> {
        let t = self.stack.pop()?;
        let store = self.store;
        self.push_left(store.nodes[t].right);
        Some(&store.nodes[t].entry)
    }
}

impl<E: RangeEntry> fmt::Debug for Iter<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("pending", &self.stack.len())
            .finish()
    }
}
