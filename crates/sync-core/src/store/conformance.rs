//! The conformance suite of [`Store`]: every backend must pass it.
//!
//! Enabled by the `test-suite` feature. A backend's tests call [`run_all`] with a function that
//! makes a fresh, empty store; each case panics with a description of what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use ranger::Fingerprint;

use super::{ImportOutcome, InsertOutcome, KeyInterval, PEERS_PER_DOC, Store, StoreError};
use crate::capability::{Capability, CapabilityKind};
use crate::entry::{ContentHash, Record, RecordIdentifier, SignedEntry};
use crate::keys::{Author, AuthorId, NamespaceId, NamespaceSecret};
use crate::policy::{DownloadPolicy, FilterKind};
use crate::query::{Query, QueryCursor, SortBy, SortDirection};

/// Runs every case, each on a fresh store from `make`.
pub fn run_all<S: Store>(mut make: impl FnMut() -> S) {
    for (name, case) in cases::<S>() {
        let mut store = make();
        eprintln!("conformance: {name}");
        case(&mut store);
    }
}

/// A named conformance case.
pub type Case<S> = (&'static str, fn(&mut S));

/// The cases by name.
pub fn cases<S: Store>() -> Vec<Case<S>> {
    vec![
        ("namespaces", namespaces::<S>),
        ("authors", authors::<S>),
        ("insert_last_write_wins", insert_last_write_wins::<S>),
        ("insert_prefix_deletion", insert_prefix_deletion::<S>),
        ("insert_tombstones_block", insert_tombstones_block::<S>),
        ("insert_empty_key", insert_empty_key::<S>),
        ("insert_prefix_wins_ties", insert_prefix_wins_ties::<S>),
        ("insert_prefix_bound", insert_prefix_bound::<S>),
        ("insert_scoped", insert_scoped::<S>),
        ("unknown_namespace", unknown_namespace::<S>),
        ("queries", queries::<S>),
        ("query_paging", query_paging::<S>),
        ("latest_per_author", latest_per_author::<S>),
        ("range_operations", range_operations::<S>),
        ("remove_namespace", remove_namespace::<S>),
        ("entries_by_fingerprint", entries_by_fingerprint::<S>),
        ("peers_and_policy", peers_and_policy::<S>),
    ]
}

/// A namespace secret from a seed byte.
pub fn namespace(seed: u8) -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[seed; 32])
}

/// An author from a seed byte.
pub fn author(seed: u8) -> Author {
    Author::from_bytes(&[seed; 32])
}

/// A signed entry with content `key@ts`, or a deletion marker if `tombstone`.
pub fn entry(
    ns: &NamespaceSecret,
    author: &Author,
    key: &[u8],
    ts: u64,
    tombstone: bool,
) -> SignedEntry {
    let record = if tombstone {
        Record::empty(ts)
    } else {
        let mut data = key.to_vec();
        data.extend_from_slice(format!("@{ts}").as_bytes());
        Record::new(ContentHash::of(&data), data.len() as u64, ts)
    };
    SignedEntry::create(ns, author, key, record)
}

fn put<S: Store>(store: &mut S, e: &SignedEntry) -> InsertOutcome {
    store.insert(e.clone()).unwrap()
}

fn stored<S: Store>(store: &mut S, ns: &NamespaceSecret, a: &Author, key: &[u8]) -> Option<u64> {
    store
        .get_exact(&ns.id(), &a.id(), key, true)
        .unwrap()
        .map(|e| e.timestamp())
}

fn all_keys<S: Store>(store: &mut S, ns: &NamespaceId, query: &Query) -> Vec<(Bytes, AuthorId)> {
    let mut cursor = QueryCursor::start(query);
    let mut out = Vec::new();
    while !cursor.done {
        let page = store.query(ns, query, &cursor, 3).unwrap();
        assert!(page.entries.len() <= 3, "page larger than asked");
        out.extend(
            page.entries
                .iter()
                .map(|e| (e.id().key_bytes(), e.author())),
        );
        cursor = page.cursor;
    }
    out
}

