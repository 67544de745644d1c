//! Every byte of `/iroh-sync/1`: the ALPN, the frame, the messages, their encoding and limits;
//! and the [`Codec`] choice between it and the compact encoding of `/docsync/1`
//! ([`crate::compact`]) that our nodes speak among themselves.
//!
//! ```text
//! frame        u32 BE length | body (postcard)
//! body         0x00 | namespace(32) | ProtocolMessage          Init
//!              0x01 | ProtocolMessage                          Sync
//!              0x02 | reason (0 NotFound, 1 AlreadySyncing, 2 InternalServerError)   Abort
//! ProtocolMessage   varint(#parts) | part*
//! part         0x00 | RecordIdentifier x | RecordIdentifier y | fingerprint(32)     RangeFingerprint
//!              0x01 | x | y | varint(#values) | (SignedEntry | status)* | have_local(0/1)   RangeItem
//! status       0 Complete, 1 Incomplete, 2 Missing
//! ```
//!
//! Record identifiers and signed entries are encoded by `sync-core` (`sync_core::encoding`).
//! Decoding is total: any byte string yields a message or a [`WireError`], never a panic, and
//! no allocation larger than the frame itself.

use ranger::{Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem};
use sync_core::encoding::{
    Decode, DecodeLimits, Encode, MIN_SIGNED_ENTRY_LEN, Reader, write_varint,
};
use sync_core::{ContentStatus, DecodeError, NamespaceId, RecordIdentifier, SignedEntry};

pub use crate::compact::{COMPACT_ALPN, CompactError};

/// The ALPN of the sync protocol, the same as iroh-docs'.
pub const ALPN: &[u8] = b"/iroh-sync/1";

/// The reference's frame limit (1 GiB); far above ours.
pub const REFERENCE_MAX_FRAME: usize = 1024 * 1024 * 1024;

/// The default largest frame accepted and sent: 16 MiB. Our own messages stay under the
/// session's budget (far smaller); a reference node sends larger ones only when a peer is empty
/// and a range holds more than about 60 000 entries (one item then carries all of them).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// A reconciliation message.
pub type ProtocolMessage = Message<SignedEntry, ContentStatus>;

/// Why a session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// The document is unknown here or not open for sync.
    NotFound,
    /// A session for this document with this peer is already running.
    AlreadySyncing,
    /// The node failed.
    InternalServerError,
}

/// One frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// The first message of the dialer.
    Init {
        /// The document.
        namespace: NamespaceId,
        /// The first reconciliation message.
        message: ProtocolMessage,
    },
    /// Every later message.
    Sync(ProtocolMessage),
    /// The end of a refused or failed session.
    Abort {
        /// Why.
        reason: AbortReason,
    },
}

/// A frame or message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is malformed.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A range part's two bounds belong to different documents, or to another document than
    /// the session's.
    #[error("a range bound belongs to another document")]
    ForeignRange,
    /// An entry to encode belongs to another document than the session's (the compact
    /// encoding has no room for it).
    #[error("an entry belongs to another document")]
    ForeignEntry,
    /// A compact body breaks a rule of its own (see [`crate::compact`]).
    #[error("malformed compact message: {0}")]
    Compact(#[from] CompactError),
}

/// The encoding a connection speaks, decided by its ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// `/iroh-sync/1`, iroh-docs' postcard encoding; every peer speaks it.
    #[default]
    Reference,
    /// `/docsync/1`, the same messages without what the session knows
    /// ([`crate::compact`]); only our nodes speak it.
    Compact,
}

impl Codec {
    /// The codec of a connection that negotiated `alpn`, if it is one of ours.
    pub fn from_alpn(alpn: &[u8]) -> Option<Self> {
        match alpn {
            ALPN => Some(Codec::Reference),
            COMPACT_ALPN => Some(Codec::Compact),
            _ => None,
        }
    }

    /// The ALPN that selects this codec.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Codec::Reference => ALPN,
            Codec::Compact => COMPACT_ALPN,
        }
    }

    /// The body of `message`; `namespace` is the session's if known (the compact encoding
    /// needs it for `Sync`).
    pub fn encode(
        self,
        message: &WireMessage,
        namespace: Option<NamespaceId>,
    ) -> Result<Vec<u8>, WireError> {
        match self {
            Codec::Reference => Ok(message.encode()),
            Codec::Compact => crate::compact::encode(message, namespace),
        }
    }

    /// Decodes one body; see [`WireMessage::decode`] and [`crate::compact::decode`].
    pub fn decode(
        self,
        body: &[u8],
        namespace: Option<NamespaceId>,
        limits: DecodeLimits,
    ) -> Result<WireMessage, WireError> {
        match self {
            Codec::Reference => WireMessage::decode(body, limits),
            Codec::Compact => crate::compact::decode(body, namespace, limits),
        }
    }

    /// The frame of `message`: u32 big-endian body length, then the body. Fails if the body
    /// exceeds `max`.
    pub fn to_frame(
        self,
        message: &WireMessage,
        namespace: Option<NamespaceId>,
        max: usize,
    ) -> Result<Vec<u8>, WireError> {
        frame(self.encode(message, namespace)?, max)
    }
}

fn frame(body: Vec<u8>, max: usize) -> Result<Vec<u8>, WireError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= max)
        .ok_or(WireError::FrameTooLarge {
            len: body.len(),
            max,
        })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

pub(crate) fn abort_tag(reason: AbortReason) -> u8 {
    match reason {
        AbortReason::NotFound => 0,
        AbortReason::AlreadySyncing => 1,
        AbortReason::InternalServerError => 2,
    }
}

