//! The aggregate index: (count, XOR of fingerprints) of any range of a document in O(log n).
//!
//! Every record gets a level from a keyed hash of its identifier (`Shape::level_of`): level >= 1
//! with probability 1/16, and each further level 1/64 as likely, capped at [`LEVELS`]. A record
//! of level >= L is an *L-boundary*. For each level L = 1..=LEVELS and each document, the
//! L-boundaries cut the document's records (in identifier order) into runs; each run is a
//! *node* of level L, stored under `L | first identifier` with the run's count and XOR. The
//! records before the first L-boundary form the *head* node, stored under `L | namespace id`
//! (32 bytes, which sorts before every identifier of the document). A node of level L is the
//! union of consecutive nodes of level L-1 (its children, about 64 of them), and a node of
//! level 1 is a run of about 16 records. The structure is a function of the set of records
//! alone (the same records give the same nodes whatever the order of writes), which makes the
//! index checkable against a recomputation; and since the salt is secret, a writer cannot
//! build oversized nodes.
//!
//! The aggregate of the records of a document below an identifier `k` descends from the top
//! level: sum the nodes that start before `k` except the last, then descend into that last node
//! and repeat one level lower, finishing with the records of a level-1 node. An interval
//! descends once for both bounds and splits where they part. Selecting the record of a given
//! rank descends by counts the same way. Each costs O(LEVELS x 64) reads. Inserting a record
//! adds it to the node that contains it at each level; if the record is an L-boundary it splits
//! that node at each level up to L, summing the children that move to the new node. Removing
//! does the reverse.

use std::ops::Bound;

use redb::ReadableTable;
use sync_core::{Fingerprint, NamespaceId, StoreError};

use crate::bounds::{as_slice_bound, concat, prefix_end};
use crate::tables::{LEVELS, Shape, Tables, decode_agg, encode_agg, record_fingerprint};

/// A count and an XOR of fingerprints: the aggregate of a set of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agg {
    pub(crate) count: u64,
    pub(crate) xor: Fingerprint,
}

impl Agg {
    pub(crate) const ZERO: Agg = Agg {
        count: 0,
        xor: Fingerprint::ZERO,
    };

    /// The aggregate of one record.
    pub(crate) fn one(fp: Fingerprint) -> Self {
        Self { count: 1, xor: fp }
    }

    pub(crate) fn add(&mut self, other: Agg) {
        self.count = self.count.wrapping_add(other.count);
        self.xor ^= other.xor;
    }

    fn sub(&mut self, other: Agg) -> Result<(), StoreError> {
        self.count = self
            .count
            .checked_sub(other.count)
            .ok_or_else(|| StoreError::Corrupt("aggregate count below zero".into()))?;
        self.xor ^= other.xor;
        Ok(())
    }

    fn from_value(value: &[u8; 40]) -> Self {
        let (count, xor) = decode_agg(value);
        Self { count, xor }
    }
}

/// The index key of the node of `level` that starts at `start` (an identifier, or a namespace
/// id for the head node).
pub(crate) fn node_key(level: u8, start: &[u8]) -> Vec<u8> {
    concat(&[level], start)
}

/// The exclusive end of the keys of `level` that belong to `ns`.
fn level_end(level: u8, ns: &NamespaceId) -> Bound<Vec<u8>> {
    prefix_end(&node_key(level, ns.as_bytes()))
}

/// The exclusive end of the identifiers of `ns`.
pub(crate) fn namespace_end(ns: &NamespaceId) -> Bound<Vec<u8>> {
    prefix_end(ns.as_bytes())
}

/// The node of `level` that contains identifier `id` (of namespace `ns`): its key and aggregate
/// (zero for a head node that is not stored).
fn containing(
    t: &Tables<'_>,
    level: u8,
    ns: &NamespaceId,
    id: &[u8],
) -> Result<(Vec<u8>, Agg), StoreError> {
    let head = node_key(level, ns.as_bytes());
    let probe = node_key(level, id);
    let mut range = t
        .aggregates
        .range::<&[u8]>(head.as_slice()..=probe.as_slice())
        .map_err(StoreError::backend)?;
    match range.next_back() {
        Some(item) => {
            let (k, v) = item.map_err(StoreError::backend)?;
            Ok((k.value().to_vec(), Agg::from_value(v.value())))
        }
        None => Ok((head, Agg::ZERO)),
    }
}