fn namespaces<S: Store>(store: &mut S) {
    let ns = namespace(1);
    assert_eq!(store.list_namespaces().unwrap(), vec![]);
    assert_eq!(
        store.import_namespace(Capability::Read(ns.id())).unwrap(),
        ImportOutcome::Inserted
    );
    assert_eq!(
        store.import_namespace(Capability::Read(ns.id())).unwrap(),
        ImportOutcome::NoChange
    );
    assert_eq!(
        store.list_namespaces().unwrap(),
        vec![(ns.id(), CapabilityKind::Read)]
    );
    assert_eq!(
        store
            .import_namespace(Capability::Write(ns.clone()))
            .unwrap(),
        ImportOutcome::Upgraded
    );
    assert_eq!(
        store.import_namespace(Capability::Read(ns.id())).unwrap(),
        ImportOutcome::NoChange,
        "write is never downgraded"
    );
    assert_eq!(
        store.capability(&ns.id()).unwrap(),
        Some(Capability::Write(ns.clone()))
    );
    let other = namespace(2);
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    let mut listed = store.list_namespaces().unwrap();
    listed.sort();
    let mut expected = vec![
        (ns.id(), CapabilityKind::Write),
        (other.id(), CapabilityKind::Write),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.capability(&namespace(3).id()).unwrap(), None);
}

fn authors<S: Store>(store: &mut S) {
    assert_eq!(store.default_author().unwrap(), None);
    let a = author(1);
    let b = author(2);
    assert!(
        !store.set_default_author(&a.id()).unwrap(),
        "unknown author"
    );
    store.import_author(a.clone()).unwrap();
    store.import_author(b.clone()).unwrap();
    store.import_author(b.clone()).unwrap();
    let mut listed = store.list_authors().unwrap();
    listed.sort();
    let mut expected = vec![a.id(), b.id()];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.author(&a.id()).unwrap(), Some(a.clone()));
    assert!(store.set_default_author(&a.id()).unwrap());
    assert_eq!(store.default_author().unwrap(), Some(a.id()));
    assert!(store.delete_author(&a.id()).unwrap());
    assert!(!store.delete_author(&a.id()).unwrap());
    assert_eq!(store.author(&a.id()).unwrap(), None);
    assert_eq!(store.default_author().unwrap(), None);
    assert_eq!(store.list_authors().unwrap(), vec![b.id()]);
    // Read twice (a store may keep what it decoded), then gone, then back.
    assert_eq!(store.author(&b.id()).unwrap(), Some(b.clone()));
    assert_eq!(store.author(&b.id()).unwrap(), Some(b.clone()));
    assert!(store.delete_author(&b.id()).unwrap());
    assert_eq!(store.author(&b.id()).unwrap(), None);
    store.import_author(a.clone()).unwrap();
    assert_eq!(store.author(&a.id()).unwrap(), Some(a));
}

fn setup<S: Store>(store: &mut S) -> (NamespaceSecret, Author) {
    let ns = namespace(1);
    store
        .import_namespace(Capability::Write(ns.clone()))
        .unwrap();
    (ns, author(1))
}

fn insert_last_write_wins<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    assert_eq!(
        put(store, &entry(&ns, &a, b"k", 100, false)),
        InsertOutcome::Inserted { removed: 0 }
    );
    assert_eq!(
        put(store, &entry(&ns, &a, b"k", 50, false)),
        InsertOutcome::NotInserted,
        "older"
    );
    assert_eq!(
        put(store, &entry(&ns, &a, b"k", 100, false)),
        InsertOutcome::NotInserted,
        "identical"
    );
    assert_eq!(
        put(store, &entry(&ns, &a, b"k", 200, false)),
        InsertOutcome::Inserted { removed: 1 }
    );
    assert_eq!(stored(store, &ns, &a, b"k"), Some(200));
    // Same timestamp: the greater hash wins, in either arrival order.
    let x = SignedEntry::create(&ns, &a, b"t", Record::new(ContentHash::of(b"x"), 1, 7));
    let y = SignedEntry::create(&ns, &a, b"t", Record::new(ContentHash::of(b"y"), 1, 7));
    let (lo, hi) = if x.record() < y.record() {
        (x, y)
    } else {
        (y, x)
    };
    put(store, &hi);
    assert_eq!(put(store, &lo), InsertOutcome::NotInserted);
    assert_eq!(
        store.get_exact(&ns.id(), &a.id(), b"t", true).unwrap(),
        Some(hi)
    );
}

