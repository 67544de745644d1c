//! The on-disk format: every table of the store, its key and value layout, and the value codecs.
//!
//! This file is the one home of the format. Table names carry the version of their layout; a
//! change of layout is a new name plus a numbered migration in `migrations.rs`, and bumps
//! [`SCHEMA_VERSION`]. Integers are big-endian unless a layout says varint (LEB128, as in
//! `sync_core::encoding`). `docs/storage.md` draws the same layouts as byte diagrams.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use redb::{Key, ReadableTable, Table, TableDefinition, TableError, Value, WriteTransaction};
use sync_core::encoding::{DecodeLimits, Reader, write_bytes, write_varint};
use sync_core::{
    Capability, ContentHash, DownloadPolicy, Entry, EntrySignature, FilterKind, Fingerprint,
    ID_PREFIX_LEN, KEY_LEN, Record, RecordIdentifier, SIGNATURE_LEN, SignedEntry, StoreError,
};

use crate::guard::discard;

/// The schema version this build writes, and the newest it opens.
pub const SCHEMA_VERSION: u64 = 2;

// --- meta ---

/// `meta`: store-wide values. Key: a name (UTF-8). Value: bytes, by name:
/// - [`META_VERSION`]: the schema version, u64 BE (8 bytes);
/// - [`META_INDEX_SHAPE`]: the shape of the aggregate index, `first level bits (1) | level bits
///   (1) | salt (32)`: the number of level-hash bits for level 1 (4) and for each level above
///   (6), unless made for tests, and the secret key of the level hash (see [`Shape`]);
/// - [`META_DEFAULT_AUTHOR`]: the default author id (32 bytes), absent when none.
///
/// This table's name never changes: it is where a reader learns the version of the others.
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// Meta key of the schema version.
pub(crate) const META_VERSION: &str = "schema-version";
/// Meta key of the shape of the aggregate index.
pub(crate) const META_INDEX_SHAPE: &str = "index-shape";
/// Meta key of the default author.
pub(crate) const META_DEFAULT_AUTHOR: &str = "default-author";

// --- documents and authors ---

/// `namespaces-v1`: the documents. Key: namespace id (32). Value: capability kind (1 byte:
/// 1 = write, 2 = read, as `sync_core::CapabilityKind`) | namespace secret (write) or id (read) (32).
pub(crate) const NAMESPACES: TableDefinition<'_, &[u8; 32], &[u8; 33]> =
    TableDefinition::new("namespaces-v1");

/// `authors-v1`: author keys. Key: author id (32). Value: author secret (32).
pub(crate) const AUTHORS: TableDefinition<'_, &[u8; 32], &[u8; 32]> =
    TableDefinition::new("authors-v1");

// --- entries ---

/// `records-v1`: the entries. Key: the flat record identifier, `namespace (32) | author (32) |
/// key`, so that byte order is identifier order. Value: [`RECORD_VALUE_LEN`] bytes,
/// `timestamp u64 BE (8) | content length u64 BE (8) | content hash (32) |
/// namespace signature (64) | author signature (64) | parent u32 BE (4)`.
///
/// `parent` links the record to its nearest stored ancestor: 0 if no stored entry of the same
/// namespace and author has a key that is a proper prefix of this key, else the length of the
/// longest such key plus one. The insertion rule follows these links instead of probing every
/// prefix of a key (see `write.rs`).
pub(crate) const RECORDS: TableDefinition<'_, &[u8], &[u8; RECORD_VALUE_LEN]> =
    TableDefinition::new("records-v1");

/// `records-by-key-v1`: one row per record, ordered by key then author, for key-ordered queries.
/// Key: the tuple `(namespace (32), key, author (32))` (redb compares tuples field by field).
/// Value: the record's timestamp (u64), so that the newest entry of a key is chosen without
/// reading the records.
pub(crate) const BY_KEY: TableDefinition<'_, ByKey<'_>, u64> =
    TableDefinition::new("records-by-key-v1");

/// The key type of [`BY_KEY`].
pub(crate) type ByKey<'a> = (&'a [u8; 32], &'a [u8], &'a [u8; 32]);

