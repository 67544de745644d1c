//! The store conformance suite against the model backend.

use sync_core::MemStore;

#[test]
fn mem_store_conforms() {
    sync_core::store::conformance::run_all(MemStore::new);
}
