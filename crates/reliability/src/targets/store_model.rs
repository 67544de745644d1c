//! Store operations against the model: `RedbStore` on a file image must answer every
//! operation as `MemStore` does, across flushes, clean reopens and crashes. A crash (the
//! process dying, or the power failing) reopens what survives on a healthy storage; the store
//! must then hold exactly the state of the last flush: every flushed write, nothing
//! unflushed (no write is committed between flushes, since the batch limit is never reached
//! by one input), and pass its consistency check.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use sync_core::{
    AuthorFilter, Capability, DownloadPolicy, FilterKind, KeyFilter, KeyInterval, MemStore,
    NamespaceId, Query, QueryCursor, QueryKind, RecordIdentifier, SortBy, SortDirection, Store,
    StoreError,
};
use sync_store_redb::{DEFAULT_MAX_BATCH, RedbStore};

use super::fixtures::{self, fake_entry};
use crate::input::Input;
use crate::storage::{Crash, FaultPlan, FaultStats, Image};

/// A result with the error reduced to what the model can match; any other error is a failure.
fn norm<T: Debug>(result: Result<T, StoreError>, what: &str) -> Result<T, String> {
    result.map_err(|e| match e {
        StoreError::UnknownNamespace(id) => format!("unknown document {id}"),
        other => panic!("{what}: unexpected store error: {other}"),
    })
}

/// The store under test, on an image that survives it.
struct Subject {
    image: Image,
    stats: Arc<FaultStats>,
    store: Option<RedbStore>,
}

impl Subject {
    fn open(image: Image) -> Self {
        let (storage, stats) = image.storage(FaultPlan::healthy());
        let store = match RedbStore::on_raw_storage(storage) {
            Ok(store) => store,
            Err(e) => panic!("opening a store image failed: {e}"),
        };
        Self {
            image,
            stats,
            store: Some(store),
        }
    }

    fn store(&mut self) -> &mut RedbStore {
        match self.store.as_mut() {
            Some(store) => store,
            None => unreachable!("the store is only taken while reopening"),
        }
    }

    /// Closes cleanly and opens the same image again.
    fn reopen(&mut self) {
        if let Some(store) = self.store.take()
            && let Err(e) = store.close()
        {
            panic!("closing the store failed: {e}");
        }
        *self = Self::open(self.image.clone());
    }

    /// The process dies (nothing more reaches the storage) and what survives `crash` is
    /// opened on a healthy storage.
    fn crash(&mut self, crash: Crash) {
        self.stats.halt();
        drop(self.store.take());
        *self = Self::open(self.image.survivor(crash));
    }
}

fn ns(input: &mut Input<'_>) -> u8 {
    1 + input.below(3) as u8
}

fn key(input: &mut Input<'_>) -> Vec<u8> {
    if input.below(3) == 0 {
        const ALPHABET: [u8; 4] = [b'a', b'b', 0x00, 0xff];
        (0..input.below(4))
            .map(|_| ALPHABET[input.below(4)])
            .collect()
    } else {
        fixtures::KEYS[input.below(fixtures::KEYS.len())].to_vec()
    }
}

fn bound(input: &mut Input<'_>) -> Option<RecordIdentifier> {
    match input.below(8) {
        0 | 1 => None,
        2 => Some(RecordIdentifier::zero()),
        3 => Some(RecordIdentifier::new(
            NamespaceId::from_bytes([0xff; 32]),
            sync_core::AuthorId::from_bytes([0xff; 32]),
            [0xff],
        )),
        _ => {
            let ns = ns(input);
            let author = 1 + input.below(3) as u8;
            Some(RecordIdentifier::new(
                fixtures::ns_id(ns),
                fixtures::author_id(author),
                key(input),
            ))
        }
    }
}

