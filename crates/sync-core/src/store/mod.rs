//! The storage interface of a replica, and [`MemStore`], the in-memory backend that doubles as
//! the model every other backend is checked against.
//!
//! A store is synchronous and owned by one thread (see `sync-actor`). Writes are batched by the
//! backend; [`Store::flush`] is the durability boundary: what was written before a successful
//! `flush` survives a crash of the process.
//!
//! # Insertion rule
//!
//! Entries interact only with entries of the same namespace and author. A new entry `e` at key
//! `k` is stored only if it is newer (by [`Record`](crate::Record) order) than every stored entry
//! at `k` and at every prefix of `k`, including the empty key and including deletion markers.
//! Storing it removes every stored entry whose key starts with `k` and that is not newer than
//! `e` (an equal record at a longer key included: the entry at the shorter key wins a tie in
//! either order of arrival, so the result does not depend on it).
//! iroh-docs deviates from this in three ways (W8, W9, W13 of the protocol notes); this rule is
//! the one its own model store describes and the one that makes deletions stick.

#[cfg(feature = "test-suite")]
pub mod conformance;
mod mem;

use bytes::Bytes;

pub use mem::MemStore;

use crate::capability::{Capability, CapabilityKind};
use crate::entry::{RecordIdentifier, SignedEntry};
use crate::heads::AuthorHeads;
use crate::keys::{Author, AuthorId, NamespaceId};
use crate::policy::DownloadPolicy;
use crate::query::{Query, QueryCursor};
use ranger::Fingerprint;

/// The number of useful peers remembered per document.
pub const PEERS_PER_DOC: usize = 5;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The document is not in the store.
    #[error("document {0} is not in the store")]
    UnknownNamespace(NamespaceId),
    /// The stored data is not what this version wrote.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The store was written by a newer version of docsync.
    #[error("the store has schema version {found}; this build supports up to {supported}")]
    VersionTooNew {
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// The storage backend failed (I/O, a full disk, a lock held by another process).
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(err))
    }
}

/// What importing a capability did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The document was new.
    Inserted,
    /// A read capability was upgraded to write.
    Upgraded,
    /// Nothing changed.
    NoChange,
}

/// What inserting an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The entry was stored and `removed` entries it covers (none newer) were deleted.
    Inserted {
        /// The number of entries removed.
        removed: u64,
    },
    /// An equal or newer entry at the key or a prefix of it exists; nothing changed.
    NotInserted,
}

/// An interval of identifiers: from `start` (inclusive; `None` for the first identifier of the
/// namespace) to `end` (exclusive; `None` for past the last). Backends answer range questions
/// over the intersection of such an interval with one namespace, so bounds that belong to
/// another namespace never select anything outside it. Wrap-around ranges of the protocol are
/// split into intervals by the reconciliation adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyInterval {
    /// The inclusive lower bound.
    pub start: Option<RecordIdentifier>,
    /// The exclusive upper bound.
    pub end: Option<RecordIdentifier>,
}

