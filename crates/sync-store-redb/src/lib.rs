//! The docsync store on redb, in memory or in one file: [`RedbStore`], an implementation of
//! `sync_core::Store`.
//!
//! It keeps documents, authors, signed entries and per-document settings in a handful of
//! tables (laid out in `tables.rs` and docs/storage.md), answers the range questions of
//! reconciliation (fingerprint, count, entries from a rank) in O(log n) from an aggregate index
//! maintained on every write, streams queries page by page, and batches writes into
//! transactions that [`sync_core::Store::flush`] commits. Files carry a schema version and are
//! migrated on open.
//!
//! It is not a general key-value store, does not verify entries (the caller inserts validated
//! entries), and does not hold content bytes, only their hashes. It is synchronous and meant to
//! be owned by one thread (see `sync-actor`). It is the only crate of the workspace that names
//! redb; no redb type appears in its API.

mod aggregate;
mod bounds;
mod check;
mod guard;
mod migrations;
mod query;
mod raw;
mod store;
mod tables;
mod write;

#[doc(hidden)]
pub use raw::RawStorage;
pub use store::{DEFAULT_MAX_BATCH, RedbStore};
pub use tables::SCHEMA_VERSION;
