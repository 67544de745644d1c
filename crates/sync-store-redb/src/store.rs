//! [`RedbStore`]: the database, its open write transaction, and the `Store` implementation.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use bytes::Bytes;
use redb::{Database, DatabaseError, ReadableTable, WriteTransaction};
use sync_core::store::PEERS_PER_DOC;
use sync_core::{
    Author, AuthorId, Capability, CapabilityKind, DownloadPolicy, Fingerprint, ImportOutcome,
    InsertOutcome, KeyInterval, NamespaceId, Query, QueryCursor, QueryPage, RecordIdentifier,
    SignedEntry, Store, StoreError,
};

use crate::aggregate::{self, Clipped};
use crate::migrations::CreateOptions;
use crate::tables::{
    DEFAULT_FIRST_BITS, DEFAULT_LEVEL_BITS, META_DEFAULT_AUTHOR, Shape, Tables, decode_capability,
    decode_id, decode_latest, decode_policy, encode_capability, encode_policy,
};
use crate::{check, guard, migrations, query, write};

/// The default number of write operations after which the open transaction is committed even
/// without [`Store::flush`]. A commit rewrites every page the transaction touched and syncs the
/// file, so fewer commits make bulk writes faster: 100k inserts into a file store took 21.8 µs
/// per entry in batches of 8192, 16.4 µs in batches of 32768 and 14.8 µs in batches of 65536,
/// with the same peak memory (redb's page cache bounds it).
pub const DEFAULT_MAX_BATCH: usize = 65_536;

/// redb's page cache. Its default, 1 GiB, holds most of a large store in memory for little
/// gain: the operating system caches the file too. Measured at 1M entries, 64 MiB inserts as
/// fast as 1 GiB with a tenth of the peak memory.
const CACHE_BYTES: usize = 64 << 20;

/// The most authors [`RedbStore`] keeps decoded. Decoding one derives its public key from the
/// secret, which costs as much as a signature; a local write looks its author up every time.
const AUTHOR_CACHE: usize = 1024;

self_cell::self_cell! {
    /// A write transaction together with its opened tables.
    struct OpenTx {
        owner: WriteTransaction,
        #[covariant]
        dependent: Tables,
    }
}

/// The docsync store on redb: in memory ([`RedbStore::memory`]) or in one file
/// ([`RedbStore::persistent`]).
///
/// Writes go into one open write transaction, which reads also go through (so they see every
/// acknowledged write). [`Store::flush`] commits it; so does every [`RedbStore::set_max_batch`]-th
/// write, and dropping the store (best effort; call [`RedbStore::close`] to see the error). A
/// crash loses the writes since the last commit and nothing else: a commit is atomic and
/// durable (redb's immediate durability, an fsync per commit).
///
/// If an operation fails in the storage engine halfway, the open transaction is rolled back
/// (also losing the uncommitted writes before it), so a half-done operation is never committed.
///
/// redb can panic on a damaged file instead of failing. Such a panic is caught: opening fails
/// with [`StoreError::Corrupt`], and a panic in a later call *poisons* the store: that call and
/// every later one fail with the same `Corrupt` error, the uncommitted writes are dropped and
/// the file is closed (so it can be reopened, copied or repaired).
pub struct RedbStore {
    // Declared before `db`: dropped (committed in `Drop`) before the database closes.
    tx: Option<OpenTx>,
    /// `None` once poisoned.
    db: Option<Database>,
    /// The message of the panic that poisoned the store.
    poisoned: Option<String>,
    shape: Shape,
    /// Whether the open transaction holds writes.
    dirty: bool,
    pending: usize,
    max_batch: usize,
    /// Authors decoded since the last rollback, as the open transaction sees them: emptied
    /// whenever uncommitted writes are dropped, which may have imported or deleted one.
    authors: HashMap<AuthorId, Author>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("pending_writes", &self.pending)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// A new, empty store in memory (redb's in-memory backend, the same code path as a file).
    pub fn memory() -> Result<Self, StoreError> {
        Self::memory_with_shape(DEFAULT_FIRST_BITS, DEFAULT_LEVEL_BITS)
    }

