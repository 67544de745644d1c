//! Schema versions: the committed v1 fixture opens with its contents, a newer version is
//! refused, and files that are not docsync stores are refused.
//!
//! `data/v1.redb` is a store written by schema version 1 with the contents of
//! [`v1_contents`]. Regenerate it (only possible while this build writes version 1) with
//!
//! ```text
//! REGENERATE_FIXTURES=1 cargo test -p sync-store-redb --test it fixture::regenerate_v1_fixture
//! ```
//!
//! Every later schema version keeps this file and this test: opening it must migrate it and
//! find the same contents.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use redb::ReadableTable;
use sync_core::store::conformance::{author, entry, namespace};
use sync_core::{
    Capability, DownloadPolicy, FilterKind, KeyInterval, MemStore, Query, QueryCursor, Store,
    StoreError,
};
use sync_store_redb::{RedbStore, SCHEMA_VERSION};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/v1.redb")
}

/// The contents of the v1 fixture, written to any store: two documents (write and read),
/// two authors and a default one, entries with overwrites, a deletion marker that removed two
/// entries below it, useful peers and a download policy. Entries are really signed.
fn v1_contents<S: Store>(store: &mut S) {
    let (ns1, ns2) = (namespace(1), namespace(2));
    let (a1, a2) = (author(1), author(2));
    store
        .import_namespace(Capability::Write(ns1.clone()))
        .unwrap();
    store.import_namespace(Capability::Read(ns2.id())).unwrap();
    store.import_author(a1.clone()).unwrap();
    store.import_author(a2.clone()).unwrap();
    assert!(store.set_default_author(&a1.id()).unwrap());
    for e in [
        entry(&ns1, &a1, b"a", 10, false),
        entry(&ns1, &a1, b"a/b", 11, false),
        entry(&ns1, &a1, b"b", 12, true),
        entry(&ns1, &a2, b"a", 13, false),
        entry(&ns1, &a2, b"c", 14, false),
        entry(&ns1, &a2, b"c", 15, false),
        entry(&ns1, &a1, b"d/1", 3, false),
        entry(&ns1, &a1, b"d/2", 4, false),
        entry(&ns1, &a1, b"d", 20, true),
        // A read-only document holds entries written elsewhere and synced in.
        entry(&ns2, &a2, b"x", 5, false),
        entry(&ns2, &a2, &[0x01, 0xff], 6, false),
    ] {
        store.insert(e).unwrap();
    }
    store.register_useful_peer(&ns1.id(), [7; 32]).unwrap();
    store.register_useful_peer(&ns1.id(), [8; 32]).unwrap();
    store
        .set_download_policy(
            &ns1.id(),
            DownloadPolicy::NothingExcept(vec![
                FilterKind::Prefix(Bytes::from_static(b"img/")),
                FilterKind::Exact(Bytes::from_static(b"readme")),
            ]),
        )
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn regenerate_v1_fixture() {
    if std::env::var("REGENERATE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    assert_eq!(
        SCHEMA_VERSION, 1,
        "this generator writes schema version 1 only"
    );
    let path = fixture_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut store = RedbStore::persistent(&path).unwrap();
    v1_contents(&mut store);
    store.close().unwrap();
    // Shrink the file: it is committed to the repository.
    let mut db = redb::Database::open(&path).unwrap();
    while db.compact().unwrap() {}
}

/// Everything a store answers, in one comparable value.
fn snapshot<S: Store>(store: &mut S) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "namespaces {:?}\n",
        store.list_namespaces().unwrap()
    ));
    out.push_str(&format!("authors {:?}\n", store.list_authors().unwrap()));
    out.push_str(&format!("default {:?}\n", store.default_author().unwrap()));
    for s in [1u8, 2] {
        let ns = namespace(s).id();
        out.push_str(&format!(
            "capability {:?}\n",
            store.capability(&ns).unwrap()
        ));
        let query = Query::all().with_include_empty(true);
        let page = store
            .query(&ns, &query, &QueryCursor::start(&query), 100)
            .unwrap();
        out.push_str(&format!("entries {:?}\n", page.entries));
        out.push_str(&format!(
            "fingerprint {:?} count {}\n",
            store.fingerprint(&ns, &KeyInterval::all()).unwrap(),
            store.count(&ns, &KeyInterval::all()).unwrap()
        ));
        out.push_str(&format!(
            "latest {:?}\n",
            store.latest_per_author(&ns).unwrap()
        ));
        out.push_str(&format!("peers {:?}\n", store.useful_peers(&ns).unwrap()));
        out.push_str(&format!(
            "policy {:?}\n",
            store.download_policy(&ns).unwrap()
        ));
    }
    out
}

