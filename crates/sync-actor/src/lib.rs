//! A thread that owns a docsync store, and [`SyncHandle`], the cloneable async handle that the
//! network layer, the facade and applications share.
//!
//! One named thread owns the [`Store`](sync_core::Store) and serves requests one at a time from
//! a bounded channel, each with its own reply. Writes are acknowledged from the open batch and
//! committed on [`SyncHandle::flush`], after [`ActorConfig::max_commit_delay`], after
//! [`ActorConfig::max_batch_writes`] writes, at shutdown and when the last handle goes: a crash
//! loses at most the acknowledged writes of that window, never a flushed one.
//!
//! Long work is cut into bounded requests (queries stream page by page; a sync step is one
//! message of bounded size), so one busy document never holds up another for longer than one
//! chunk. Subscribers get events through a bounded buffer that the actor never waits on: a
//! subscriber that falls behind is told how many events it missed.
//!
//! What this crate is not: a store (it is generic over `sync-core`'s trait and never names
//! redb) or a network layer (it never names iroh; `sync-net` drives the sync steps).

mod actor;
mod error;
mod events;
mod handle;
mod metrics;
mod signing;

pub use actor::{ActorConfig, ContentStatusFn};
pub use error::ActorError;
pub use events::{Event, Received, Subscription};
pub use handle::{
    OpenOptions, OpenState, ProtocolMessage, QueryStream, ReplicaGuard, SyncHandle, SyncProgress,
};
pub use metrics::Metrics;
