//! Integration tests of the `ranger` crate (one binary, one module per topic).

// A test binary: panicking on an unexpected error is how a test fails. (clippy's
// allow-unwrap-in-tests does not reach helper functions outside #[test] items.)
#![allow(clippy::unwrap_used)]

mod budget;
mod convergence;
mod echo;
mod hooks;
mod hostile;
mod lone;
mod mem_store;
mod mem_tree;
mod split;
mod support;
mod transcripts;