fn insert_prefix_deletion<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    for (key, ts) in [
        (&b"foo/a"[..], 50),
        (b"foo/b", 60),
        (b"foo/c", 150),
        (b"fo", 10),
        (b"fop", 10),
        (b"foo", 20),
    ] {
        put(store, &entry(&ns, &a, key, ts, false));
    }
    // A deletion marker at "foo", newer than foo, foo/a and foo/b, older than foo/c.
    assert_eq!(
        put(store, &entry(&ns, &a, b"foo", 100, true)),
        InsertOutcome::Inserted { removed: 3 }
    );
    assert_eq!(stored(store, &ns, &a, b"foo/a"), None);
    assert_eq!(stored(store, &ns, &a, b"foo/b"), None);
    assert_eq!(stored(store, &ns, &a, b"foo/c"), Some(150));
    assert_eq!(stored(store, &ns, &a, b"fo"), Some(10));
    assert_eq!(stored(store, &ns, &a, b"fop"), Some(10));
    assert_eq!(stored(store, &ns, &a, b"foo"), Some(100));
    // The marker is hidden from reads unless asked for.
    assert_eq!(
        store.get_exact(&ns.id(), &a.id(), b"foo", false).unwrap(),
        None
    );
}

fn insert_tombstones_block<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    put(store, &entry(&ns, &a, b"foo", 100, true));
    // W8: an older entry below a newer deletion marker must not come back by sync.
    assert_eq!(
        put(store, &entry(&ns, &a, b"foo/bar", 50, false)),
        InsertOutcome::NotInserted
    );
    // W8: an older entry at the marker's key must not overwrite it.
    assert_eq!(
        put(store, &entry(&ns, &a, b"foo", 50, false)),
        InsertOutcome::NotInserted
    );
    assert_eq!(stored(store, &ns, &a, b"foo"), Some(100));
    // Newer entries are fine.
    assert_eq!(
        put(store, &entry(&ns, &a, b"foo/bar", 150, false)),
        InsertOutcome::Inserted { removed: 0 }
    );
}

fn insert_empty_key<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    put(store, &entry(&ns, &a, b"", 100, false));
    // W8: an older entry at "" must not overwrite a newer one.
    assert_eq!(
        put(store, &entry(&ns, &a, b"", 50, false)),
        InsertOutcome::NotInserted
    );
    // "" is a prefix of every key: it blocks older entries anywhere for this author.
    assert_eq!(
        put(store, &entry(&ns, &a, b"x", 60, false)),
        InsertOutcome::NotInserted
    );
    assert_eq!(
        put(store, &entry(&ns, &a, b"x", 160, false)),
        InsertOutcome::Inserted { removed: 0 }
    );
    // A newer deletion at "" clears the author's document.
    assert_eq!(
        put(store, &entry(&ns, &a, b"", 200, true)),
        InsertOutcome::Inserted { removed: 2 }
    );
    assert_eq!(stored(store, &ns, &a, b"x"), None);
}

/// An entry whose record equals that of an entry at a prefix of its key (two deletion markers
/// of the same time) is refused after it and removed by it, so the entry at the shorter key wins
/// in either order of arrival and peers that got them in different orders agree.
fn insert_prefix_wins_ties<S: Store>(store: &mut S) {
    let (ns, _) = setup(store);
    // One author per pair: "" is a prefix of every key of its author.
    for (a, short, long) in [
        (author(1), &b"dir"[..], &b"dir/x"[..]),
        (author(2), b"", b"a"),
    ] {
        let (s, l) = (
            entry(&ns, &a, short, 36, true),
            entry(&ns, &a, long, 36, true),
        );
        assert_eq!(s.record(), l.record());
        // The longer key first: the shorter removes it.
        assert_eq!(put(store, &l), InsertOutcome::Inserted { removed: 0 });
        assert_eq!(put(store, &s), InsertOutcome::Inserted { removed: 1 });
        assert_eq!(stored(store, &ns, &a, long), None);
        // The shorter key first: the longer is refused.
        assert_eq!(put(store, &l), InsertOutcome::NotInserted);
        assert_eq!(stored(store, &ns, &a, long), None);
        assert_eq!(stored(store, &ns, &a, short), Some(36));
    }
}

