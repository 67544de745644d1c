//! The postcard encodings of the data model, written by hand.
//!
//! iroh-docs serialises these types with serde and postcard 1.x. Producing the same bytes by hand
//! keeps the wire format in one readable place, safe from a dependency changing its serde
//! representation (iroh-docs 0.99.0 broke its own wire format that way when ed25519 3.0 began to
//! length-prefix signatures), and lets decoding check every bound before it allocates.
//!
//! Postcard rules used here: unsigned integers are LEB128 varints (at most 10 bytes for a u64,
//! shortest form only); byte strings and sequences carry a varint length; fixed-size arrays are
//! raw; enum variants are varint indices; struct fields follow in declaration order.
//!
//! ```text
//! RecordIdentifier  varint(n) | namespace(32) | author(32) | key(n - 64)
//! Record            varint(len) | hash(32) | varint(timestamp)
//! SignedEntry       author_sig(64) | namespace_sig(64) | RecordIdentifier | Record
//! Author, NamespaceSecret   0x20 | secret(32)
//! NamespaceId, AuthorId     id(32)
//! Capability        0x00 | 0x20 | secret(32)   (write)
//!                   0x01 | id(32)              (read)
//! ```

use crate::capability::Capability;
use crate::entry::{
    ContentHash, DEFAULT_MAX_KEY_LEN, Entry, EntrySignature, ID_PREFIX_LEN, Record,
    RecordIdentifier, SignedEntry,
};
use crate::error::DecodeError;
use crate::keys::{Author, AuthorId, KEY_LEN, NamespaceId, NamespaceSecret, SIGNATURE_LEN};

/// The number of bytes of the varint encoding of `v`.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Appends the varint encoding of `v`.
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-prefixed byte string.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Bounds applied while decoding input from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// The longest key accepted in a record identifier.
    pub max_key_len: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_key_len: DEFAULT_MAX_KEY_LEN,
        }
    }
}

impl DecodeLimits {
    /// Limits with this key bound.
    pub fn with_max_key_len(max_key_len: usize) -> Self {
        Self { max_key_len }
    }
}

/// A cursor over untrusted input. Every read checks the remaining length; nothing panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    limits: DecodeLimits,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8], limits: DecodeLimits) -> Self {
        Self { buf, limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// The number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless all input has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a bool (0 or 1).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::BadBool(b)),
        }
    }

    /// Reads a u64 varint in its shortest form.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds only the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // A zero final byte after the first means a longer form than needed.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::BadVarint);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Reads a varint that counts elements of at least `min_elem_len` bytes each, checking it
    /// against the remaining input so that no allocation can exceed the input's size.
    pub fn seq_len(&mut self, min_elem_len: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let max = self.buf.len() / min_elem_len.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(DecodeError::TooManyElements(n)),
        }
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.seq_len(1)?;
        self.take(n)
    }
}

/// A type with a postcard encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The exact length of the encoding.
    fn encoded_len(&self) -> usize;

    /// The encoding as a new vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

/// A type that can be decoded from untrusted postcard bytes.
pub trait Decode: Sized {
    /// Reads one value.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes exactly one value from `buf`: trailing bytes are an error.
    fn from_slice(buf: &[u8], limits: DecodeLimits) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(buf, limits);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

impl Encode for RecordIdentifier {
    fn encode(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        let n = self.as_bytes().len();
        varint_len(n as u64) + n
    }
}

impl Decode for RecordIdentifier {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = reader.bytes()?;
        if bytes.len() < ID_PREFIX_LEN {
            return Err(DecodeError::ShortIdentifier(bytes.len()));
        }
        let key_len = bytes.len() - ID_PREFIX_LEN;
        let max = reader.limits().max_key_len;
        if key_len > max {
            return Err(DecodeError::KeyTooLong { len: key_len, max });
        }
        RecordIdentifier::copy_from_slice(bytes)
    }
}

impl Encode for Record {
    fn encode(&self, out: &mut Vec<u8>) {
        write_varint(out, self.content_len());
        out.extend_from_slice(self.content_hash().as_bytes());
        write_varint(out, self.timestamp());
    }
    fn encoded_len(&self) -> usize {
        varint_len(self.content_len()) + 32 + varint_len(self.timestamp())
    }
}

impl Decode for Record {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = reader.varint()?;
        let hash = ContentHash::from_bytes(reader.array()?);
        let timestamp = reader.varint()?;
        Ok(Record::new(hash, len, timestamp))
    }
}

