//! Integration tests of sync-core: golden vectors, round trips, validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod golden;
mod roundtrip;
mod validation;

use sync_core::{Author, NamespaceSecret};

/// The author of the reference vectors: secret 32 x 0xa1.
pub(crate) fn golden_author() -> Author {
    Author::from_bytes(&[0xa1; 32])
}

/// The namespace of the reference vectors: secret 32 x 0xb2.
pub(crate) fn golden_namespace() -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[0xb2; 32])
}
mod replica;
mod store;