    /// Opens the store in the file at `path`, creating it if missing.
    ///
    /// Fails with [`StoreError::VersionTooNew`] if the file was written by a newer schema
    /// version, with [`StoreError::Backend`] if the file is not a redb database or is open
    /// elsewhere, and with [`StoreError::Corrupt`] if it is damaged (also when redb panics on
    /// it; the file is closed again).
    pub fn persistent(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(
            || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create(path.as_ref())
            },
            DEFAULT_FIRST_BITS,
            DEFAULT_LEVEL_BITS,
        )
    }

    /// Test support: a memory store whose aggregate index has nodes of about `2^level_bits`
    /// children (1..=16) at every level instead of 16 and 64, so that small tests exercise
    /// every level of it.
    #[doc(hidden)]
    pub fn memory_with_level_bits(level_bits: u8) -> Result<Self, StoreError> {
        Self::memory_with_shape(level_bits, level_bits)
    }

    fn memory_with_shape(first_bits: u8, level_bits: u8) -> Result<Self, StoreError> {
        Self::open(
            || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create_with_backend(redb::backends::InMemoryBackend::new())
            },
            first_bits,
            level_bits,
        )
    }

    /// Test support: [`RedbStore::persistent`], with nodes of about `2^level_bits` children
    /// (1..=16) if the file is new. The shape is stored in the file.
    #[doc(hidden)]
    pub fn persistent_with_level_bits(
        path: impl AsRef<Path>,
        level_bits: u8,
    ) -> Result<Self, StoreError> {
        Self::open(
            || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create(path.as_ref())
            },
            level_bits,
            level_bits,
        )
    }

    /// Opens the database `create` opens and migrates it, turning a panic of redb on damaged
    /// bytes into [`StoreError::Corrupt`]. On any failure the database is closed again.
    pub(crate) fn open(
        create: impl FnOnce() -> Result<Database, DatabaseError>,
        first_bits: u8,
        level_bits: u8,
    ) -> Result<Self, StoreError> {
        // A panic inside `create` drops what it built while unwinding, the file with it.
        let db = guard::contain("opening the database", || {
            create().map_err(StoreError::backend)
        })?;
        let options = CreateOptions {
            first_bits: first_bits.clamp(1, 16),
            level_bits: level_bits.clamp(1, 16),
        };
        let shape = match guard::contain("opening the store", || migrations::migrate(&db, &options))
        {
            Ok(shape) => shape,
            Err(e) => {
                // Closed here rather than while unwinding, where a second panic would abort.
                guard::discard(db);
                return Err(e);
            }
        };
        Ok(Self {
            tx: None,
            db: Some(db),
            poisoned: None,
            shape,
            dirty: false,
            pending: 0,
            max_batch: DEFAULT_MAX_BATCH,
            authors: HashMap::new(),
        })
    }

    /// Commits the open transaction after at most `max_batch` writes (at least 1; default
    /// [`DEFAULT_MAX_BATCH`]). This bounds how many acknowledged writes a crash can lose.
    pub fn set_max_batch(&mut self, max_batch: usize) {
        self.max_batch = max_batch.max(1);
    }

    /// Commits and closes the store, reporting a failure of the final commit or of closing the
    /// database.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.commit()?;
        match self.db.take() {
            // Closing writes redb's allocator state, which may fail or, on a damaged file, panic.
            Some(db) => guard::contain("closing the database", move || {
                db.close().map_err(StoreError::backend)
            }),
            None => Ok(()),
        }
    }

    /// Runs `f`, unless the store is poisoned; a panic in it poisons the store (see the type's
    /// docs) and becomes [`StoreError::Corrupt`] naming `what` was being done.
    fn guarded<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(message) = &self.poisoned {
            return Err(StoreError::Corrupt(message.clone()));
        }
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(payload) => {
                let message = guard::panic_message(what, &*payload);
                guard::discard(payload);
                self.poisoned = Some(message.clone());
                // redb's state is not trusted after a panic: drop the uncommitted writes and
                // close the file (each drop may panic again; `discard` contains that).
                guard::discard(self.roll_back());
                guard::discard(self.db.take());
                Err(StoreError::Corrupt(message))
            }
        }
    }

    /// Checks every index against the records: the by-key rows, the latest entry per author
    /// and the aggregate index (recomputed from scratch and compared node by node), and that
    /// every entry belongs to a known document. O(n); meant for tests and repair tools.
    /// Fails with [`StoreError::Corrupt`] describing the first difference.
    pub fn check_consistency(&mut self) -> Result<(), StoreError> {
        let shape = self.shape;
        self.read(|t| check::check(t, &shape))
    }

    fn open_tx(&mut self) -> Result<&mut OpenTx, StoreError> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => {
                let db = self.db.as_ref().ok_or_else(|| {
                    StoreError::Corrupt(self.poisoned.clone().unwrap_or_default())
                })?;
                let tx = db.begin_write().map_err(StoreError::backend)?;
                OpenTx::try_new(tx, |tx| Tables::open(tx)).map_err(StoreError::backend)?
            }
        };
        Ok(self.tx.insert(tx))
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.guarded("committing", Self::commit_unguarded)
    }

    /// Forgets the uncommitted writes, and what was read since they began (the decoded
    /// authors); returns the open transaction for the caller to drop, which rolls it back.
    fn roll_back(&mut self) -> Option<OpenTx> {
        self.dirty = false;
        self.pending = 0;
        self.authors.clear();
        self.tx.take()
    }

    fn commit_unguarded(&mut self) -> Result<(), StoreError> {
        let result = self.try_commit();
        if result.is_err() {
            // The transaction is gone, and its writes with it.
            drop(self.roll_back());
        }
        result
    }

    fn try_commit(&mut self) -> Result<(), StoreError> {
        self.pending = 0;
        let dirty = std::mem::take(&mut self.dirty);
        if let Some(mut tx) = self.tx.take() {
            if dirty {
                // On failure the transaction is dropped, which rolls it back.
                tx.with_dependent_mut(|_, t| t.apply_fingerprints())?;
            }
            let tx = tx.into_owner();
            if dirty {
                tx.commit().map_err(StoreError::backend)?;
            } else {
                tx.abort().map_err(StoreError::backend)?;
            }
        }
        Ok(())
    }

    /// Runs a read against the open transaction.
    fn read<T>(
        &mut self,
        f: impl FnOnce(&Tables<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.guarded("reading", |s| s.open_tx()?.with_dependent(|_, t| f(t)))
    }

    /// Runs a write in the open transaction; commits after `max_batch` writes; rolls the
    /// transaction back if the storage engine failed.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Tables<'_>, &Shape) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let shape = self.shape;
        self.guarded("writing", |s| {
            let result = s.open_tx()?.with_dependent_mut(|_, t| f(t, &shape));
            match &result {
                Ok(_) => {
                    s.dirty = true;
                    s.pending += 1;
                    if s.pending >= s.max_batch {
                        s.commit_unguarded()?;
                    }
                }
                // Checked before anything is written.
                Err(StoreError::UnknownNamespace(_)) => {}
                Err(_) => drop(s.roll_back()),
            }
            result
        })
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Best effort: `close` reports the error.
        let _ = self.commit();
        // Closing may panic on a damaged file too, and this may run while unwinding.
        guard::discard(self.db.take());
    }
}