fn insert_prefix_bound<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    // W9: deleting prefix [01 ff] must not touch [02] nor [02 00].
    // Parents first and older, so that every entry is stored.
    for (key, ts) in [
        (&[0x01u8, 0xff][..], 5),
        (&[0x01, 0xff, 0x00], 10),
        (&[0x01, 0xff, 0xff], 10),
        (&[0x02], 10),
        (&[0x02, 0x00], 11),
    ] {
        assert_ne!(
            put(store, &entry(&ns, &a, key, ts, false)),
            InsertOutcome::NotInserted
        );
    }
    assert_eq!(
        put(store, &entry(&ns, &a, &[0x01, 0xff], 20, true)),
        InsertOutcome::Inserted { removed: 3 }
    );
    assert_eq!(stored(store, &ns, &a, &[0x02]), Some(10));
    assert_eq!(stored(store, &ns, &a, &[0x02, 0x00]), Some(11));
    assert_eq!(stored(store, &ns, &a, &[0x01, 0xff, 0xff]), None);
    // All-ff keys at the end of the key space.
    put(store, &entry(&ns, &a, &[0xff, 0xff], 30, false));
    put(store, &entry(&ns, &a, &[0xff, 0xff, 0xff], 31, false));
    assert_eq!(
        put(store, &entry(&ns, &a, &[0xff], 40, true)),
        InsertOutcome::Inserted { removed: 2 }
    );
}

fn insert_scoped<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    let b = author(2);
    let other = namespace(2);
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    put(store, &entry(&ns, &a, b"k/1", 10, false));
    put(store, &entry(&ns, &b, b"k/1", 10, false));
    put(store, &entry(&other, &a, b"k/1", 10, false));
    // Another author's or another document's newer marker changes nothing here.
    assert_eq!(
        put(store, &entry(&ns, &b, b"k", 100, true)),
        InsertOutcome::Inserted { removed: 1 }
    );
    put(store, &entry(&other, &a, b"", 100, true));
    assert_eq!(stored(store, &ns, &a, b"k/1"), Some(10));
    assert_eq!(stored(store, &ns, &b, b"k/1"), None);
    assert_eq!(
        put(store, &entry(&ns, &a, b"k/2", 20, false)),
        InsertOutcome::Inserted { removed: 0 }
    );
}

fn unknown_namespace<S: Store>(store: &mut S) {
    let ns = namespace(9);
    let a = author(1);
    let err = store.insert(entry(&ns, &a, b"k", 1, false)).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownNamespace(id) if id == ns.id()),
        "{err}"
    );
    assert!(matches!(
        store.query(
            &ns.id(),
            &Query::all(),
            &QueryCursor::start(&Query::all()),
            10
        ),
        Err(StoreError::UnknownNamespace(_))
    ));
    assert!(matches!(
        store.count(&ns.id(), &KeyInterval::all()),
        Err(StoreError::UnknownNamespace(_))
    ));
    assert!(matches!(
        store.register_useful_peer(&ns.id(), [1; 32]),
        Err(StoreError::UnknownNamespace(_))
    ));
    assert_eq!(
        store.get_exact(&ns.id(), &a.id(), b"k", true).unwrap(),
        None
    );
}

