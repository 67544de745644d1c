//! docsync's engine: the content of documents, kept in an iroh-blobs store, served to peers on
//! iroh-blobs' ALPN and downloaded from the peers that hold it.
//!
//! A replica stores only the hash and length of each value. [`ContentStore`] holds the bytes
//! (in memory, or in a directory with garbage collection of what no entry references), and
//! knows which hashes are complete, which is what the actor tells peers in sync messages.
//! [`ContentEngine`] watches open documents and feeds [`Downloads`], a queue that fetches every
//! wanted hash from its providers with bounded concurrency and per-provider backoff.
//!
//! What this crate is not: a sync protocol (that is `sync-net`) or a store of entries (the
//! actor's); it composes them with iroh-blobs.

mod addresses;
mod content;
mod downloads;
mod engine;
mod error;
mod gc;
mod transfer;

pub use content::{BLOBS_DIR, ContentStore, Imported};
pub use downloads::{ContentEvent, DownloadOptions, DownloadStatus, Downloads};
pub use engine::ContentEngine;
pub use error::{ContentError, DownloadError};
pub use gc::{DEFAULT_GC_INTERVAL, GcOptions};
pub use iroh_blobs::api::blobs::BlobReader;

/// The ALPN content is served on (iroh-blobs' protocol, as iroh-docs nodes expect).
pub const BLOBS_ALPN: &[u8] = iroh_blobs::ALPN;

/// The protocol handler serving a content store on [`BLOBS_ALPN`].
pub fn blobs_protocol(content: &ContentStore) -> iroh_blobs::BlobsProtocol {
    iroh_blobs::BlobsProtocol::new(content.blobs(), None)
}
