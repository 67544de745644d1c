//! Range-based set reconciliation (Aljoscha Meyer, "Range-Based Set Reconciliation", 2023),
//! speaking the message semantics of iroh-docs 0.101.
//!
//! This crate is generic and sans-IO: it knows nothing of documents, signatures, storage engines,
//! clocks or sockets. It is not a wire format either: the network layer converts its messages.

mod entry;
mod fingerprint;

pub use entry::{RangeEntry, RangeKey, RangeValue};
pub use fingerprint::Fingerprint;
