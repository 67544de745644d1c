//! Entries: what a document holds.
//!
//! An entry is identified by a [`RecordIdentifier`] (namespace, author, key) and carries a
//! [`Record`] (content hash, content length, timestamp). A [`SignedEntry`] adds the two
//! signatures. This module owns the two byte layouts that are hashed rather than sent:
//!
//! ```text
//! signed bytes:      namespace(32) | author(32) | key | len u64 BE | hash(32) | timestamp u64 BE
//! fingerprint input: namespace(32) | author(32) | key | timestamp u64 BE | hash(32)
//! ```
//!
//! Both are fixed by iroh-docs 0.101 and must not change: peers compare signatures and
//! fingerprints byte for byte.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ranger::{Fingerprint, RangeEntry, RangeKey, RangeValue};

use crate::error::{DecodeError, ValidationError, VerifyError};
use crate::keys::{Author, AuthorId, KEY_LEN, NamespaceId, NamespaceSecret, SIGNATURE_LEN};

/// Length of namespace plus author at the start of every [`RecordIdentifier`].
pub const ID_PREFIX_LEN: usize = 2 * KEY_LEN;

/// The default bound on key length: 4 KiB. iroh-docs has none, but its gossip messages are
/// capped at 4096 bytes, so longer keys never propagated live there either.
pub const DEFAULT_MAX_KEY_LEN: usize = 4096;

/// The default allowed clock skew for entries from peers: 10 minutes, as iroh-docs 0.101.
pub const DEFAULT_MAX_FUTURE_SHIFT: Duration = Duration::from_secs(10 * 60);

/// The current wall-clock time in microseconds since the Unix epoch (0 before the epoch).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A 32-byte BLAKE3 content hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of empty content, which also marks a deletion (tombstone).
    pub const EMPTY: ContentHash = ContentHash(Fingerprint::EMPTY.0);

    /// Hashes `data`.
    pub fn of(data: impl AsRef<[u8]>) -> Self {
        Self(*blake3::hash(data.as_ref()).as_bytes())
    }

    /// The hash with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", hex::encode(&self.0[..8]))
    }
}

/// The identifier of an entry: `namespace(32) | author(32) | key`, ordered as one flat byte
/// string. Because namespace and author have a fixed width, the order is namespace, then
/// author, then key, with a key sorting before every key it is a prefix of.
///
/// Invariant: at least 64 bytes. Every constructor checks it, so the accessors cannot panic
/// (the reference panics on a short identifier from a peer; see protocol notes W7).
///
/// Identifiers of up to [`RecordIdentifier::INLINE`] bytes (keys of up to 62 bytes) are held
/// inline: making, cloning, comparing and dropping one touches no other memory (no allocation,
/// no shared count). Reconciliation clones and compares identifiers more than anything else.
/// Longer ones share their bytes.
#[derive(Clone)]
pub struct RecordIdentifier(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes of `bytes`.
    Inline {
        len: u8,
        bytes: [u8; RecordIdentifier::INLINE],
    },
    /// Longer than [`RecordIdentifier::INLINE`] bytes.
    Shared(Bytes),
}

impl RecordIdentifier {
    /// The longest identifier held inline: 64 bytes of namespace and author and a key of up to
    /// 62 bytes, which makes an identifier 128 bytes in size.
    pub const INLINE: usize = 126;

