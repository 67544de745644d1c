#![doc = include_str!("../README.md")]
//!
//! What this crate is not: a new protocol (it composes `sync-core`, `ranger`,
//! `sync-store-redb`, `sync-actor`, `sync-net` and `sync-engine`, which can be used on their
//! own).

mod doc;
mod error;
mod metrics;
mod node;
mod ticket;

pub use doc::{ContentEvents, ContentReader, Doc, EntryContent, INLINE_CONTENT_MAX, ShareMode};
pub use error::Error;
pub use metrics::{Metrics, MetricsServer};
pub use node::{CONTENT_DIR, NODE_KEY_FILE, Node, NodeBuilder, PEERS_FILE, STORE_FILE};
pub use ticket::{DocTicket, TicketError};

pub use sync_actor::{Event, Received, Subscription};
pub use sync_core::{
    Author, AuthorId, Capability, CapabilityKind, ContentHash, ContentStatus, DownloadPolicy,
    FilterKind, NamespaceId, NamespaceSecret, Query, SignedEntry, SortBy, SortDirection,
};
pub use sync_engine::{
    ContentEngine, ContentError, ContentEvent, DownloadOptions, DownloadStatus, GcOptions,
};
pub use sync_net::{Limits, SyncFinished};