/// `latest-per-author-v1`: per document and author, the newest entry. Key: `namespace (32) |
/// author (32)`. Value: `timestamp u64 BE (8) | key`. Among entries of equal timestamp the one
/// with the smallest key is the latest. Maintained exactly on every write.
pub(crate) const LATEST: TableDefinition<'_, &[u8; 64], &[u8]> =
    TableDefinition::new("latest-per-author-v1");

/// `aggregates-v1`: the aggregate index (see `aggregate.rs` and docs/storage.md). Key: `level
/// (1, 1..=LEVELS) | start`, where start is a record identifier (a node that begins at that
/// record) or a bare namespace id (32 bytes: the head node of the level, holding the records
/// of the document before its first boundary). Value: [`AGG_VALUE_LEN`] bytes, `count u64 BE (8)
/// | XOR of the entry fingerprints (32)`. Head nodes with count 0 are not stored.
pub(crate) const AGGREGATES: TableDefinition<'_, &[u8], &[u8; AGG_VALUE_LEN]> =
    TableDefinition::new("aggregates-v1");

/// `records-by-fingerprint-v2` (since schema version 2): every record under its entry
/// fingerprint (`sync_core::Entry::fingerprint`, the value the aggregates XOR). Key: the first 8
/// bytes of the fingerprint, as a u64 (see [`fingerprint_key`]). Value: the record identifier
/// without its namespace, `author (32) | key`; a lookup for a document puts its namespace in
/// front. Records whose fingerprints share those 8 bytes (a chance of about n² / 2⁶⁵ among n
/// records) share a row naming one of them; a lookup always checks that the record it finds has
/// the full fingerprint, so at worst it misses. Maintained exactly on every write (applied in
/// key order when the transaction commits); answers `Store::entry_by_fingerprint`.
pub(crate) const BY_FINGERPRINT: TableDefinition<'_, u64, &[u8]> =
    TableDefinition::new("records-by-fingerprint-v2");

/// The [`BY_FINGERPRINT`] key of an entry fingerprint.
pub(crate) fn fingerprint_key(fp: &Fingerprint) -> u64 {
    u64::from_be_bytes(array_at(&fp.0, 0))
}

/// The [`BY_FINGERPRINT`] row of the record with flat identifier `id`: the identifier without
/// its namespace.
pub(crate) fn fingerprint_row_of(id: &[u8]) -> &[u8] {
    id.get(KEY_LEN..).unwrap_or_default()
}

// --- per-document settings ---

/// `peers-v1`: the useful peers of a document. Key: namespace id (32). Value: up to
/// `sync_core::store::PEERS_PER_DOC` peer ids of 32 bytes each, concatenated, newest first.
pub(crate) const PEERS: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("peers-v1");

/// `download-policy-v1`: the download policy of a document, absent for the default. Key:
/// namespace id (32). Value: see [`encode_policy`].
pub(crate) const POLICIES: TableDefinition<'_, &[u8; 32], &[u8]> =
    TableDefinition::new("download-policy-v1");

// --- the aggregate index's shape ---

/// The number of aggregate levels above the records.
pub(crate) const LEVELS: u8 = 3;
/// The default bits of the level hash for level 1: level-1 nodes hold 2^4 = 16 records on
/// average, which bounds the records a range operation reads and hashes.
pub(crate) const DEFAULT_FIRST_BITS: u8 = 4;
/// The default bits of the level hash for each level above 1: such nodes have 2^6 = 64
/// children on average.
pub(crate) const DEFAULT_LEVEL_BITS: u8 = 6;

/// The shape of the aggregate index of a store, fixed when the store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Bits of the level hash for level 1, 1..=16: level-1 nodes hold 2^first_bits records on
    /// average.
    pub(crate) first_bits: u8,
    /// Bits of the level hash for each further level, 1..=16: those nodes have 2^level_bits
    /// children on average.
    pub(crate) level_bits: u8,
    /// The key of the level hash, secret to the store, so that a writer cannot choose
    /// identifiers that unbalance the index.
    pub(crate) salt: [u8; 32],
}