#[test]
fn v1_fixture_opens_with_its_contents() {
    // Work on a copy: opening may write (a migration, or redb's own bookkeeping).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.redb");
    std::fs::copy(fixture_path(), &path).unwrap();
    let mut store = RedbStore::persistent(&path).unwrap();
    store.check_consistency().unwrap();
    let mut model = MemStore::new();
    v1_contents(&mut model);
    let got = snapshot(&mut store);
    assert_eq!(got, snapshot(&mut model));
    // Spot checks, so that a fixture of the wrong contents cannot pass with a wrong model.
    let ns1 = namespace(1).id();
    // a, a/b, the markers b and d of author 1; a and c of author 2.
    assert_eq!(store.count(&ns1, &KeyInterval::all()).unwrap(), 6);
    assert_eq!(
        store
            .get_exact(&ns1, &author(1).id(), b"d/1", true)
            .unwrap(),
        None
    );
    assert_eq!(store.default_author().unwrap(), Some(author(1).id()));
    // The migration to version 2 indexed every entry by its fingerprint.
    let mut indexed = 0;
    for ns in [namespace(1).id(), namespace(2).id()] {
        for e in store.entries(&ns, &KeyInterval::all(), 0, 100).unwrap() {
            let found = store
                .entry_by_fingerprint(&ns, &e.entry().fingerprint())
                .unwrap();
            assert_eq!(found.as_ref(), Some(&e));
            indexed += 1;
        }
    }
    assert!(indexed >= 6, "{indexed} entries");
    // It keeps working: writes, and a reopen.
    store
        .insert(entry(&namespace(1), &author(1), b"e", 30, false))
        .unwrap();
    store.close().unwrap();
    let mut store = RedbStore::persistent(&path).unwrap();
    assert_eq!(store.count(&ns1, &KeyInterval::all()).unwrap(), 7);
    store.check_consistency().unwrap();
}

const META: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("meta");

#[test]
fn newer_schema_versions_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    let mut store = RedbStore::persistent(&path).unwrap();
    v1_contents(&mut store);
    store.close().unwrap();
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            let version = meta
                .get("schema-version")
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            assert_eq!(
                version,
                SCHEMA_VERSION.to_be_bytes(),
                "the version is where the test expects it"
            );
            meta.insert("schema-version", &(SCHEMA_VERSION + 1).to_be_bytes()[..])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let err = RedbStore::persistent(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionTooNew { found, supported }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the store has schema version {}; this build supports up to {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        )
    );
    // Nothing was written: the version is still the newer one.
    let db = redb::Database::create(&path).unwrap();
    let tx = db.begin_write().unwrap();
    let meta = tx.open_table(META).unwrap();
    assert_eq!(
        meta.get("schema-version").unwrap().unwrap().value(),
        (SCHEMA_VERSION + 1).to_be_bytes()
    );
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A redb file of someone else (here: a table of iroh-docs' layout).
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, &[u8; 32], &[u8; 32]> =
                redb::TableDefinition::new("authors-1");
            tx.open_table(def)
                .unwrap()
                .insert(&[1; 32], &[2; 32])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let err = RedbStore::persistent(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    // Not a database at all.
    let path = dir.path().join("text.redb");
    std::fs::write(&path, b"hello, this is not a database".repeat(100)).unwrap();
    let err = RedbStore::persistent(&path).unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
}

#[test]
fn a_file_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.redb");
    let _first = RedbStore::persistent(&path).unwrap();
    let err = RedbStore::persistent(&path).unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
}
