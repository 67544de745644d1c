//! [`MemStore`]: ordered maps in memory, written to be obviously correct rather than fast.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use ranger::Fingerprint;

use super::{
    ImportOutcome, InsertOutcome, KeyInterval, PEERS_PER_DOC, QueryPage, Store, StoreError, blocks,
};
use crate::capability::{Capability, CapabilityKind};
use crate::entry::{RecordIdentifier, SignedEntry};
use crate::keys::{Author, AuthorId, NamespaceId};
use crate::policy::DownloadPolicy;
use crate::query::{Query, QueryCursor, QueryKind, SortBy, SortDirection};

/// An in-memory store: a usable backend for tests and short-lived nodes, and the model that the
/// conformance suite and the property tests hold every other backend to.
///
/// Range operations scan the range (O(n)); the point is plainness, not speed.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    namespaces: BTreeMap<NamespaceId, Capability>,
    authors: BTreeMap<AuthorId, Author>,
    default_author: Option<AuthorId>,
    entries: BTreeMap<RecordIdentifier, SignedEntry>,
    peers: BTreeMap<NamespaceId, VecDeque<[u8; 32]>>,
    policies: BTreeMap<NamespaceId, DownloadPolicy>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn known(&self, namespace: &NamespaceId) -> Result<(), StoreError> {
        if self.namespaces.contains_key(namespace) {
            Ok(())
        } else {
            Err(StoreError::UnknownNamespace(*namespace))
        }
    }

    /// The entries of `namespace` in identifier order.
    fn namespace_entries(&self, namespace: &NamespaceId) -> impl Iterator<Item = &SignedEntry> {
        let start = RecordIdentifier::namespace_start(*namespace);
        let ns = *namespace;
        self.entries
            .range(start..)
            .map(|(_, e)| e)
            .take_while(move |e| e.namespace() == ns)
    }

    fn interval_entries<'a>(
        &'a self,
        namespace: &NamespaceId,
        interval: &'a KeyInterval,
    ) -> impl Iterator<Item = &'a SignedEntry> + 'a {
        // Bounds from another namespace are clipped: the interval is intersected with this one.
        let first = RecordIdentifier::namespace_start(*namespace);
        let start = match &interval.start {
            Some(s) if *s > first => Bound::Included(s.clone()),
            _ => Bound::Included(first),
        };
        let ns = *namespace;
        self.entries
            .range((start, Bound::Unbounded))
            .map(|(_, e)| e)
            .take_while(move |e| e.namespace() == ns && interval.contains(e.id()))
    }

    /// All results of `query` in query order (the model answer; paging is applied on top).
    fn query_all(&self, namespace: &NamespaceId, query: &Query) -> Vec<SignedEntry> {
        let matching = self
            .namespace_entries(namespace)
            .filter(|e| query.author.matches(&e.author()) && query.key.matches(e.key()));
        let mut out: Vec<SignedEntry> = match query.kind {
            QueryKind::Flat(_) => matching
                .filter(|e| query.include_empty || !e.record().is_empty())
                .cloned()
                .collect(),
            QueryKind::LatestPerKey => {
                let mut latest: BTreeMap<&[u8], &SignedEntry> = BTreeMap::new();
                for e in matching {
                    let slot = latest.entry(e.key()).or_insert(e);
                    if e.timestamp() > slot.timestamp()
                        || (e.timestamp() == slot.timestamp() && e.author() < slot.author())
                    {
                        *slot = e;
                    }
                }
                latest
                    .into_values()
                    .filter(|e| query.include_empty || !e.record().is_empty())
                    .cloned()
                    .collect()
            }
        };
        out.sort_by(|a, b| cmp_positions(query, (a.key(), &a.author()), (b.key(), &b.author())));
        if query.direction == SortDirection::Desc {
            out.reverse();
        }
        out
    }
}

/// Compares two (key, author) positions in the order of `query` (ascending).
fn cmp_positions(
    query: &Query,
    a: (&[u8], &AuthorId),
    b: (&[u8], &AuthorId),
) -> std::cmp::Ordering {
    if matches!(query.kind, QueryKind::Flat(SortBy::AuthorKey)) {
        (a.1, a.0).cmp(&(b.1, b.0))
    } else {
        (a.0, a.1).cmp(&(b.0, b.1))
    }
}