/// Stores a node, or removes it if empty (only head nodes can become empty).
fn write_node(t: &mut Tables<'_>, key: &[u8], agg: Agg) -> Result<(), StoreError> {
    if agg.count == 0 {
        t.aggregates.remove(key).map_err(StoreError::backend)?;
    } else {
        t.aggregates
            .insert(key, &encode_agg(agg.count, &agg.xor))
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

/// The aggregate of the nodes of `level` (0: the records) from `start` (inclusive) to `end`
/// (exclusive; `None` for the end of the namespace).
fn sum_run(
    t: &Tables<'_>,
    level: u8,
    ns: &NamespaceId,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<Agg, StoreError> {
    let mut acc = Agg::ZERO;
    if level == 0 {
        let upper = match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => namespace_end(ns),
        };
        let range = t
            .records
            .range::<&[u8]>((Bound::Included(start), as_slice_bound(&upper)))
            .map_err(StoreError::backend)?;
        for item in range {
            let (k, v) = item.map_err(StoreError::backend)?;
            acc.add(Agg::one(record_fingerprint(k.value(), v.value())));
        }
    } else {
        let from = node_key(level, start);
        let upper = match end {
            Some(e) => Bound::Excluded(node_key(level, e)),
            None => level_end(level, ns),
        };
        let range = t
            .aggregates
            .range::<&[u8]>((Bound::Included(from.as_slice()), as_slice_bound(&upper)))
            .map_err(StoreError::backend)?;
        for item in range {
            let (_, v) = item.map_err(StoreError::backend)?;
            acc.add(Agg::from_value(v.value()));
        }
    }
    Ok(acc)
}

/// The start of the next node of `level` after the node key `after`, within `ns`.
fn next_start(
    t: &Tables<'_>,
    level: u8,
    ns: &NamespaceId,
    after: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let upper = level_end(level, ns);
    let mut range = t
        .aggregates
        .range::<&[u8]>((Bound::Excluded(after), as_slice_bound(&upper)))
        .map_err(StoreError::backend)?;
    match range.next() {
        Some(item) => {
            let (k, _) = item.map_err(StoreError::backend)?;
            Ok(Some(k.value()[1..].to_vec()))
        }
        None => Ok(None),
    }
}

/// Updates the index for a record that was just added to the records table under the new
/// identifier `id`, with fingerprint `fp`.
pub(crate) fn on_insert(
    t: &mut Tables<'_>,
    shape: &Shape,
    ns: &NamespaceId,
    id: &[u8],
    fp: Fingerprint,
) -> Result<(), StoreError> {
    let height = shape.level_of(id);
    // Bottom-up: a split at level L sums the (already updated) nodes of level L-1.
    for level in 1..=LEVELS {
        let (parent_key, mut parent) = containing(t, level, ns, id)?;
        parent.add(Agg::one(fp));
        if level > height {
            write_node(t, &parent_key, parent)?;
            continue;
        }
        let own_key = node_key(level, id);
        let end = next_start(t, level, ns, &own_key)?;
        let own = sum_run(t, level - 1, ns, id, end.as_deref())?;
        parent.sub(own)?;
        write_node(t, &parent_key, parent)?;
        write_node(t, &own_key, own)?;
    }
    Ok(())
}

/// Updates the index for a record that was removed from the records table.
pub(crate) fn on_remove(
    t: &mut Tables<'_>,
    shape: &Shape,
    ns: &NamespaceId,
    id: &[u8],
    fp: Fingerprint,
) -> Result<(), StoreError> {
    let height = shape.level_of(id);
    for level in 1..=LEVELS {
        let mut merged = Agg::ZERO;
        if level <= height {
            // The record's own node merges into the node before it.
            let own_key = node_key(level, id);
            let own = t
                .aggregates
                .remove(own_key.as_slice())
                .map_err(StoreError::backend)?
                .map(|v| Agg::from_value(v.value()))
                .ok_or_else(|| StoreError::Corrupt("missing aggregate node".into()))?;
            merged = own;
        }
        let (key, mut node) = containing(t, level, ns, id)?;
        node.add(merged);
        node.sub(Agg::one(fp))?;
        write_node(t, &key, node)?;
    }
    Ok(())
}

/// Updates the index for a record whose content changed (same identifier).
pub(crate) fn on_update(
    t: &mut Tables<'_>,
    ns: &NamespaceId,
    id: &[u8],
    old: Fingerprint,
    new: Fingerprint,
) -> Result<(), StoreError> {
    for level in 1..=LEVELS {
        let (key, mut node) = containing(t, level, ns, id)?;
        node.xor ^= old ^ new;
        write_node(t, &key, node)?;
    }
    Ok(())
}

/// The aggregate of the records from `lo` (inclusive) to `bound` (exclusive), where `lo` is the
/// start of a node of level `top + 1` that contains `bound` (or the namespace id, with `top` =
/// [`LEVELS`], for the whole document): at each level from `top` down, sum the nodes that start
/// in `[lo, bound)` except the last, and descend into that last one; at the bottom, sum the
/// records.
fn partial(t: &Tables<'_>, top: u8, lo: &[u8], bound: &[u8]) -> Result<Agg, StoreError> {
    let mut acc = Agg::ZERO;
    // The start of the node being descended into: the namespace id for a head node.
    let mut lo: Vec<u8> = lo.to_vec();
    for level in (1..=top).rev() {
        let from = node_key(level, &lo);
        let to = node_key(level, bound);
        let range = t
            .aggregates
            .range::<&[u8]>(from.as_slice()..to.as_slice())
            .map_err(StoreError::backend)?;
        let mut last = None;
        for item in range {
            let (k, v) = item.map_err(StoreError::backend)?;
            if let Some((_, agg)) = last.replace((k, Agg::from_value(v.value()))) {
                acc.add(agg);
            }
        }
        if let Some((k, _)) = last {
            lo = k.value()[1..].to_vec();
        }
    }
    acc.add(sum_records(t, &lo, bound)?);
    Ok(acc)
}

/// The aggregate of the records in `[from, to)`.
fn sum_records(t: &Tables<'_>, from: &[u8], to: &[u8]) -> Result<Agg, StoreError> {
    let mut acc = Agg::ZERO;
    let range = t
        .records
        .range::<&[u8]>(from..to)
        .map_err(StoreError::backend)?;
    for item in range {
        let (k, v) = item.map_err(StoreError::backend)?;
        acc.add(Agg::one(record_fingerprint(k.value(), v.value())));
    }
    Ok(acc)
}

/// The last node of `level` that starts in `[lo, bound)`: its start and aggregate.
fn last_before(
    t: &Tables<'_>,
    level: u8,
    lo: &[u8],
    bound: &[u8],
) -> Result<Option<(Vec<u8>, Agg)>, StoreError> {
    let from = node_key(level, lo);
    let to = node_key(level, bound);
    let mut range = t
        .aggregates
        .range::<&[u8]>(from.as_slice()..to.as_slice())
        .map_err(StoreError::backend)?;
    match range.next_back() {
        Some(item) => {
            let (k, v) = item.map_err(StoreError::backend)?;
            Ok(Some((k.value()[1..].to_vec(), Agg::from_value(v.value()))))
        }
        None => Ok(None),
    }
}

/// The aggregate of the records in `[a, b)`, `a < b`, both identifiers of `ns`.
///
/// One descent for both bounds: while they lie in the same node, go down one seek per level;
/// where they part (`a` in node `ca`, `b` in a later node `cb`), the answer is the part of
/// `ca` from `a` on, the nodes strictly between, and the part of `cb` below `b`. A narrow
/// interval thus costs a few seeks and the records between its bounds.
fn between(t: &Tables<'_>, ns: &NamespaceId, a: &[u8], b: &[u8]) -> Result<Agg, StoreError> {
    let mut lo: Vec<u8> = ns.as_bytes().to_vec();
    for level in (1..=LEVELS).rev() {
        let ca = last_before(t, level, &lo, a)?;
        let cb = last_before(t, level, &lo, b)?;
        let Some((cb_start, _)) = cb else {
            // No node starts before b, hence none before a: both lie in an empty head.
            return Ok(Agg::ZERO);
        };
        if ca.as_ref().is_some_and(|(start, _)| *start == cb_start) {
            lo = cb_start;
            continue;
        }
        // The bounds part here. The nodes from ca (exclusive; from lo if there is none) to cb.
        let mut acc = Agg::ZERO;
        let from = match &ca {
            Some((start, _)) => Bound::Excluded(node_key(level, start)),
            None => Bound::Included(node_key(level, &lo)),
        };
        let to = node_key(level, &cb_start);
        let range = t
            .aggregates
            .range::<&[u8]>((as_slice_bound(&from), Bound::Excluded(to.as_slice())))
            .map_err(StoreError::backend)?;
        for item in range {
            let (_, v) = item.map_err(StoreError::backend)?;
            acc.add(Agg::from_value(v.value()));
        }
        if let Some((ca_start, ca_agg)) = &ca {
            // The part of ca from a on: all of ca but its records below a.
            acc.add(*ca_agg);
            acc.sub(partial(t, level - 1, ca_start, a)?)?;
        }
        acc.add(partial(t, level - 1, &cb_start, b)?);
        return Ok(acc);
    }
    // Both bounds in one level-1 node: the records between them.
    sum_records(t, a, b)
}

/// The aggregate of every record of `ns`: the sum of its top-level nodes.
pub(crate) fn total(t: &Tables<'_>, ns: &NamespaceId) -> Result<Agg, StoreError> {
    sum_run(t, LEVELS, ns, ns.as_bytes(), None)
}

/// A range bound placed in one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Clipped<'a> {
    /// At or before the first identifier of the namespace.
    Start,
    /// At this identifier of the namespace.
    At(&'a [u8]),
    /// After the last identifier of the namespace.
    End,
}

impl<'a> Clipped<'a> {
    /// Places `bound` (`None` means `unbounded`) in `ns`.
    pub(crate) fn new(ns: &NamespaceId, bound: Option<&'a [u8]>, unbounded: Clipped<'a>) -> Self {
        let Some(b) = bound else { return unbounded };
        match b[..b.len().min(32)].cmp(ns.as_bytes().as_slice()) {
            std::cmp::Ordering::Less => Clipped::Start,
            std::cmp::Ordering::Greater => Clipped::End,
            std::cmp::Ordering::Equal => Clipped::At(b),
        }
    }
}

/// The aggregate of the records of `ns` below a clipped bound.
pub(crate) fn below(
    t: &Tables<'_>,
    ns: &NamespaceId,
    bound: Clipped<'_>,
) -> Result<Agg, StoreError> {
    match bound {
        Clipped::Start => Ok(Agg::ZERO),
        Clipped::At(b) => partial(t, LEVELS, ns.as_bytes(), b),
        Clipped::End => total(t, ns),
    }
}

/// The aggregate of the records of `ns` in `[start, end)`.
pub(crate) fn interval(
    t: &Tables<'_>,
    ns: &NamespaceId,
    start: Clipped<'_>,
    end: Clipped<'_>,
) -> Result<Agg, StoreError> {
    match (start, end) {
        _ if start >= end => Ok(Agg::ZERO),
        (Clipped::At(a), Clipped::At(b)) => between(t, ns, a, b),
        (Clipped::Start, end) => below(t, ns, end),
        (start, _) => {
            let mut acc = total(t, ns)?;
            acc.sub(below(t, ns, start)?)?;
            Ok(acc)
        }
    }
}

/// The identifier of the record of rank `rank` (0-based) in `ns`, if there are that many.
pub(crate) fn select(
    t: &Tables<'_>,
    ns: &NamespaceId,
    rank: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(descend(t, ns, rank, false)?.map(|(id, _)| id))
}

/// Below this rank, [`pivots`] walks forward from the interval's start instead of descending
/// the index once per rank: a descent reads about a hundred nodes and records, a walk about one
/// level-1 node per 16 ranks and the records of at most two nodes per rank.
const WALK_BELOW_RANK: u64 = 2048;

/// [`pivots`] by walking forward from `from` to `end`: records one by one up to the next level-1
/// node, then whole level-1 nodes (count and XOR, no record read) while the next wanted rank
/// lies beyond them, then the records of the node that holds it, and so on.
fn walk(
    t: &Tables<'_>,
    ns: &NamespaceId,
    from: &[u8],
    end: Option<&[u8]>,
    ranks: &[u64],
) -> Result<Vec<(Vec<u8>, Agg)>, StoreError> {
    let mut out = Vec::with_capacity(ranks.len());
    let mut wanted = ranks.iter().copied().peekable();
    let mut acc = Agg::ZERO;
    let mut pos = 0u64;
    let upper = match end {
        Some(e) => Bound::Excluded(e.to_vec()),
        None => namespace_end(ns),
    };
    // The level-1 nodes that start after `from` and before the end, in order.
    let first = node_key(1, from);
    let last = level_end(1, ns);
    let mut nodes = t
        .aggregates
        .range::<&[u8]>((Bound::Excluded(first.as_slice()), as_slice_bound(&last)))
        .map_err(StoreError::backend)?
        .map(|item| {
            let (k, v) = item.map_err(StoreError::backend)?;
            Ok((k.value()[1..].to_vec(), Agg::from_value(v.value())))
        })
        .take_while(
            |node: &Result<(Vec<u8>, Agg), StoreError>| match (node, end) {
                (Ok((start, _)), Some(e)) => start.as_slice() < e,
                _ => true,
            },
        );
    let mut at = from.to_vec();
    let mut boundary = nodes.next().transpose()?;
    loop {
        // The records from `at` up to the next node (or the end), one by one.
        let stop = match &boundary {
            Some((start, _)) => Bound::Excluded(start.clone()),
            None => upper.clone(),
        };
        let records = t
            .records
            .range::<&[u8]>((Bound::Included(at.as_slice()), as_slice_bound(&stop)))
            .map_err(StoreError::backend)?;
        for item in records {
            let Some(&target) = wanted.peek() else {
                return Ok(out);
            };
            let (k, v) = item.map_err(StoreError::backend)?;
            if pos == target {
                out.push((k.value().to_vec(), acc));
                wanted.next();
            }
            acc.add(Agg::one(record_fingerprint(k.value(), v.value())));
            pos += 1;
        }
        let Some(mut node) = boundary.take() else {
            return Ok(out);
        };
        // Whole nodes that lie inside the interval (another node starts before the end) and
        // before the next wanted rank.
        loop {
            let Some(&target) = wanted.peek() else {
                return Ok(out);
            };
            let after = nodes.next().transpose()?;
            match after {
                Some(next) if target >= pos.saturating_add(node.1.count) => {
                    acc.add(node.1);
                    pos += node.1.count;
                    node = next;
                }
                after => {
                    at = node.0;
                    boundary = after;
                    break;
                }
            }
        }
    }
}

/// For each of `ranks` (ascending) among the records of `ns` in `[start, end)`: the record's
/// identifier and the aggregate of the interval's records below it; stops at the first rank not
/// below the interval's count. `start < end`.
pub(crate) fn pivots(
    t: &Tables<'_>,
    ns: &NamespaceId,
    start: Clipped<'_>,
    end: Clipped<'_>,
    ranks: &[u64],
) -> Result<Vec<(Vec<u8>, Agg)>, StoreError> {
    let mut out = Vec::with_capacity(ranks.len());
    let Some(&last) = ranks.last() else {
        return Ok(out);
    };
    let end_key = match end {
        Clipped::At(e) => Some(e),
        _ => None,
    };
    if last < WALK_BELOW_RANK {
        let from: &[u8] = match start {
            Clipped::At(s) => s,
            _ => ns.as_bytes(),
        };
        return walk(t, ns, from, end_key, ranks);
    }
    let base = below(t, ns, start)?;
    for &rank in ranks {
        let Some((id, mut prefix)) = descend(t, ns, base.count.saturating_add(rank), true)? else {
            break;
        };
        if end_key.is_some_and(|e| id.as_slice() >= e) {
            break;
        }
        prefix.sub(base)?;
        out.push((id, prefix));
    }
    Ok(out)
}

/// Descends by counts to the record of rank `rank` of `ns`; with `sum`, also adds up what it
/// skips (the aggregate of the records of `ns` below it), otherwise returns [`Agg::ZERO`].
fn descend(
    t: &Tables<'_>,
    ns: &NamespaceId,
    rank: u64,
    sum: bool,
) -> Result<Option<(Vec<u8>, Agg)>, StoreError> {
    let mut acc = Agg::ZERO;
    let mut rem = rank;
    let mut lo: Vec<u8> = ns.as_bytes().to_vec();
    for level in (1..=LEVELS).rev() {
        let from = node_key(level, &lo);
        let upper = level_end(level, ns);
        let range = t
            .aggregates
            .range::<&[u8]>((Bound::Included(from.as_slice()), as_slice_bound(&upper)))
            .map_err(StoreError::backend)?;
        let mut found = false;
        for item in range {
            let (k, v) = item.map_err(StoreError::backend)?;
            let agg = Agg::from_value(v.value());
            if rem < agg.count {
                lo = k.value()[1..].to_vec();
                found = true;
                break;
            }
            rem -= agg.count;
            if sum {
                acc.add(agg);
            }
        }
        if !found {
            if level == LEVELS {
                return Ok(None);
            }
            return Err(StoreError::Corrupt(
                "aggregate node counts disagree with their children".into(),
            ));
        }
    }
    let upper = namespace_end(ns);
    let mut range = t
        .records
        .range::<&[u8]>((Bound::Included(lo.as_slice()), as_slice_bound(&upper)))
        .map_err(StoreError::backend)?;
    let skip = usize::try_from(rem).unwrap_or(usize::MAX);
    let found = if sum {
        let mut found = None;
        for (skipped, item) in range.enumerate() {
            let (k, v) = item.map_err(StoreError::backend)?;
            if skipped == skip {
                found = Some(k.value().to_vec());
                break;
            }
            acc.add(Agg::one(record_fingerprint(k.value(), v.value())));
        }
        found
    } else {
        match range.nth(skip) {
            Some(item) => Some(item.map_err(StoreError::backend)?.0.value().to_vec()),
            None => None,
        }
    };
    match found {
        Some(id) => Ok(Some((id, acc))),
        None => Err(StoreError::Corrupt(
            "aggregate node counts disagree with the records".into(),
        )),
    }
}
