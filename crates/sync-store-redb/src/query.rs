//! Queries, one page at a time.
//!
//! A page resumes from the cursor's position with a fresh range scan that starts right after
//! it, so no query holds more than a page (plus the group of one key, for latest-per-key) in
//! memory. The paging rules (offset and limit counted down in the cursor, `done` when
//! exhausted) are those of `MemStore`, which the tests compare against.
//!
//! Index choice: the records table is in (author, key) order, so it serves author-key queries,
//! and every query restricted to one author (whose key order is then the same). Key-author
//! queries and latest-per-key over all authors use the by-key table.

use std::ops::{Bound, ControlFlow};

use bytes::Bytes;
use redb::ReadableTable;
use sync_core::{
    AuthorFilter, AuthorId, Fingerprint, ID_PREFIX_LEN, KEY_LEN, KeyFilter, NamespaceId, Query,
    QueryCursor, QueryKind, QueryPage, SignedEntry, SortBy, SortDirection, StoreError,
};

use crate::aggregate::namespace_end;
use crate::bounds::{as_slice_bound, concat, prefix_end, prefix_successor};
use crate::tables::{RECORD_VALUE_LEN, Tables, decode_entry, record_fingerprint};

/// Collects one page, applying the cursor's offset and limit.
struct Pager {
    cursor: QueryCursor,
    max: usize,
    entries: Vec<SignedEntry>,
    exhausted: bool,
}

impl Pager {
    /// Offers the next result in query order. `Break` when the page is complete.
    fn offer(&mut self, entry: SignedEntry) -> ControlFlow<()> {
        if self.entries.len() == self.max {
            // There is at least one more result.
            self.exhausted = false;
            return ControlFlow::Break(());
        }
        self.cursor.after = Some((entry.id().key_bytes(), entry.author()));
        if self.cursor.to_skip > 0 {
            self.cursor.to_skip -= 1;
            return ControlFlow::Continue(());
        }
        self.entries.push(entry);
        if let Some(r) = self.cursor.remaining.as_mut() {
            *r = r.saturating_sub(1);
            if *r == 0 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn finish(mut self) -> QueryPage {
        if self.exhausted || self.cursor.remaining == Some(0) {
            self.cursor.done = true;
        }
        QueryPage {
            entries: self.entries,
            cursor: self.cursor,
        }
    }
}

/// Where a key lies relative to a key filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Before,
    Inside,
    After,
}

fn place(filter: &KeyFilter, key: &[u8]) -> Place {
    let (lo, exact) = match filter {
        KeyFilter::Any => return Place::Inside,
        KeyFilter::Exact(k) => (k.as_ref(), true),
        KeyFilter::Prefix(p) => (p.as_ref(), false),
    };
    if (exact && key == lo) || (!exact && key.starts_with(lo)) {
        Place::Inside
    } else if key < lo {
        Place::Before
    } else {
        Place::After
    }
}

/// The smallest key the filter admits.
fn filter_low(filter: &KeyFilter) -> &[u8] {
    match filter {
        KeyFilter::Any => &[],
        KeyFilter::Exact(k) | KeyFilter::Prefix(k) => k,
    }
}

/// The upper bound of the identifiers under `base` (namespace | author) that the filter admits.
fn filter_high(base: &[u8], filter: &KeyFilter) -> Bound<Vec<u8>> {
    match filter {
        KeyFilter::Any => prefix_end(base),
        KeyFilter::Prefix(p) => prefix_end(&concat(base, p)),
        KeyFilter::Exact(k) => Bound::Included(concat(base, k)),
    }
}

/// The more restrictive of two lower bounds.
fn max_lower<T: Ord>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.max(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.max(y)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if i > e {
                Included(i)
            } else {
                Excluded(e)
            }
        }
    }
}

/// The more restrictive of two upper bounds.
fn min_upper<T: Ord>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.min(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.min(y)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if i < e {
                Included(i)
            } else {
                Excluded(e)
            }
        }
    }
}

/// The next page of `query` in namespace `ns`.
pub(crate) fn page(
    t: &Tables<'_>,
    ns: &NamespaceId,
    query: &Query,
    cursor: &QueryCursor,
    max: usize,
) -> Result<QueryPage, StoreError> {
    let mut pager = Pager {
        cursor: cursor.clone(),
        max,
        entries: Vec::new(),
        exhausted: true,
    };
    if cursor.done || max == 0 {
        return Ok(QueryPage {
            entries: Vec::new(),
            cursor: cursor.clone(),
        });
    }
    let scan = Scan {
        t,
        ns,
        query,
        after: cursor.after.clone(),
        desc: query.direction == SortDirection::Desc,
    };
    match (query.kind, &query.author) {
        (QueryKind::Flat(SortBy::AuthorKey), _) | (_, AuthorFilter::Exact(_)) => {
            scan.records(&mut pager)?
        }
        (QueryKind::Flat(SortBy::KeyAuthor), AuthorFilter::Any) => scan.by_key_flat(&mut pager)?,
        (QueryKind::LatestPerKey, AuthorFilter::Any) => scan.latest_per_key(&mut pager)?,
    }
    Ok(pager.finish())
}