impl Shape {
    /// The level of the record with identifier `id`, from the number `z` of leading zero bits
    /// of `blake3::keyed_hash(salt, id)`: 0 if `z < first_bits`, else
    /// `1 + (z - first_bits) / level_bits`, at most [`LEVELS`].
    pub(crate) fn level_of(&self, id: &[u8]) -> u8 {
        let hash = blake3::keyed_hash(&self.salt, id);
        let mut head = [0u8; 8];
        head.copy_from_slice(&hash.as_bytes()[..8]);
        let zeros = u64::from_be_bytes(head).leading_zeros();
        let Some(above) = zeros.checked_sub(u32::from(self.first_bits)) else {
            return 0;
        };
        let level = 1 + above / u32::from(self.level_bits.max(1));
        u8::try_from(level).unwrap_or(LEVELS).min(LEVELS)
    }

    /// The [`META_INDEX_SHAPE`] value.
    pub(crate) fn encode(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        out[0] = self.first_bits;
        out[1] = self.level_bits;
        out[2..].copy_from_slice(&self.salt);
        out
    }

    /// Decodes a [`META_INDEX_SHAPE`] value.
    pub(crate) fn decode(value: &[u8]) -> Result<Self, StoreError> {
        match value {
            [first @ 1..=16, bits @ 1..=16, salt @ ..] if salt.len() == 32 => Ok(Self {
                first_bits: *first,
                level_bits: *bits,
                salt: array_at(salt, 0),
            }),
            _ => Err(StoreError::Corrupt("malformed index shape".into())),
        }
    }
}

// --- the tables of an open write transaction ---

/// Opens table `definition` while `held` (tables opened before it) is owned here, and gives
/// `held` back with the new table.
///
/// If redb panics (a damaged file), the panic is stopped here, each table of `held` is dropped
/// on its own with [`discard`], and then the panic goes on. None may be dropped while a panic
/// unwinds: a table's destructor reports to its transaction through a lock that the panic has
/// poisoned, so it panics too, and a panic while unwinding aborts the process instead of
/// reaching the store's guard. On an error `held` is dropped as usual.
fn open_holding<'tx, K, V, H: Held>(
    tx: &'tx WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    held: H,
) -> Result<(Table<'tx, K, V>, H), TableError>
where
    K: Key + 'static,
    V: Value + 'static,
{
    match catch_unwind(AssertUnwindSafe(|| tx.open_table(definition))) {
        Ok(table) => Ok((table?, held)),
        Err(payload) => {
            held.discard_each();
            resume_unwind(payload)
        }
    }
}

/// Open tables held by [`open_holding`]: nothing, a table, or a pair of such.
trait Held {
    /// Drops every table with [`discard`], one at a time.
    fn discard_each(self);
}

impl Held for () {
    fn discard_each(self) {}
}

impl<K: Key + 'static, V: Value + 'static> Held for Table<'_, K, V> {
    fn discard_each(self) {
        discard(self);
    }
}

impl<A: Held, B: Held> Held for (A, B) {
    fn discard_each(self) {
        let (a, b) = self;
        a.discard_each();
        b.discard_each();
    }
}

/// Every table, opened in one write transaction.
pub(crate) struct Tables<'tx> {
    pub(crate) meta: Table<'tx, &'static str, &'static [u8]>,
    pub(crate) namespaces: Table<'tx, &'static [u8; 32], &'static [u8; 33]>,
    pub(crate) authors: Table<'tx, &'static [u8; 32], &'static [u8; 32]>,
    pub(crate) records: Table<'tx, &'static [u8], &'static [u8; RECORD_VALUE_LEN]>,
    pub(crate) by_key: Table<'tx, ByKey<'static>, u64>,
    pub(crate) latest: Table<'tx, &'static [u8; 64], &'static [u8]>,
    pub(crate) aggregates: Table<'tx, &'static [u8], &'static [u8; AGG_VALUE_LEN]>,
    pub(crate) by_fingerprint: Table<'tx, u64, &'static [u8]>,
    /// Writes to [`BY_FINGERPRINT`] not yet applied: the row to put (`Some`) or to delete
    /// (`None`) per fingerprint, applied in key order before the transaction commits
    /// ([`Tables::apply_fingerprints`]). Random keys inserted one by one each cost a descent to
    /// a cold leaf; applied in order, consecutive ones share their path.
    pub(crate) fingerprints_pending: BTreeMap<u64, Option<Vec<u8>>>,
    pub(crate) peers: Table<'tx, &'static [u8; 32], &'static [u8]>,
    pub(crate) policies: Table<'tx, &'static [u8; 32], &'static [u8]>,
}