impl Encode for SignedEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.signature().author());
        out.extend_from_slice(self.signature().namespace());
        self.id().encode(out);
        self.record().encode(out);
    }
    fn encoded_len(&self) -> usize {
        2 * SIGNATURE_LEN + self.id().encoded_len() + self.record().encoded_len()
    }
}

impl Decode for SignedEntry {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let author = reader.array::<SIGNATURE_LEN>()?;
        let namespace = reader.array::<SIGNATURE_LEN>()?;
        let id = RecordIdentifier::decode(reader)?;
        let record = Record::decode(reader)?;
        Ok(SignedEntry::from_parts(
            EntrySignature::from_parts(author, namespace),
            Entry::new(id, record),
        ))
    }
}

/// The smallest possible encoded [`SignedEntry`]: two signatures, a 64-byte identifier with its
/// one-byte length, and a record with one-byte varints.
pub const MIN_SIGNED_ENTRY_LEN: usize = 2 * SIGNATURE_LEN + 1 + ID_PREFIX_LEN + 1 + 32 + 1;

fn write_secret(out: &mut Vec<u8>, secret: &[u8; KEY_LEN]) {
    write_bytes(out, secret);
}

fn read_secret(reader: &mut Reader<'_>) -> Result<[u8; KEY_LEN], DecodeError> {
    let n = reader.varint()?;
    if n != KEY_LEN as u64 {
        return Err(DecodeError::BadLength {
            expected: KEY_LEN as u64,
            found: n,
        });
    }
    reader.array()
}

impl Encode for Author {
    fn encode(&self, out: &mut Vec<u8>) {
        write_secret(out, &self.to_bytes());
    }
    fn encoded_len(&self) -> usize {
        1 + KEY_LEN
    }
}

impl Decode for Author {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Author::from_bytes(&read_secret(reader)?))
    }
}

impl Encode for NamespaceSecret {
    fn encode(&self, out: &mut Vec<u8>) {
        write_secret(out, &self.to_bytes());
    }
    fn encoded_len(&self) -> usize {
        1 + KEY_LEN
    }
}

impl Decode for NamespaceSecret {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NamespaceSecret::from_bytes(&read_secret(reader)?))
    }
}

impl Encode for NamespaceId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        KEY_LEN
    }
}

impl Decode for NamespaceId {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NamespaceId::from_bytes(reader.array()?))
    }
}

impl Encode for AuthorId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        KEY_LEN
    }
}

impl Decode for AuthorId {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuthorId::from_bytes(reader.array()?))
    }
}

impl Encode for Capability {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Write(secret) => {
                out.push(0);
                secret.encode(out);
            }
            Capability::Read(id) => {
                out.push(1);
                id.encode(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            Capability::Write(secret) => 1 + secret.encoded_len(),
            Capability::Read(id) => 1 + id.encoded_len(),
        }
    }
}

impl Decode for Capability {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.varint()? {
            0 => Ok(Capability::Write(NamespaceSecret::decode(reader)?)),
            1 => Ok(Capability::Read(NamespaceId::decode(reader)?)),
            tag => Err(DecodeError::UnknownTag {
                what: "Capability",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_match_postcard() {
        for v in [0, 1, 127, 128, 300, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let ours = varint_bytes(v);
            assert_eq!(ours, postcard::to_stdvec(&v).unwrap(), "{v}");
            assert_eq!(ours.len(), varint_len(v));
            let mut r = Reader::new(&ours, DecodeLimits::default());
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        let cases: &[&[u8]] = &[
            &[0x80, 0x00],
            &[0xff, 0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ];
        for case in cases {
            let mut r = Reader::new(case, DecodeLimits::default());
            assert_eq!(r.varint(), Err(DecodeError::BadVarint), "{case:02x?}");
        }
        let mut r = Reader::new(&[0x80], DecodeLimits::default());
        assert_eq!(r.varint(), Err(DecodeError::UnexpectedEnd));
    }

    #[test]
    fn sequence_lengths_are_bounded_by_the_input() {
        let mut buf = varint_bytes(1 << 40);
        buf.extend_from_slice(&[0; 10]);
        let mut r = Reader::new(&buf, DecodeLimits::default());
        assert_eq!(r.bytes(), Err(DecodeError::TooManyElements(1 << 40)));
    }
}
