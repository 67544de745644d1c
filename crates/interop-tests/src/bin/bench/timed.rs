//! Our ranger on negentropy's items: each entry as the (timestamp, 32-byte id) pair negentropy
//! reconciles, ordered as negentropy orders them (by timestamp, then id).
//!
//! The protocol orders entries by key, which scatters the newest entries (what a peer usually
//! lacks) over the whole set, while negentropy's order gathers them at its end. Running ranger
//! in negentropy's order on the very same items compares the two algorithms with the order
//! taken out. Ranger is generic over the entry; only this bench module defines this one.

use anyhow::{Context, Result, anyhow, bail, ensure};
use ranger::{
    AcceptAll, Config, Fingerprint, MemStore, Message, MessagePart, Range, RangeEntry,
    RangeFingerprint, RangeItem, RangeKey, RangeValue, Session,
};
use sync_core::SignedEntry;

use crate::peers::{Peer, SyncStats, neg_item, run_session};

/// Bytes of an item: the timestamp (8, big-endian) and the id (32).
const LEN: usize = 40;

/// A negentropy item as a ranger entry: its own key, with no value, and its id as its
/// fingerprint (the id is already a hash: negentropy's ids here are the entries' BLAKE3
/// fingerprints). The bytes order as the pair does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimedId([u8; LEN]);

impl TimedId {
    const ZERO: TimedId = TimedId([0; LEN]);

    /// Negentropy's item for `e`, with its timestamp, or 0 without `time_order` (as
    /// [`crate::peers::neg_storage`] does).
    pub(crate) fn of(e: &SignedEntry, time_order: bool) -> Self {
        let (t, id) = neg_item(e);
        let mut b = [0; LEN];
        if time_order {
            b[..8].copy_from_slice(&t.to_be_bytes());
        }
        b[8..].copy_from_slice(&id.to_bytes());
        TimedId(b)
    }
}

/// The value of every [`TimedId`]: there is nothing to overwrite.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NoValue;

impl RangeValue for NoValue {}

static NO_VALUE: NoValue = NoValue;

impl RangeKey for TimedId {
    fn encoded_len(&self) -> usize {
        LEN
    }

    /// The next 40-byte string, as a big-endian integer plus one.
    fn successor(&self) -> Option<Self> {
        let mut b = self.0;
        let last = b.iter().rposition(|&x| x != 0xff)?;
        b[last] += 1;
        b[last + 1..].fill(0);
        Some(TimedId(b))
    }

    fn order_bytes(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
}

impl RangeEntry for TimedId {
    type Key = TimedId;
    type Value = NoValue;

    fn key(&self) -> &TimedId {
        self
    }

    fn value(&self) -> &NoValue {
        &NO_VALUE
    }

    fn fingerprint(&self) -> Fingerprint {
        let mut f = [0; 32];
        f.copy_from_slice(&self.0[8..]);
        Fingerprint(f)
    }