    /// The identifier made of these bytes, failing if they are shorter than 64 bytes.
    pub fn copy_from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < ID_PREFIX_LEN {
            return Err(DecodeError::ShortIdentifier(bytes.len()));
        }
        Ok(Self::concat(&[bytes]))
    }

    /// The identifier made of `parts` one after the other, inline if it fits; the caller
    /// checks the length invariant.
    fn concat(parts: &[&[u8]]) -> Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        match u8::try_from(len) {
            Ok(short) if len <= Self::INLINE => {
                let mut bytes = [0u8; Self::INLINE];
                let mut at = 0;
                for part in parts {
                    bytes[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
                Self(Repr::Inline { len: short, bytes })
            }
            _ => Self(Repr::Shared(parts.concat().into())),
        }
    }

    /// The smallest identifier greater than this one: it followed by a zero byte (the same
    /// namespace and author, the key extended by `0x00`), whatever the key's length.
    pub(crate) fn zero_extended(&self) -> Self {
        // Longer than `self`, so at least the 64 bytes an identifier needs.
        Self::concat(&[self.as_bytes(), &[0]])
    }

    /// The identifier of `key` written by `author` in `namespace`.
    pub fn new(namespace: NamespaceId, author: AuthorId, key: impl AsRef<[u8]>) -> Self {
        Self::concat(&[namespace.as_bytes(), author.as_bytes(), key.as_ref()])
    }

    /// The identifier made of these bytes, failing if they are shorter than 64 bytes.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        if bytes.len() < ID_PREFIX_LEN {
            return Err(DecodeError::ShortIdentifier(bytes.len()));
        }
        Ok(if bytes.len() > Self::INLINE {
            Self(Repr::Shared(bytes))
        } else {
            Self::concat(&[&bytes])
        })
    }

    /// The smallest identifier: 64 zero bytes and an empty key. The reference uses it as the
    /// range bound of the first message from an empty replica.
    pub fn zero() -> Self {
        Self::concat(&[&[0u8; ID_PREFIX_LEN]])
    }

    /// The smallest identifier of `namespace`: its id, 32 zero bytes and an empty key.
    pub fn namespace_start(namespace: NamespaceId) -> Self {
        Self::new(namespace, AuthorId::default(), [])
    }

    /// The flat bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// The flat bytes, shared (a copy for an identifier held inline).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(bytes) => bytes.clone(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        NamespaceId::from_bytes(self.fixed(0))
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        AuthorId::from_bytes(self.fixed(KEY_LEN))
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.as_bytes().get(ID_PREFIX_LEN..).unwrap_or_default()
    }

    /// The key, shared (a copy for an identifier held inline).
    pub fn key_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.key()),
            Repr::Shared(bytes) => bytes.slice(ID_PREFIX_LEN.min(bytes.len())..),
        }
    }

    fn fixed(&self, at: usize) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        if let Some(src) = self.as_bytes().get(at..at + KEY_LEN) {
            out.copy_from_slice(src);
        }
        out
    }
}

impl PartialEq for RecordIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RecordIdentifier {}

impl PartialOrd for RecordIdentifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RecordIdentifier {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for RecordIdentifier {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for RecordIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordIdentifier({}/{}/{:?})",
            self.namespace().fmt_short(),
            self.author().fmt_short(),
            String::from_utf8_lossy(self.key())
        )
    }
}

impl RangeKey for RecordIdentifier {
    fn encoded_len(&self) -> usize {
        let len = self.as_bytes().len();
        crate::encoding::varint_len(len as u64) + len
    }

    /// The identifier followed by a zero byte: same namespace and author, the key extended by
    /// `0x00`. `None` for a key of [`DEFAULT_MAX_KEY_LEN`] bytes or more, whose successor a
    /// peer with the default decoding limits would refuse.
    fn successor(&self) -> Option<Self> {
        (self.key().len() < DEFAULT_MAX_KEY_LEN).then(|| self.zero_extended())
    }

    /// The flat bytes, which identifiers are ordered by.
    fn order_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

/// What an entry says about its content: hash, length and the time of writing.
///
/// Order (last write wins): timestamp, then hash, then length; the greater record wins.
/// iroh-docs orders by timestamp and hash only but compares `len` for equality (its W17), so
/// two records differing only in length are equal to its ordering and unequal to its `==`. Here
/// order and equality agree: `len` breaks the last tie. Such a pair can only come from a
/// dishonest writer (the same content hash with two lengths), and the fingerprint ignores `len`
/// as the wire protocol requires, so sync cannot tell the two apart; what matters is that every
/// replica resolves the conflict the same way when both arrive.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    len: u64,
    hash: ContentHash,
    timestamp: u64,
}