/// Two authors, keys a, a/1, b, c; a deletion marker at b by author 2; an older c by author 1.
fn query_fixture<S: Store>(store: &mut S) -> (NamespaceSecret, Author, Author) {
    let (ns, a) = setup(store);
    let b = author(2);
    let (a, b) = if a.id() < b.id() { (a, b) } else { (b, a) };
    put(store, &entry(&ns, &a, b"a", 10, false));
    put(store, &entry(&ns, &a, b"a/1", 11, false));
    put(store, &entry(&ns, &b, b"a", 12, false));
    put(store, &entry(&ns, &a, b"b", 13, false));
    put(store, &entry(&ns, &b, b"b", 14, true));
    put(store, &entry(&ns, &a, b"c", 5, false));
    put(store, &entry(&ns, &b, b"c", 16, false));
    (ns, a, b)
}

fn keys(pairs: &[(&str, &AuthorId)]) -> Vec<(Bytes, AuthorId)> {
    pairs
        .iter()
        .map(|(k, a)| (Bytes::copy_from_slice(k.as_bytes()), **a))
        .collect()
}

fn queries<S: Store>(store: &mut S) {
    let (ns, a, b) = query_fixture(store);
    let (ai, bi) = (a.id(), b.id());
    let ns = ns.id();
    assert_eq!(
        all_keys(store, &ns, &Query::all()),
        keys(&[
            ("a", &ai),
            ("a/1", &ai),
            ("b", &ai),
            ("c", &ai),
            ("a", &bi),
            ("c", &bi)
        ])
    );
    assert_eq!(
        all_keys(store, &ns, &Query::all().with_include_empty(true)),
        keys(&[
            ("a", &ai),
            ("a/1", &ai),
            ("b", &ai),
            ("c", &ai),
            ("a", &bi),
            ("b", &bi),
            ("c", &bi)
        ])
    );
    assert_eq!(
        all_keys(
            store,
            &ns,
            &Query::all().with_sort(SortBy::KeyAuthor, SortDirection::Asc)
        ),
        keys(&[
            ("a", &ai),
            ("a", &bi),
            ("a/1", &ai),
            ("b", &ai),
            ("c", &ai),
            ("c", &bi)
        ])
    );
    assert_eq!(
        all_keys(
            store,
            &ns,
            &Query::all().with_sort(SortBy::KeyAuthor, SortDirection::Desc)
        ),
        keys(&[
            ("c", &bi),
            ("c", &ai),
            ("b", &ai),
            ("a/1", &ai),
            ("a", &bi),
            ("a", &ai)
        ])
    );
    assert_eq!(
        all_keys(store, &ns, &Query::author(bi)),
        keys(&[("a", &bi), ("c", &bi)])
    );
    assert_eq!(
        all_keys(store, &ns, &Query::key_exact(&b"a"[..])),
        keys(&[("a", &ai), ("a", &bi)])
    );
    assert_eq!(
        all_keys(store, &ns, &Query::key_prefix(&b"a"[..])),
        keys(&[("a", &ai), ("a/1", &ai), ("a", &bi)])
    );
    assert_eq!(
        all_keys(
            store,
            &ns,
            &Query::key_prefix(&b"a"[..]).with_offset(1).with_limit(1)
        ),
        keys(&[("a/1", &ai)])
    );
    // Latest per key: b's newest entry is a marker, so b is hidden; c goes to the newer author.
    assert_eq!(
        all_keys(store, &ns, &Query::latest_per_key()),
        keys(&[("a", &bi), ("a/1", &ai), ("c", &bi)])
    );
    assert_eq!(
        all_keys(
            store,
            &ns,
            &Query::latest_per_key().with_include_empty(true)
        ),
        keys(&[("a", &bi), ("a/1", &ai), ("b", &bi), ("c", &bi)])
    );
    // The author filter applies before the choice.
    assert_eq!(
        all_keys(store, &ns, &Query::latest_per_key().with_author(ai)),
        keys(&[("a", &ai), ("a/1", &ai), ("b", &ai), ("c", &ai)])
    );
    assert_eq!(
        all_keys(
            store,
            &ns,
            &Query::latest_per_key().with_direction(SortDirection::Desc)
        ),
        keys(&[("c", &bi), ("a/1", &ai), ("a", &bi)])
    );
    assert_eq!(all_keys(store, &ns, &Query::all().with_limit(0)), keys(&[]));
}

