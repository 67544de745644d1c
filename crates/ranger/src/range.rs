//! Ranges of keys as the protocol names them, and the plain intervals a store answers for.

use std::cmp::Ordering;
use std::ops::Bound;

/// A range of keys, as carried in messages.
///
/// * `x < y`: the half-open range `[x, y)`;
/// * `x > y`: the range wraps around: `[x, ∞) ∪ (-∞, y)`;
/// * `x == y`: the whole set.
///
/// **Circular order.** Everything in this crate that talks about "the i-th entry of a range" or
/// iterates a range in order uses the *circular order* of the range: first the entries with key
/// `>= x` ascending, then the entries with key `< x` ascending. For `x < y` that is simply `[x, y)`
/// ascending; for a wrapping range it is `[x, ∞)` then `(-∞, y)`; for the whole set it starts at
/// `x` and wraps around. (iroh-docs iterates wrapping ranges from the bottom and rotates by the
/// number of keys below `x`, which picks the same elements.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range<K> {
    /// The first key (inclusive), and the anchor of the circular order.
    pub x: K,
    /// The end key (exclusive). Equal to `x` for the whole set.
    pub y: K,
}

impl<K> Range<K> {
    /// A range from `x` (inclusive) to `y` (exclusive), with the wrap-around rules above.
    pub fn new(x: K, y: K) -> Self {
        Range { x, y }
    }
}

impl<K: Ord> Range<K> {
    /// Whether this range is the whole set (`x == y`).
    pub fn is_all(&self) -> bool {
        self.x == self.y
    }

    /// Whether this range wraps around the end of the key space (`x > y`).
    pub fn is_wrapping(&self) -> bool {
        self.x > self.y
    }

    /// Whether `key` lies in this range.
    pub fn contains(&self, key: &K) -> bool {
        match self.x.cmp(&self.y) {
            Ordering::Less => &self.x <= key && key < &self.y,
            Ordering::Greater => &self.x <= key || key < &self.y,
            Ordering::Equal => true,
        }
    }

    /// The range as at most two intervals, in circular order.
    ///
    /// `[x, y)` gives one interval; a wrapping range and the whole set give `[x, ∞)` then
    /// `(-∞, y)`.
    pub fn intervals(&self) -> (Interval<'_, K>, Option<Interval<'_, K>>) {
        if self.x < self.y {
            let only = Interval {
                start: Some(&self.x),
                end: Some(&self.y),
            };
            (only, None)
        } else {
            let upper = Interval {
                start: Some(&self.x),
                end: None,
            };
            let lower = Interval {
                start: None,
                end: Some(&self.y),
            };
            (upper, Some(lower))
        }
    }

    /// Compares two keys by their position in this range's circular order: keys `>= x` come
    /// first, then keys `< x`, each group ascending.
    pub fn circular_cmp(&self, a: &K, b: &K) -> Ordering {
        let a_low = a < &self.x;
        let b_low = b < &self.x;
        a_low.cmp(&b_low).then_with(|| a.cmp(b))
    }
}

impl<K> From<(K, K)> for Range<K> {
    fn from((x, y): (K, K)) -> Self {
        Range { x, y }
    }
}

/// A plain interval of keys, `start..end` with an inclusive start and an exclusive end; `None`
/// is unbounded on that side. This is what a [`Store`](crate::Store) answers queries for.
///
/// Invariant: when both ends are present, `start < end`, so the interval is never inverted and
/// may be passed to `BTreeMap::range` (or a database range scan) as is, via
/// [`Interval::bounds`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Interval<'a, K> {
    start: Option<&'a K>,
    end: Option<&'a K>,
}

impl<K> Clone for Interval<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Interval<'_, K> {}

impl<'a, K: Ord> Interval<'a, K> {
    /// The interval of all keys.
    pub fn all() -> Self {
        Interval {
            start: None,
            end: None,
        }
    }

    /// The interval `start..end`; `None` if both are given and `start >= end`.
    pub fn new(start: Option<&'a K>, end: Option<&'a K>) -> Option<Self> {
        match (start, end) {
            (Some(s), Some(e)) if s >= e => None,
            _ => Some(Interval { start, end }),
        }
    }

    /// The inclusive start, or `None` if unbounded below.
    pub fn start(&self) -> Option<&'a K> {
        self.start
    }

    /// The exclusive end, or `None` if unbounded above.
    pub fn end(&self) -> Option<&'a K> {
        self.end
    }

    /// Whether `key` lies in this interval.
    pub fn contains(&self, key: &K) -> bool {
        self.start.is_none_or(|s| s <= key) && self.end.is_none_or(|e| key < e)
    }

    /// The interval as standard bounds (`Included(start)` / `Excluded(end)` / `Unbounded`).
    pub fn bounds(&self) -> (Bound<&'a K>, Bound<&'a K>) {
        let start = match self.start {
            Some(s) => Bound::Included(s),
            None => Bound::Unbounded,
        };
        let end = match self.end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_follows_the_three_cases() {
        let normal = Range::new(3, 7);
        assert!(!normal.contains(&2));
        assert!(normal.contains(&3));
        assert!(normal.contains(&6));
        assert!(!normal.contains(&7));

        let wrap = Range::new(7, 3);
        assert!(wrap.contains(&7));
        assert!(wrap.contains(&100));
        assert!(wrap.contains(&0));
        assert!(wrap.contains(&2));
        assert!(!wrap.contains(&3));
        assert!(!wrap.contains(&6));

        let all = Range::new(5, 5);
        assert!(all.is_all());
        for k in 0..10 {
            assert!(all.contains(&k));
        }
    }

    #[test]
    fn intervals_are_in_circular_order() {
        let wrap = Range::new(7, 3);
        let (first, second) = wrap.intervals();
        assert_eq!(first.start(), Some(&7));
        assert_eq!(first.end(), None);
        let second = second.unwrap();
        assert_eq!(second.start(), None);
        assert_eq!(second.end(), Some(&3));

        let all = Range::new(5, 5);
        let (first, second) = all.intervals();
        assert!(first.contains(&5) && first.contains(&9) && !first.contains(&4));
        let second = second.unwrap();
        assert!(second.contains(&4) && !second.contains(&5));
    }

    #[test]
    fn circular_cmp_puts_keys_below_x_last() {
        let r = Range::new(5, 2);
        let mut keys = vec![0, 1, 5, 6, 9];
        keys.sort_by(|a, b| r.circular_cmp(a, b));
        assert_eq!(keys, vec![5, 6, 9, 0, 1]);
    }

    #[test]
    fn inverted_intervals_are_refused() {
        assert!(Interval::new(Some(&3), Some(&3)).is_none());
        assert!(Interval::new(Some(&4), Some(&3)).is_none());
        assert!(Interval::new(Some(&3), Some(&4)).is_some());
        assert!(Interval::<u8>::new(None, None).is_some());
    }
}
