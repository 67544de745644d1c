//! The compact encoding of `/docsync/1`: the messages of `/iroh-sync/1`, without what a session
//! already knows.
//!
//! Two of our nodes negotiate it by ALPN (the dialer offers `/docsync/1` first and
//! `/iroh-sync/1` second; a reference node knows only the second). The messages, their meaning
//! and the session rules are those of `/iroh-sync/1`; only the bytes differ:
//!
//! ```text
//! frame     u32 BE length | body
//! body      0x00 | namespace(32) | message                      Init
//!           0x01 | message                                      Sync
//!           0x02 | reason (0 NotFound, 1 AlreadySyncing, 2 InternalServerError)   Abort
//! message   varint(#authors) | author(32)* | varint(#parts) | part*
//! part      0x00 | bound x | bound y | fingerprint(32)          RangeFingerprint
//!           0x01 | x | y | varint(#values) | value*            RangeItem, have_local = false
//!           0x02 | x | y | varint(#values) | value*            RangeItem, have_local = true
//! bound     varint(0)                                           the all-zero identifier
//!           varint(1 + author) | key                           (session namespace, author, key)
//! value     varint(author) | key | hash(32) | varint(len)
//!           | varint(zigzag(timestamp - previous timestamp))
//!           | author signature(64) | namespace signature(64) | status(1)
//! key       varint(shared) | varint(#rest) | rest              previous key[..shared] ++ rest
//! ```
//!
//! The namespace is the session's (from `Init`) and never repeated. `author` indexes the
//! message's author table, whose authors appear in the order of their first use. `key` shares
//! its first `shared` bytes with the previous key of the message (bounds and values in the
//! order written, the zero identifier excepted; none before the first), `shared` being the
//! longest common prefix. Timestamps are deltas to the previous value's (0 before the first),
//! wrapping. Signatures, hashes and fingerprints are those of `/iroh-sync/1`, so an entry
//! decodes to the same `SignedEntry`, signed bytes and all.
//!
//! Every encoding is canonical: decoding refuses duplicate or unused authors, authors out of
//! first-use order and shared prefixes that are not the longest, so an accepted body re-encodes
//! to the same bytes. A body is never longer than the `/iroh-sync/1` body of the same message,
//! but for a message without parts (one byte more, the empty author table): each identifier and entry saves the 32-byte
//! namespace and most of the 32-byte author, more than a table row, a prefix length and a
//! timestamp delta can add. So the message budget and the frame limit hold for both encodings. Decoding is total and allocates no more than the
//! body's size.

use std::collections::HashMap;

use ranger::{Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem};
use sync_core::encoding::{DecodeLimits, Reader, write_varint};
use sync_core::{
    AuthorId, ContentHash, ContentStatus, DecodeError, Entry, EntrySignature, NamespaceId, Record,
    RecordIdentifier, SignedEntry,
};

use crate::wire::{ProtocolMessage, WireError, WireMessage};

/// The ALPN of the compact encoding.
pub const COMPACT_ALPN: &[u8] = b"/docsync/1";

/// Why a compact body was refused beyond the malformations common to both encodings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// An author index beyond the message's table.
    #[error("author index {index} beyond a table of {authors}")]
    AuthorIndex {
        /// The index found.
        index: u64,
        /// The table's length.
        authors: usize,
    },
    /// A key shares more bytes with the previous key than it has.
    #[error("key shares {shared} bytes with a previous key of {previous}")]
    SharedPrefix {
        /// The shared length found.
        shared: u64,
        /// The previous key's length.
        previous: usize,
    },
    /// A valid but not canonical encoding (see the module docs).
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// A `Sync` body arrived before the session's namespace was known.
    #[error("a compact Sync message before Init")]
    NoNamespace,
}

/// The state shared by the values and bounds of one message, in the order written.
#[derive(Default)]
struct Context {
    key: Vec<u8>,
    timestamp: u64,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Builds the author table (first-use order) while the message is encoded.
struct Encoder<'a> {
    namespace: NamespaceId,
    authors: HashMap<AuthorId, u64>,
    table: Vec<AuthorId>,
    ctx: Context,
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn author(&mut self, author: AuthorId) -> u64 {
        let next = self.table.len() as u64;
        *self.authors.entry(author).or_insert_with(|| {
            self.table.push(author);
            next
        })
    }

    fn key(&mut self, key: &[u8]) {
        let shared = common_prefix(&self.ctx.key, key);
        write_varint(self.out, shared as u64);
        write_varint(self.out, (key.len() - shared) as u64);
        self.out.extend_from_slice(&key[shared..]);
        self.ctx.key.clear();
        self.ctx.key.extend_from_slice(key);
    }

