//! The index of [`MemStore`](crate::MemStore) from each entry's own fingerprint to its slot.

use std::hash::{BuildHasher, RandomState};

use crate::Fingerprint;
use crate::blocks::Blocks;

/// An empty bucket.
const EMPTY: u64 = u64::MAX;

/// The fewest buckets a table has once it holds anything.
const MIN_BUCKETS: usize = 16;

/// Slots from `0` up to (not including) this are indexed; an entry in a later slot is not
/// found by its fingerprint, which only costs the lone-difference shortcut.
const INDEXED: usize = u32::MAX as usize;

/// Open addressing with linear probing over a power-of-two table of slots, at most half full.
///
/// A bucket holds a slot and a 4-byte tag of its fingerprint (8 bytes in all, where a map from
/// 8-byte tags to slots takes 16): the fingerprint it stands for is `owns[slot]`, which every
/// operation is given. A lookup reads `owns[slot]` only where the tag matches, so one that
/// finds nothing (most do: they ask whether a difference is a single entry) touches the table
/// alone, not the fingerprint of every slot on its way; and two entries whose fingerprints agree
/// in any number of bytes are both found.
///
/// The bucket of a fingerprint comes from its first 8 bytes mixed with two keys drawn for the
/// index (from the standard library's random hasher): fingerprints are hashes, but a peer can
/// grind entries whose first bytes agree in the bits a table indexes with, and without the keys
/// it cannot know which bits those are.
///
/// Slots are indexed lazily: a slot appended to `owns` waits until the next [`get`](Self::get),
/// which places every waiting slot in one loop. A store filled by a peer appends far more often
/// than it looks up, and a loop of independent placements overlaps its cache misses where one
/// placement per insert, between other work, waits for each.
///
/// Invariant (between the store's calls): the table holds every slot below `upto` exactly once
/// and nothing else, and `upto <= min(owns.len(), INDEXED)`; the slots from `upto` on wait.
#[derive(Clone)]
pub(crate) struct OwnIndex {
    /// `tag << 32 | slot` (see [`tag`]), or [`EMPTY`].
    buckets: Vec<u64>,
    /// The number of slots in the table.
    len: usize,
    /// The slots below this are in the table; those from it on are not yet.
    upto: usize,
    k0: u64,
    k1: u64,
}

impl Default for OwnIndex {
    fn default() -> Self {
        let random = RandomState::new();
        OwnIndex {
            buckets: Vec::new(),
            len: 0,
            upto: 0,
            k0: random.hash_one(0u8),
            // Odd, so that the multiplication loses no bits.
            k1: random.hash_one(1u8) | 1,
        }
    }
}

impl OwnIndex {
    /// The bucket where the search for `fingerprint` starts; the table is not empty.
    fn home(&self, fingerprint: &Fingerprint) -> usize {
        let mut head = [0u8; 8];
        head.copy_from_slice(&fingerprint.as_bytes()[..8]);
        let word = u64::from_le_bytes(head) ^ self.k0;
        // The 128-bit product, its halves folded together: every bit of it depends on every
        // bit of the word.
        let product = u128::from(word) * u128::from(self.k1);
        let mixed = (product as u64) ^ ((product >> 64) as u64);
        (mixed as usize) & (self.buckets.len() - 1)
    }