/// A position in the by-key order of one namespace: key, then author.
type Position = (Vec<u8>, [u8; 32]);

/// One page's scan.
struct Scan<'q, 't> {
    t: &'q Tables<'t>,
    ns: &'q NamespaceId,
    query: &'q Query,
    after: Option<(Bytes, AuthorId)>,
    desc: bool,
}

impl Scan<'_, '_> {
    fn wanted(&self, entry: &SignedEntry) -> bool {
        self.query.include_empty || !entry.record().is_empty()
    }

    /// Whether results are ordered by author first.
    fn author_major(&self) -> bool {
        matches!(self.query.kind, QueryKind::Flat(SortBy::AuthorKey))
    }

    /// Scans the records table, in (author, key) order, seeking past the keys the filter
    /// rejects. Serves author-key queries and every query restricted to one author.
    fn records(&self, pager: &mut Pager) -> Result<(), StoreError> {
        let ns = self.ns.as_bytes();
        let only = match &self.query.author {
            AuthorFilter::Exact(a) => Some(concat(ns, a.as_bytes())),
            AuthorFilter::Any => None,
        };
        let filter = &self.query.key;
        // The bound from the cursor, as an identifier bound.
        let after = self.after.as_ref().map(|(key, author)| {
            let at = concat(&concat(ns, author.as_bytes()), key);
            match &only {
                // One author under key-author order: (key, a) is past (k, b) if key > k, or
                // key == k and a > b (for descending order, the mirror image).
                Some(base) if !self.author_major() => {
                    let a = &base[KEY_LEN..];
                    let same_key_passes = if self.desc {
                        a < author.as_bytes().as_slice()
                    } else {
                        a > author.as_bytes().as_slice()
                    };
                    let at = concat(base, key);
                    if same_key_passes {
                        Bound::Included(at)
                    } else {
                        Bound::Excluded(at)
                    }
                }
                _ => Bound::Excluded(at),
            }
        });
        if !self.desc {
            let mut lower = match &only {
                Some(base) => Bound::Included(concat(base, filter_low(filter))),
                None => Bound::Included(ns.to_vec()),
            };
            if let Some(a) = after {
                lower = max_lower(lower, a);
            }
            'seek: loop {
                let range = self
                    .t
                    .records
                    .range::<&[u8]>((as_slice_bound(&lower), Bound::Unbounded))
                    .map_err(StoreError::backend)?;
                for item in range {
                    let (k, v) = item.map_err(StoreError::backend)?;
                    let id = k.value();
                    if !id.starts_with(ns) {
                        return Ok(());
                    }
                    let base = &id[..ID_PREFIX_LEN];
                    if only.as_deref().is_some_and(|o| o != base) {
                        return Ok(());
                    }
                    match place(filter, &id[ID_PREFIX_LEN..]) {
                        Place::Inside => {
                            if self.offer_record(pager, id, v.value())?.is_break() {
                                return Ok(());
                            }
                        }
                        Place::Before => {
                            lower = Bound::Included(concat(base, filter_low(filter)));
                            continue 'seek;
                        }
                        Place::After => {
                            if only.is_some() {
                                return Ok(());
                            }
                            match prefix_end(base) {
                                Bound::Excluded(next) => lower = Bound::Included(next),
                                _ => return Ok(()),
                            }
                            continue 'seek;
                        }
                    }
                }
                return Ok(());
            }
        } else {
            let mut upper = match &only {
                Some(base) => filter_high(base, filter),
                None => prefix_end(ns),
            };
            if let Some(a) = after {
                upper = min_upper(upper, a);
            }
            'seek: loop {
                let range = self
                    .t
                    .records
                    .range::<&[u8]>((Bound::Included(ns.as_slice()), as_slice_bound(&upper)))
                    .map_err(StoreError::backend)?;
                for item in range.rev() {
                    let (k, v) = item.map_err(StoreError::backend)?;
                    let id = k.value();
                    let base = &id[..ID_PREFIX_LEN.min(id.len())];
                    if only.as_deref().is_some_and(|o| o != base) {
                        return Ok(());
                    }
                    match place(filter, id.get(ID_PREFIX_LEN..).unwrap_or_default()) {
                        Place::Inside => {
                            if self.offer_record(pager, id, v.value())?.is_break() {
                                return Ok(());
                            }
                        }
                        Place::After => {
                            upper = filter_high(base, filter);
                            continue 'seek;
                        }
                        Place::Before => {
                            if only.is_some() {
                                return Ok(());
                            }
                            upper = Bound::Excluded(base.to_vec());
                            continue 'seek;
                        }
                    }
                }
                return Ok(());
            }
        }
    }

    fn offer_record(
        &self,
        pager: &mut Pager,
        id: &[u8],
        value: &[u8; RECORD_VALUE_LEN],
    ) -> Result<ControlFlow<()>, StoreError> {
        let entry = decode_entry(id, value)?;
        if !self.wanted(&entry) {
            return Ok(ControlFlow::Continue(()));
        }
        Ok(pager.offer(entry))
    }

    /// The by-key range of positions `(key, author)` between two bounds, within the namespace.
    fn by_key_range(
        &self,
        lower: &Bound<Position>,
        upper: &Bound<Position>,
    ) -> Result<redb::Range<'_, crate::tables::ByKey<'static>, u64>, StoreError> {
        let ns = self.ns.as_bytes();
        let zero = [0u8; 32];
        let next_ns = prefix_successor(ns).map(|mut n| {
            n.resize(32, 0);
            let mut out = [0u8; 32];
            out.copy_from_slice(&n);
            out
        });
        let lower = match lower {
            Bound::Included((k, a)) => Bound::Included((ns, k.as_slice(), a)),
            Bound::Excluded((k, a)) => Bound::Excluded((ns, k.as_slice(), a)),
            Bound::Unbounded => Bound::Included((ns, &[][..], &zero)),
        };
        let upper = match (upper, &next_ns) {
            (Bound::Included((k, a)), _) => Bound::Included((ns, k.as_slice(), a)),
            (Bound::Excluded((k, a)), _) => Bound::Excluded((ns, k.as_slice(), a)),
            (Bound::Unbounded, Some(next)) => Bound::Excluded((next, &[][..], &zero)),
            (Bound::Unbounded, None) => Bound::Unbounded,
        };
        self.t
            .by_key
            .range((lower, upper))
            .map_err(StoreError::backend)
    }

    /// The filter's bounds on by-key positions.
    fn by_key_filter_bounds(&self) -> (Bound<Position>, Bound<Position>) {
        let filter = &self.query.key;
        let lower = Bound::Included((filter_low(filter).to_vec(), [0u8; 32]));
        let upper = match filter {
            KeyFilter::Any => Bound::Unbounded,
            KeyFilter::Prefix(p) => match prefix_successor(p) {
                Some(end) => Bound::Excluded((end, [0u8; 32])),
                None => Bound::Unbounded,
            },
            KeyFilter::Exact(k) => Bound::Included((k.to_vec(), [0xff; 32])),
        };
        (lower, upper)
    }

    /// The entry of `author` at `key`.
    fn record(&self, key: &[u8], author: &[u8; 32]) -> Result<SignedEntry, StoreError> {
        let id = concat(&concat(self.ns.as_bytes(), author), key);
        let value = self
            .t
            .records
            .get(id.as_slice())
            .map_err(StoreError::backend)?
            .ok_or_else(|| StoreError::Corrupt("by-key row without a record".into()))?;
        decode_entry(&id, value.value())
    }

    /// Key-author order over every author: the by-key table.
    fn by_key_flat(&self, pager: &mut Pager) -> Result<(), StoreError> {
        let (mut lower, mut upper) = self.by_key_filter_bounds();
        if let Some((k, a)) = &self.after {
            let at = (k.to_vec(), *a.as_bytes());
            if self.desc {
                upper = min_upper(upper, Bound::Excluded(at));
            } else {
                lower = max_lower(lower, Bound::Excluded(at));
            }
        }
        let range = self.by_key_range(&lower, &upper)?;
        let mut visit =
            |item: Result<_, redb::StorageError>| -> Result<ControlFlow<()>, StoreError> {
                let (k, _): (redb::AccessGuard<'_, crate::tables::ByKey<'static>>, _) =
                    item.map_err(StoreError::backend)?;
                let (_, key, author) = k.value();
                if place(&self.query.key, key) != Place::Inside {
                    return Ok(ControlFlow::Break(()));
                }
                let entry = self.record(key, author)?;
                if !self.wanted(&entry) {
                    return Ok(ControlFlow::Continue(()));
                }
                Ok(pager.offer(entry))
            };
        if self.desc {
            for item in range.rev() {
                if visit(item)?.is_break() {
                    break;
                }
            }
        } else {
            for item in range {
                if visit(item)?.is_break() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Latest entry per key over every author: groups of the by-key table.
    fn latest_per_key(&self, pager: &mut Pager) -> Result<(), StoreError> {
        let (mut lower, mut upper) = self.by_key_filter_bounds();
        // Resume at the group of the cursor's key: its choice is compared with the cursor below.
        if let Some((k, _)) = &self.after {
            if self.desc {
                upper = min_upper(upper, Bound::Included((k.to_vec(), [0xff; 32])));
            } else {
                lower = max_lower(lower, Bound::Included((k.to_vec(), [0u8; 32])));
            }
        }
        let range = self.by_key_range(&lower, &upper)?;
        // The group being collected: key, chosen author and timestamp.
        let mut group: Option<(Vec<u8>, [u8; 32], u64)> = None;
        let mut visit =
            |item: Option<Result<_, redb::StorageError>>| -> Result<ControlFlow<()>, StoreError> {
                let next = match item {
                    None => None,
                    Some(item) => {
                        let (k, v): (
                            redb::AccessGuard<'_, crate::tables::ByKey<'static>>,
                            redb::AccessGuard<'_, u64>,
                        ) = item.map_err(StoreError::backend)?;
                        let (_, key, author) = k.value();
                        if place(&self.query.key, key) != Place::Inside {
                            None
                        } else {
                            Some((key.to_vec(), *author, v.value()))
                        }
                    }
                };
                match (&mut group, next) {
                    (Some((gkey, gauthor, gts)), Some((key, author, ts))) if *gkey == key => {
                        // Newest wins; on a tie, the smallest author.
                        if ts > *gts || (ts == *gts && author < *gauthor) {
                            *gauthor = author;
                            *gts = ts;
                        }
                        Ok(ControlFlow::Continue(()))
                    }
                    (slot, next) => {
                        let done = next.is_none();
                        let finished = std::mem::replace(slot, next);
                        if let Some((key, author, _)) = finished
                            && self.emit_group(pager, &key, &author)?.is_break()
                        {
                            return Ok(ControlFlow::Break(()));
                        }
                        Ok(if done {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        })
                    }
                }
            };
        if self.desc {
            let mut range = range.rev();
            while visit(range.next())?.is_continue() {}
        } else {
            let mut range = range;
            while visit(range.next())?.is_continue() {}
        }
        Ok(())
    }

    fn emit_group(
        &self,
        pager: &mut Pager,
        key: &[u8],
        author: &[u8; 32],
    ) -> Result<ControlFlow<()>, StoreError> {
        if let Some((ak, aa)) = &self.after {
            let pos = (key, author.as_slice());
            let after = (ak.as_ref(), aa.as_bytes().as_slice());
            let past = if self.desc { pos < after } else { pos > after };
            if !past {
                return Ok(ControlFlow::Continue(()));
            }
        }
        let entry = self.record(key, author)?;
        if !self.wanted(&entry) {
            return Ok(ControlFlow::Continue(()));
        }
        Ok(pager.offer(entry))
    }
}

/// The entry at `id`, if stored.
pub(crate) fn get(t: &Tables<'_>, id: &[u8]) -> Result<Option<SignedEntry>, StoreError> {
    match t.records.get(id).map_err(StoreError::backend)? {
        Some(v) => Ok(Some(decode_entry(id, v.value())?)),
        None => Ok(None),
    }
}

/// The entry of `ns` whose entry fingerprint is `fp`, from the by-fingerprint index; the
/// record it names is checked to be of `ns` and to have that fingerprint.
pub(crate) fn by_fingerprint(
    t: &Tables<'_>,
    ns: &NamespaceId,
    fp: &Fingerprint,
) -> Result<Option<SignedEntry>, StoreError> {
    let Some(row) = t.fingerprint_row(fp)? else {
        return Ok(None);
    };
    let id = concat(ns.as_bytes(), &row);
    let id = id.as_slice();
    match t.records.get(id).map_err(StoreError::backend)? {
        Some(v) if record_fingerprint(id, v.value()) == *fp => {
            Ok(Some(decode_entry(id, v.value())?))
        }
        _ => Ok(None),
    }
}

/// Up to `max` entries of `ns` from identifier `from` (inclusive) to `end` (exclusive).
pub(crate) fn entries_from(
    t: &Tables<'_>,
    ns: &NamespaceId,
    from: &[u8],
    end: Option<&[u8]>,
    max: usize,
) -> Result<Vec<SignedEntry>, StoreError> {
    let upper = match end {
        Some(e) => min_upper(Bound::Excluded(e.to_vec()), namespace_end(ns)),
        None => namespace_end(ns),
    };
    let range = t
        .records
        .range::<&[u8]>((Bound::Included(from), as_slice_bound(&upper)))
        .map_err(StoreError::backend)?;
    let mut out = Vec::new();
    for item in range.take(max) {
        let (k, v) = item.map_err(StoreError::backend)?;
        out.push(decode_entry(k.value(), v.value())?);
    }
    Ok(out)
}
