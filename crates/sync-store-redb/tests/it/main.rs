//! Integration tests of sync-store-redb: the conformance suite, model-based property tests
//! against `MemStore`, crash tests, schema versions and the v1 fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod crash;
mod fixture;
mod model;
mod scale;
