//! docsync sync sessions over iroh: ALPN `/iroh-sync/1`, wire-compatible with iroh-docs 0.101.
//!
//! A session reconciles one document with one peer over one QUIC connection: the dialer opens
//! a bidirectional stream and sends `Init`, both sides answer each other's messages until one
//! is done, and the stream closes with the reference's close sequence. [`connect_and_sync`]
//! dials a single session; [`SyncProtocol`] is a node's protocol handler for an iroh
//! `Router` (acceptance policy, session limits, the reference's simultaneous-dial rule,
//! metrics) and dials for the node. [`wire`] owns every byte that crosses the network, and
//! [`compact`] the shorter encoding of the same messages that two of our nodes negotiate
//! (ALPN `/docsync/1`, falling back to `/iroh-sync/1` with any other peer);
//! [`Limits`] bounds every session; [`offline_endpoint`] builds the loopback-only endpoint of
//! every test.
//!
//! Peers are hostile: a frame is checked against the limit before anything is allocated, a
//! message is decoded completely and its ranges fenced to the document before the actor sees
//! it, and whatever goes wrong ends that one session with a typed [`SyncError`], never the
//! node, its store or its other documents.
//!
//! This is the only library crate of the workspace that names `iroh`. It stores nothing (the
//! `sync-actor` handle does), moves no content (blobs are another protocol), speaks no gossip,
//! and decides no policy beyond its limits and the default acceptance rule.

mod accept;
pub mod compact;
mod dial;
mod endpoint;
mod error;
mod limits;
mod metrics;
mod registry;
mod session;
pub mod wire;

pub use accept::{
    AcceptOutcome, AcceptPolicy, AcceptReport, SyncProtocol, SyncProtocolBuilder, SyncingDocuments,
};
pub use dial::connect_and_sync;
pub use endpoint::{EndpointError, EndpointOptions, build_endpoint, dial_addr, offline_endpoint};
pub use error::{AcceptError, CloseWarning, ConnectError, SessionScope, SyncError};
pub use limits::Limits;
pub use metrics::{DURATION_BUCKETS, NetMetrics, NetMetricsSnapshot, SessionResult, Side};
pub use session::{SyncFinished, SyncOutcome, Timings};
pub use wire::{ALPN, AbortReason, COMPACT_ALPN, Codec};
