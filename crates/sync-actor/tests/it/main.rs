//! Integration tests of the sync actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod basics;
mod concurrency;
mod sync_steps;

use sync_actor::{ActorConfig, OpenOptions, ReplicaGuard, SyncHandle};
use sync_core::{AuthorId, MemStore, NamespaceId};

/// An actor over a fresh in-memory model store.
pub(crate) fn mem_actor() -> SyncHandle {
    SyncHandle::spawn(MemStore::new(), ActorConfig::default())
}

/// A new author and a new document, open (with the guard that keeps it open).
pub(crate) async fn open_doc(handle: &SyncHandle) -> (AuthorId, NamespaceId, ReplicaGuard) {
    let author = handle.create_author().await.unwrap();
    let ns = handle.create_replica().await.unwrap().id();
    let guard = handle.open(ns, OpenOptions::default()).await.unwrap();
    (author, ns, guard)
}
