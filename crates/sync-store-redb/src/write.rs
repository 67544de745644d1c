//! Writing entries: the insertion rule, the indexes it maintains, and removing a document.

use std::ops::Bound;

use redb::ReadableTable;
use sync_core::{
    Fingerprint, ID_PREFIX_LEN, InsertOutcome, KEY_LEN, NamespaceId, Record, SignedEntry,
    StoreError,
};

use crate::aggregate::{self, namespace_end, node_key};
use crate::bounds::{as_slice_bound, common_prefix_len, prefix_end};
use crate::tables::{
    LEVELS, RECORD_VALUE_LEN, Shape, Tables, decode_latest, decode_record, encode_latest,
    encode_record, fingerprint_key, fingerprint_row_of, parent_id_len, parent_link,
    record_fingerprint, record_parent, with_parent,
};

/// The stored entries at the new entry's key and at prefixes of it: whether one blocks the new
/// entry, and the length of the longest stored proper prefix (the new record's parent).
enum Ancestry {
    Blocked,
    Clear { parent: u32 },
}

/// Fetches the record at `id`, which a parent link says is stored.
fn linked(t: &Tables<'_>, id: &[u8]) -> Result<[u8; RECORD_VALUE_LEN], StoreError> {
    t.records
        .get(id)
        .map_err(StoreError::backend)?
        .map(|v| *v.value())
        .ok_or_else(|| StoreError::Corrupt("a parent link points to no record".into()))
}

/// Finds the stored entries at `x` and at every prefix of it (the same namespace and author,
/// down to the empty key) and checks them against `new`.
///
/// One seek finds `p`, the greatest stored identifier at or below `x`. If `p` is a prefix of
/// `x` (or `x` itself), it is the longest stored one. If not, let `l` be the length of the
/// common prefix of `p` and `x`: no stored identifier lies strictly between `p` and `x`, and
/// every prefix of `x` longer than `l` would, so the stored prefixes of `x` are exactly the
/// stored prefixes of `p` no longer than `l`. Either way the rest are found by following the
/// parent links (each record names its nearest stored ancestor), one lookup per stored
/// ancestor. The cost depends on how many ancestors are stored, not on the key length.
fn ancestry(t: &Tables<'_>, x: &[u8], new: &Record) -> Result<Ancestry, StoreError> {
    let base = &x[..ID_PREFIX_LEN];
    let found = {
        let mut range = t
            .records
            .range::<&[u8]>(base..=x)
            .map_err(StoreError::backend)?;
        match range.next_back() {
            None => None,
            Some(item) => {
                let (k, v) = item.map_err(StoreError::backend)?;
                Some((k.value().to_vec(), *v.value()))
            }
        }
    };
    // The longest stored prefix of x (or x itself): its length and value.
    let mut current = match found {
        None => None,
        Some((p, value)) if x.starts_with(&p) => Some((p.len(), value)),
        Some((p, value)) => {
            let l = common_prefix_len(&p, x);
            let mut link = record_parent(&value);
            loop {
                if link == 0 {
                    break None;
                }
                let len = parent_id_len(link);
                let value = linked(t, &p[..len.min(p.len())])?;
                if len <= l {
                    break Some((len, value));
                }
                link = record_parent(&value);
            }
        }
    };
    let mut parent = 0;
    while let Some((len, value)) = current {
        // `blocks` of sync-core: an equal or newer record at the key or a prefix.
        if decode_record(&value) >= *new {
            return Ok(Ancestry::Blocked);
        }
        if len < x.len() && parent == 0 {
            parent = parent_link(len);
        }
        current = match record_parent(&value) {
            0 => None,
            link => {
                let len = parent_id_len(link);
                Some((len, linked(t, &x[..len.min(x.len())])?))
            }
        };
    }
    Ok(Ancestry::Clear { parent })
}