impl<'tx> Tables<'tx> {
    /// Opens (creating if missing) every table of the current schema.
    ///
    /// Each table is opened while the ones before it are held by [`open_holding`], so that a
    /// panic of redb on a damaged file (opening a missing table writes to it) never drops them
    /// while it unwinds (see there).
    pub(crate) fn open(tx: &'tx WriteTransaction) -> Result<Self, TableError> {
        let (meta, held) = open_holding(tx, META, ())?;
        let (namespaces, held) = open_holding(tx, NAMESPACES, (held, meta))?;
        let (authors, held) = open_holding(tx, AUTHORS, (held, namespaces))?;
        let (records, held) = open_holding(tx, RECORDS, (held, authors))?;
        let (by_key, held) = open_holding(tx, BY_KEY, (held, records))?;
        let (latest, held) = open_holding(tx, LATEST, (held, by_key))?;
        let (aggregates, held) = open_holding(tx, AGGREGATES, (held, latest))?;
        let (by_fingerprint, held) = open_holding(tx, BY_FINGERPRINT, (held, aggregates))?;
        let (peers, held) = open_holding(tx, PEERS, (held, by_fingerprint))?;
        let (policies, held) = open_holding(tx, POLICIES, (held, peers))?;
        let (held, peers) = held;
        let (held, by_fingerprint) = held;
        let (held, aggregates) = held;
        let (held, latest) = held;
        let (held, by_key) = held;
        let (held, records) = held;
        let (held, authors) = held;
        let (held, namespaces) = held;
        let ((), meta) = held;
        Ok(Self {
            meta,
            namespaces,
            authors,
            records,
            by_key,
            latest,
            aggregates,
            by_fingerprint,
            fingerprints_pending: BTreeMap::new(),
            peers,
            policies,
        })
    }

    /// The [`BY_FINGERPRINT`] row of `fp` as the transaction sees it (pending writes first).
    pub(crate) fn fingerprint_row(&self, fp: &Fingerprint) -> Result<Option<Vec<u8>>, StoreError> {
        let key = fingerprint_key(fp);
        if let Some(pending) = self.fingerprints_pending.get(&key) {
            return Ok(pending.clone());
        }
        Ok(self
            .by_fingerprint
            .get(key)
            .map_err(StoreError::backend)?
            .map(|row| row.value().to_vec()))
    }

    /// Applies the pending writes to [`BY_FINGERPRINT`], in key order.
    pub(crate) fn apply_fingerprints(&mut self) -> Result<(), StoreError> {
        for (key, row) in std::mem::take(&mut self.fingerprints_pending) {
            match row {
                Some(id) => self.by_fingerprint.insert(key, id.as_slice()).map(|_| ()),
                None => self.by_fingerprint.remove(key).map(|_| ()),
            }
            .map_err(StoreError::backend)?;
        }
        Ok(())
    }

    /// The value of a meta key.
    pub(crate) fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .meta
            .get(name)
            .map_err(StoreError::backend)?
            .map(|v| v.value().to_vec()))
    }
}

// --- value codecs ---

/// The length of a [`RECORDS`] value.
pub(crate) const RECORD_VALUE_LEN: usize = 8 + 8 + 32 + 2 * SIGNATURE_LEN + 4;

