//! The newest timestamp seen per author: a cheap summary of what a replica holds.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use crate::keys::AuthorId;

/// The newest timestamp per author of one document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorHeads {
    heads: BTreeMap<AuthorId, u64>,
}

impl AuthorHeads {
    /// Records `timestamp` for `author`, keeping the maximum.
    pub fn insert(&mut self, author: AuthorId, timestamp: u64) {
        let slot = self.heads.entry(author).or_insert(timestamp);
        *slot = (*slot).max(timestamp);
    }

    /// The newest timestamp of `author`.
    pub fn get(&self, author: &AuthorId) -> Option<u64> {
        self.heads.get(author).copied()
    }

    /// The number of authors.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether no author is known.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The (author, timestamp) pairs, by author.
    pub fn iter(&self) -> impl Iterator<Item = (&AuthorId, &u64)> {
        self.heads.iter()
    }

    /// The number of authors for which `self` has something newer than `other` (or that `other`
    /// lacks), `None` if there are none: whether `other` would learn something from us.
    pub fn has_news_for(&self, other: &AuthorHeads) -> Option<NonZeroU64> {
        let n = self
            .heads
            .iter()
            .filter(|(author, ts)| other.get(author).is_none_or(|theirs| theirs < **ts))
            .count();
        NonZeroU64::new(n as u64)
    }
}

impl FromIterator<(AuthorId, u64)> for AuthorHeads {
    fn from_iter<I: IntoIterator<Item = (AuthorId, u64)>>(iter: I) -> Self {
        let mut heads = Self::default();
        for (author, ts) in iter {
            heads.insert(author, ts);
        }
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_news_counts_newer_and_missing_authors() {
        let a = AuthorId::from_bytes([1; 32]);
        let b = AuthorId::from_bytes([2; 32]);
        let c = AuthorId::from_bytes([3; 32]);
        let ours: AuthorHeads = [(a, 10), (b, 5), (c, 1), (a, 3)].into_iter().collect();
        assert_eq!(ours.get(&a), Some(10));
        let theirs: AuthorHeads = [(a, 10), (b, 7)].into_iter().collect();
        assert_eq!(ours.has_news_for(&theirs), NonZeroU64::new(1)); // c
        assert_eq!(theirs.has_news_for(&ours), NonZeroU64::new(1)); // b
        assert_eq!(ours.has_news_for(&ours), None);
        assert_eq!(AuthorHeads::default().has_news_for(&ours), None);
    }
}
