//! Differential and interop tests of docsync against the real iroh-docs 0.101.
//!
//! This crate has no library code: everything lives in `tests/`. It is the only crate of the
//! workspace allowed to depend on `iroh-docs` (checked by `cargo xtask check-layers`), and it is
//! never published.
