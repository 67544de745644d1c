//! Model-based property tests: random sequences of operations give the same answers on
//! `RedbStore` (in memory, and on a file with flushes and reopens) as on `MemStore`.

use std::path::PathBuf;

use bytes::Bytes;
use proptest::prelude::*;
use sync_core::store::conformance::{author, namespace};
use sync_core::{
    AuthorFilter, Capability, ContentHash, DownloadPolicy, Entry, EntrySignature, FilterKind,
    KeyFilter, KeyInterval, MemStore, NamespaceId, Query, QueryCursor, QueryKind, Record,
    RecordIdentifier, SignedEntry, SortBy, SortDirection, Store, StoreError,
};
use sync_store_redb::RedbStore;

/// Namespace seeds: 1 and 2 exist from the start, 3 only after an import.
const NAMESPACES: [u8; 3] = [1, 2, 3];
const AUTHORS: [u8; 3] = [1, 2, 3];

/// An entry with a made-up but distinct signature: stores do not verify signatures, and
/// skipping Ed25519 keeps thousands of cases fast.
pub(crate) fn fake_entry(
    ns: u8,
    author_seed: u8,
    key: &[u8],
    ts: u64,
    tombstone: bool,
) -> SignedEntry {
    let id = RecordIdentifier::new(namespace(ns).id(), author(author_seed).id(), key);
    let record = if tombstone {
        Record::empty(ts)
    } else {
        let mut data = key.to_vec();
        data.extend_from_slice(format!("@{ts}").as_bytes());
        Record::new(ContentHash::of(&data), data.len() as u64, ts)
    };
    let entry = Entry::new(id, record);
    let h = blake3::hash(&entry.signed_bytes());
    let mut author_sig = [0u8; 64];
    author_sig[..32].copy_from_slice(h.as_bytes());
    let mut ns_sig = [0u8; 64];
    ns_sig[32..].copy_from_slice(h.as_bytes());
    SignedEntry::from_parts(EntrySignature::from_parts(author_sig, ns_sig), entry)
}

fn ns_id(seed: u8) -> NamespaceId {
    namespace(seed).id()
}

#[derive(Debug, Clone)]
enum BoundSpec {
    None,
    Id { ns: u8, author: u8, key: Vec<u8> },
    Zero,
    Max,
}

impl BoundSpec {
    fn to_id(&self) -> Option<RecordIdentifier> {
        match self {
            BoundSpec::None => None,
            BoundSpec::Id { ns, author: a, key } => {
                Some(RecordIdentifier::new(ns_id(*ns), author(*a).id(), key))
            }
            BoundSpec::Zero => Some(RecordIdentifier::zero()),
            BoundSpec::Max => Some(RecordIdentifier::new(
                NamespaceId::from_bytes([0xff; 32]),
                sync_core::AuthorId::from_bytes([0xff; 32]),
                [0xff, 0xff],
            )),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        ns: u8,
        author: u8,
        key: Vec<u8>,
        ts: u64,
        tombstone: bool,
    },
    Get {
        ns: u8,
        author: u8,
        key: Vec<u8>,
        include_empty: bool,
    },
    Query {
        ns: u8,
        query: Query,
        page: usize,
    },
    Range {
        ns: u8,
        start: BoundSpec,
        end: BoundSpec,
        skip: u64,
        max: usize,
    },
    Latest {
        ns: u8,
    },
    Import {
        ns: u8,
        write: bool,
    },
    Remove {
        ns: u8,
    },
    Peer {
        ns: u8,
        peer: u8,
    },
    Policy {
        ns: u8,
        prefix: Option<Vec<u8>>,
    },
    Flush,
    Reopen,
}

/// Keys over a small alphabet with 0x00 and 0xff, so that prefixes and bound edge cases
/// (W9) come up often.
fn key() -> impl Strategy<Value = Vec<u8>> {
    let common: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"a".to_vec(),
        b"ab".to_vec(),
        b"b".to_vec(),
        vec![b'a', 0xff],
        vec![b'b', 0x00],
    ];
    prop_oneof![
        // Often the same few keys, so that authors collide and timestamps tie.
        1 => prop::sample::select(common),
        2 => prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0x00, 0xff]), 0..=3),
    ]
}

