//! Differential tests: our data model against the real iroh-docs 0.101 types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod content;
mod differential;
mod net;
mod ranger_interop;
mod ticket_sync;
mod tickets;
