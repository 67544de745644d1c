//! Range-based set reconciliation (Aljoscha Meyer, "Range-Based Set Reconciliation", 2023),
//! speaking the message semantics of iroh-docs 0.101.
//!
//! Two peers each hold a set of entries (one per key, values ordered last-write-wins). They
//! exchange [`Message`]s made of fingerprints of key ranges and of the entries of small ranges;
//! ranges whose fingerprints differ are split and compared again, until each side has sent the
//! other what it lacks. One [`Session`] per side turns each incoming message into the reply.
//!
//! What this crate is:
//! * generic over the entry ([`RangeEntry`]: key order, value order, per-entry fingerprint) and
//!   over a narrow [`Store`] trait (count, fingerprint and rank of an interval, ordered iteration,
//!   insertion), shaped so that an indexed store answers each in O(log n); [`MemStore`] is an
//!   in-memory one that does;
//! * compatible: with [`Config::reference`] every message equals what iroh-docs 0.101 sends for
//!   the same sets (split factor 2, leaf size 1, items before fingerprints, values ascending), and
//!   in every configuration a peer running iroh-docs converges with us;
//! * bounded: with a message budget ([`Config::bounded`]) no message exceeds it, also when the
//!   peer is empty and the whole set must move; what does not fit is deferred by fingerprints of
//!   the rest, which any peer answers, so memory stays proportional to the budget;
//! * economical: entries go out only where a difference is known, and a range that differs by
//!   one entry of ours is answered with that entry at once, found by the XOR of the two
//!   fingerprints in the store's index of entry fingerprints ([`Store::entry_by_fingerprint`],
//!   [`Config::with_lone_differences`]), instead of being split down to it;
//! * sans-IO: no I/O, no async runtime, no clock, no randomness, no global state. Validation and
//!   insertion events go through caller-supplied [`Hooks`].
//!
//! What it is not: a wire format (the network layer converts [`Message`] into its own wire
//! structs, and defines [`RangeKey::encoded_len`] / [`RangeEntry::encoded_len`] to match), a
//! storage engine, or a policy on which entries win (the store decides, e.g. with prefix
//! deletion).
//!
//! **Security caveat.** The range fingerprint is the XOR of per-entry hashes, as in iroh-docs.
//! XOR is linear over GF(2): anyone who can mint entries (any writer of a document) can choose
//! about 257 of them and solve for a subset whose XOR equals any target, so two different sets
//! can be made to look equal and reconciliation then skips the difference. The same linearity
//! means a non-empty set whose hashes cancel out looks empty ([`Fingerprint::EMPTY`]). The
//! fingerprint detects accidents, not adversaries; it is kept for compatibility.

mod blocks;
mod config;
mod entry;
mod fingerprint;
mod mem;
mod message;
mod own_index;
mod range;
mod session;
mod store;
mod verdicts;

pub use config::{Config, ConfigError};
pub use entry::{RangeEntry, RangeKey, RangeValue};
pub use fingerprint::Fingerprint;
pub use mem::{Iter, MemStore};
pub use message::{
    FINGERPRINT_PART_OVERHEAD, ITEM_PART_OVERHEAD, MESSAGE_OVERHEAD, Message, MessagePart,
    RangeFingerprint, RangeItem, varint_len,
};
pub use range::{Interval, Range};
pub use session::{AcceptAll, Hooks, ProcessError, Session, SessionOutcome};
pub use store::{Store, Summary};
pub use verdicts::Verdicts;
