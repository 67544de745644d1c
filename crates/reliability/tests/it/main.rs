//! Integration tests of the reliability crate: the fuzz targets over the committed corpus, the
//! crash reproducers and a deterministic mutation pass; storage faults under `RedbStore`; the
//! many-peers load scenario; a flood of hostile connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod faults;
mod flood;
mod fuzz;
mod load;