fn query(input: &mut Input<'_>) -> Query {
    let mut query = match input.below(3) {
        0 => Query::all(),
        1 => Query::all().with_sort(SortBy::KeyAuthor, SortDirection::Asc),
        _ => Query::latest_per_key(),
    };
    if input.below(3) == 0 {
        query.author = AuthorFilter::Exact(fixtures::author_id(1 + input.below(3) as u8));
    }
    query.key = match input.below(4) {
        0 => KeyFilter::Exact(Bytes::from(key(input))),
        1 => KeyFilter::Prefix(Bytes::from(key(input))),
        _ => KeyFilter::Any,
    };
    if input.below(3) == 0 {
        query.limit = Some(input.below(6) as u64);
    }
    if input.below(3) == 0 {
        query.offset = input.below(4) as u64;
    }
    query.include_empty = input.bool();
    if input.bool() {
        query.direction = SortDirection::Desc;
    }
    debug_assert!(matches!(
        query.kind,
        QueryKind::Flat(_) | QueryKind::LatestPerKey
    ));
    query
}

/// Everything of every document, deletion markers included.
fn snapshot<S: Store>(store: &mut S) -> Vec<Result<Vec<sync_core::SignedEntry>, String>> {
    (1..=3)
        .map(|seed| {
            let ns = fixtures::ns_id(seed);
            norm(
                store.entries(&ns, &KeyInterval::all(), 0, usize::MAX),
                "snapshot",
            )
        })
        .collect()
}

/// Asserts that the store and the model agree on `$op` (a method call on both).
macro_rules! same {
    ($subject:expr, $model:expr, $what:expr, $($op:tt)+) => {{
        let got = norm($subject.$($op)+, &$what);
        let want = norm($model.$($op)+, &$what);
        assert_eq!(got, want, "{}", $what);
    }};
}

