//! Storage for docsync on redb, in memory or in one file.
//!
//! Empty shell: this crate is filled in by the storage issue (the store traits in `sync-core`, a
//! redb backend with O(log n) range fingerprints, and a model backend). It is the only crate of
//! the workspace that names `redb`; no redb type will appear in its public API.