    /// The bucket after `i`, wrapping around.
    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.buckets.len() - 1)
    }

    /// The slot of the entry whose fingerprint is `fingerprint`, if any. Places the waiting
    /// slots first.
    pub(crate) fn get(
        &mut self,
        fingerprint: &Fingerprint,
        owns: &Blocks<Fingerprint>,
    ) -> Option<usize> {
        self.catch_up(owns);
        if self.buckets.is_empty() {
            return None;
        }
        let mut i = self.home(fingerprint);
        loop {
            let bucket = self.buckets[i];
            if bucket == EMPTY {
                return None;
            }
            let slot = slot_of(bucket);
            if bucket >> 32 == u64::from(tag(fingerprint)) && owns.get(slot) == Some(fingerprint) {
                return Some(slot);
            }
            i = self.next(i);
        }
    }

    /// `owns[slot]` was rewritten after [`remove`](Self::remove): a slot that was in the table
    /// goes back in now, a waiting one stays waiting. (An appended slot needs no call: it
    /// waits for the next [`get`](Self::get).)
    pub(crate) fn insert(&mut self, slot: usize, owns: &Blocks<Fingerprint>) {
        if slot < self.upto {
            // `remove` took it out, so the table has room for it.
            self.place(slot as u32, &owns[slot]);
        }
    }

    /// `owns` was cut to `len` slots: those from `len` on, taken out of the table by
    /// [`remove`](Self::remove) before, no longer exist.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.upto = self.upto.min(len);
    }

    /// Places every waiting slot, growing the table first if they would fill it over half.
    fn catch_up(&mut self, owns: &Blocks<Fingerprint>) {
        let indexed = owns.len().min(INDEXED);
        if self.upto >= indexed {
            return;
        }
        if 2 * (self.len + indexed - self.upto) > self.buckets.len() {
            // Every slot below `upto` is in the table and the waiting ones are in `owns`:
            // rebuilding from `owns` places them all.
            let buckets = (2 * self.buckets.len()).max(MIN_BUCKETS);
            return self.rebuild(buckets, owns);
        }
        for slot in self.upto..indexed {
            self.place(slot as u32, &owns[slot]);
        }
        self.upto = indexed;
    }

    /// Puts `slot` in the first empty bucket from the home of `fingerprint` on.
    fn place(&mut self, slot: u32, fingerprint: &Fingerprint) {
        let mut i = self.home(fingerprint);
        while self.buckets[i] != EMPTY {
            i = self.next(i);
        }
        self.buckets[i] = u64::from(tag(fingerprint)) << 32 | u64::from(slot);
        self.len += 1;
    }

    /// Takes `slot`, whose fingerprint is still `owns[slot]`, out of the table (a waiting slot
    /// is not in it): its fingerprint is about to change, or the slot to go.
    pub(crate) fn remove(&mut self, slot: usize, owns: &Blocks<Fingerprint>) {
        if slot >= self.upto || self.buckets.is_empty() {
            return;
        }
        let mut i = self.home(&owns[slot]);
        while slot_of(self.buckets[i]) != slot {
            if self.buckets[i] == EMPTY {
                return;
            }
            i = self.next(i);
        }
        // Backward-shift deletion: every later slot of the run whose search passes the hole
        // moves into it, until the run ends; no tombstones are left.
        let mask = self.buckets.len() - 1;
        let mut j = i;
        loop {
            j = self.next(j);
            let moved = self.buckets[j];
            if moved == EMPTY {
                break;
            }
            let home = self.home(&owns[slot_of(moved)]);
            // The hole at `i` lies on the way from `home` to `j`.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(i) & mask {
                self.buckets[i] = moved;
                i = j;
            }
        }
        self.buckets[i] = EMPTY;
        self.len -= 1;
    }

    /// Starts over with every indexed slot of `owns`, in a table sized for them.
    pub(crate) fn reindex(&mut self, owns: &Blocks<Fingerprint>) {
        self.rebuild(0, owns);
    }

    /// Makes the table `buckets` long (at least) and puts every indexed slot of `owns` in it.
    fn rebuild(&mut self, buckets: usize, owns: &Blocks<Fingerprint>) {
        let indexed = owns.len().min(INDEXED);
        let buckets = buckets
            .max((2 * indexed).next_power_of_two())
            .max(MIN_BUCKETS);
        self.buckets.clear();
        self.buckets.resize(buckets, EMPTY);
        self.len = 0;
        for slot in 0..indexed {
            self.place(slot as u32, &owns[slot]);
        }
        self.upto = indexed;
    }
}

/// The bytes of a fingerprint a bucket keeps: not the first 8, which place it.
fn tag(fingerprint: &Fingerprint) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&fingerprint.as_bytes()[8..12]);
    u32::from_le_bytes(bytes)
}

