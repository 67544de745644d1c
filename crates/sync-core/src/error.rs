//! The error types of this crate, one per failing operation.

/// Parsing a key or id from text or bytes failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// The text is not 64 characters long.
    #[error("expected 64 hex characters, got {len}")]
    Length {
        /// The length of the text.
        len: usize,
    },
    /// The text is not hexadecimal.
    #[error("not a hex string")]
    NotHex,
    /// The bytes are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    NotAPublicKey,
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The namespace's public key is not a valid curve point.
    #[error("the namespace id is not a valid public key")]
    NamespaceKey,
    /// The author's public key is not a valid curve point.
    #[error("the author id is not a valid public key")]
    AuthorKey,
    /// The namespace signature is invalid.
    #[error("the namespace signature is invalid")]
    Namespace,
    /// The author signature is invalid.
    #[error("the author signature is invalid")]
    Author,
}

/// Decoding bytes (the postcard wire form) failed. The input is never trusted: every way it can
/// be wrong is one of these, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A variable-length integer is longer than its type allows, or not in its shortest form.
    #[error("malformed varint")]
    BadVarint,
    /// An enum tag that the format does not define.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// The type being decoded.
        what: &'static str,
        /// The tag found.
        tag: u64,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid bool byte {0}")]
    BadBool(u8),
    /// A record identifier shorter than namespace and author (64 bytes).
    #[error("record identifier of {0} bytes is shorter than 64")]
    ShortIdentifier(usize),
    /// A key longer than the configured bound.
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLong {
        /// The length found.
        len: usize,
        /// The configured bound.
        max: usize,
    },
    /// A length prefix that must have a fixed value does not.
    #[error("expected a length of {expected}, got {found}")]
    BadLength {
        /// The only valid length.
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// A sequence longer than the input could possibly hold.
    #[error("sequence of {0} elements cannot fit the input")]
    TooManyElements(u64),
}

/// An entry failed validation. The variants match iroh-docs' `ValidationFailure`, plus the key
/// bound that the reference lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The entry belongs to another namespace than the replica it was offered to.
    #[error("the entry belongs to another namespace")]
    InvalidNamespace,
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(VerifyError),
    /// The timestamp is further in the future than the allowed clock skew.
    #[error("the timestamp is too far in the future")]
    TooFarInTheFuture,
    /// Exactly one of "length is 0" and "hash is the empty hash" holds.
    #[error("length 0 and the empty hash must go together")]
    InvalidEmptyEntry,
    /// The key is longer than the configured bound.
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLong {
        /// The key length.
        len: usize,
        /// The configured bound.
        max: usize,
    },
}

/// Entries refused by validation, counted by reason (the typed reasons of a sync session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectionCounts {
    /// [`ValidationError::InvalidNamespace`]: an entry of another document.
    pub invalid_namespace: u64,
    /// [`ValidationError::BadSignature`]: a key that is not a curve point or a signature that
    /// does not verify.
    pub bad_signature: u64,
    /// [`ValidationError::TooFarInTheFuture`].
    pub too_far_in_the_future: u64,
    /// [`ValidationError::InvalidEmptyEntry`].
    pub invalid_empty_entry: u64,
    /// [`ValidationError::KeyTooLong`].
    pub key_too_long: u64,
}

impl RejectionCounts {
    /// Counts one rejection.
    pub fn record(&mut self, reason: &ValidationError) {
        let counter = match reason {
            ValidationError::InvalidNamespace => &mut self.invalid_namespace,
            ValidationError::BadSignature(_) => &mut self.bad_signature,
            ValidationError::TooFarInTheFuture => &mut self.too_far_in_the_future,
            ValidationError::InvalidEmptyEntry => &mut self.invalid_empty_entry,
            ValidationError::KeyTooLong { .. } => &mut self.key_too_long,
        };
        *counter += 1;
    }

    /// Every rejection, whatever the reason.
    pub fn total(&self) -> u64 {
        self.invalid_namespace
            + self.bad_signature
            + self.too_far_in_the_future
            + self.invalid_empty_entry
            + self.key_too_long
    }
}

/// Merging two capabilities failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// The capabilities are for different namespaces.
    #[error("the capabilities are for different namespaces")]
    NamespaceMismatch,
}

/// The operation needs the namespace secret, but only the id is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the replica is read-only: the namespace secret is not known")]
pub struct ReadOnlyError;