/// The target: see the module docs.
pub fn store_model(data: &[u8]) {
    let mut input = Input::new(data);
    let mut subject = Subject::open(Image::new());
    let mut model = MemStore::new();
    for seed in [1u8, 2] {
        let cap = Capability::Write(fixtures::namespace(seed));
        same!(
            subject.store(),
            model,
            "setup",
            import_namespace(cap.clone())
        );
    }
    subject
        .store()
        .flush()
        .unwrap_or_else(|e| panic!("flush: {e}"));
    let mut flushed = model.clone();
    let mut step = 0usize;
    while !input.is_empty() {
        step += 1;
        assert!(
            step <= DEFAULT_MAX_BATCH / 2,
            "inputs stay below the batch limit"
        );
        let what = format!("step {step}");
        match input.below(20) {
            0..=6 => {
                let (ns, author) = (ns(&mut input), 1 + input.below(3) as u8);
                let key = key(&mut input);
                let ts = 1 + input.below(12) as u64;
                let entry = fake_entry(ns, author, &key, ts, input.below(5) == 0);
                let what = format!("{what}: insert {entry:?}");
                same!(subject.store(), model, what, insert(entry.clone()));
            }
            7 => {
                let (ns, author) = (
                    fixtures::ns_id(ns(&mut input)),
                    fixtures::author_id(1 + input.below(3) as u8),
                );
                let key = key(&mut input);
                let empty = input.bool();
                same!(
                    subject.store(),
                    model,
                    what,
                    get_exact(&ns, &author, &key, empty)
                );
            }
            8 | 9 => {
                let ns = fixtures::ns_id(ns(&mut input));
                let interval = KeyInterval {
                    start: bound(&mut input),
                    end: bound(&mut input),
                };
                let (skip, max) = (input.below(6) as u64, input.below(6));
                let what = format!("{what}: range {interval:?}");
                same!(subject.store(), model, what, fingerprint(&ns, &interval));
                same!(subject.store(), model, what, count(&ns, &interval));
                same!(
                    subject.store(),
                    model,
                    what,
                    entries(&ns, &interval, skip, max)
                );
            }
            10 => {
                let ns = fixtures::ns_id(ns(&mut input));
                let query = query(&mut input);
                let page = 1 + input.below(4);
                let mut cursor = QueryCursor::start(&query);
                for round in 0..200 {
                    let what = format!("{what}: query {query:?} round {round}");
                    let got = norm(subject.store().query(&ns, &query, &cursor, page), &what);
                    let want = norm(model.query(&ns, &query, &cursor, page), &what);
                    assert_eq!(got, want, "{what}");
                    match want {
                        Ok(page) if !page.cursor.done => cursor = page.cursor,
                        _ => break,
                    }
                }
            }
            11 => {
                let ns = fixtures::ns_id(ns(&mut input));
                same!(subject.store(), model, what, latest_per_author(&ns));
            }
            12 => {
                let seed = ns(&mut input);
                let cap = if input.bool() {
                    Capability::Write(fixtures::namespace(seed))
                } else {
                    Capability::Read(fixtures::ns_id(seed))
                };
                same!(subject.store(), model, what, import_namespace(cap.clone()));
                same!(subject.store(), model, what, list_namespaces());
            }
            13 => {
                let ns = fixtures::ns_id(2 + input.below(2) as u8);
                same!(subject.store(), model, what, remove_namespace(&ns));
                same!(subject.store(), model, what, capability(&ns));
            }
            14 => {
                let ns = fixtures::ns_id(ns(&mut input));
                let peer = [input.below(8) as u8; 32];
                same!(
                    subject.store(),
                    model,
                    what,
                    register_useful_peer(&ns, peer)
                );
                same!(subject.store(), model, what, useful_peers(&ns));
            }
            15 => {
                let ns = fixtures::ns_id(ns(&mut input));
                let policy = match input.below(3) {
                    0 => DownloadPolicy::default(),
                    1 => DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(
                        key(&mut input).into(),
                    )]),
                    _ => DownloadPolicy::EverythingExcept(vec![
                        FilterKind::Exact(key(&mut input).into()),
                        FilterKind::Prefix(key(&mut input).into()),
                    ]),
                };
                same!(
                    subject.store(),
                    model,
                    what,
                    set_download_policy(&ns, policy.clone())
                );
                same!(subject.store(), model, what, download_policy(&ns));
            }
            16 => {
                let author = fixtures::author(1 + input.below(3) as u8);
                let id = author.id();
                match input.below(4) {
                    0 => same!(subject.store(), model, what, import_author(author.clone())),
                    1 => same!(subject.store(), model, what, delete_author(&id)),
                    2 => same!(subject.store(), model, what, set_default_author(&id)),
                    _ => same!(subject.store(), model, what, author(&id)),
                }
                same!(subject.store(), model, what, list_authors());
                same!(subject.store(), model, what, default_author());
            }
            17 => {
                subject
                    .store()
                    .flush()
                    .unwrap_or_else(|e| panic!("{what}: flush: {e}"));
                flushed = model.clone();
            }
            18 => {
                subject.reopen();
                flushed = model.clone();
                assert_eq!(
                    snapshot(subject.store()),
                    snapshot(&mut model),
                    "{what}: after reopen"
                );
            }
            _ => {
                let crash = if input.bool() {
                    Crash::Process
                } else {
                    Crash::Power
                };
                subject.crash(crash);
                model = flushed.clone();
                let check = subject.store().check_consistency();
                assert!(
                    check.is_ok(),
                    "{what}: inconsistent after a {crash:?} crash: {check:?}"
                );
                assert_eq!(
                    snapshot(subject.store()),
                    snapshot(&mut model),
                    "{what}: after a {crash:?} crash the store must hold exactly the flushed state"
                );
                same!(subject.store(), model, what, list_namespaces());
                same!(subject.store(), model, what, list_authors());
                same!(subject.store(), model, what, default_author());
            }
        }
    }
    assert_eq!(
        snapshot(subject.store()),
        snapshot(&mut model),
        "final contents"
    );
    let check = subject.store().check_consistency();
    assert!(check.is_ok(), "inconsistent at the end: {check:?}");
}

pub(super) fn seeds() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        // Inserts, a flush, more inserts, a power cut.
        vec![
            0, 0, 1, 1, 3, 0, 1, 0, 1, 2, 5, 1, 17, 0, 2, 1, 1, 4, 9, 1, 19, 0,
        ],
        // Inserts, a clean reopen, queries and ranges.
        vec![
            2, 0, 0, 2, 2, 7, 3, 18, 10, 0, 1, 0, 0, 3, 0, 0, 1, 2, 8, 1, 4, 4, 0, 5, 2, 3,
        ],
        // Documents, authors, peers and policies, then a process crash.
        vec![
            12, 2, 1, 13, 0, 14, 1, 3, 15, 2, 1, 1, 2, 16, 0, 0, 16, 1, 2, 17, 19, 1,
        ],
    ]
}