/// Applies a cursor to the full ordered result list of a query: the shared paging logic that
/// every backend's answer is compared against.
pub(crate) fn page_from(
    query: &Query,
    ordered: impl Iterator<Item = SignedEntry>,
    cursor: &QueryCursor,
    max: usize,
) -> QueryPage {
    let mut cursor = cursor.clone();
    let mut entries = Vec::new();
    if cursor.done || max == 0 {
        return QueryPage { entries, cursor };
    }
    let desc = query.direction == SortDirection::Desc;
    let mut exhausted = true;
    for e in ordered {
        if let Some((key, author)) = &cursor.after {
            let ord = cmp_positions(query, (e.key(), &e.author()), (key, author));
            let past = if desc { ord.is_lt() } else { ord.is_gt() };
            if !past {
                continue;
            }
        }
        if entries.len() == max {
            exhausted = false;
            break;
        }
        cursor.after = Some((e.id().key_bytes(), e.author()));
        if cursor.to_skip > 0 {
            cursor.to_skip -= 1;
            continue;
        }
        entries.push(e);
        if let Some(r) = cursor.remaining.as_mut() {
            *r = r.saturating_sub(1);
            if *r == 0 {
                break;
            }
        }
    }
    if exhausted || cursor.remaining == Some(0) {
        cursor.done = true;
    }
    QueryPage { entries, cursor }
}

impl Store for MemStore {
    fn import_namespace(&mut self, capability: Capability) -> Result<ImportOutcome, StoreError> {
        match self.namespaces.get_mut(&capability.id()) {
            None => {
                self.namespaces.insert(capability.id(), capability);
                Ok(ImportOutcome::Inserted)
            }
            Some(existing) => match existing.merge(capability) {
                Ok(true) => Ok(ImportOutcome::Upgraded),
                // Same id by construction, so a mismatch cannot happen.
                Ok(false) | Err(_) => Ok(ImportOutcome::NoChange),
            },
        }
    }

    fn capability(&mut self, namespace: &NamespaceId) -> Result<Option<Capability>, StoreError> {
        Ok(self.namespaces.get(namespace).cloned())
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        Ok(self
            .namespaces
            .iter()
            .map(|(id, cap)| (*id, cap.kind()))
            .collect())
    }

    fn remove_namespace(&mut self, namespace: &NamespaceId) -> Result<bool, StoreError> {
        if self.namespaces.remove(namespace).is_none() {
            return Ok(false);
        }
        let ids: Vec<RecordIdentifier> = self
            .namespace_entries(namespace)
            .map(|e| e.id().clone())
            .collect();
        for id in ids {
            self.entries.remove(&id);
        }
        self.peers.remove(namespace);
        self.policies.remove(namespace);
        Ok(true)
    }