/// The [`RECORDS`] value of an entry whose nearest stored ancestor has the key length
/// `parent - 1` (0: none).
pub(crate) fn encode_record(entry: &SignedEntry, parent: u32) -> [u8; RECORD_VALUE_LEN] {
    let mut out = [0u8; RECORD_VALUE_LEN];
    out[0..8].copy_from_slice(&entry.timestamp().to_be_bytes());
    out[8..16].copy_from_slice(&entry.content_len().to_be_bytes());
    out[16..48].copy_from_slice(entry.content_hash().as_bytes());
    out[48..112].copy_from_slice(entry.signature().namespace());
    out[112..176].copy_from_slice(entry.signature().author());
    out[176..180].copy_from_slice(&parent.to_be_bytes());
    out
}

/// The parent link of a [`RECORDS`] value.
pub(crate) fn record_parent(value: &[u8; RECORD_VALUE_LEN]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&value[176..180]);
    u32::from_be_bytes(b)
}

/// The parent link for an ancestor whose identifier is `id_len` bytes long.
pub(crate) fn parent_link(id_len: usize) -> u32 {
    u32::try_from(id_len - ID_PREFIX_LEN + 1).unwrap_or(u32::MAX)
}

/// The identifier length of the ancestor a nonzero parent link points to.
pub(crate) fn parent_id_len(link: u32) -> usize {
    ID_PREFIX_LEN + link as usize - 1
}

/// A [`RECORDS`] value with another parent link.
pub(crate) fn with_parent(value: &[u8; RECORD_VALUE_LEN], parent: u32) -> [u8; RECORD_VALUE_LEN] {
    let mut out = *value;
    out[176..180].copy_from_slice(&parent.to_be_bytes());
    out
}

fn u64_at(value: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&value[at..at + 8]);
    u64::from_be_bytes(b)
}

fn array_at<const N: usize>(value: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&value[at..at + N]);
    b
}

/// The record (timestamp, length, hash) of a [`RECORDS`] value.
pub(crate) fn decode_record(value: &[u8; RECORD_VALUE_LEN]) -> Record {
    Record::new(
        ContentHash::from_bytes(array_at(value, 16)),
        u64_at(value, 8),
        u64_at(value, 0),
    )
}

/// The identifier stored as the [`RECORDS`] key `id`.
pub(crate) fn decode_id(id: &[u8]) -> Result<RecordIdentifier, StoreError> {
    RecordIdentifier::copy_from_slice(id)
        .map_err(|e| StoreError::Corrupt(format!("record key: {e}")))
}

/// The entry stored under identifier bytes `id` with [`RECORDS`] value `value`.
pub(crate) fn decode_entry(
    id: &[u8],
    value: &[u8; RECORD_VALUE_LEN],
) -> Result<SignedEntry, StoreError> {
    let id = decode_id(id)?;
    let signature = EntrySignature::from_parts(array_at(value, 112), array_at(value, 48));
    Ok(SignedEntry::from_parts(
        signature,
        Entry::new(id, decode_record(value)),
    ))
}

/// The fingerprint of the entry with identifier bytes `id` and [`RECORDS`] value `value`,
/// without building the entry: `blake3(id | timestamp u64 BE | hash)` as
/// `sync_core::Entry::fingerprint`. A unit test pins the two together.
pub(crate) fn record_fingerprint(id: &[u8], value: &[u8; RECORD_VALUE_LEN]) -> Fingerprint {
    // One contiguous input hashes faster than three updates; most identifiers are short.
    let len = id.len() + 40;
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    buf[..id.len()].copy_from_slice(id);
    buf[id.len()..id.len() + 8].copy_from_slice(&value[0..8]);
    buf[id.len() + 8..].copy_from_slice(&value[16..48]);
    Fingerprint(*blake3::hash(buf).as_bytes())
}

/// The length of an [`AGGREGATES`] value.
pub(crate) const AGG_VALUE_LEN: usize = 8 + 32;

/// The [`AGGREGATES`] value of a node.
pub(crate) fn encode_agg(count: u64, xor: &Fingerprint) -> [u8; AGG_VALUE_LEN] {
    let mut out = [0u8; AGG_VALUE_LEN];
    out[0..8].copy_from_slice(&count.to_be_bytes());
    out[8..40].copy_from_slice(&xor.0);
    out
}

