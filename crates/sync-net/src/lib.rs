//! docsync sync sessions over iroh: ALPN `/iroh-sync/1`, wire-compatible with iroh-docs 0.101.
//!
//! [`wire`] owns every byte that crosses the network: the frame, the messages and their
//! encoding, the limits. The session layer over iroh connections is being built on top of it.
//!
//! This is the only library crate of the workspace that names `iroh`. It does not store
//! anything (the `sync-actor` handle does) and does not decide policy beyond its limits.

pub mod wire;