pub(crate) fn abort_from_tag(tag: u64) -> Result<AbortReason, DecodeError> {
    match tag {
        0 => Ok(AbortReason::NotFound),
        1 => Ok(AbortReason::AlreadySyncing),
        2 => Ok(AbortReason::InternalServerError),
        tag => Err(DecodeError::UnknownTag {
            what: "AbortReason",
            tag,
        }),
    }
}

fn encode_status(status: ContentStatus, out: &mut Vec<u8>) {
    out.push(match status {
        ContentStatus::Complete => 0,
        ContentStatus::Incomplete => 1,
        ContentStatus::Missing => 2,
    });
}

fn decode_status(r: &mut Reader<'_>) -> Result<ContentStatus, DecodeError> {
    match r.varint()? {
        0 => Ok(ContentStatus::Complete),
        1 => Ok(ContentStatus::Incomplete),
        2 => Ok(ContentStatus::Missing),
        tag => Err(DecodeError::UnknownTag {
            what: "ContentStatus",
            tag,
        }),
    }
}

fn encode_range(range: &Range<RecordIdentifier>, out: &mut Vec<u8>) {
    range.x.encode(out);
    range.y.encode(out);
}

fn decode_range(r: &mut Reader<'_>) -> Result<Range<RecordIdentifier>, DecodeError> {
    let x = RecordIdentifier::decode(r)?;
    let y = RecordIdentifier::decode(r)?;
    Ok(Range::new(x, y))
}

/// Appends the encoding of a reconciliation message.
pub fn encode_protocol_message(message: &ProtocolMessage, out: &mut Vec<u8>) {
    write_varint(out, message.parts.len() as u64);
    for part in &message.parts {
        match part {
            MessagePart::RangeFingerprint(fp) => {
                out.push(0);
                encode_range(&fp.range, out);
                out.extend_from_slice(fp.fingerprint.as_bytes());
            }
            MessagePart::RangeItem(item) => {
                out.push(1);
                encode_range(&item.range, out);
                write_varint(out, item.values.len() as u64);
                for (entry, status) in &item.values {
                    entry.encode(out);
                    encode_status(*status, out);
                }
                out.push(u8::from(item.have_local));
            }
        }
    }
}

/// The smallest encoded part: a tag, two 64-byte identifiers with their length bytes.
const MIN_PART_LEN: usize = 1 + 2 * 65;

/// Reads a reconciliation message.
pub fn decode_protocol_message(r: &mut Reader<'_>) -> Result<ProtocolMessage, DecodeError> {
    let n = r.seq_len(MIN_PART_LEN)?;
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        let part = match r.varint()? {
            0 => {
                let range = decode_range(r)?;
                let fingerprint = Fingerprint(r.array()?);
                MessagePart::RangeFingerprint(RangeFingerprint { range, fingerprint })
            }
            1 => {
                let range = decode_range(r)?;
                let count = r.seq_len(MIN_SIGNED_ENTRY_LEN + 1)?;
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    let entry = SignedEntry::decode(r)?;
                    let status = decode_status(r)?;
                    values.push((entry, status));
                }
                let have_local = r.bool()?;
                MessagePart::RangeItem(RangeItem {
                    range,
                    values,
                    have_local,
                })
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "MessagePart",
                    tag,
                });
            }
        };
        parts.push(part);
    }
    Ok(Message::new(parts))
}

impl WireMessage {
    /// The body bytes (without the frame length).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            WireMessage::Init { namespace, message } => {
                out.push(0);
                out.extend_from_slice(namespace.as_bytes());
                encode_protocol_message(message, &mut out);
            }
            WireMessage::Sync(message) => {
                out.push(1);
                encode_protocol_message(message, &mut out);
            }
            WireMessage::Abort { reason } => {
                out.push(2);
                out.push(abort_tag(*reason));
            }
        }
        out
    }

    /// Decodes one body; trailing bytes are an error.
    pub fn decode(body: &[u8], limits: DecodeLimits) -> Result<Self, WireError> {
        let mut r = Reader::new(body, limits);
        let message = match r.varint()? {
            0 => {
                let namespace = NamespaceId::from_bytes(r.array()?);
                let message = decode_protocol_message(&mut r)?;
                WireMessage::Init { namespace, message }
            }
            1 => WireMessage::Sync(decode_protocol_message(&mut r)?),
            2 => WireMessage::Abort {
                reason: abort_from_tag(r.varint()?)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "Message",
                    tag,
                }
                .into());
            }
        };
        r.finish()?;
        Ok(message)
    }

    /// The frame: u32 big-endian body length, then the body. Fails if the body exceeds `max`.
    pub fn to_frame(&self, max: usize) -> Result<Vec<u8>, WireError> {
        frame(self.encode(), max)
    }
}

/// Bytes the frame and the `Init` header add to a reconciliation message: length (4), tag (1)
/// and namespace (32). Subtract from the frame limit to get the session's message budget.
pub const INIT_OVERHEAD: usize = 4 + 1 + 32;

/// Checks that every range bound of `message` is an identifier of `namespace` or the all-zero
/// identifier (which an empty replica uses as its anchor, and which bounded replies may echo).
/// A bound from another document earns a typed error instead of any answer about it; the store
/// view clips ranges to the document as well, so this is the second of two fences.
pub fn check_ranges(message: &ProtocolMessage, namespace: NamespaceId) -> Result<(), WireError> {
    let zero = RecordIdentifier::zero();
    let ok = |id: &RecordIdentifier| id.namespace() == namespace || *id == zero;
    for part in &message.parts {
        let range = part.range();
        if !ok(&range.x) || !ok(&range.y) {
            return Err(WireError::ForeignRange);
        }
    }
    Ok(())
}