fn query_paging<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    for i in 0..25u32 {
        put(
            store,
            &entry(&ns, &a, format!("k{i:02}").as_bytes(), 1, false),
        );
    }
    let query = Query::all().with_offset(3).with_limit(20);
    let mut cursor = QueryCursor::start(&query);
    let mut pages = 0;
    let mut seen = Vec::new();
    while !cursor.done {
        let page = store.query(&ns.id(), &query, &cursor, 7).unwrap();
        assert!(page.entries.len() <= 7);
        seen.extend(page.entries.into_iter().map(|e| e.id().key_bytes()));
        cursor = page.cursor;
        pages += 1;
        assert!(pages < 10, "paging does not terminate");
    }
    let expected: Vec<Bytes> = (3..23u32)
        .map(|i| Bytes::from(format!("k{i:02}")))
        .collect();
    assert_eq!(seen, expected);
}

fn latest_per_author<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    let b = author(2);
    put(store, &entry(&ns, &a, b"x", 100, false));
    // W12: an older entry arriving later must not move the head backwards.
    put(store, &entry(&ns, &a, b"y", 50, false));
    put(store, &entry(&ns, &b, b"z", 70, false));
    let mut latest = store.latest_per_author(&ns.id()).unwrap();
    latest.sort();
    let mut expected = vec![
        (a.id(), 100, Bytes::from_static(b"x")),
        (b.id(), 70, Bytes::from_static(b"z")),
    ];
    expected.sort();
    assert_eq!(latest, expected);
    // A deletion is an entry too: it becomes the head.
    put(store, &entry(&ns, &a, b"", 120, true));
    let heads = store.author_heads(&ns.id()).unwrap();
    assert_eq!(heads.get(&a.id()), Some(120));
    assert_eq!(heads.get(&b.id()), Some(70));
}