/// Inserts an entry by the insertion rule of `sync_core::store`.
pub(crate) fn insert(
    t: &mut Tables<'_>,
    shape: &Shape,
    entry: &SignedEntry,
) -> Result<InsertOutcome, StoreError> {
    let ns = entry.namespace();
    let author = entry.author();
    let x = entry.id().as_bytes();
    let new = *entry.record();
    let parent = match ancestry(t, x, &new)? {
        Ancestry::Blocked => return Ok(InsertOutcome::NotInserted),
        Ancestry::Clear { parent } => parent,
    };

    // The entries at keys that start with the key: those not newer go (an equal record at a
    // longer key too, as the new entry would block it arriving later; the one at the key itself
    // is older, else it would have blocked); the newer ones stay and get their parent links
    // recomputed: the nearest surviving ancestor below the new key, else the new key.
    let mut dominated = Vec::new();
    let mut old_here = None;
    let mut relinked = Vec::new();
    {
        let range = t
            .records
            .range::<&[u8]>((Bound::Included(x), as_slice_bound(&prefix_end(x))))
            .map_err(StoreError::backend)?;
        // Surviving identifiers that are prefixes of the current one, outermost first.
        let mut survivors: Vec<Vec<u8>> = Vec::new();
        for item in range {
            let (k, v) = item.map_err(StoreError::backend)?;
            let (k, v) = (k.value(), v.value());
            if decode_record(v) <= new {
                let fp = record_fingerprint(k, v);
                if k == x {
                    old_here = Some(fp);
                } else {
                    dominated.push((k.to_vec(), fp));
                }
                continue;
            }
            while survivors.last().is_some_and(|s| !k.starts_with(s)) {
                survivors.pop();
            }
            let link = parent_link(survivors.last().map_or(x.len(), Vec::len));
            if record_parent(v) != link {
                relinked.push((k.to_vec(), with_parent(v, link)));
            }
            survivors.push(k.to_vec());
        }
    }
    for (id, fp) in &dominated {
        t.records
            .remove(id.as_slice())
            .map_err(StoreError::backend)?;
        unindex_fingerprint(t, fp, id)?;
        t.by_key
            .remove((ns.as_bytes(), &id[ID_PREFIX_LEN..], author.as_bytes()))
            .map_err(StoreError::backend)?;
        aggregate::on_remove(t, shape, &ns, id, *fp)?;
    }
    for (id, value) in &relinked {
        t.records
            .insert(id.as_slice(), value)
            .map_err(StoreError::backend)?;
    }

    let fp = entry.entry().fingerprint();
    t.records
        .insert(x, &encode_record(entry, parent))
        .map_err(StoreError::backend)?;
    t.by_key
        .insert(
            (ns.as_bytes(), entry.key(), author.as_bytes()),
            entry.timestamp(),
        )
        .map_err(StoreError::backend)?;
    match old_here {
        Some(old) => {
            unindex_fingerprint(t, &old, x)?;
            aggregate::on_update(t, &ns, x, old, fp)?;
        }
        None => aggregate::on_insert(t, shape, &ns, x, fp)?,
    }
    t.fingerprints_pending
        .insert(fingerprint_key(&fp), Some(fingerprint_row_of(x).to_vec()));
    update_latest(t, entry, &dominated)?;
    let removed = dominated.len() as u64 + u64::from(old_here.is_some());
    Ok(InsertOutcome::Inserted { removed })
}

/// Removes the fingerprint row of the record `id` whose entry fingerprint is `fp`, unless the
/// row names another record (see `tables::BY_FINGERPRINT`).
fn unindex_fingerprint(t: &mut Tables<'_>, fp: &Fingerprint, id: &[u8]) -> Result<(), StoreError> {
    if t.fingerprint_row(fp)?.as_deref() == Some(fingerprint_row_of(id)) {
        t.fingerprints_pending.insert(fingerprint_key(fp), None);
    }
    Ok(())
}

/// Keeps `latest-per-author` exact after `entry` was stored and `dominated` removed.
///
/// The latest entry of an author is the one with the greatest timestamp, the smallest key
/// among equals. The new entry replaces the stored one if it is at least as late. If the stored
/// one was removed, the new entry always replaces it (the removed entry's key starts with the
/// new key and its record is not newer, so its timestamp is at most the new one's and its key is
/// not smaller), so no rescan is needed; the rescan below is a safety net, not a path taken.
fn update_latest(
    t: &mut Tables<'_>,
    entry: &SignedEntry,
    dominated: &[(Vec<u8>, sync_core::Fingerprint)],
) -> Result<(), StoreError> {
    let lkey = latest_key(&entry.namespace(), entry.id().as_bytes());
    let current = t
        .latest
        .get(&lkey)
        .map_err(StoreError::backend)?
        .map(|v| decode_latest(v.value()).map(|(ts, key)| (ts, key.to_vec())))
        .transpose()?;
    let (ts, key) = (entry.timestamp(), entry.key());
    let wins = match &current {
        None => true,
        Some((cts, ckey)) => ts > *cts || (ts == *cts && key <= ckey.as_slice()),
    };
    if wins {
        t.latest
            .insert(&lkey, encode_latest(ts, key).as_slice())
            .map_err(StoreError::backend)?;
    } else if let Some((_, ckey)) = current
        && dominated
            .iter()
            .any(|(id, _)| &id[ID_PREFIX_LEN..] == ckey.as_slice())
    {
        recompute_latest(t, &lkey)?;
    }
    Ok(())
}