impl Record {
    /// A record of content with `hash` and `len` bytes, written at `timestamp` (µs since epoch).
    pub const fn new(hash: ContentHash, len: u64, timestamp: u64) -> Self {
        Self {
            len,
            hash,
            timestamp,
        }
    }

    /// A deletion marker (tombstone) written at `timestamp`.
    pub const fn empty(timestamp: u64) -> Self {
        Self::new(ContentHash::EMPTY, 0, timestamp)
    }

    /// Whether this is a deletion marker.
    pub fn is_empty(&self) -> bool {
        self.hash == ContentHash::EMPTY
    }

    /// The content hash.
    pub const fn content_hash(&self) -> ContentHash {
        self.hash
    }

    /// The content length.
    pub const fn content_len(&self) -> u64 {
        self.len
    }

    /// The timestamp in microseconds since the Unix epoch.
    pub const fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

impl Ord for Record {
    fn cmp(&self, other: &Self) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| self.hash.cmp(&other.hash))
            .then_with(|| self.len.cmp(&other.len))
    }
}

impl PartialOrd for Record {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Record(ts {}, len {}, {:?})",
            self.timestamp, self.len, self.hash
        )
    }
}

impl RangeValue for Record {}

/// An unsigned entry: identifier and record. Ordered by identifier, then record.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Entry {
    id: RecordIdentifier,
    record: Record,
}

impl Entry {
    /// An entry.
    pub fn new(id: RecordIdentifier, record: Record) -> Self {
        Self { id, record }
    }

    /// The identifier.
    pub fn id(&self) -> &RecordIdentifier {
        &self.id
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        self.id.namespace()
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        self.id.author()
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.id.key()
    }

    /// The bytes both signatures are made over:
    /// `namespace | author | key | len u64 BE | hash | timestamp u64 BE`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let id = self.id.as_bytes();
        let mut out = Vec::with_capacity(id.len() + 8 + 32 + 8);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.record.len.to_be_bytes());
        out.extend_from_slice(self.record.hash.as_bytes());
        out.extend_from_slice(&self.record.timestamp.to_be_bytes());
        out
    }

    /// The per-entry fingerprint:
    /// `blake3(namespace | author | key | timestamp u64 BE | hash)`. The length is not included.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.id.as_bytes());
        hasher.update(&self.record.timestamp.to_be_bytes());
        hasher.update(self.record.hash.as_bytes());
        Fingerprint(*hasher.finalize().as_bytes())
    }

    /// Signs this entry with the namespace secret (write capability) and the author key.
    ///
    /// The caller is responsible for the keys matching the identifier; [`SignedEntry::verify`]
    /// catches a mismatch.
    pub fn sign(self, namespace: &NamespaceSecret, author: &Author) -> SignedEntry {
        let msg = self.signed_bytes();
        let signature = EntrySignature {
            author: author.sign(&msg),
            namespace: namespace.sign(&msg),
        };
        SignedEntry {
            signature,
            entry: self,
        }
    }
}

/// The two signatures of an entry, over [`Entry::signed_bytes`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntrySignature {
    author: [u8; SIGNATURE_LEN],
    namespace: [u8; SIGNATURE_LEN],
}

impl EntrySignature {
    /// The signatures from their bytes.
    pub const fn from_parts(author: [u8; SIGNATURE_LEN], namespace: [u8; SIGNATURE_LEN]) -> Self {
        Self { author, namespace }
    }

    /// The author's signature.
    pub const fn author(&self) -> &[u8; SIGNATURE_LEN] {
        &self.author
    }

    /// The namespace's signature.
    pub const fn namespace(&self) -> &[u8; SIGNATURE_LEN] {
        &self.namespace
    }
}

