//! Keys, keys of documents and entries the targets build their inputs from, made once per
//! process (signing is the expensive part).

use std::sync::OnceLock;

use sync_core::{
    Author, AuthorId, ContentHash, Entry, EntrySignature, NamespaceId, NamespaceSecret, Record,
    RecordIdentifier, SignedEntry,
};

/// The local clock of every target: 2023-11-14, so that the pool's timestamps are in the past
/// and `FUTURE` is past the allowed skew.
pub(crate) const NOW: u64 = 1_700_000_000_000_000;

/// A timestamp an hour ahead of [`NOW`]: refused by validation.
pub(crate) const FUTURE: u64 = NOW + 3_600_000_000;

/// Keys with prefix relations (so prefix deletion comes up) and the byte extremes.
pub(crate) const KEYS: &[&[u8]] = &[
    b"",
    b"a",
    b"a/1",
    b"a/2",
    b"ab",
    b"b",
    b"b/x",
    &[b'b', 0x00],
    &[b'a', 0xff],
    b"c",
];

/// The document of a seed byte.
pub(crate) fn namespace(seed: u8) -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[seed; 32])
}

/// The author of a seed byte.
pub(crate) fn author(seed: u8) -> Author {
    Author::from_bytes(&[seed; 32])
}

struct Ids {
    namespaces: Vec<NamespaceId>,
    authors: Vec<AuthorId>,
}

/// The ids of documents 1..=3 and authors 1..=3 (index 0 = seed 1), computed once.
fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| Ids {
        namespaces: (1..=3).map(|s| namespace(s).id()).collect(),
        authors: (1..=3).map(|s| author(s).id()).collect(),
    })
}

/// The id of document `seed` (1..=3).
pub(crate) fn ns_id(seed: u8) -> NamespaceId {
    ids().namespaces[usize::from(seed.clamp(1, 3)) - 1]
}

/// The id of author `seed` (1..=3).
pub(crate) fn author_id(seed: u8) -> AuthorId {
    ids().authors[usize::from(seed.clamp(1, 3)) - 1]
}

/// The record of `key` at `ts`: content `key@ts`, or a deletion marker.
pub(crate) fn record(key: &[u8], ts: u64, tombstone: bool) -> Record {
    if tombstone {
        Record::empty(ts)
    } else {
        let mut data = key.to_vec();
        data.extend_from_slice(format!("@{ts}").as_bytes());
        Record::new(ContentHash::of(&data), data.len() as u64, ts)
    }
}

/// An entry with made-up but distinct signatures, for stores (which do not verify).
pub(crate) fn fake_entry(ns: u8, author: u8, key: &[u8], ts: u64, tombstone: bool) -> SignedEntry {
    let id = RecordIdentifier::new(ns_id(ns), author_id(author), key);
    let entry = Entry::new(id, record(key, ts, tombstone));
    let hash = blake3::hash(&entry.signed_bytes());
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(hash.as_bytes());
    SignedEntry::from_parts(EntrySignature::from_parts(sig, sig), entry)
}

/// The pool of really signed entries of the reconciliation targets.
pub(crate) struct Pool {
    /// Valid entries of document 1: every author, key and timestamp 1..=4, some deletions.
    pub(crate) valid: Vec<SignedEntry>,
    /// Entries that validation must refuse: document 2's entries, broken signatures, a
    /// timestamp in the future, a non-empty record with the empty hash.
    pub(crate) invalid: Vec<SignedEntry>,
}

/// The pool, signed once per process.
pub(crate) fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let ns = namespace(1);
        let authors = [author(1), author(2)];
        let mut valid = Vec::new();
        for (a, who) in authors.iter().enumerate() {
            for (k, key) in KEYS.iter().enumerate() {
                for ts in 1..=4u64 {
                    let tombstone = (a + k + ts as usize).is_multiple_of(7);
                    valid.push(SignedEntry::create(
                        &ns,
                        who,
                        key,
                        record(key, NOW - 1000 + ts, tombstone),
                    ));
                }
            }
        }
        let other = namespace(2);
        let mut invalid = Vec::new();
        for key in &KEYS[..4] {
            invalid.push(SignedEntry::create(
                &other,
                &authors[0],
                key,
                record(key, NOW - 500, false),
            ));
            // A forged signature over a valid entry.
            let good = SignedEntry::create(&ns, &authors[1], key, record(key, NOW - 400, false));
            let (sig, entry) = good.into_parts();
            let mut author_sig = *sig.author();
            author_sig[7] ^= 0x40;
            invalid.push(SignedEntry::from_parts(
                EntrySignature::from_parts(author_sig, *sig.namespace()),
                entry,
            ));
            invalid.push(SignedEntry::create(
                &ns,
                &authors[0],
                key,
                record(key, FUTURE, false),
            ));
            invalid.push(SignedEntry::create(
                &ns,
                &authors[0],
                key,
                Record::new(ContentHash::EMPTY, 3, NOW - 300),
            ));
        }
        Pool { valid, invalid }
    })
}
