//! The store conformance suite of sync-core, against both redb backends.

use sync_core::store::conformance;
use sync_store_redb::RedbStore;

#[test]
fn memory_store_conforms() {
    conformance::run_all(|| RedbStore::memory().unwrap());
}

#[test]
fn file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run_all(|| {
        n += 1;
        RedbStore::persistent(dir.path().join(format!("case{n}.redb"))).unwrap()
    });
}

/// With a batch of one write, every write is its own commit: the same answers.
#[test]
fn file_store_conforms_committing_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run_all(|| {
        n += 1;
        let mut store = RedbStore::persistent(dir.path().join(format!("case{n}.redb"))).unwrap();
        store.set_max_batch(1);
        store
    });
}

/// The store moves into the actor's thread.
#[test]
fn the_store_is_send() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<RedbStore>();
}