impl KeyInterval {
    /// The whole namespace.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether `id` lies in the interval (the namespace is not checked).
    pub fn contains(&self, id: &RecordIdentifier) -> bool {
        self.start.as_ref().is_none_or(|s| id >= s) && self.end.as_ref().is_none_or(|e| id < e)
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPage {
    /// The results, in query order.
    pub entries: Vec<SignedEntry>,
    /// Where to continue; `cursor.done` when the query is exhausted.
    pub cursor: QueryCursor,
}

/// Storage of replicas, authors and entries.
///
/// Every method that names a namespace other than [`Store::import_namespace`] fails with
/// [`StoreError::UnknownNamespace`] if the document is not in the store, except the read-only
/// lookups that return `Option`.
pub trait Store {
    // --- documents ---

    /// Adds a document, or merges a capability into a known one (read upgrades to write; write
    /// is never downgraded).
    fn import_namespace(&mut self, capability: Capability) -> Result<ImportOutcome, StoreError>;

    /// The capability held for a document.
    fn capability(&mut self, namespace: &NamespaceId) -> Result<Option<Capability>, StoreError>;

    /// Every document and the kind of capability held.
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError>;

    /// Removes a document and everything of it: entries, indexes, peers and policy. Other
    /// documents are untouched. Returns whether it existed.
    fn remove_namespace(&mut self, namespace: &NamespaceId) -> Result<bool, StoreError>;

    // --- authors ---

    /// Stores an author key.
    fn import_author(&mut self, author: Author) -> Result<(), StoreError>;

    /// The key of an author, if stored.
    fn author(&mut self, id: &AuthorId) -> Result<Option<Author>, StoreError>;

    /// Every stored author.
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError>;

    /// Deletes an author key (its entries stay). If it was the default author, there is no
    /// default any more. Returns whether it existed.
    fn delete_author(&mut self, id: &AuthorId) -> Result<bool, StoreError>;

    /// The default author, if set.
    fn default_author(&mut self) -> Result<Option<AuthorId>, StoreError>;

    /// Sets the default author; the key must be stored, else `Ok(false)` and nothing changes.
    fn set_default_author(&mut self, id: &AuthorId) -> Result<bool, StoreError>;

    // --- entries ---

    /// Inserts an entry by the rule in the module docs. The entry must already be validated.
    fn insert(&mut self, entry: SignedEntry) -> Result<InsertOutcome, StoreError>;

    /// The entry at exactly (namespace, author, key); deletion markers only if `include_empty`.
    fn get_exact(
        &mut self,
        namespace: &NamespaceId,
        author: &AuthorId,
        key: &[u8],
        include_empty: bool,
    ) -> Result<Option<SignedEntry>, StoreError>;

    /// The next page of at most `max` results of `query` from `cursor` (start with
    /// [`QueryCursor::start`]). A query never holds more than one page in memory.
    fn query(
        &mut self,
        namespace: &NamespaceId,
        query: &Query,
        cursor: &QueryCursor,
        max: usize,
    ) -> Result<QueryPage, StoreError>;

    /// For each author of the document: the newest timestamp among its stored entries and the
    /// key of that entry. Always exact, also after out-of-order inserts and deletions.
    fn latest_per_author(
        &mut self,
        namespace: &NamespaceId,
    ) -> Result<Vec<(AuthorId, u64, Bytes)>, StoreError>;

    /// The newest timestamp per author, as [`AuthorHeads`].
    fn author_heads(&mut self, namespace: &NamespaceId) -> Result<AuthorHeads, StoreError> {
        Ok(self
            .latest_per_author(namespace)?
            .into_iter()
            .map(|(author, ts, _key)| (author, ts))
            .collect())
    }

    // --- range operations, for reconciliation ---

    /// The XOR of the per-entry fingerprints of the entries in `interval`, starting from
    /// [`Fingerprint::ZERO`] (the caller seeds it). Backends meant for large documents answer in
    /// O(log n).
    fn fingerprint(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<Fingerprint, StoreError>;

    /// The number of entries in `interval`. O(log n) in backends meant for large documents.
    fn count(&mut self, namespace: &NamespaceId, interval: &KeyInterval)
    -> Result<u64, StoreError>;

    /// The number of entries in `interval` and the XOR of their fingerprints (from
    /// [`Fingerprint::ZERO`], as [`fingerprint`](Store::fingerprint)), at once. By default asks
    /// both; a backend whose index yields both from one lookup overrides it.
    fn summary(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<(u64, Fingerprint), StoreError> {
        Ok((
            self.count(namespace, interval)?,
            self.fingerprint(namespace, interval)?,
        ))
    }

    /// The entry of `namespace` whose per-entry fingerprint ([`Entry::fingerprint`]) is
    /// `fingerprint`, or `None`. Never an entry of another document. Reconciliation uses it to
    /// answer a range that differs by one entry with that entry at once
    /// ([`ranger::Config::with_lone_differences`]). Backends meant for large documents keep an
    /// index (O(log n)); `None` from a backend without one is correct too, and only costs that
    /// shortcut. By default `None`.
    ///
    /// [`Entry::fingerprint`]: crate::Entry::fingerprint
    fn entry_by_fingerprint(
        &mut self,
        namespace: &NamespaceId,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SignedEntry>, StoreError> {
        let _ = (namespace, fingerprint);
        Ok(None)
    }

    /// For each of `ranks` (ascending): the identifier of the entry of that rank in `interval`,
    /// with the [`summary`](Store::summary) of the entries of `interval` below it. Stops at the
    /// first rank that is not below the interval's count. This is what splitting a range for
    /// reconciliation needs; by default one [`entries`](Store::entries) and one
    /// [`summary`](Store::summary) call per rank, which a backend with an aggregate index
    /// replaces by one descent per rank.
    fn pivots(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
        ranks: &[u64],
    ) -> Result<Vec<(RecordIdentifier, u64, Fingerprint)>, StoreError> {
        let mut out = Vec::with_capacity(ranks.len());
        for &rank in ranks {
            let Some(entry) = self
                .entries(namespace, interval, rank, 1)?
                .into_iter()
                .next()
            else {
                break;
            };
            let id = entry.id().clone();
            let below = KeyInterval {
                start: interval.start.clone(),
                end: Some(id.clone()),
            };
            let (count, xor) = self.summary(namespace, &below)?;
            out.push((id, count, xor));
        }
        Ok(out)
    }

    /// Up to `max` entries of `interval` in ascending order, skipping the first `skip`.
    /// Skipping is O(log n) in backends meant for large documents.
    fn entries(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
        skip: u64,
        max: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    // --- per-document settings ---

    /// Remembers `peer` as useful for `namespace` (a small LRU of [`PEERS_PER_DOC`]).
    fn register_useful_peer(
        &mut self,
        namespace: &NamespaceId,
        peer: [u8; 32],
    ) -> Result<(), StoreError>;

    /// The useful peers of a document, most recent first.
    fn useful_peers(&mut self, namespace: &NamespaceId) -> Result<Vec<[u8; 32]>, StoreError>;

    /// The download policy of a document (the default if never set).
    fn download_policy(&mut self, namespace: &NamespaceId) -> Result<DownloadPolicy, StoreError>;

    /// Sets the download policy of a document.
    fn set_download_policy(
        &mut self,
        namespace: &NamespaceId,
        policy: DownloadPolicy,
    ) -> Result<(), StoreError>;

    // --- durability ---

    /// Commits everything written so far. After it returns `Ok`, the writes survive a crash.
    fn flush(&mut self) -> Result<(), StoreError>;
}

/// Whether `existing` (same namespace and author, at `new`'s key or a prefix of it) blocks `new`.
pub fn blocks(existing: &SignedEntry, new: &SignedEntry) -> bool {
    existing.record() >= new.record()
}