impl fmt::Debug for EntrySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EntrySignature(author {}.., namespace {}..)",
            hex::encode(&self.author[..6]),
            hex::encode(&self.namespace[..6])
        )
    }
}

/// Whether [`SignedEntry::validate`] checks the signatures. Entries this node signed itself
/// skip the check; everything from a peer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verify both signatures.
    Verify,
    /// Trust the signatures (the entry was signed locally).
    Skip,
}

/// The bounds entries are validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationConfig {
    /// How far ahead of the local clock a timestamp may be, in microseconds. An entry exactly at
    /// the limit is accepted. Default: 10 minutes, as iroh-docs 0.101.
    pub max_future_shift_micros: u64,
    /// The longest key accepted, in bytes. Default: [`DEFAULT_MAX_KEY_LEN`].
    pub max_key_len: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_future_shift_micros: u64::try_from(DEFAULT_MAX_FUTURE_SHIFT.as_micros())
                .unwrap_or(u64::MAX),
            max_key_len: DEFAULT_MAX_KEY_LEN,
        }
    }
}

impl ValidationConfig {
    /// The default bounds with another allowed clock skew.
    pub fn with_max_future_shift(mut self, shift: Duration) -> Self {
        self.max_future_shift_micros = u64::try_from(shift.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// The default bounds with another key length limit.
    pub fn with_max_key_len(mut self, max_key_len: usize) -> Self {
        self.max_key_len = max_key_len;
        self
    }
}

/// An entry with its two signatures: the unit that is stored and exchanged.
///
/// Ordered by entry, then signature (so that order and equality agree).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SignedEntry {
    signature: EntrySignature,
    entry: Entry,
}

impl SignedEntry {
    /// Puts an entry and signatures together without checking them; see [`Self::verify`].
    pub fn from_parts(signature: EntrySignature, entry: Entry) -> Self {
        Self { signature, entry }
    }

    /// Creates and signs an entry for `key` in `namespace` by `author`.
    pub fn create(
        namespace: &NamespaceSecret,
        author: &Author,
        key: impl AsRef<[u8]>,
        record: Record,
    ) -> Self {
        let id = RecordIdentifier::new(namespace.id(), author.id(), key);
        Entry::new(id, record).sign(namespace, author)
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The signatures.
    pub fn signature(&self) -> &EntrySignature {
        &self.signature
    }

    /// The identifier.
    pub fn id(&self) -> &RecordIdentifier {
        &self.entry.id
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.entry.record
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        self.entry.namespace()
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        self.entry.author()
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.entry.key()
    }

    /// The timestamp.
    pub fn timestamp(&self) -> u64 {
        self.entry.record.timestamp
    }

    /// The content hash.
    pub fn content_hash(&self) -> ContentHash {
        self.entry.record.hash
    }

    /// The content length.
    pub fn content_len(&self) -> u64 {
        self.entry.record.len
    }

    /// Splits into signatures and entry.
    pub fn into_parts(self) -> (EntrySignature, Entry) {
        (self.signature, self.entry)
    }

    /// Verifies both signatures strictly: the namespace's first, then the author's.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let msg = self.entry.signed_bytes();
        let namespace = self
            .namespace()
            .public_key()
            .map_err(|_| VerifyError::NamespaceKey)?;
        namespace.verify(&msg, &self.signature.namespace)?;
        let author = self
            .author()
            .public_key()
            .map_err(|_| VerifyError::AuthorKey)?;
        author.verify(&msg, &self.signature.author)?;
        Ok(())
    }

