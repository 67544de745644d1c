//! Reliability tooling of docsync: the bodies of the fuzz targets, faulty storage for the store,
//! and the many-peers load scenario.
//!
//! * [`targets`]: one function `fn(&[u8])` per fuzz target, listed in [`targets::TARGETS`]. Each
//!   decodes or drives hostile input and panics only when a property breaks (a decoder accepts
//!   what it cannot re-encode, reconciliation fails to converge, a store disagrees with the
//!   model). The same functions run under cargo-fuzz (`fuzz/`, nightly, `cargo xtask fuzz`) and
//!   in the stable tests of this crate, which replay the committed corpus and crash reproducers
//!   and a short deterministic pass of generated and mutated inputs ([`mutate`]).
//! * [`storage`]: byte images under a `RedbStore` with a durability point, that fail after a
//!   number of operations or refuse to grow past a size (disk full).
//! * [`load`]: one node serving many peers over loopback until every document converges;
//!   run once by the tests and in a loop by the `soak` binary (`cargo xtask soak`).
//!
//! What it is not: part of any shipped crate. Nothing depends on it; it holds no protocol logic
//! of its own and only calls the public APIs of the crates it tests (plus the `#[doc(hidden)]`
//! raw-storage hook of `sync-store-redb`).

pub mod input;
pub mod load;
pub mod mutate;
pub mod storage;
pub mod targets;