fn range_operations<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    let b = author(2);
    // Neighbouring documents on both sides in identifier order, to catch leaks.
    let mut neighbours = vec![namespace(0), namespace(3), namespace(200)];
    neighbours.sort_by_key(|n| n.id());
    for n in &neighbours {
        store
            .import_namespace(Capability::Write(n.clone()))
            .unwrap();
        put(store, &entry(n, &a, b"m", 1, false));
    }
    let mut ours = Vec::new();
    for i in 0..20u32 {
        let who = if i % 3 == 0 { &b } else { &a };
        let e = entry(
            &ns,
            who,
            format!("k{i:02}").as_bytes(),
            u64::from(i) + 1,
            false,
        );
        put(store, &e);
        ours.push(e);
    }
    ours.sort_by(|x, y| x.id().cmp(y.id()));
    let id = ns.id();
    let fp_of = |es: &[SignedEntry]| {
        es.iter()
            .fold(Fingerprint::ZERO, |acc, e| acc ^ e.entry().fingerprint())
    };
    // The whole document.
    assert_eq!(store.count(&id, &KeyInterval::all()).unwrap(), 20);
    assert_eq!(
        store.fingerprint(&id, &KeyInterval::all()).unwrap(),
        fp_of(&ours)
    );
    assert_eq!(
        store.entries(&id, &KeyInterval::all(), 0, 100).unwrap(),
        ours
    );
    // Every sub-interval between stored identifiers, plus unbounded ends.
    let bounds: Vec<Option<RecordIdentifier>> = std::iter::once(None)
        .chain(ours.iter().map(|e| Some(e.id().clone())))
        .chain(std::iter::once(None))
        .collect();
    for (i, start) in bounds.iter().enumerate().take(bounds.len() - 1) {
        for (j, end) in bounds.iter().enumerate().skip(1) {
            let lo = i.saturating_sub(1).min(ours.len());
            let lo = if start.is_none() { 0 } else { lo };
            let hi = if end.is_none() { ours.len() } else { j - 1 };
            let interval = KeyInterval {
                start: start.clone(),
                end: end.clone(),
            };
            let expected: &[SignedEntry] = if lo < hi { &ours[lo..hi] } else { &[] };
            assert_eq!(
                store.count(&id, &interval).unwrap(),
                expected.len() as u64,
                "count {i}..{j}"
            );
            assert_eq!(
                store.fingerprint(&id, &interval).unwrap(),
                fp_of(expected),
                "fp {i}..{j}"
            );
            assert_eq!(
                store.summary(&id, &interval).unwrap(),
                (expected.len() as u64, fp_of(expected)),
                "summary {i}..{j}"
            );
            // Every rank, and one past the end (which ends the answer).
            let ranks: Vec<u64> = (0..=expected.len() as u64).collect();
            let pivots: Vec<_> = expected
                .iter()
                .enumerate()
                .map(|(r, e)| (e.id().clone(), r as u64, fp_of(&expected[..r])))
                .collect();
            assert_eq!(
                store.pivots(&id, &interval, &ranks).unwrap(),
                pivots,
                "pivots {i}..{j}"
            );
            let skip = expected.len() / 2;
            assert_eq!(
                store.entries(&id, &interval, skip as u64, 3).unwrap(),
                expected
                    .iter()
                    .skip(skip)
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>(),
                "entries {i}..{j}"
            );
        }
    }
    // Bounds that belong to other documents select nothing of theirs.
    let outside = KeyInterval {
        start: Some(RecordIdentifier::zero()),
        end: None,
    };
    assert_eq!(store.count(&id, &outside).unwrap(), 20);
    let beyond = RecordIdentifier::new(NamespaceId::from_bytes([0xff; 32]), a.id(), b"");
    let after = KeyInterval {
        start: Some(beyond.clone()),
        end: None,
    };
    assert_eq!(store.count(&id, &after).unwrap(), 0);
    assert_eq!(store.fingerprint(&id, &after).unwrap(), Fingerprint::ZERO);
    assert_eq!(store.pivots(&id, &after, &[0]).unwrap(), Vec::new());
    assert_eq!(
        store.pivots(&id, &outside, &[0, 19, 20]).unwrap(),
        vec![
            (ours[0].id().clone(), 0, Fingerprint::ZERO),
            (ours[19].id().clone(), 19, fp_of(&ours[..19])),
        ]
    );
    let before = KeyInterval {
        start: None,
        end: Some(RecordIdentifier::zero()),
    };
    assert_eq!(store.count(&id, &before).unwrap(), 0);
    let everything = KeyInterval {
        start: Some(RecordIdentifier::zero()),
        end: Some(beyond),
    };
    assert_eq!(store.fingerprint(&id, &everything).unwrap(), fp_of(&ours));
    assert!(
        store
            .entries(&id, &outside, 0, 1000)
            .unwrap()
            .iter()
            .all(|e| e.namespace() == id)
    );
}

fn remove_namespace<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    let other = namespace(2);
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    for i in 0..5u32 {
        put(store, &entry(&ns, &a, format!("k{i}").as_bytes(), 1, false));
        put(
            store,
            &entry(&other, &a, format!("k{i}").as_bytes(), 1, false),
        );
    }
    store.register_useful_peer(&ns.id(), [7; 32]).unwrap();
    assert!(store.remove_namespace(&ns.id()).unwrap());
    assert!(!store.remove_namespace(&ns.id()).unwrap());
    assert_eq!(store.capability(&ns.id()).unwrap(), None);
    assert_eq!(
        store.get_exact(&ns.id(), &a.id(), b"k1", true).unwrap(),
        None
    );
    assert_eq!(store.count(&other.id(), &KeyInterval::all()).unwrap(), 5);
    // Importing again starts from nothing.
    store
        .import_namespace(Capability::Write(ns.clone()))
        .unwrap();
    assert_eq!(store.count(&ns.id(), &KeyInterval::all()).unwrap(), 0);
    assert_eq!(
        store.useful_peers(&ns.id()).unwrap(),
        Vec::<[u8; 32]>::new()
    );
    assert_eq!(store.latest_per_author(&ns.id()).unwrap(), vec![]);
}