    /// Verifies the signatures of many entries at once, on up to `threads` threads. Result `i`
    /// is what `entries[i].verify()` returns: the batch is exactly as strict as one-by-one
    /// verification (a signature that strict verification refuses passes a batch with
    /// probability at most 2^-64, with fresh randomness every batch), and any entry the batch
    /// cannot vouch for is verified alone. Batches of fewer than about 50 entries per thread
    /// are verified one by one.
    pub fn verify_batch(
        entries: &[&SignedEntry],
        threads: std::num::NonZeroUsize,
    ) -> Vec<Result<(), VerifyError>> {
        crate::batch::verify_all(entries, threads)
    }

    /// [`Self::validate`] with [`SignatureCheck::Verify`] for many entries: the cheap checks
    /// entry by entry, then the signatures of those that passed with [`Self::verify_batch`].
    /// Result `i` is what `entries[i].validate(..)` returns.
    pub fn validate_batch(
        entries: &[&SignedEntry],
        expected: NamespaceId,
        now_micros: u64,
        config: &ValidationConfig,
        threads: std::num::NonZeroUsize,
    ) -> Vec<Result<(), ValidationError>> {
        crate::batch::validate_all(entries, expected, now_micros, config, threads)
    }

    /// [`Self::validate_batch`] on `threads` background threads, for a session that stores
    /// entries while later ones are still being checked: the entries are checked in chunks of
    /// 256 (a batch each), and the verdicts come out in order, a chunk at a time, as
    /// [`ranger::Verdicts`] (what [`ranger::Hooks::validate_stream`] returns). Verdict `i` is
    /// what `entries[i].validate(..)` returns. Fewer than 512 entries are checked at once, on
    /// the calling thread.
    pub fn validate_streamed(
        entries: &[&SignedEntry],
        expected: NamespaceId,
        now_micros: u64,
        config: ValidationConfig,
        threads: std::num::NonZeroUsize,
    ) -> ranger::Verdicts<ValidationError> {
        crate::batch::validate_streamed(entries, expected, now_micros, config, threads)
    }

    /// Checks everything that makes an entry acceptable to the replica `expected`, at local time
    /// `now_micros`, cheapest check first: the namespace, the key length, the empty-entry rule
    /// (length 0 exactly when the hash is the empty hash), the future-timestamp window, and then
    /// (unless `check` is [`SignatureCheck::Skip`]) both signatures.
    ///
    /// iroh-docs checks the empty-entry rule only for entries that arrive by gossip; here every
    /// entry obeys it, since an entry that breaks it can only be forged.
    pub fn validate(
        &self,
        expected: NamespaceId,
        now_micros: u64,
        config: &ValidationConfig,
        check: SignatureCheck,
    ) -> Result<(), ValidationError> {
        if self.namespace() != expected {
            return Err(ValidationError::InvalidNamespace);
        }
        let len = self.key().len();
        if len > config.max_key_len {
            return Err(ValidationError::KeyTooLong {
                len,
                max: config.max_key_len,
            });
        }
        if self.record().is_empty() != (self.content_len() == 0) {
            return Err(ValidationError::InvalidEmptyEntry);
        }
        if self.timestamp() > now_micros.saturating_add(config.max_future_shift_micros) {
            return Err(ValidationError::TooFarInTheFuture);
        }
        if check == SignatureCheck::Verify {
            self.verify().map_err(ValidationError::BadSignature)?;
        }
        Ok(())
    }
}

impl Ord for SignedEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.entry
            .cmp(&other.entry)
            .then_with(|| self.signature.cmp(&other.signature))
    }
}

impl PartialOrd for SignedEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl RangeEntry for SignedEntry {
    type Key = RecordIdentifier;
    type Value = Record;

    fn key(&self) -> &RecordIdentifier {
        &self.entry.id
    }

    fn value(&self) -> &Record {
        &self.entry.record
    }

    fn fingerprint(&self) -> Fingerprint {
        self.entry.fingerprint()
    }

    /// The postcard size of the entry plus one byte for the content status that travels with
    /// every value of a range item.
    fn encoded_len(&self) -> usize {
        crate::encoding::Encode::encoded_len(self) + 1
    }
}
