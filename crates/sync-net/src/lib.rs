//! docsync sync sessions over iroh: ALPN `/iroh-sync/1`, wire-compatible with iroh-docs 0.101.
//!
//! Empty shell: this crate is filled in by the network issue. It will be the only library crate
//! that names `iroh`, and the one home of every byte that crosses the wire.
