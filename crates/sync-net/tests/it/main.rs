//! Integration tests of sync-net. The networking modules bind offline endpoints on 127.0.0.1
//! only; run them inside the loopback-only namespace (`/work/shared/tools/offline`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compact;
mod hostile;
mod sessions;
mod support;
mod transcripts;
mod wire;