    fn bound(&mut self, id: &RecordIdentifier) -> Result<(), WireError> {
        if *id == RecordIdentifier::zero() {
            write_varint(self.out, 0);
            return Ok(());
        }
        if id.namespace() != self.namespace {
            return Err(WireError::ForeignRange);
        }
        let author = self.author(id.author());
        write_varint(self.out, 1 + author);
        self.key(id.key());
        Ok(())
    }

    fn value(&mut self, entry: &SignedEntry, status: ContentStatus) -> Result<(), WireError> {
        if entry.namespace() != self.namespace {
            return Err(WireError::ForeignEntry);
        }
        let author = self.author(entry.author());
        write_varint(self.out, author);
        self.key(entry.key());
        self.out.extend_from_slice(entry.content_hash().as_bytes());
        write_varint(self.out, entry.content_len());
        let ts = entry.timestamp();
        write_varint(self.out, zigzag(ts.wrapping_sub(self.ctx.timestamp) as i64));
        self.ctx.timestamp = ts;
        let signature = entry.signature();
        self.out.extend_from_slice(signature.author());
        self.out.extend_from_slice(signature.namespace());
        self.out.push(match status {
            ContentStatus::Complete => 0,
            ContentStatus::Incomplete => 1,
            ContentStatus::Missing => 2,
        });
        Ok(())
    }
}

/// Appends the compact encoding of `message`, a message of the session on `namespace`. Fails
/// only for a range bound or entry of another document (which our sessions never send).
pub fn encode_message(
    message: &ProtocolMessage,
    namespace: NamespaceId,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let mut parts = Vec::new();
    let mut enc = Encoder {
        namespace,
        authors: HashMap::new(),
        table: Vec::new(),
        ctx: Context::default(),
        out: &mut parts,
    };
    write_varint(enc.out, message.parts.len() as u64);
    for part in &message.parts {
        match part {
            MessagePart::RangeFingerprint(fp) => {
                enc.out.push(0);
                enc.bound(&fp.range.x)?;
                enc.bound(&fp.range.y)?;
                enc.out.extend_from_slice(fp.fingerprint.as_bytes());
            }
            MessagePart::RangeItem(item) => {
                enc.out.push(if item.have_local { 2 } else { 1 });
                enc.bound(&item.range.x)?;
                enc.bound(&item.range.y)?;
                write_varint(enc.out, item.values.len() as u64);
                for (entry, status) in &item.values {
                    enc.value(entry, *status)?;
                }
            }
        }
    }
    write_varint(out, enc.table.len() as u64);
    for author in &enc.table {
        out.extend_from_slice(author.as_bytes());
    }
    out.extend_from_slice(&parts);
    Ok(())
}

/// The smallest encoded part: a tag and two zero bounds.
const MIN_PART_LEN: usize = 3;

/// The smallest encoded value: author, an empty key (two bytes), hash, length, timestamp,
/// both signatures and the status.
const MIN_VALUE_LEN: usize = 1 + 2 + 32 + 1 + 1 + 128 + 1;

struct Decoder<'r, 'a> {
    r: &'r mut Reader<'a>,
    namespace: NamespaceId,
    table: Vec<AuthorId>,
    /// Authors used so far: they must come in table order.
    used: usize,
    ctx: Context,
}

impl Decoder<'_, '_> {
    fn author(&mut self, index: u64) -> Result<AuthorId, WireError> {
        let bad = CompactError::AuthorIndex {
            index,
            authors: self.table.len(),
        };
        let i = usize::try_from(index).map_err(|_| bad.clone())?;
        let author = *self.table.get(i).ok_or(bad)?;
        if i > self.used {
            return Err(CompactError::NonCanonical("authors out of first-use order").into());
        }
        if i == self.used {
            self.used += 1;
        }
        Ok(author)
    }

    fn key(&mut self) -> Result<(), WireError> {
        let shared = self.r.varint()?;
        let previous = self.ctx.key.len();
        let bad = CompactError::SharedPrefix { shared, previous };
        let shared = usize::try_from(shared).map_err(|_| bad.clone())?;
        if shared > previous {
            return Err(bad.into());
        }
        let rest = self.r.bytes()?;
        let len = shared.saturating_add(rest.len());
        let max = self.r.limits().max_key_len;
        if len > max {
            return Err(DecodeError::KeyTooLong { len, max }.into());
        }
        if let (Some(first), Some(next)) = (rest.first(), self.ctx.key.get(shared))
            && first == next
        {
            return Err(CompactError::NonCanonical("shared prefix not the longest").into());
        }
        self.ctx.key.truncate(shared);
        self.ctx.key.extend_from_slice(rest);
        Ok(())
    }

    fn bound(&mut self) -> Result<RecordIdentifier, WireError> {
        let tag = self.r.varint()?;
        if tag == 0 {
            return Ok(RecordIdentifier::zero());
        }
        let author = self.author(tag - 1)?;
        self.key()?;
        let id = RecordIdentifier::new(self.namespace, author, &self.ctx.key);
        if id == RecordIdentifier::zero() {
            return Err(CompactError::NonCanonical("the zero identifier spelled out").into());
        }
        Ok(id)
    }

