//! Larger workloads than the property tests: thousands of entries, so that every level of the
//! aggregate index holds many nodes, compared with `MemStore` on random intervals.

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use sync_core::store::conformance::{author, namespace};
use sync_core::{
    Capability, KeyInterval, MemStore, Query, QueryCursor, RecordIdentifier, SortBy, SortDirection,
    Store,
};
use sync_store_redb::RedbStore;

use crate::model::fake_entry;

fn rng(seed: u8) -> TestRng {
    TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32])
}

/// Fills both stores with `n` writes: files in directories, overwrites, and deletion markers
/// at directories (which remove the files below them).
fn fill(store: &mut RedbStore, model: &mut MemStore, n: usize, seed: u8) {
    let mut rng = rng(seed);
    for s in [1u8, 2] {
        store
            .import_namespace(Capability::Write(namespace(s)))
            .unwrap();
        model
            .import_namespace(Capability::Write(namespace(s)))
            .unwrap();
    }
    for i in 0..n {
        let ns = if rng.random_bool(0.8) { 1 } else { 2 };
        let a = rng.random_range(1u8..=3);
        let dir = rng.random_range(0..40u32);
        let (key, tombstone) = if rng.random_bool(0.01) {
            (format!("d{dir:02}/"), true)
        } else {
            (
                format!("d{dir:02}/f{:04}", rng.random_range(0..400u32)),
                rng.random_bool(0.05),
            )
        };
        let ts = i as u64 + rng.random_range(0..50u64);
        let e = fake_entry(ns, a, key.as_bytes(), ts, tombstone);
        assert_eq!(
            store.insert(e.clone()).unwrap(),
            model.insert(e).unwrap(),
            "write {i}"
        );
    }
}

/// Random intervals of namespace 1: bounds at stored identifiers, between them, unbounded,
/// and in other namespaces.
fn compare_ranges(store: &mut RedbStore, model: &mut MemStore, rounds: usize, seed: u8) {
    let mut rng = rng(seed);
    let ns = namespace(1).id();
    let all = model
        .entries(&ns, &KeyInterval::all(), 0, usize::MAX)
        .unwrap();
    assert!(all.len() > 500, "{}", all.len());
    let bound = |rng: &mut TestRng| -> Option<RecordIdentifier> {
        match rng.random_range(0..10) {
            0 => None,
            1 => Some(RecordIdentifier::new(
                namespace(rng.random_range(0u8..4)).id(),
                author(1).id(),
                b"d20",
            )),
            2..=5 => Some(all[rng.random_range(0..all.len())].id().clone()),
            _ => Some(RecordIdentifier::new(
                ns,
                author(rng.random_range(1u8..=3)).id(),
                format!(
                    "d{:02}/f{:03}",
                    rng.random_range(0..40u32),
                    rng.random_range(0..400u32)
                ),
            )),
        }
    };
    for round in 0..rounds {
        let interval = KeyInterval {
            start: bound(&mut rng),
            end: bound(&mut rng),
        };
        assert_eq!(
            store.count(&ns, &interval).unwrap(),
            model.count(&ns, &interval).unwrap(),
            "count, round {round}: {interval:?}"
        );
        assert_eq!(
            store.fingerprint(&ns, &interval).unwrap(),
            model.fingerprint(&ns, &interval).unwrap(),
            "fingerprint, round {round}"
        );
        let skip = rng.random_range(0..600u64);
        assert_eq!(
            store.entries(&ns, &interval, skip, 5).unwrap(),
            model.entries(&ns, &interval, skip, 5).unwrap(),
            "entries, round {round}"
        );
        assert_eq!(
            store.summary(&ns, &interval).unwrap(),
            model.summary(&ns, &interval).unwrap(),
            "summary, round {round}"
        );
        // Split points as reconciliation asks for them: small ranks (the store walks records
        // and level-1 nodes) and large ones (it descends the index once per rank).
        let step = match round % 3 {
            0 => rng.random_range(1..20u64),
            1 => rng.random_range(20..300u64),
            _ => rng.random_range(700..1600u64),
        };
        let ranks: Vec<u64> = (0..4).map(|i| skip / 4 + i * step).collect();
        assert_eq!(
            store.pivots(&ns, &interval, &ranks).unwrap(),
            model.pivots(&ns, &interval, &ranks).unwrap(),
            "pivots, round {round}: {ranks:?}"
        );
    }
}

