//! Integration tests of sync-net.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transcripts;
mod wire;