    fn encoded_len(&self) -> usize {
        LEN
    }
}

type TimedMessage = Message<TimedId, ()>;

/// A compact encoding of a message of [`TimedId`]s, exactly as large as ranger's budget
/// reckons it: the number of parts (LEB128), then per part a tag (0: fingerprint, 1: items),
/// the range's two items, and the fingerprint, or the number of items (LEB128), the items
/// and `have_local` (0 or 1).
fn encode(m: &TimedMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.encoded_len());
    put_varint(&mut out, m.parts.len() as u64);
    for part in &m.parts {
        match part {
            MessagePart::RangeFingerprint(fp) => {
                out.push(0);
                out.extend_from_slice(&fp.range.x.0);
                out.extend_from_slice(&fp.range.y.0);
                out.extend_from_slice(fp.fingerprint.as_bytes());
            }
            MessagePart::RangeItem(item) => {
                out.push(1);
                out.extend_from_slice(&item.range.x.0);
                out.extend_from_slice(&item.range.y.0);
                put_varint(&mut out, item.values.len() as u64);
                for (v, ()) in &item.values {
                    out.extend_from_slice(&v.0);
                }
                out.push(u8::from(item.have_local));
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Result<TimedMessage> {
    let mut r = bytes;
    let n = take_varint(&mut r)?;
    let mut parts = Vec::new();
    for _ in 0..n {
        let [tag] = take::<1>(&mut r)?;
        let range = Range::new(TimedId(take(&mut r)?), TimedId(take(&mut r)?));
        parts.push(match tag {
            0 => MessagePart::RangeFingerprint(RangeFingerprint {
                range,
                fingerprint: Fingerprint(take(&mut r)?),
            }),
            1 => {
                let count = take_varint(&mut r)?;
                ensure!(count <= (r.len() / LEN) as u64, "more items than bytes");
                let values = (0..count)
                    .map(|_| Ok((TimedId(take(&mut r)?), ())))
                    .collect::<Result<_>>()?;
                let have_local = match take::<1>(&mut r)? {
                    [0] => false,
                    [1] => true,
                    [b] => bail!("have_local {b}"),
                };
                MessagePart::RangeItem(RangeItem {
                    range,
                    values,
                    have_local,
                })
            }
            t => bail!("part tag {t}"),
        });
    }
    ensure!(r.is_empty(), "{} bytes after the message", r.len());
    Ok(Message::new(parts))
}

fn take<const N: usize>(r: &mut &[u8]) -> Result<[u8; N]> {
    let (head, rest) = r.split_first_chunk::<N>().context("message cut short")?;
    *r = rest;
    Ok(*head)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(r: &mut &[u8]) -> Result<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let [b] = take::<1>(r)?;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    bail!("varint too long")
}

/// One side: a ranger session over a [`MemStore`] of [`TimedId`]s, validating nothing.
struct Side<'s> {
    store: &'s mut MemStore<TimedId>,
    session: Session,
}

impl Peer for Side<'_> {
    fn initial(&mut self) -> Result<Vec<u8>> {
        let m = self
            .session
            .initial_message(&mut self.store, TimedId::ZERO)
            .map_err(|e| anyhow!("initial message: {e}"))?;
        Ok(encode(&m))
    }

    fn process(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>> {
        let m = decode(message).context("decoding a message")?;
        let reply = self
            .session
            .process_message(&mut self.store, &mut AcceptAll, m)
            .map_err(|e| anyhow!("processing a message: {e}"))?;
        Ok(reply.as_ref().map(encode))
    }

    fn moved(&self) -> u64 {
        self.session.outcome().entries_sent
    }
}

/// A session between clones of `a` and `b` with `only_a` and `only_b` added; checks that both
/// end with the union.
pub(crate) fn session(
    a: &MemStore<TimedId>,
    b: &MemStore<TimedId>,
    only_a: &[TimedId],
    only_b: &[TimedId],
    config: Config,
) -> Result<SyncStats> {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.extend(only_a.iter().cloned());
    b.extend(only_b.iter().cloned());
    let union = union_len(&a, &b);
    let stats = run_session(
        &mut Side {
            store: &mut a,
            session: Session::new(config),
        },
        &mut Side {
            store: &mut b,
            session: Session::new(config),
        },
    )?;
    // Sessions only add items: two equal sides of the union's size hold the union.
    ensure!(
        a.len() == union && a.iter().eq(b.iter()),
        "did not converge: {} and {} items, expected {union}",
        a.len(),
        b.len(),
    );
    Ok(stats)
}

/// The number of items in either store, from one merge of the two in key order.
fn union_len(a: &MemStore<TimedId>, b: &MemStore<TimedId>) -> usize {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    let mut n = 0;
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let order = x.cmp(y);
        if order.is_le() {
            a.next();
        }
        if order.is_ge() {
            b.next();
        }
        n += 1;
    }
    n + a.count() + b.count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_at_the_size_the_budget_reckons() {
        let k = |i: u8| TimedId([i; LEN]);
        let m = TimedMessage::new(vec![
            MessagePart::RangeFingerprint(RangeFingerprint {
                range: Range::new(k(1), k(2)),
                fingerprint: Fingerprint([9; 32]),
            }),
            MessagePart::RangeItem(RangeItem {
                range: Range::new(k(3), k(1)),
                values: (0..200).map(|i| (k(i), ())).collect(),
                have_local: true,
            }),
        ]);
        let bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap(), m);
        // Exactly the reckoned size, but for the header: one byte of the ten reserved.
        assert_eq!(bytes.len(), m.encoded_len() - ranger::MESSAGE_OVERHEAD + 1);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_successor_is_the_next_string() {
        let mut b = [0; LEN];
        b[LEN - 1] = 0xff;
        let mut next = [0; LEN];
        next[LEN - 2] = 1;
        assert_eq!(TimedId(b).successor(), Some(TimedId(next)));
        assert_eq!(TimedId([0xff; LEN]).successor(), None);
    }
}
