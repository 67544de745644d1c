//! The narrow view of a set that reconciliation needs.

use std::ops::ControlFlow;

use crate::{Fingerprint, Interval, Range, RangeEntry};

/// A set of entries, at most one per key, as reconciliation sees it.
///
/// The required methods answer queries about a plain [`Interval`] (inclusive start, exclusive
/// end, either side possibly unbounded, never inverted); the provided `range_*` methods build the
/// wrap-around and whole-set [`Range`] semantics on top of them, so a backend never has to.
///
/// **Complexity.** Reconciliation calls [`count`](Store::count), [`fingerprint`](Store::fingerprint)
/// and [`key_at`](Store::key_at) a few times per range per round. A store meant for large sets
/// should answer each in O(log n), with an index that keeps subtree sizes and XOR aggregates
/// (see [`MemStore`](crate::MemStore)); a store that scans the interval instead is correct but
/// turns every round into O(n) work, as in iroh-docs 0.101. [`for_each`](Store::for_each) is
/// called only for ranges whose entries are about to be sent or matched against incoming ones,
/// and is stopped as soon as a message is full, so it should stream rather than collect.
///
/// The store decides what an insertion means (last-write-wins, prefix deletion, ...); the
/// algorithm only needs to know whether the entry was stored.
pub trait Store<E: RangeEntry> {
    /// The error of every operation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The number of entries whose key lies in `interval`. Should be O(log n).
    fn count(&mut self, interval: Interval<'_, E::Key>) -> Result<u64, Self::Error>;

    /// The fingerprint of the entries in `interval`: [`Fingerprint::EMPTY`] XOR the
    /// per-entry [`RangeEntry::fingerprint`] of each of them (so `EMPTY` for no entries).
    /// Should be O(log n).
    fn fingerprint(&mut self, interval: Interval<'_, E::Key>) -> Result<Fingerprint, Self::Error>;

    /// The key of the entry of rank `rank` (0-based, ascending) among the entries in `interval`,
    /// or `None` if `rank >= count(interval)`. Should be O(log n).
    fn key_at(
        &mut self,
        interval: Interval<'_, E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Self::Error>;

    /// Calls `f` with each entry in `interval`, in ascending key order, until `f` returns
    /// [`ControlFlow::Break`] or the interval is exhausted.
    fn for_each<F>(&mut self, interval: Interval<'_, E::Key>, f: F) -> Result<(), Self::Error>
    where
        F: FnMut(E) -> ControlFlow<()>;

    /// Offers `entry` to the store. Returns `true` if it was stored, `false` if the store kept
    /// what it had (for example because it holds a newer value for the key).
    fn insert(&mut self, entry: &E) -> Result<bool, Self::Error>;

    /// The stored entry whose own [`RangeEntry::fingerprint`] is `fingerprint`, wherever its
    /// key lies, or `None`. A store that keeps no index from entry fingerprints to entries
    /// answers `None` (the default), which is always correct: it only turns off the shortcut
    /// for lone differences (see [`Config::with_lone_differences`](crate::Config)). Should be
    /// O(log n) or O(1) where implemented.
    fn entry_by_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<E>, Self::Error> {
        let _ = fingerprint;
        Ok(None)
    }

    /// The number of entries of `interval` and their fingerprint, as one answer. By default
    /// asks [`count`](Store::count) and [`fingerprint`](Store::fingerprint); a store whose index
    /// yields both from one lookup should override it.
    fn summary(&mut self, interval: Interval<'_, E::Key>) -> Result<Summary, Self::Error> {
        Ok(Summary {
            count: self.count(interval)?,
            fingerprint: self.fingerprint(interval)?,
        })
    }

    /// For each of `ranks` (ascending): the key of the entry of that rank among the entries of
    /// `interval`, with the [`Summary`] of the entries of `interval` below it. Stops at the
    /// first rank that is not below the interval's count, so the result may be shorter.
    ///
    /// This is what splitting a range needs: the pivots and, by differences of neighbouring
    /// summaries, every sub-range's count and fingerprint. By default asks
    /// [`key_at`](Store::key_at) and [`summary`](Store::summary) per rank; a store with an
    /// aggregate index should override it with one descent per rank that sums what it skips.
    fn pivots(
        &mut self,
        interval: Interval<'_, E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Self::Error> {
        let mut out = Vec::with_capacity(ranks.len());
        for &rank in ranks {
            let Some(key) = self.key_at(interval, rank)? else {
                break;
            };
            let below = match Interval::new(interval.start(), Some(&key)) {
                Some(below) => self.summary(below)?,
                None => Summary::EMPTY,
            };
            out.push((key, below));
        }
        Ok(out)
    }

    /// The count and fingerprint of `range`.
    fn range_summary(&mut self, range: &Range<E::Key>) -> Result<Summary, Self::Error> {
        if range.is_all() {
            return self.summary(Interval::all());
        }
        let (first, second) = range.intervals();
        let mut summary = self.summary(first)?;
        if let Some(second) = second {
            summary = summary.union(self.summary(second)?);
        }
        Ok(summary)
    }

    /// The [`range_summary`](Store::range_summary) of each of `ranges`, in order. By default one
    /// call per range. A store with an ordered index should override it with one pass over all
    /// the bounds, sorted, which shares the work near the root and between neighbouring bounds:
    /// the fingerprint parts of a message usually tile a stretch of the key space, so most
    /// bounds are the end of one range and the start of the next.
    fn range_summaries(&mut self, ranges: &[&Range<E::Key>]) -> Result<Vec<Summary>, Self::Error> {
        ranges.iter().map(|r| self.range_summary(r)).collect()
    }

    /// [`pivots`](Store::pivots) in the circular order of `range` (see [`Range`]): the
    /// summaries count from `range.x` on, wrapping around.
    fn range_pivots(
        &mut self,
        range: &Range<E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Self::Error> {
        let (first, second) = range.intervals();
        let Some(second) = second else {
            return self.pivots(first, ranks);
        };
        let head = self.summary(first)?;
        let split = ranks.partition_point(|&r| r < head.count);
        let (in_first, in_second) = ranks.split_at(split);
        let mut out = self.pivots(first, in_first)?;
        if out.len() < in_first.len() {
            return Ok(out);
        }
        let rest: Vec<u64> = in_second.iter().map(|r| r - head.count).collect();
        out.extend(
            self.pivots(second, &rest)?
                .into_iter()
                .map(|(key, below)| (key, head.union(below))),
        );
        Ok(out)
    }

    /// The number of entries in `range`.
    fn range_count(&mut self, range: &Range<E::Key>) -> Result<u64, Self::Error> {
        if range.is_all() {
            return self.count(Interval::all());
        }
        let (first, second) = range.intervals();
        let mut n = self.count(first)?;
        if let Some(second) = second {
            n += self.count(second)?;
        }
        Ok(n)
    }

    /// The fingerprint of the entries in `range`.
    fn range_fingerprint(&mut self, range: &Range<E::Key>) -> Result<Fingerprint, Self::Error> {
        if range.is_all() {
            return self.fingerprint(Interval::all());
        }
        let (first, second) = range.intervals();
        let mut fp = self.fingerprint(first)?;
        if let Some(second) = second {
            // Both halves are seeded with EMPTY; XOR one seed away.
            fp ^= self.fingerprint(second)? ^ Fingerprint::EMPTY;
        }
        Ok(fp)
    }

    /// The key of the entry of rank `rank` in the circular order of `range` (see [`Range`]).
    fn range_key_at(
        &mut self,
        range: &Range<E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Self::Error> {
        let (first, second) = range.intervals();
        let Some(second) = second else {
            return self.key_at(first, rank);
        };
        let n = self.count(first)?;
        if rank < n {
            self.key_at(first, rank)
        } else {
            self.key_at(second, rank - n)
        }
    }

    /// Calls `f` with each entry of `range` in circular order (see [`Range`]) until `f` breaks.
    fn range_for_each<F>(&mut self, range: &Range<E::Key>, mut f: F) -> Result<(), Self::Error>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        let (first, second) = range.intervals();
        let mut stopped = false;
        self.for_each(first, |e| {
            let flow = f(e);
            stopped = flow.is_break();
            flow
        })?;
        match second {
            Some(second) if !stopped => self.for_each(second, f),
            _ => Ok(()),
        }
    }
}

impl<E: RangeEntry, S: Store<E> + ?Sized> Store<E> for &mut S {
    type Error = S::Error;

    fn count(&mut self, interval: Interval<'_, E::Key>) -> Result<u64, Self::Error> {
        (**self).count(interval)
    }

    fn fingerprint(&mut self, interval: Interval<'_, E::Key>) -> Result<Fingerprint, Self::Error> {
        (**self).fingerprint(interval)
    }

    fn key_at(
        &mut self,
        interval: Interval<'_, E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Self::Error> {
        (**self).key_at(interval, rank)
    }

    fn for_each<F>(&mut self, interval: Interval<'_, E::Key>, f: F) -> Result<(), Self::Error>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        (**self).for_each(interval, f)
    }

    fn summary(&mut self, interval: Interval<'_, E::Key>) -> Result<Summary, Self::Error> {
        (**self).summary(interval)
    }

    fn entry_by_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<E>, Self::Error> {
        (**self).entry_by_fingerprint(fingerprint)
    }

    fn pivots(
        &mut self,
        interval: Interval<'_, E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Self::Error> {
        (**self).pivots(interval, ranks)
    }

    fn range_summary(&mut self, range: &Range<E::Key>) -> Result<Summary, Self::Error> {
        (**self).range_summary(range)
    }

    fn range_pivots(
        &mut self,
        range: &Range<E::Key>,
        ranks: &[u64],
    ) -> Result<Vec<(E::Key, Summary)>, Self::Error> {
        (**self).range_pivots(range, ranks)
    }

    fn range_summaries(&mut self, ranges: &[&Range<E::Key>]) -> Result<Vec<Summary>, Self::Error> {
        (**self).range_summaries(ranges)
    }

    fn insert(&mut self, entry: &E) -> Result<bool, Self::Error> {
        (**self).insert(entry)
    }

    fn range_count(&mut self, range: &Range<E::Key>) -> Result<u64, Self::Error> {
        (**self).range_count(range)
    }

    fn range_fingerprint(&mut self, range: &Range<E::Key>) -> Result<Fingerprint, Self::Error> {
        (**self).range_fingerprint(range)
    }

    fn range_key_at(
        &mut self,
        range: &Range<E::Key>,
        rank: u64,
    ) -> Result<Option<E::Key>, Self::Error> {
        (**self).range_key_at(range, rank)
    }

    fn range_for_each<F>(&mut self, range: &Range<E::Key>, f: F) -> Result<(), Self::Error>
    where
        F: FnMut(E) -> ControlFlow<()>,
    {
        (**self).range_for_each(range, f)
    }
}

/// How many entries a set of entries holds and their [`Fingerprint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The number of entries.
    pub count: u64,
    /// Their fingerprint ([`Fingerprint::EMPTY`] for none).
    pub fingerprint: Fingerprint,
}

impl Summary {
    /// The summary of no entries.
    pub const EMPTY: Summary = Summary {
        count: 0,
        fingerprint: Fingerprint::EMPTY,
    };

    /// The summary of the union of two disjoint sets.
    #[must_use]
    pub fn union(self, other: Summary) -> Summary {
        Summary {
            count: self.count.saturating_add(other.count),
            // Both are seeded with EMPTY; XOR one seed away.
            fingerprint: self.fingerprint ^ other.fingerprint ^ Fingerprint::EMPTY,
        }
    }

    /// The summary of this set without `part`, a subset of it.
    #[must_use]
    pub fn minus(self, part: Summary) -> Summary {
        Summary {
            count: self.count.saturating_sub(part.count),
            fingerprint: self.fingerprint ^ part.fingerprint ^ Fingerprint::EMPTY,
        }
    }
}