fn known(t: &Tables<'_>, ns: &NamespaceId) -> Result<(), StoreError> {
    match t
        .namespaces
        .get(ns.as_bytes())
        .map_err(StoreError::backend)?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownNamespace(*ns)),
    }
}

fn clip<'a>(ns: &NamespaceId, interval: &'a KeyInterval) -> (Clipped<'a>, Clipped<'a>) {
    (
        Clipped::new(
            ns,
            interval.start.as_ref().map(RecordIdentifier::as_bytes),
            Clipped::Start,
        ),
        Clipped::new(
            ns,
            interval.end.as_ref().map(RecordIdentifier::as_bytes),
            Clipped::End,
        ),
    )
}

impl Store for RedbStore {
    fn import_namespace(&mut self, capability: Capability) -> Result<ImportOutcome, StoreError> {
        self.write(|t, _| {
            let id = capability.id();
            let existing = t
                .namespaces
                .get(id.as_bytes())
                .map_err(StoreError::backend)?
                .map(|v| decode_capability(v.value()))
                .transpose()?;
            let (outcome, stored) = match existing {
                None => (ImportOutcome::Inserted, capability),
                Some(mut existing) => match existing.merge(capability) {
                    Ok(true) => (ImportOutcome::Upgraded, existing),
                    // Same id by construction, so a mismatch cannot happen.
                    Ok(false) | Err(_) => return Ok(ImportOutcome::NoChange),
                },
            };
            t.namespaces
                .insert(id.as_bytes(), &encode_capability(&stored))
                .map_err(StoreError::backend)?;
            Ok(outcome)
        })
    }

