//! The data model of docsync: keys, capabilities, entries, signing, validation and their byte
//! formats, compatible byte for byte with iroh-docs 0.101.
//!
//! A document (replica) is identified by a [`NamespaceId`]; holding its [`NamespaceSecret`] is the
//! write capability. It holds [`SignedEntry`] values, each identified by namespace, author and key
//! and signed by both the namespace and the author.
//!
//! This crate does no I/O, spawns nothing and reads the clock only in [`now_micros`]. It does not
//! store entries (see `sync-store-redb`) nor move them (see `sync-net`); it does not know about
//! content bytes, only their BLAKE3 hash and length.
//!
//! ```
//! use sync_core::{Author, NamespaceSecret, Record, ContentHash, SignedEntry, SignatureCheck, ValidationConfig};
//!
//! let namespace = NamespaceSecret::generate();
//! let author = Author::generate();
//! let record = Record::new(ContentHash::of(b"hello"), 5, 1_700_000_000_000_000);
//! let entry = SignedEntry::create(&namespace, &author, b"greeting", record);
//! entry.validate(namespace.id(), 1_700_000_000_000_000, &ValidationConfig::default(), SignatureCheck::Verify)?;
//! # Ok::<(), sync_core::ValidationError>(())
//! ```

mod batch;
mod capability;
pub mod encoding;
mod entry;
mod error;
mod heads;
mod keys;
mod policy;
mod query;
mod replica;
pub mod store;

pub use capability::{Capability, CapabilityKind};
pub use entry::{
    ContentHash, DEFAULT_MAX_FUTURE_SHIFT, DEFAULT_MAX_KEY_LEN, Entry, EntrySignature,
    ID_PREFIX_LEN, Record, RecordIdentifier, SignatureCheck, SignedEntry, ValidationConfig,
    now_micros,
};
pub use error::{
    CapabilityError, DecodeError, KeyParseError, ReadOnlyError, RejectionCounts, ValidationError,
    VerifyError,
};
pub use heads::AuthorHeads;
pub use keys::{
    Author, AuthorId, AuthorPublicKey, KEY_LEN, NamespaceId, NamespacePublicKey, NamespaceSecret,
    SIGNATURE_LEN,
};
pub use policy::{DownloadPolicy, FilterKind};
pub use query::{AuthorFilter, KeyFilter, Query, QueryCursor, QueryKind, SortBy, SortDirection};
pub use ranger::Fingerprint;
pub use replica::{ContentStatus, ReplicaStore};
pub use store::{
    ImportOutcome, InsertOutcome, KeyInterval, MemStore, QueryPage, Store, StoreError,
};