    fn range(&mut self) -> Result<Range<RecordIdentifier>, WireError> {
        let x = self.bound()?;
        let y = self.bound()?;
        Ok(Range::new(x, y))
    }

    fn value(&mut self) -> Result<(SignedEntry, ContentStatus), WireError> {
        let index = self.r.varint()?;
        let author = self.author(index)?;
        self.key()?;
        let hash = ContentHash::from_bytes(self.r.array()?);
        let len = self.r.varint()?;
        let delta = unzigzag(self.r.varint()?);
        let timestamp = self.ctx.timestamp.wrapping_add(delta as u64);
        self.ctx.timestamp = timestamp;
        let author_signature = self.r.array()?;
        let namespace_signature = self.r.array()?;
        let status = match self.r.u8()? {
            0 => ContentStatus::Complete,
            1 => ContentStatus::Incomplete,
            2 => ContentStatus::Missing,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "ContentStatus",
                    tag: u64::from(tag),
                }
                .into());
            }
        };
        let id = RecordIdentifier::new(self.namespace, author, &self.ctx.key);
        let entry = SignedEntry::from_parts(
            EntrySignature::from_parts(author_signature, namespace_signature),
            Entry::new(id, Record::new(hash, len, timestamp)),
        );
        Ok((entry, status))
    }
}

/// Reads a compact message of the session on `namespace`.
pub fn decode_message(
    r: &mut Reader<'_>,
    namespace: NamespaceId,
) -> Result<ProtocolMessage, WireError> {
    let authors = r.seq_len(32)?;
    let mut table = Vec::with_capacity(authors);
    for _ in 0..authors {
        table.push(AuthorId::from_bytes(r.array()?));
    }
    let mut sorted = table.clone();
    sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(CompactError::NonCanonical("an author twice in the table").into());
    }
    let mut d = Decoder {
        r,
        namespace,
        table,
        used: 0,
        ctx: Context::default(),
    };
    let n = d.r.seq_len(MIN_PART_LEN)?;
    let mut parts = Vec::with_capacity(n);
    for _ in 0..n {
        let part = match d.r.u8()? {
            0 => {
                let range = d.range()?;
                let fingerprint = Fingerprint(d.r.array()?);
                MessagePart::RangeFingerprint(RangeFingerprint { range, fingerprint })
            }
            tag @ (1 | 2) => {
                let range = d.range()?;
                let count = d.r.seq_len(MIN_VALUE_LEN)?;
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(d.value()?);
                }
                MessagePart::RangeItem(RangeItem {
                    range,
                    values,
                    have_local: tag == 2,
                })
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "MessagePart",
                    tag: u64::from(tag),
                }
                .into());
            }
        };
        parts.push(part);
    }
    if d.used != d.table.len() {
        return Err(CompactError::NonCanonical("an author the message does not use").into());
    }
    Ok(Message::new(parts))
}

/// The compact body of `message`. `namespace` is the session's: needed for `Sync` (an `Init`
/// names its own, and an `Abort` has none).
pub fn encode(message: &WireMessage, namespace: Option<NamespaceId>) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    match message {
        WireMessage::Init { namespace, message } => {
            out.push(0);
            out.extend_from_slice(namespace.as_bytes());
            encode_message(message, *namespace, &mut out)?;
        }
        WireMessage::Sync(message) => {
            out.push(1);
            let namespace = namespace.ok_or(CompactError::NoNamespace)?;
            encode_message(message, namespace, &mut out)?;
        }
        WireMessage::Abort { reason } => {
            out.push(2);
            out.push(crate::wire::abort_tag(*reason));
        }
    }
    Ok(out)
}

/// Decodes one compact body; trailing bytes are an error. `namespace` is the session's, if
/// known (a `Sync` before it is an error).
pub fn decode(
    body: &[u8],
    namespace: Option<NamespaceId>,
    limits: DecodeLimits,
) -> Result<WireMessage, WireError> {
    let mut r = Reader::new(body, limits);
    let message = match r.u8()? {
        0 => {
            let namespace = NamespaceId::from_bytes(r.array()?);
            let message = decode_message(&mut r, namespace)?;
            WireMessage::Init { namespace, message }
        }
        1 => {
            let namespace = namespace.ok_or(CompactError::NoNamespace)?;
            WireMessage::Sync(decode_message(&mut r, namespace)?)
        }
        2 => WireMessage::Abort {
            reason: crate::wire::abort_from_tag(u64::from(r.u8()?))?,
        },
        tag => {
            return Err(DecodeError::UnknownTag {
                what: "Message",
                tag: u64::from(tag),
            }
            .into());
        }
    };
    r.finish()?;
    Ok(message)
}