/// `entry_by_fingerprint` names exactly the stored entries of the document asked about. A
/// backend may keep no index and answer `None` throughout (the trait's default); one that finds
/// the first entry is held to finding every stored one.
fn entries_by_fingerprint<S: Store>(store: &mut S) {
    let (ns, a) = setup(store);
    let other = namespace(2);
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    let lookup = |store: &mut S, ns: &NamespaceSecret, e: &SignedEntry| {
        store
            .entry_by_fingerprint(&ns.id(), &e.entry().fingerprint())
            .unwrap()
    };
    let first = entry(&ns, &a, b"a", 1, false);
    put(store, &first);
    let indexes = lookup(store, &ns, &first).is_some();
    let mut live = vec![first.clone()];
    for i in 0..20u32 {
        let e = entry(&ns, &a, format!("k{i:02}").as_bytes(), 5, i % 7 == 3);
        put(store, &e);
        live.push(e);
        put(
            store,
            &entry(&other, &a, format!("k{i:02}").as_bytes(), 5, false),
        );
    }
    // Replaced by a newer entry; removed by a newer prefix; an entry never stored.
    let replaced = live.remove(1);
    let newer = entry(&ns, &a, b"k00", 9, false);
    put(store, &newer);
    live.push(newer);
    let under = entry(&ns, &a, b"p/q", 1, false);
    put(store, &under);
    assert_eq!(lookup(store, &ns, &under).is_some(), indexes);
    put(store, &entry(&ns, &a, b"p", 2, false));
    live.push(entry(&ns, &a, b"p", 2, false));
    put(store, &entry(&ns, &a, b"a", 2, false));
    live.retain(|e| e != &first);
    live.push(entry(&ns, &a, b"a", 2, false));
    let never = entry(&ns, &a, b"zz", 1, false);
    for gone in [&first, &replaced, &under, &never] {
        assert_eq!(lookup(store, &ns, gone), None, "{gone:?}");
    }
    for e in &live {
        let found = lookup(store, &ns, e);
        if indexes {
            assert_eq!(found.as_ref(), Some(e));
        } else {
            assert_eq!(found, None);
        }
        // Never an entry of another document, even under the fingerprint of one.
        assert_eq!(lookup(store, &other, e), None);
    }
    let theirs = entry(&other, &a, b"k05", 5, false);
    assert_eq!(
        lookup(store, &other, &theirs).is_some(),
        indexes,
        "an entry of the other document"
    );
    // A removed document leaves nothing behind in the index.
    assert!(store.remove_namespace(&other.id()).unwrap());
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    assert_eq!(lookup(store, &other, &theirs), None);
    assert_eq!(lookup(store, &ns, &live[0]).is_some(), indexes);
}

fn peers_and_policy<S: Store>(store: &mut S) {
    let (ns, _a) = setup(store);
    let id = ns.id();
    for p in 1..=(PEERS_PER_DOC as u8 + 1) {
        store.register_useful_peer(&id, [p; 32]).unwrap();
    }
    // The oldest (1) was evicted; newest first.
    let expected: Vec<[u8; 32]> = (2..=(PEERS_PER_DOC as u8 + 1))
        .rev()
        .map(|p| [p; 32])
        .collect();
    assert_eq!(store.useful_peers(&id).unwrap(), expected);
    // Registering a known peer refreshes it.
    store.register_useful_peer(&id, [3; 32]).unwrap();
    assert_eq!(store.useful_peers(&id).unwrap()[0], [3; 32]);
    assert_eq!(store.useful_peers(&id).unwrap().len(), PEERS_PER_DOC);

    assert_eq!(
        store.download_policy(&id).unwrap(),
        DownloadPolicy::default()
    );
    let policy = DownloadPolicy::NothingExcept(vec![
        FilterKind::Prefix(Bytes::from_static(b"img/")),
        FilterKind::Exact(Bytes::from_static(b"readme")),
    ]);
    store.set_download_policy(&id, policy.clone()).unwrap();
    assert_eq!(store.download_policy(&id).unwrap(), policy);
    store.flush().unwrap();
    assert_eq!(store.download_policy(&id).unwrap(), policy);
}