    fn import_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.authors.insert(author.id(), author);
        Ok(())
    }

    fn author(&mut self, id: &AuthorId) -> Result<Option<Author>, StoreError> {
        Ok(self.authors.get(id).cloned())
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        Ok(self.authors.keys().copied().collect())
    }

    fn delete_author(&mut self, id: &AuthorId) -> Result<bool, StoreError> {
        if self.default_author == Some(*id) {
            self.default_author = None;
        }
        Ok(self.authors.remove(id).is_some())
    }

    fn default_author(&mut self) -> Result<Option<AuthorId>, StoreError> {
        Ok(self.default_author)
    }

    fn set_default_author(&mut self, id: &AuthorId) -> Result<bool, StoreError> {
        if !self.authors.contains_key(id) {
            return Ok(false);
        }
        self.default_author = Some(*id);
        Ok(true)
    }

    fn insert(&mut self, entry: SignedEntry) -> Result<InsertOutcome, StoreError> {
        let namespace = entry.namespace();
        self.known(&namespace)?;
        let author = entry.author();
        let key = entry.key();
        // The entry at the key and at every prefix of it, the empty key included.
        for len in 0..=key.len() {
            let id = RecordIdentifier::new(namespace, author, &key[..len]);
            if let Some(existing) = self.entries.get(&id)
                && blocks(existing, &entry)
            {
                return Ok(InsertOutcome::NotInserted);
            }
        }
        // Every entry not newer than this one at a key that starts with this key, this key
        // included (an equal record at a longer key goes: the shorter key wins a tie, as it
        // would have blocked the longer one arriving after it).
        let dominated: Vec<RecordIdentifier> = self
            .entries
            .range(entry.id().clone()..)
            .map(|(_, e)| e)
            .take_while(|e| {
                e.namespace() == namespace && e.author() == author && e.key().starts_with(key)
            })
            .filter(|e| e.record() <= entry.record())
            .map(|e| e.id().clone())
            .collect();
        for id in &dominated {
            self.entries.remove(id);
        }
        self.entries.insert(entry.id().clone(), entry);
        Ok(InsertOutcome::Inserted {
            removed: dominated.len() as u64,
        })
    }

    fn get_exact(
        &mut self,
        namespace: &NamespaceId,
        author: &AuthorId,
        key: &[u8],
        include_empty: bool,
    ) -> Result<Option<SignedEntry>, StoreError> {
        let id = RecordIdentifier::new(*namespace, *author, key);
        Ok(self
            .entries
            .get(&id)
            .filter(|e| include_empty || !e.record().is_empty())
            .cloned())
    }

    fn query(
        &mut self,
        namespace: &NamespaceId,
        query: &Query,
        cursor: &QueryCursor,
        max: usize,
    ) -> Result<QueryPage, StoreError> {
        self.known(namespace)?;
        let all = self.query_all(namespace, query);
        Ok(page_from(query, all.into_iter(), cursor, max))
    }

    fn latest_per_author(
        &mut self,
        namespace: &NamespaceId,
    ) -> Result<Vec<(AuthorId, u64, Bytes)>, StoreError> {
        self.known(namespace)?;
        let mut latest: BTreeMap<AuthorId, &SignedEntry> = BTreeMap::new();
        for e in self.namespace_entries(namespace) {
            let slot = latest.entry(e.author()).or_insert(e);
            if e.timestamp() > slot.timestamp() {
                *slot = e;
            }
        }
        Ok(latest
            .into_iter()
            .map(|(a, e)| (a, e.timestamp(), e.id().key_bytes()))
            .collect())
    }

    fn fingerprint(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<Fingerprint, StoreError> {
        self.known(namespace)?;
        Ok(self
            .interval_entries(namespace, interval)
            .fold(Fingerprint::ZERO, |acc, e| acc ^ e.entry().fingerprint()))
    }

    fn entry_by_fingerprint(
        &mut self,
        namespace: &NamespaceId,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.known(namespace)?;
        Ok(self
            .namespace_entries(namespace)
            .find(|e| e.entry().fingerprint() == *fingerprint)
            .cloned())
    }

    fn count(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<u64, StoreError> {
        self.known(namespace)?;
        Ok(self.interval_entries(namespace, interval).count() as u64)
    }

    fn entries(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
        skip: u64,
        max: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.known(namespace)?;
        Ok(self
            .interval_entries(namespace, interval)
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(max)
            .cloned()
            .collect())
    }

    fn register_useful_peer(
        &mut self,
        namespace: &NamespaceId,
        peer: [u8; 32],
    ) -> Result<(), StoreError> {
        self.known(namespace)?;
        let peers = self.peers.entry(*namespace).or_default();
        peers.retain(|p| *p != peer);
        peers.push_front(peer);
        peers.truncate(PEERS_PER_DOC);
        Ok(())
    }

    fn useful_peers(&mut self, namespace: &NamespaceId) -> Result<Vec<[u8; 32]>, StoreError> {
        self.known(namespace)?;
        Ok(self
            .peers
            .get(namespace)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default())
    }

    fn download_policy(&mut self, namespace: &NamespaceId) -> Result<DownloadPolicy, StoreError> {
        self.known(namespace)?;
        Ok(self.policies.get(namespace).cloned().unwrap_or_default())
    }

    fn set_download_policy(
        &mut self,
        namespace: &NamespaceId,
        policy: DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.known(namespace)?;
        self.policies.insert(*namespace, policy);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