    fn capability(&mut self, namespace: &NamespaceId) -> Result<Option<Capability>, StoreError> {
        self.read(|t| {
            t.namespaces
                .get(namespace.as_bytes())
                .map_err(StoreError::backend)?
                .map(|v| decode_capability(v.value()))
                .transpose()
        })
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        self.read(|t| {
            let mut out = Vec::new();
            for item in t.namespaces.iter().map_err(StoreError::backend)? {
                let (k, v) = item.map_err(StoreError::backend)?;
                let cap = decode_capability(v.value())?;
                out.push((NamespaceId::from_bytes(*k.value()), cap.kind()));
            }
            Ok(out)
        })
    }

    fn remove_namespace(&mut self, namespace: &NamespaceId) -> Result<bool, StoreError> {
        self.write(|t, _| {
            if t.namespaces
                .remove(namespace.as_bytes())
                .map_err(StoreError::backend)?
                .is_none()
            {
                return Ok(false);
            }
            write::remove_namespace_data(t, namespace)?;
            Ok(true)
        })
    }

    fn import_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.authors.remove(&author.id());
        self.write(|t, _| {
            t.authors
                .insert(author.id().as_bytes(), &author.to_bytes())
                .map_err(StoreError::backend)?;
            Ok(())
        })
    }

    fn author(&mut self, id: &AuthorId) -> Result<Option<Author>, StoreError> {
        if let Some(author) = self.authors.get(id) {
            return Ok(Some(author.clone()));
        }
        let author = self.read(|t| {
            Ok(t.authors
                .get(id.as_bytes())
                .map_err(StoreError::backend)?
                .map(|v| Author::from_bytes(v.value())))
        })?;
        if let Some(author) = &author {
            if self.authors.len() >= AUTHOR_CACHE {
                self.authors.clear();
            }
            self.authors.insert(*id, author.clone());
        }
        Ok(author)
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        self.read(|t| {
            let mut out = Vec::new();
            for item in t.authors.iter().map_err(StoreError::backend)? {
                let (k, _) = item.map_err(StoreError::backend)?;
                out.push(AuthorId::from_bytes(*k.value()));
            }
            Ok(out)
        })
    }

    fn delete_author(&mut self, id: &AuthorId) -> Result<bool, StoreError> {
        self.authors.remove(id);
        self.write(|t, _| {
            if t.meta_value(META_DEFAULT_AUTHOR)?.as_deref() == Some(id.as_bytes().as_slice()) {
                t.meta
                    .remove(META_DEFAULT_AUTHOR)
                    .map_err(StoreError::backend)?;
            }
            Ok(t.authors
                .remove(id.as_bytes())
                .map_err(StoreError::backend)?
                .is_some())
        })
    }

    fn default_author(&mut self) -> Result<Option<AuthorId>, StoreError> {
        self.read(|t| match t.meta_value(META_DEFAULT_AUTHOR)? {
            None => Ok(None),
            Some(v) => <[u8; 32]>::try_from(v.as_slice())
                .map(|b| Some(AuthorId::from_bytes(b)))
                .map_err(|_| StoreError::Corrupt("malformed default author".into())),
        })
    }

    fn set_default_author(&mut self, id: &AuthorId) -> Result<bool, StoreError> {
        self.write(|t, _| {
            if t.authors
                .get(id.as_bytes())
                .map_err(StoreError::backend)?
                .is_none()
            {
                return Ok(false);
            }
            t.meta
                .insert(META_DEFAULT_AUTHOR, id.as_bytes().as_slice())
                .map_err(StoreError::backend)?;
            Ok(true)
        })
    }

    fn insert(&mut self, entry: SignedEntry) -> Result<InsertOutcome, StoreError> {
        self.write(|t, shape| {
            known(t, &entry.namespace())?;
            write::insert(t, shape, &entry)
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
        self.read(|t| {
            Ok(query::get(t, id.as_bytes())?.filter(|e| include_empty || !e.record().is_empty()))
        })
    }

    fn query(
        &mut self,
        namespace: &NamespaceId,
        query: &Query,
        cursor: &QueryCursor,
        max: usize,
    ) -> Result<QueryPage, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            query::page(t, namespace, query, cursor, max)
        })
    }

    fn latest_per_author(
        &mut self,
        namespace: &NamespaceId,
    ) -> Result<Vec<(AuthorId, u64, Bytes)>, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            let ns = namespace.as_bytes();
            let mut first = [0u8; 64];
            first[..32].copy_from_slice(ns);
            let mut last = first;
            last[32..].fill(0xff);
            let mut out = Vec::new();
            for item in t
                .latest
                .range::<&[u8; 64]>(&first..=&last)
                .map_err(StoreError::backend)?
            {
                let (k, v) = item.map_err(StoreError::backend)?;
                let mut author = [0u8; 32];
                author.copy_from_slice(&k.value()[32..]);
                let (ts, key) = decode_latest(v.value())?;
                out.push((
                    AuthorId::from_bytes(author),
                    ts,
                    Bytes::copy_from_slice(key),
                ));
            }
            Ok(out)
        })
    }

    fn fingerprint(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<Fingerprint, StoreError> {
        Ok(self.summary(namespace, interval)?.1)
    }

    fn count(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<u64, StoreError> {
        Ok(self.summary(namespace, interval)?.0)
    }

    fn summary(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
    ) -> Result<(u64, Fingerprint), StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            let (start, end) = clip(namespace, interval);
            let agg = aggregate::interval(t, namespace, start, end)?;
            Ok((agg.count, agg.xor))
        })
    }

    fn entry_by_fingerprint(
        &mut self,
        namespace: &NamespaceId,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            query::by_fingerprint(t, namespace, fingerprint)
        })
    }

    fn pivots(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
        ranks: &[u64],
    ) -> Result<Vec<(RecordIdentifier, u64, Fingerprint)>, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            let (start, end) = clip(namespace, interval);
            if start >= end {
                return Ok(Vec::new());
            }
            aggregate::pivots(t, namespace, start, end, ranks)?
                .into_iter()
                .map(|(id, below)| Ok((decode_id(&id)?, below.count, below.xor)))
                .collect()
        })
    }

    fn entries(
        &mut self,
        namespace: &NamespaceId,
        interval: &KeyInterval,
        skip: u64,
        max: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            let (start, end) = clip(namespace, interval);
            if start >= end || max == 0 {
                return Ok(Vec::new());
            }
            let end = match end {
                Clipped::At(e) => Some(e),
                _ => None,
            };
            let from = if skip == 0 {
                match start {
                    Clipped::At(s) => s.to_vec(),
                    _ => namespace.as_bytes().to_vec(),
                }
            } else {
                let rank = aggregate::below(t, namespace, start)?
                    .count
                    .saturating_add(skip);
                match aggregate::select(t, namespace, rank)? {
                    Some(id) => id,
                    None => return Ok(Vec::new()),
                }
            };
            query::entries_from(t, namespace, &from, end, max)
        })
    }

    fn register_useful_peer(
        &mut self,
        namespace: &NamespaceId,
        peer: [u8; 32],
    ) -> Result<(), StoreError> {
        self.write(|t, _| {
            known(t, namespace)?;
            let mut peers = vec![peer];
            if let Some(v) = t
                .peers
                .get(namespace.as_bytes())
                .map_err(StoreError::backend)?
            {
                peers.extend(
                    v.value()
                        .chunks_exact(32)
                        .filter(|p| *p != peer.as_slice())
                        .filter_map(|p| <[u8; 32]>::try_from(p).ok()),
                );
            }
            peers.truncate(PEERS_PER_DOC);
            t.peers
                .insert(namespace.as_bytes(), peers.concat().as_slice())
                .map_err(StoreError::backend)?;
            Ok(())
        })
    }

    fn useful_peers(&mut self, namespace: &NamespaceId) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            Ok(t.peers
                .get(namespace.as_bytes())
                .map_err(StoreError::backend)?
                .map(|v| {
                    v.value()
                        .chunks_exact(32)
                        .filter_map(|p| <[u8; 32]>::try_from(p).ok())
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn download_policy(&mut self, namespace: &NamespaceId) -> Result<DownloadPolicy, StoreError> {
        self.read(|t| {
            known(t, namespace)?;
            match t
                .policies
                .get(namespace.as_bytes())
                .map_err(StoreError::backend)?
            {
                Some(v) => decode_policy(v.value()),
                None => Ok(DownloadPolicy::default()),
            }
        })
    }

    fn set_download_policy(
        &mut self,
        namespace: &NamespaceId,
        policy: DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.write(|t, _| {
            known(t, namespace)?;
            t.policies
                .insert(namespace.as_bytes(), encode_policy(&policy).as_slice())
                .map_err(StoreError::backend)?;
            Ok(())
        })
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> NamespaceId {
        NamespaceId::from_bytes([1; 32])
    }

    /// A panic in a store operation poisons the store: that call and every later one fail with
    /// the same `Corrupt` error, the database is closed, and dropping the store is quiet.
    #[test]
    fn a_panic_poisons_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let mut store = RedbStore::persistent(&path).unwrap();
        store.import_author(Author::from_bytes(&[2; 32])).unwrap();
        let err = store
            .guarded("testing", |s| -> Result<(), StoreError> {
                s.open_tx()?;
                panic!("simulated engine panic")
            })
            .unwrap_err();
        let StoreError::Corrupt(message) = err else {
            panic!("not Corrupt: {err:?}");
        };
        assert!(message.contains("simulated engine panic"), "{message}");
        assert!(
            store.db.is_none() && store.tx.is_none(),
            "closed on poisoning"
        );
        let later = [
            store.list_authors().map(|_| ()),
            store.count(&ns(), &KeyInterval::all()).map(|_| ()),
            store.import_author(Author::from_bytes(&[3; 32])),
            store.flush(),
            store.check_consistency(),
        ];
        for result in later {
            assert!(matches!(result, Err(StoreError::Corrupt(m)) if m == message));
        }
        assert!(matches!(store.close(), Err(StoreError::Corrupt(m)) if m == message));
        // The file was closed and the uncommitted write is gone: it reopens, without it.
        let mut reopened = RedbStore::persistent(&path).unwrap();
        assert!(reopened.list_authors().unwrap().is_empty());
        reopened.check_consistency().unwrap();
    }
}