/// The (count, XOR) of an [`AGGREGATES`] value.
pub(crate) fn decode_agg(value: &[u8; AGG_VALUE_LEN]) -> (u64, Fingerprint) {
    (u64_at(value, 0), Fingerprint(array_at(value, 8)))
}

/// The [`NAMESPACES`] value of a capability.
pub(crate) fn encode_capability(capability: &Capability) -> [u8; 33] {
    let (kind, bytes) = capability.to_raw();
    let mut out = [0u8; 33];
    out[0] = kind;
    out[1..].copy_from_slice(&bytes);
    out
}

/// The capability of a [`NAMESPACES`] value.
pub(crate) fn decode_capability(value: &[u8; 33]) -> Result<Capability, StoreError> {
    let bytes: [u8; KEY_LEN] = array_at(value, 1);
    Capability::from_raw(value[0], &bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown capability kind {}", value[0])))
}

/// The [`LATEST`] value: `timestamp u64 BE | key`.
pub(crate) fn encode_latest(timestamp: u64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The (timestamp, key) of a [`LATEST`] value.
pub(crate) fn decode_latest(value: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    if value.len() < 8 {
        return Err(StoreError::Corrupt("short latest-per-author value".into()));
    }
    Ok((u64_at(value, 0), &value[8..]))
}

const POLICY_NOTHING_EXCEPT: u8 = 0;
const POLICY_EVERYTHING_EXCEPT: u8 = 1;
const FILTER_PREFIX: u8 = 0;
const FILTER_EXACT: u8 = 1;

/// The [`POLICIES`] value of a download policy:
///
/// ```text
/// policy  = kind (1: 0 nothing-except, 1 everything-except) | varint(n) | filter * n
/// filter  = kind (1: 0 prefix, 1 exact) | varint(len) | bytes (len)
/// ```
///
/// These are also the postcard bytes of iroh-docs' `DownloadPolicy`, whose variants come in
/// the same order.
pub(crate) fn encode_policy(policy: &DownloadPolicy) -> Vec<u8> {
    let (kind, filters) = match policy {
        DownloadPolicy::NothingExcept(f) => (POLICY_NOTHING_EXCEPT, f),
        DownloadPolicy::EverythingExcept(f) => (POLICY_EVERYTHING_EXCEPT, f),
    };
    let mut out = vec![kind];
    write_varint(&mut out, filters.len() as u64);
    for filter in filters {
        let (kind, bytes) = match filter {
            FilterKind::Prefix(b) => (FILTER_PREFIX, b),
            FilterKind::Exact(b) => (FILTER_EXACT, b),
        };
        out.push(kind);
        write_bytes(&mut out, bytes);
    }
    out
}

/// Decodes a [`POLICIES`] value.
pub(crate) fn decode_policy(value: &[u8]) -> Result<DownloadPolicy, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("download policy: {what}"));
    let mut r = Reader::new(value, DecodeLimits::default());
    let kind = r.u8().map_err(|e| corrupt(e.to_string()))?;
    // Every filter takes at least two bytes.
    let n = r.seq_len(2).map_err(|e| corrupt(e.to_string()))?;
    let mut filters = Vec::with_capacity(n);
    for _ in 0..n {
        let filter_kind = r.u8().map_err(|e| corrupt(e.to_string()))?;
        let bytes = bytes::Bytes::copy_from_slice(r.bytes().map_err(|e| corrupt(e.to_string()))?);
        filters.push(match filter_kind {
            FILTER_PREFIX => FilterKind::Prefix(bytes),
            FILTER_EXACT => FilterKind::Exact(bytes),
            k => return Err(corrupt(format!("unknown filter kind {k}"))),
        });
    }
    r.finish().map_err(|e| corrupt(e.to_string()))?;
    match kind {
        POLICY_NOTHING_EXCEPT => Ok(DownloadPolicy::NothingExcept(filters)),
        POLICY_EVERYTHING_EXCEPT => Ok(DownloadPolicy::EverythingExcept(filters)),
        k => Err(corrupt(format!("unknown policy kind {k}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sync_core::{Author, NamespaceSecret};

    fn sample() -> SignedEntry {
        let ns = NamespaceSecret::from_bytes(&[1; 32]);
        let author = Author::from_bytes(&[2; 32]);
        let record = Record::new(ContentHash::of(b"hello"), 5, 1_700_000_000_000_000);
        SignedEntry::create(&ns, &author, b"greeting", record)
    }

    #[test]
    fn record_values_round_trip_and_fingerprint_like_the_entry() {
        let e = sample();
        let value = encode_record(&e, 7);
        assert_eq!(record_parent(&value), 7);
        assert_eq!(record_parent(&with_parent(&value, 3)), 3);
        assert_eq!(parent_id_len(parent_link(64 + 5)), 64 + 5);
        assert_eq!(decode_entry(e.id().as_bytes(), &value).unwrap(), e);
        assert_eq!(
            record_fingerprint(e.id().as_bytes(), &value),
            e.entry().fingerprint()
        );
        assert_eq!(&value[0..8], &1_700_000_000_000_000u64.to_be_bytes());
        assert_eq!(&value[8..16], &5u64.to_be_bytes());
    }

    #[test]
    fn policy_golden_bytes() {
        let policy = DownloadPolicy::NothingExcept(vec![
            FilterKind::Prefix(Bytes::from_static(b"img/")),
            FilterKind::Exact(Bytes::from_static(b"readme")),
        ]);
        let bytes = encode_policy(&policy);
        assert_eq!(
            bytes,
            [
                &[0x00, 0x02, 0x00, 0x04][..],
                b"img/",
                &[0x01, 0x06],
                b"readme"
            ]
            .concat()
        );
        assert_eq!(decode_policy(&bytes).unwrap(), policy);
        let default = encode_policy(&DownloadPolicy::default());
        assert_eq!(default, [0x01, 0x00]);
        assert_eq!(decode_policy(&default).unwrap(), DownloadPolicy::default());
        // A 200-byte filter has a two-byte length.
        let long =
            DownloadPolicy::EverythingExcept(vec![FilterKind::Exact(Bytes::from(vec![7u8; 200]))]);
        let bytes = encode_policy(&long);
        assert_eq!(&bytes[..5], &[0x01, 0x01, 0x01, 0xc8, 0x01]);
        assert_eq!(decode_policy(&bytes).unwrap(), long);
    }

    #[test]
    fn bad_policies_are_corrupt_not_panics() {
        for bad in [
            &[][..],
            &[0x02, 0x00],
            &[0x00, 0x01, 0x02, 0x00],
            &[0x00, 0x05, 0x00],
            &[0x00, 0x01, 0x00, 0x09, 0x01],
            &[0x01, 0x00, 0x00],
        ] {
            assert!(
                matches!(decode_policy(bad), Err(StoreError::Corrupt(_))),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn levels_are_geometric() {
        let shape = Shape {
            first_bits: DEFAULT_FIRST_BITS,
            level_bits: DEFAULT_LEVEL_BITS,
            salt: [9u8; 32],
        };
        let mut per_level = [0usize; LEVELS as usize + 1];
        for i in 0u32..400_000 {
            per_level[shape.level_of(&i.to_be_bytes()) as usize] += 1;
        }
        // About 1/16 of the ids reach level 1, 1/1024 level 2, 1/65536 level 3.
        assert!((23_000..27_000).contains(&per_level[1]), "{per_level:?}");
        assert!((300..480).contains(&per_level[2]), "{per_level:?}");
        assert!((1..20).contains(&per_level[3]), "{per_level:?}");
        // Another salt gives other levels.
        let other = Shape {
            salt: [10u8; 32],
            ..shape
        };
        let moved = (0u32..10_000)
            .filter(|i| shape.level_of(&i.to_be_bytes()) != other.level_of(&i.to_be_bytes()))
            .count();
        assert!(moved > 100);
        assert_eq!(Shape::decode(&shape.encode()).unwrap(), shape);
        assert!(Shape::decode(&[0; 34]).is_err());
        assert!(Shape::decode(&[6; 33]).is_err());
    }
}