fn bound() -> impl Strategy<Value = BoundSpec> {
    prop_oneof![
        2 => Just(BoundSpec::None),
        6 => (prop::sample::select(NAMESPACES.to_vec()), prop::sample::select(AUTHORS.to_vec()), key())
            .prop_map(|(ns, author, key)| BoundSpec::Id { ns, author, key }),
        1 => Just(BoundSpec::Zero),
        1 => Just(BoundSpec::Max),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    let kind = prop_oneof![
        Just(QueryKind::Flat(SortBy::AuthorKey)),
        Just(QueryKind::Flat(SortBy::KeyAuthor)),
        Just(QueryKind::LatestPerKey),
    ];
    let author_filter = prop_oneof![
        Just(AuthorFilter::Any),
        prop::sample::select(AUTHORS.to_vec()).prop_map(|a| AuthorFilter::Exact(author(a).id())),
    ];
    let key_filter = prop_oneof![
        Just(KeyFilter::Any),
        key().prop_map(|k| KeyFilter::Exact(Bytes::from(k))),
        key().prop_map(|k| KeyFilter::Prefix(Bytes::from(k))),
    ];
    (
        kind,
        author_filter,
        key_filter,
        prop::option::weighted(0.3, 0u64..6),
        prop_oneof![3 => Just(0u64), 1 => 1u64..4],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, author, key, limit, offset, include_empty, desc)| Query {
                kind,
                author,
                key,
                limit,
                offset,
                include_empty,
                direction: if desc {
                    SortDirection::Desc
                } else {
                    SortDirection::Asc
                },
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let ns = || prop::sample::select(NAMESPACES.to_vec());
    let au = || prop::sample::select(AUTHORS.to_vec());
    prop_oneof![
        12 => (ns(), au(), key(), 1u64..8, prop::bool::weighted(0.2)).prop_map(
            |(ns, author, key, ts, tombstone)| Op::Insert { ns, author, key, ts, tombstone }
        ),
        2 => (ns(), au(), key(), any::<bool>()).prop_map(|(ns, author, key, include_empty)| {
            Op::Get { ns, author, key, include_empty }
        }),
        4 => (ns(), query(), 1usize..4).prop_map(|(ns, query, page)| Op::Query { ns, query, page }),
        4 => (ns(), bound(), bound(), prop_oneof![2 => Just(0u64), 1 => 0u64..8], 0usize..5)
            .prop_map(|(ns, start, end, skip, max)| Op::Range { ns, start, end, skip, max }),
        1 => ns().prop_map(|ns| Op::Latest { ns }),
        1 => (ns(), any::<bool>()).prop_map(|(ns, write)| Op::Import { ns, write }),
        1 => prop::sample::select(vec![2u8, 3]).prop_map(|ns| Op::Remove { ns }),
        1 => (ns(), 0u8..8).prop_map(|(ns, peer)| Op::Peer { ns, peer }),
        1 => (ns(), prop::option::of(key())).prop_map(|(ns, prefix)| Op::Policy { ns, prefix }),
        1 => Just(Op::Flush),
        // A no-op for the memory store.
        1 => Just(Op::Reopen),
    ]
}

/// A result with the error reduced to what the model can match.
fn norm<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Result<T, String> {
    r.map_err(|e| match e {
        StoreError::UnknownNamespace(id) => format!("unknown {id}"),
        other => panic!("unexpected error: {other}"),
    })
}

struct Subject {
    store: Option<RedbStore>,
    path: Option<PathBuf>,
}

impl Subject {
    fn store(&mut self) -> &mut RedbStore {
        self.store.as_mut().unwrap()
    }

    fn reopen(&mut self) {
        if let Some(path) = &self.path {
            self.store.take().unwrap().close().unwrap();
            self.store = Some(RedbStore::persistent(path).unwrap());
        }
    }
}

/// Runs `ops` on a memory store (`file` false) or a file store, whose aggregate index has
/// the default shape (`level_bits` `None`) or nodes of about `2^level_bits` children: small
/// for dense indexes whose every level is used by a few dozen entries.
fn run(ops: Vec<Op>, file: bool, level_bits: Option<u8>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.redb");
    let store = match (file, level_bits) {
        (true, Some(bits)) => RedbStore::persistent_with_level_bits(&path, bits),
        (true, None) => RedbStore::persistent(&path),
        (false, Some(bits)) => RedbStore::memory_with_level_bits(bits),
        (false, None) => RedbStore::memory(),
    };
    let mut subject = Subject {
        store: Some(store.unwrap()),
        path: file.then_some(path),
    };
    let mut model = MemStore::new();
    // The fingerprint of every entry offered, stored or not.
    let mut offered = Vec::new();
    for seed in [1u8, 2] {
        let cap = Capability::Write(namespace(seed));
        model.import_namespace(cap.clone()).unwrap();
        subject.store().import_namespace(cap).unwrap();
    }
    for (step, op) in ops.into_iter().enumerate() {
        let what = format!("step {step}: {op:?}");
        match op {
            Op::Insert {
                ns,
                author,
                key,
                ts,
                tombstone,
            } => {
                let e = fake_entry(ns, author, &key, ts, tombstone);
                offered.push(e.entry().fingerprint());
                let want = norm(model.insert(e.clone()));
                let got = norm(subject.store().insert(e));
                prop_assert_eq!(got, want, "{}", what);
            }
            Op::Get {
                ns,
                author: a,
                key,
                include_empty,
            } => {
                let (ns, a) = (ns_id(ns), author(a).id());
                let want = model.get_exact(&ns, &a, &key, include_empty).unwrap();
                let got = subject
                    .store()
                    .get_exact(&ns, &a, &key, include_empty)
                    .unwrap();
                prop_assert_eq!(got, want, "{}", what);
            }
            Op::Query { ns, query, page } => {
                let ns = ns_id(ns);
                let mut cursor = QueryCursor::start(&query);
                for round in 0.. {
                    prop_assert!(round < 200, "paging does not end: {}", what);
                    let want = norm(model.query(&ns, &query, &cursor, page));
                    let got = norm(subject.store().query(&ns, &query, &cursor, page));
                    prop_assert_eq!(&got, &want, "{} round {}", what, round);
                    match want {
                        Ok(p) if !p.cursor.done => cursor = p.cursor,
                        _ => break,
                    }
                }
            }
            Op::Range {
                ns,
                start,
                end,
                skip,
                max,
            } => {
                let ns = ns_id(ns);
                let interval = KeyInterval {
                    start: start.to_id(),
                    end: end.to_id(),
                };
                let s = subject.store();
                prop_assert_eq!(
                    norm(s.fingerprint(&ns, &interval)),
                    norm(model.fingerprint(&ns, &interval)),
                    "fingerprint {}",
                    what
                );
                prop_assert_eq!(
                    norm(s.count(&ns, &interval)),
                    norm(model.count(&ns, &interval)),
                    "count {}",
                    what
                );
                prop_assert_eq!(
                    norm(s.entries(&ns, &interval, skip, max)),
                    norm(model.entries(&ns, &interval, skip, max)),
                    "entries {}",
                    what
                );
                prop_assert_eq!(
                    norm(s.summary(&ns, &interval)),
                    norm(model.summary(&ns, &interval)),
                    "summary {}",
                    what
                );
                // The ranks a split would ask for, and some past the end.
                let ranks: Vec<u64> = (0..6).map(|i| skip + i * (max as u64 + 1)).collect();
                prop_assert_eq!(
                    norm(s.pivots(&ns, &interval, &ranks)),
                    norm(model.pivots(&ns, &interval, &ranks)),
                    "pivots {}",
                    what
                );
            }
            Op::Latest { ns } => {
                let ns = ns_id(ns);
                prop_assert_eq!(
                    norm(subject.store().latest_per_author(&ns)),
                    norm(model.latest_per_author(&ns)),
                    "{}",
                    what
                );
            }
            Op::Import { ns, write } => {
                let cap = if write {
                    Capability::Write(namespace(ns))
                } else {
                    Capability::Read(ns_id(ns))
                };
                prop_assert_eq!(
                    norm(subject.store().import_namespace(cap.clone())),
                    norm(model.import_namespace(cap)),
                    "{}",
                    what
                );
                prop_assert_eq!(
                    subject.store().list_namespaces().unwrap(),
                    model.list_namespaces().unwrap()
                );
            }
            Op::Remove { ns } => {
                let ns = ns_id(ns);
                prop_assert_eq!(
                    norm(subject.store().remove_namespace(&ns)),
                    norm(model.remove_namespace(&ns)),
                    "{}",
                    what
                );
            }
            Op::Peer { ns, peer } => {
                let ns = ns_id(ns);
                prop_assert_eq!(
                    norm(subject.store().register_useful_peer(&ns, [peer; 32])),
                    norm(model.register_useful_peer(&ns, [peer; 32])),
                    "{}",
                    what
                );
                prop_assert_eq!(
                    norm(subject.store().useful_peers(&ns)),
                    norm(model.useful_peers(&ns)),
                    "{}",
                    what
                );
            }
            Op::Policy { ns, prefix } => {
                let ns = ns_id(ns);
                let policy = match prefix {
                    Some(p) => DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(p.into())]),
                    None => DownloadPolicy::default(),
                };
                prop_assert_eq!(
                    norm(subject.store().set_download_policy(&ns, policy.clone())),
                    norm(model.set_download_policy(&ns, policy)),
                    "{}",
                    what
                );
                prop_assert_eq!(
                    norm(subject.store().download_policy(&ns)),
                    norm(model.download_policy(&ns)),
                    "{}",
                    what
                );
            }
            Op::Flush => subject.store().flush().unwrap(),
            Op::Reopen => subject.reopen(),
        }
    }
    // The whole contents, and the indexes against a recomputation.
    for seed in NAMESPACES {
        let ns = ns_id(seed);
        for fp in &offered {
            prop_assert_eq!(
                norm(subject.store().entry_by_fingerprint(&ns, fp)),
                norm(model.entry_by_fingerprint(&ns, fp)),
                "entry by fingerprint {:?}",
                fp
            );
        }
        let query = Query::all().with_include_empty(true);
        let cursor = QueryCursor::start(&query);
        prop_assert_eq!(
            norm(subject.store().query(&ns, &query, &cursor, usize::MAX)),
            norm(model.query(&ns, &query, &cursor, usize::MAX))
        );
    }
    if let Err(e) = subject.store().check_consistency() {
        return Err(TestCaseError::fail(format!("inconsistent: {e}")));
    }
    subject.reopen();
    if let Err(e) = subject.store().check_consistency() {
        return Err(TestCaseError::fail(format!(
            "inconsistent after reopen: {e}"
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, false, None)?;
    }

    #[test]
    fn memory_store_with_a_dense_index_matches_the_model(
        ops in prop::collection::vec(op(), 1..80),
        level_bits in 1u8..3,
    ) {
        run(ops, false, Some(level_bits))?;
    }

}

proptest! {
    // Fewer cases: every flush and reopen is an fsync. The memory cases cover the logic.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn file_store_matches_the_model(
        ops in prop::collection::vec(op(), 1..60),
        level_bits in prop::sample::select(vec![Some(1u8), None]),
    ) {
        run(ops, true, level_bits)?;
    }
}
