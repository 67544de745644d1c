//! Differential and interop tests of docsync against the real iroh-docs 0.101, and the
//! benchmark program that compares the two (`src/bin/bench`, run by `cargo xtask bench`).
//!
//! The library holds only what the tests and the benchmark share: [`nodes`], a real iroh-docs
//! node and one of ours, each on an offline (loopback-only) iroh endpoint. The tests live in
//! `tests/`. This is the only crate of the workspace allowed to depend on `iroh-docs` (checked
//! by `cargo xtask check-layers`), and it is never published.

pub mod nodes;
