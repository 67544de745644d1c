//! The fuzz targets: one `fn(&[u8])` each, shared by cargo-fuzz (`fuzz/fuzz_targets/*.rs`) and
//! the stable replay tests. A target returns normally for every input unless a property breaks;
//! then it panics with a message saying which.
//!
//! | target | what it feeds | what must hold |
//! |---|---|---|
//! | `wire_message` | one frame body to `WireMessage::decode` | no panic; accepted bodies re-encode to the same bytes; ranger's size estimate bounds the real size |
//! | `compact_message` | one `/docsync/1` body to `compact::decode` | no panic; accepted bodies re-encode to the same bytes, survive the reference encoding and are not longer than it; bounds stay in the document |
//! | `wire_frames` | a byte stream cut into length-prefixed frames under a frame limit | no panic; no frame over the limit is decoded; accepted frames re-frame identically |
//! | `signed_entry` | `SignedEntry` and `Record` decoding, then validation | no panic; canonical re-encoding; `validate` never accepts what `verify` refuses |
//! | `record_identifier` | `RecordIdentifier` from postcard and from raw bytes | no panic; identifiers are at least 64 bytes and split back into their parts |
//! | `capability` | `Capability`, `Author`, `NamespaceSecret`, ids from bytes and from text | no panic; round trips |
//! | `ticket` | `DocTicket::from_bytes` and `DocTicket::from_str` | no panic; a parsed ticket survives bytes and text round trips |
//! | `redb_file` | byte flips and truncation of a small valid store file, then reads and a write | no panic comes out of `RedbStore` (redb's own panics on damaged bytes become `StoreError::Corrupt` and poison the store); the storage is released |
//! | `ranger_sync` | two sets, arbitrary and mutated messages, then an honest session | no panic; honest sessions converge to the model of the union |
//! | `store_model` | store operations with flushes, clean reopens and crashes | `RedbStore` on a file image answers as `MemStore` does; crashes keep every flushed write |

mod decode;
mod fixtures;
mod ranger_sync;
mod redb_file;
mod redb_panics;
mod store_model;

pub use decode::{
    capability, compact_message, record_identifier, signed_entry, ticket, wire_frames, wire_message,
};
pub use ranger_sync::ranger_sync;
pub use redb_file::{
    Outcome, Survey, bit_flip_survey, damaged_image, open_damaged, redb_file, valid_image,
};
pub use redb_panics::{containing_redb_panics, redb_panics, redb_panics_on_this_thread};
pub use store_model::store_model;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its cargo-fuzz target and of its corpus directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_message", wire_message),
    ("compact_message", compact_message),
    ("wire_frames", wire_frames),
    ("signed_entry", signed_entry),
    ("record_identifier", record_identifier),
    ("capability", capability),
    ("ticket", ticket),
    ("redb_file", redb_file),
    ("ranger_sync", ranger_sync),
    ("store_model", store_model),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Valid inputs of the target called `name`, built from the real encoders: the starting points
/// of the stable mutation pass and of a fresh cargo-fuzz corpus. Empty for an unknown name.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "wire_message" => decode::wire_message_seeds(),
        "compact_message" => decode::compact_message_seeds(),
        "wire_frames" => decode::wire_frame_seeds(),
        "signed_entry" => decode::signed_entry_seeds(),
        "record_identifier" => decode::record_identifier_seeds(),
        "capability" => decode::capability_seeds(),
        "ticket" => decode::ticket_seeds(),
        "redb_file" => redb_file::seeds(),
        "ranger_sync" => ranger_sync::seeds(),
        "store_model" => store_model::seeds(),
        _ => Vec::new(),
    }
}

/// The largest input the stable pass generates for the target called `name` (cargo-fuzz is
/// given the same bound as `-max_len`).
pub fn max_len(name: &str) -> usize {
    match name {
        "ticket" | "capability" => 512,
        "redb_file" | "ranger_sync" | "store_model" => 1024,
        _ => 4096,
    }
}