fn compare_all(store: &mut RedbStore, model: &mut MemStore) {
    for s in [1u8, 2] {
        let ns = namespace(s).id();
        let everything = KeyInterval::all();
        assert_eq!(
            store.entries(&ns, &everything, 0, usize::MAX).unwrap(),
            model.entries(&ns, &everything, 0, usize::MAX).unwrap()
        );
        assert_eq!(
            store.latest_per_author(&ns).unwrap(),
            model.latest_per_author(&ns).unwrap()
        );
    }
}

#[test]
fn default_index_matches_the_model_at_scale() {
    let mut store = RedbStore::memory().unwrap();
    let mut model = MemStore::new();
    fill(&mut store, &mut model, 5_000, 1);
    compare_all(&mut store, &mut model);
    compare_ranges(&mut store, &mut model, 100, 2);
    store.check_consistency().unwrap();
}

#[test]
fn dense_file_index_matches_the_model_at_scale_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scale.redb");
    let mut model = MemStore::new();
    {
        let mut store = RedbStore::persistent_with_level_bits(&path, 2).unwrap();
        store.set_max_batch(500);
        fill(&mut store, &mut model, 3_000, 3);
        compare_ranges(&mut store, &mut model, 100, 4);
        store.close().unwrap();
    }
    let mut store = RedbStore::persistent(&path).unwrap();
    compare_all(&mut store, &mut model);
    compare_ranges(&mut store, &mut model, 100, 5);
    store.check_consistency().unwrap();
}

/// Paging through a large query returns exactly the model's results, page after page.
#[test]
fn large_queries_page_like_the_model() {
    let mut store = RedbStore::memory_with_level_bits(3).unwrap();
    let mut model = MemStore::new();
    fill(&mut store, &mut model, 2_500, 6);
    let ns = namespace(1).id();
    let queries = [
        Query::all(),
        Query::all().with_sort(SortBy::KeyAuthor, SortDirection::Desc),
        Query::latest_per_key().with_include_empty(true),
        Query::key_prefix("d1").with_offset(17).with_limit(300),
        Query::author(author(2).id()).with_direction(SortDirection::Desc),
    ];
    for query in queries {
        let mut cursor = QueryCursor::start(&query);
        let mut pages = 0;
        while !cursor.done {
            let got = store.query(&ns, &query, &cursor, 64).unwrap();
            let want = model.query(&ns, &query, &cursor, 64).unwrap();
            assert_eq!(got, want, "{query:?}, page {pages}");
            cursor = got.cursor;
            pages += 1;
        }
        assert!(pages > 1, "{query:?}");
    }
}

/// Latest-per-key ties (same key, same timestamp, two authors): the smallest author wins, in
/// both directions.
#[test]
fn latest_per_key_ties_go_to_the_smallest_author_both_ways() {
    let mut store = RedbStore::memory().unwrap();
    store
        .import_namespace(Capability::Write(namespace(1)))
        .unwrap();
    let mut authors = [1u8, 2, 3];
    authors.sort_by_key(|a| author(*a).id());
    for a in authors {
        store.insert(fake_entry(1, a, b"k", 5, false)).unwrap();
        store.insert(fake_entry(1, a, b"j", 5, false)).unwrap();
    }
    for direction in [SortDirection::Asc, SortDirection::Desc] {
        let query = Query::latest_per_key().with_direction(direction);
        let page = store
            .query(&namespace(1).id(), &query, &QueryCursor::start(&query), 10)
            .unwrap();
        let got: Vec<_> = page.entries.iter().map(|e| e.author()).collect();
        assert_eq!(got, vec![author(authors[0]).id(); 2], "{direction:?}");
    }
}
