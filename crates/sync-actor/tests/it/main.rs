//! Integration tests of the sync actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod basics;
mod concurrency;
mod sync_steps;

use sync_actor::{ActorConfig, SyncHandle};
use sync_core::MemStore;

/// An actor over a fresh in-memory model store.
pub(crate) fn mem_actor() -> SyncHandle {
    SyncHandle::spawn(MemStore::new(), ActorConfig::default())
}
