//! A thread that owns a docsync store, and a cloneable async handle to it.
//!
//! Empty shell: this crate is filled in by the actor issue. It will be generic over the store
//! trait of `sync-core` and will never name redb or iroh.
