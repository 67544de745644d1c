//! docsync: replicated, signed key-value documents that peers keep in step over iroh.
//!
//! Empty shell: the facade (a `Node` with a builder) and the `docsync` command-line tool arrive
//! with the facade issue. Today the data model is available from `sync-core`.
