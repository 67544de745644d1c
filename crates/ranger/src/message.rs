//! Messages exchanged by two reconciling peers, and the size estimate used for the budget.
//!
//! These are plain data with the field layout of iroh-docs' `ranger::Message`. They have no
//! encoding of their own: the network layer converts them into its wire structs explicitly.

use crate::{Fingerprint, Range, RangeEntry, RangeKey};

/// Bytes reserved for the header of a message: the varint count of its parts. A postcard varint
/// of a `usize` takes at most 10 bytes.
pub const MESSAGE_OVERHEAD: usize = 10;

/// Bytes of a [`RangeFingerprint`] part beyond its two keys: the part's variant tag (1, a varint
/// of 0) and the fingerprint (32).
pub const FINGERPRINT_PART_OVERHEAD: usize = 1 + 32;

/// Bytes of a [`RangeItem`] part beyond its two keys, the varint count of its values and the
/// values themselves: the part's variant tag (1, a varint of 1) and `have_local` (1).
pub const ITEM_PART_OVERHEAD: usize = 1 + 1;

/// The number of bytes of `n` as a LEB128 varint (postcard's encoding of unsigned integers).
pub fn varint_len(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// One message: a list of parts, each about one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<E: RangeEntry, M> {
    /// The parts, in the order they are sent.
    pub parts: Vec<MessagePart<E, M>>,
}

/// One part of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePart<E: RangeEntry, M> {
    /// "This is my fingerprint of this range."
    RangeFingerprint(RangeFingerprint<E::Key>),
    /// "These are my entries of this range."
    RangeItem(RangeItem<E, M>),
}

/// The sender's fingerprint of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeFingerprint<K> {
    /// The range.
    pub range: Range<K>,
    /// The sender's fingerprint of `range`. [`Fingerprint::EMPTY`] means the sender has nothing in
    /// the range.
    pub fingerprint: Fingerprint,
}

/// Entries of a range, sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeItem<E: RangeEntry, M> {
    /// The range the values come from.
    pub range: Range<E::Key>,
    /// The values with their per-value metadata (iroh-docs attaches a content status).
    pub values: Vec<(E, M)>,
    /// `false`: these are all my entries of the range, please send me yours that I lack.
    /// `true`: this is the answer to such a request; do not answer it.
    pub have_local: bool,
}

impl<E: RangeEntry, M> Message<E, M> {
    /// A message made of `parts`.
    pub fn new(parts: Vec<MessagePart<E, M>>) -> Self {
        Message { parts }
    }

    /// All values carried by the item parts, in order.
    pub fn values(&self) -> impl Iterator<Item = &(E, M)> {
        parts_values(&self.parts)
    }

    /// The number of values carried by the item parts.
    pub fn value_count(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                MessagePart::RangeFingerprint(_) => 0,
                MessagePart::RangeItem(item) => item.values.len(),
            })
            .sum()
    }

    /// An upper bound of the encoded size of this message, from [`RangeKey::encoded_len`],
    /// [`RangeEntry::encoded_len`] and the overhead constants of this module. This is the number
    /// the message budget ([`Config::max_message_bytes`](crate::Config::max_message_bytes)) limits.
    pub fn encoded_len(&self) -> usize {
        parts_len(&self.parts)
    }
}

/// [`Message::values`] of a message of `parts`.
pub(crate) fn parts_values<E: RangeEntry, M>(
    parts: &[MessagePart<E, M>],
) -> impl Iterator<Item = &(E, M)> {
    parts.iter().flat_map(|part| match part {
        MessagePart::RangeFingerprint(_) => [].as_slice(),
        MessagePart::RangeItem(item) => item.values.as_slice(),
    })
}

/// [`Message::encoded_len`] of a message of `parts`.
pub(crate) fn parts_len<E: RangeEntry, M>(parts: &[MessagePart<E, M>]) -> usize {
    MESSAGE_OVERHEAD + parts.iter().map(MessagePart::encoded_len).sum::<usize>()
}

impl<E: RangeEntry, M> MessagePart<E, M> {
    /// The range this part is about.
    pub fn range(&self) -> &Range<E::Key> {
        match self {
            MessagePart::RangeFingerprint(fp) => &fp.range,
            MessagePart::RangeItem(item) => &item.range,
        }
    }

    /// An upper bound of the encoded size of this part; see [`Message::encoded_len`].
    pub fn encoded_len(&self) -> usize {
        match self {
            MessagePart::RangeFingerprint(fp) => fp.encoded_len(),
            MessagePart::RangeItem(item) => item.encoded_len(),
        }
    }
}

impl<K: RangeKey> RangeFingerprint<K> {
    /// An upper bound of the encoded size of this part; see [`Message::encoded_len`].
    pub fn encoded_len(&self) -> usize {
        fingerprint_part_len(&self.range.x, &self.range.y)
    }
}

impl<E: RangeEntry, M> RangeItem<E, M> {
    /// An upper bound of the encoded size of this part; see [`Message::encoded_len`].
    pub fn encoded_len(&self) -> usize {
        let values: usize = self.values.iter().map(|(e, _)| e.encoded_len()).sum();
        item_part_len(
            self.range.x.encoded_len() + self.range.y.encoded_len(),
            self.values.len(),
            values,
        )
    }
}

/// The size of a fingerprint part over `[x, y)`.
pub(crate) fn fingerprint_part_len<K: RangeKey>(x: &K, y: &K) -> usize {
    FINGERPRINT_PART_OVERHEAD + x.encoded_len() + y.encoded_len()
}

/// The size of an item part whose two keys take `keys` bytes, with `count` values taking
/// `values` bytes.
pub(crate) fn item_part_len(keys: usize, count: usize, values: usize) -> usize {
    ITEM_PART_OVERHEAD + keys + varint_len(count as u64) + values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_leb128() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
