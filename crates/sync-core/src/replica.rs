//! The view of one document that reconciliation works on.

use std::ops::ControlFlow;

use ranger::{Fingerprint, Interval, Summary};

use crate::entry::{RecordIdentifier, SignedEntry};
use crate::keys::NamespaceId;
use crate::store::{InsertOutcome, KeyInterval, Store, StoreError};

/// Whether the sender of an entry has its content, as iroh-docs reports it next to every value
/// of a range item (wire tags 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContentStatus {
    /// The content is fully available.
    Complete,
    /// Part of the content is available.
    Incomplete,
    /// The content is not available (also what is sent when nothing is known).
    #[default]
    Missing,
}

/// One document of a [`Store`], as a [`ranger::Store`] of [`SignedEntry`].
///
/// Every range question is asked of the intersection of the range with this namespace: bounds
/// that belong to another document (a hostile or confused peer) never reach outside it, and the
/// answers never include another document's entries (the reference leaks them, its W6).
#[derive(Debug)]
pub struct ReplicaStore<'a, S: ?Sized> {
    store: &'a mut S,
    namespace: NamespaceId,
}

/// How many entries [`ReplicaStore`] fetches from the store at a time while iterating.
const ITER_CHUNK: usize = 256;

impl<'a, S: Store + ?Sized> ReplicaStore<'a, S> {
    /// The view of `namespace` in `store`.
    pub fn new(store: &'a mut S, namespace: NamespaceId) -> Self {
        Self { store, namespace }
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        self.namespace
    }

    fn interval(interval: Interval<'_, RecordIdentifier>) -> KeyInterval {
        KeyInterval {
            start: interval.start().cloned(),
            end: interval.end().cloned(),
        }
    }
}

impl<S: Store + ?Sized> ranger::Store<SignedEntry> for ReplicaStore<'_, S> {
    type Error = StoreError;

    fn count(&mut self, interval: Interval<'_, RecordIdentifier>) -> Result<u64, StoreError> {
        self.store.count(&self.namespace, &Self::interval(interval))
    }

    fn fingerprint(
        &mut self,
        interval: Interval<'_, RecordIdentifier>,
    ) -> Result<Fingerprint, StoreError> {
        let xor = self
            .store
            .fingerprint(&self.namespace, &Self::interval(interval))?;
        Ok(Fingerprint::EMPTY ^ xor)
    }

    fn summary(&mut self, interval: Interval<'_, RecordIdentifier>) -> Result<Summary, StoreError> {
        let (count, xor) = self
            .store
            .summary(&self.namespace, &Self::interval(interval))?;
        Ok(Summary {
            count,
            fingerprint: Fingerprint::EMPTY ^ xor,
        })
    }

    fn entry_by_fingerprint(
        &mut self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SignedEntry>, StoreError> {
        // The backend answers for this namespace only; checked again here, so that a faulty
        // backend cannot make a session send another document's entry.
        Ok(self
            .store
            .entry_by_fingerprint(&self.namespace, fingerprint)?
            .filter(|e| e.namespace() == self.namespace))
    }

    fn pivots(
        &mut self,
        interval: Interval<'_, RecordIdentifier>,
        ranks: &[u64],
    ) -> Result<Vec<(RecordIdentifier, Summary)>, StoreError> {
        let pivots = self
            .store
            .pivots(&self.namespace, &Self::interval(interval), ranks)?;
        Ok(pivots
            .into_iter()
            .map(|(id, count, xor)| {
                let summary = Summary {
                    count,
                    fingerprint: Fingerprint::EMPTY ^ xor,
                };
                (id, summary)
            })
            .collect())
    }

    fn key_at(
        &mut self,
        interval: Interval<'_, RecordIdentifier>,
        rank: u64,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        let entries = self
            .store
            .entries(&self.namespace, &Self::interval(interval), rank, 1)?;
        Ok(entries.into_iter().next().map(|e| e.id().clone()))
    }

    fn for_each<F>(
        &mut self,
        interval: Interval<'_, RecordIdentifier>,
        mut f: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(SignedEntry) -> ControlFlow<()>,
    {
        let mut interval = Self::interval(interval);
        loop {
            let chunk = self
                .store
                .entries(&self.namespace, &interval, 0, ITER_CHUNK)?;
            let full = chunk.len() == ITER_CHUNK;
            let mut last = None;
            for entry in chunk {
                last = Some(entry.id().clone());
                if f(entry).is_break() {
                    return Ok(());
                }
            }
            match last {
                Some(last) if full => interval.start = Some(last.zero_extended()),
                _ => return Ok(()),
            }
        }
    }

    fn insert(&mut self, entry: &SignedEntry) -> Result<bool, StoreError> {
        if entry.namespace() != self.namespace {
            // Validation should have caught it; never let it into this document.
            return Ok(false);
        }
        Ok(matches!(
            self.store.insert(entry.clone())?,
            InsertOutcome::Inserted { .. }
        ))
    }
}
