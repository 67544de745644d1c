//! End-to-end tests of the facade and the `docsync` command. Networking tests: run inside a
//! loopback-only network namespace (`cargo xtask ci` does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod content;
mod crash;
mod examples;
mod library;
mod metrics;