/// The `latest-per-author` key of the author of identifier `id`.
fn latest_key(ns: &NamespaceId, id: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..KEY_LEN].copy_from_slice(ns.as_bytes());
    out[KEY_LEN..].copy_from_slice(&id[KEY_LEN..ID_PREFIX_LEN]);
    out
}

/// The latest entry of the author of the (namespace | author) prefix `prefix`, by a scan.
pub(crate) fn scan_latest(
    t: &Tables<'_>,
    prefix: &[u8; 64],
) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let range = t
        .records
        .range::<&[u8]>((
            Bound::Included(prefix.as_slice()),
            as_slice_bound(&prefix_end(prefix)),
        ))
        .map_err(StoreError::backend)?;
    let mut best: Option<(u64, Vec<u8>)> = None;
    for item in range {
        let (k, v) = item.map_err(StoreError::backend)?;
        let ts = decode_record(v.value()).timestamp();
        // Keys come in ascending order: only a strictly greater timestamp replaces.
        if best.as_ref().is_none_or(|(bts, _)| ts > *bts) {
            best = Some((ts, k.value()[ID_PREFIX_LEN..].to_vec()));
        }
    }
    Ok(best)
}

fn recompute_latest(t: &mut Tables<'_>, lkey: &[u8; 64]) -> Result<(), StoreError> {
    match scan_latest(t, lkey)? {
        Some((ts, key)) => t
            .latest
            .insert(lkey, encode_latest(ts, &key).as_slice())
            .map(|_| ()),
        None => t.latest.remove(lkey).map(|_| ()),
    }
    .map_err(StoreError::backend)
}

/// Removes every entry and index row of a document, and its peers and policy. The namespace
/// row is removed by the caller.
pub(crate) fn remove_namespace_data(
    t: &mut Tables<'_>,
    ns: &NamespaceId,
) -> Result<(), StoreError> {
    let nsb = ns.as_bytes();
    let end = namespace_end(ns);
    let mut indexed = Vec::new();
    for item in t
        .records
        .range::<&[u8]>((Bound::Included(nsb.as_slice()), as_slice_bound(&end)))
        .map_err(StoreError::backend)?
    {
        let (k, v) = item.map_err(StoreError::backend)?;
        indexed.push((record_fingerprint(k.value(), v.value()), k.value().to_vec()));
    }
    for (fp, id) in &indexed {
        unindex_fingerprint(t, fp, id)?;
    }
    t.records
        .retain_in::<&[u8], _>(
            (Bound::Included(nsb.as_slice()), as_slice_bound(&end)),
            |_, _| false,
        )
        .map_err(StoreError::backend)?;
    let zero = [0u8; 32];
    let by_key_end = prefix_successor_32(nsb);
    let lower: (&[u8; 32], &[u8], &[u8; 32]) = (nsb, &[], &zero);
    match &by_key_end {
        Some(next) => t.by_key.retain_in(
            (
                Bound::Included(lower),
                Bound::Excluded((next, &[][..], &zero)),
            ),
            |_, _| false,
        ),
        None => t
            .by_key
            .retain_in((Bound::Included(lower), Bound::Unbounded), |_, _| false),
    }
    .map_err(StoreError::backend)?;
    let mut first = [0u8; 64];
    first[..32].copy_from_slice(nsb);
    let mut last = first;
    last[32..].fill(0xff);
    t.latest
        .retain_in::<&[u8; 64], _>(&first..=&last, |_, _| false)
        .map_err(StoreError::backend)?;
    for level in 1..=LEVELS {
        let from = node_key(level, nsb);
        let to = prefix_end(&from);
        t.aggregates
            .retain_in::<&[u8], _>(
                (Bound::Included(from.as_slice()), as_slice_bound(&to)),
                |_, _| false,
            )
            .map_err(StoreError::backend)?;
    }
    t.peers.remove(nsb).map_err(StoreError::backend)?;
    t.policies.remove(nsb).map_err(StoreError::backend)?;
    Ok(())
}

/// The next 32-byte id, or `None` after all 0xff.
fn prefix_successor_32(id: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = *id;
    for b in out.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(out);
        }
    }
    None
}