/// The slot a full bucket holds.
fn slot_of(bucket: u64) -> usize {
    (bucket & u64::from(u32::MAX)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fingerprint whose first 8 bytes are `first` and whose last two are `i`.
    fn fingerprint(first: u8, i: u16) -> Fingerprint {
        let mut bytes = [first; 32];
        bytes[30..].copy_from_slice(&i.to_be_bytes());
        Fingerprint(bytes)
    }

    /// An index whose keys do not mix: a bucket is the first 8 bytes of the fingerprint.
    fn unmixed() -> OwnIndex {
        OwnIndex {
            buckets: Vec::new(),
            len: 0,
            upto: 0,
            k0: 0,
            k1: 1,
        }
    }

    fn check(index: &mut OwnIndex, owns: &Blocks<Fingerprint>, present: &[bool]) {
        for (slot, &there) in present.iter().enumerate() {
            assert_eq!(
                index.get(&owns[slot], owns),
                there.then_some(slot),
                "slot {slot}"
            );
        }
        assert_eq!(index.len, present.iter().filter(|&&p| p).count());
    }

    /// With keys that do not mix (`k0 = 0`, `k1 = 1`), a bucket is the first 8 bytes of the
    /// fingerprint: three groups of 100 fingerprints start at the last bucket (their run wraps
    /// around), at the first (the two runs merge) and at bucket 257. Removals in an order
    /// unrelated to the runs must leave every other slot found, and the removed ones not.
    #[test]
    fn removals_from_runs_that_wrap_and_merge_keep_the_rest_found() {
        let firsts = [0xff, 0x00, 0x01];
        let mut owns = Blocks::default();
        let mut index = unmixed();
        // As the store does: appended fingerprints wait for a lookup.
        for i in 0..300u16 {
            owns.push(fingerprint(firsts[usize::from(i % 3)], i));
        }
        // Nothing is placed before the first lookup, which places all 300.
        assert!(index.buckets.is_empty());
        let mut present = vec![true; 300];
        check(&mut index, &owns, &present);
        assert_eq!(index.buckets.len(), 1024);
        for (step, slot) in (0..300).map(|i| (i * 37) % 300).enumerate() {
            if step % 4 == 3 {
                continue;
            }
            index.remove(slot, &owns);
            present[slot] = false;
            if step % 20 == 0 {
                check(&mut index, &owns, &present);
            }
        }
        check(&mut index, &owns, &present);
        // Removing what is not there changes nothing.
        index.remove(0, &owns);
        check(&mut index, &owns, &present);
        index.reindex(&owns);
        check(&mut index, &owns, &[true; 300]);
    }

    /// The store's own sequence of calls (append; rewrite; remove by moving the last slot into
    /// the hole), in a random order with lookups in between, so that slots wait, are rewritten
    /// or removed while they wait, and are placed by whichever lookup comes next. Fingerprints
    /// start with one of four bytes, so runs are long. After every lookup, every slot must be
    /// found at its place and a fingerprint no slot has must not be.
    #[test]
    fn waiting_slots_that_are_rewritten_or_removed_are_found_as_they_are_now() {
        let mut owns: Blocks<Fingerprint> = Blocks::default();
        let mut index = unmixed();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut fresh = 0u16;
        let mut new_fingerprint = |random: &mut dyn FnMut(usize) -> usize| {
            fresh += 1;
            fingerprint(random(4) as u8, fresh)
        };
        let mut lookups = 0;
        for _ in 0..4_000 {
            match random(10) {
                0..=4 => owns.push(new_fingerprint(&mut random)),
                5 if !owns.is_empty() => {
                    let slot = random(owns.len());
                    index.remove(slot, &owns);
                    owns[slot] = new_fingerprint(&mut random);
                    index.insert(slot, &owns);
                }
                6 | 7 if !owns.is_empty() => {
                    let slot = random(owns.len());
                    let last = owns.len() - 1;
                    index.remove(slot, &owns);
                    if slot != last {
                        index.remove(last, &owns);
                    }
                    owns.swap_remove(slot);
                    index.truncate(last);
                    if slot != last {
                        index.insert(slot, &owns);
                    }
                }
                _ => {
                    lookups += 1;
                    for slot in 0..owns.len() {
                        assert_eq!(index.get(&owns[slot], &owns), Some(slot));
                    }
                    assert_eq!(index.len, owns.len());
                    assert_eq!(index.get(&fingerprint(0, 0), &owns), None);
                }
            }
        }
        assert!(
            lookups > 200 && owns.len() > 100,
            "{lookups} lookups, {} slots",
            owns.len()
        );
    }
}
