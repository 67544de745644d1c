//! A growable array in fixed-size blocks: growing never moves what it holds.

use std::ops::{Index, IndexMut};

/// How many elements a block holds.
const BLOCK: usize = 1024;

/// A `Vec`-like array of `T` stored in blocks of [`BLOCK`] elements. Pushing allocates a new
/// block when the last is full instead of reallocating (and copying) everything, so a large
/// array of large elements grows in O(1) worst-case time per push and never needs twice its
/// size in memory while it grows.
#[derive(Clone, Debug)]
pub(crate) struct Blocks<T> {
    /// Every block but the last holds exactly `BLOCK` elements; the last is not empty.
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Blocks<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.blocks.get(i / BLOCK)?.get(i % BLOCK)
    }

    pub(crate) fn push(&mut self, value: T) {
        match self.blocks.last_mut() {
            Some(last) if last.len() < BLOCK => last.push(value),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(value);
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    /// Removes element `i`, putting the last element in its place; `None` if `i` is out of
    /// bounds.
    pub(crate) fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let last = self.blocks.last_mut()?.pop()?;
        if self.blocks.last().is_some_and(Vec::is_empty) {
            self.blocks.pop();
        }
        self.len -= 1;
        if i == self.len {
            return Some(last);
        }
        Some(std::mem::replace(&mut self[i], last))
    }

    /// Swaps elements `i` and `j`, both in bounds.
    pub(crate) fn swap(&mut self, i: usize, j: usize) {
        let ((bi, oi), (bj, oj)) = ((i / BLOCK, i % BLOCK), (j / BLOCK, j % BLOCK));
        if bi == bj {
            self.blocks[bi].swap(oi, oj);
            return;
        }
        let (lo, hi) = (bi.min(bj), bi.max(bj));
        let (head, tail) = self.blocks.split_at_mut(hi);
        let (a, b) = (&mut head[lo], &mut tail[0]);
        let (oa, ob) = if bi < bj { (oi, oj) } else { (oj, oi) };
        std::mem::swap(&mut a[oa], &mut b[ob]);
    }
}

impl<T> Index<usize> for Blocks<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.blocks[i / BLOCK][i % BLOCK]
    }
}

impl<T> IndexMut<usize> for Blocks<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.blocks[i / BLOCK][i % BLOCK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes, swaps and swap-removes across block boundaries, against a `Vec`.
    #[test]
    fn blocks_behave_like_a_vec() {
        let mut blocks = Blocks::default();
        let mut model = Vec::new();
        for i in 0..3 * BLOCK + 5 {
            blocks.push(i);
            model.push(i);
        }
        let mut state = 7usize;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for round in 0..4 * BLOCK {
            let (i, j) = (next(model.len()), next(model.len()));
            blocks.swap(i, j);
            model.swap(i, j);
            if round % 3 == 0 {
                let k = next(model.len());
                assert_eq!(blocks.swap_remove(k), Some(model.swap_remove(k)));
            }
            if round % 7 == 0 {
                blocks.push(round);
                model.push(round);
            }
        }
        assert_eq!(blocks.swap_remove(model.len()), None);
        assert_eq!(blocks.len(), model.len());
        for (i, v) in model.iter().enumerate() {
            assert_eq!(blocks.get(i), Some(v));
            assert_eq!(blocks[i], *v);
        }
        assert_eq!(blocks.get(model.len()), None);
        while let Some(v) = model.pop() {
            assert_eq!(blocks.swap_remove(model.len()), Some(v));
        }
        assert!(blocks.is_empty());
    }
}
