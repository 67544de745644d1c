//! The consistency check: every index recomputed from the records and compared.

use std::collections::BTreeMap;

use redb::ReadableTable;
use sync_core::{ID_PREFIX_LEN, KEY_LEN, StoreError};

use crate::aggregate::{Agg, node_key};
use crate::tables::{
    LEVELS, META_VERSION, SCHEMA_VERSION, Shape, Tables, decode_agg, decode_capability,
    decode_latest, decode_policy, decode_record, fingerprint_key, fingerprint_row_of, parent_link,
    record_fingerprint, record_parent,
};

/// A by-key row: namespace, key, author.
type ByKeyRow = (Vec<u8>, Vec<u8>, Vec<u8>);

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// Checks the whole store; see `RedbStore::check_consistency`.
pub(crate) fn check(t: &Tables<'_>, shape: &Shape) -> Result<(), StoreError> {
    let version = t.meta_value(META_VERSION)?;
    if version.as_deref() != Some(SCHEMA_VERSION.to_be_bytes().as_slice()) {
        return Err(corrupt(format!("schema version {version:?}")));
    }

    let mut namespaces = Vec::new();
    for item in t.namespaces.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let cap = decode_capability(v.value())?;
        if cap.id().as_bytes() != k.value() {
            return Err(corrupt("namespace row under another id"));
        }
        namespaces.push(*k.value());
    }

    // Everything derived from the records, recomputed in one pass.
    // (namespace, key, author) -> timestamp.
    let mut by_key: BTreeMap<ByKeyRow, u64> = BTreeMap::new();
    let mut latest: BTreeMap<Vec<u8>, (u64, Vec<u8>)> = BTreeMap::new();
    let mut aggregates: BTreeMap<Vec<u8>, Agg> = BTreeMap::new();
    // Entry fingerprint -> the identifiers of the records that have it.
    // (The index key is the first 8 bytes; a row holds the identifier without the namespace.)
    let mut fingerprints: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    // Per level: the key of the node being filled and the namespace it belongs to.
    let mut open: Vec<Option<(Vec<u8>, Vec<u8>)>> = vec![None; usize::from(LEVELS) + 1];
    let mut ancestors: Vec<Vec<u8>> = Vec::new();
    for item in t.records.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let (id, value) = (k.value(), v.value());
        if id.len() < ID_PREFIX_LEN {
            return Err(corrupt("short record identifier"));
        }
        let (ns, author, key) = (
            &id[..KEY_LEN],
            &id[KEY_LEN..ID_PREFIX_LEN],
            &id[ID_PREFIX_LEN..],
        );
        if !namespaces.iter().any(|n| n.as_slice() == ns) {
            return Err(corrupt("record of an unknown document"));
        }
        // The nearest stored ancestor: the innermost identifier on the stack of enclosing
        // ones (a prefix sorts right before the identifiers it prefixes).
        while ancestors
            .last()
            .is_some_and(|s: &Vec<u8>| !id.starts_with(s))
        {
            ancestors.pop();
        }
        let want = ancestors.last().map_or(0, |a| parent_link(a.len()));
        if record_parent(value) != want {
            return Err(corrupt(format!(
                "parent link {} of {:?}, recomputed {want}",
                record_parent(value),
                String::from_utf8_lossy(key)
            )));
        }
        ancestors.push(id.to_vec());
        let record = decode_record(value);
        by_key.insert(
            (ns.to_vec(), key.to_vec(), author.to_vec()),
            record.timestamp(),
        );
        let slot = latest
            .entry(id[..ID_PREFIX_LEN].to_vec())
            .or_insert((record.timestamp(), key.to_vec()));
        if record.timestamp() > slot.0 {
            *slot = (record.timestamp(), key.to_vec());
        }
        let fp = record_fingerprint(id, value);
        fingerprints
            .entry(fingerprint_key(&fp))
            .or_default()
            .push(fingerprint_row_of(id).to_vec());
        let height = shape.level_of(id);
        for level in 1..=LEVELS {
            let slot = &mut open[usize::from(level)];
            let node = if level <= height {
                node_key(level, id)
            } else {
                match slot {
                    Some((node, node_ns)) if node_ns.as_slice() == ns => node.clone(),
                    _ => node_key(level, ns),
                }
            };
            *slot = Some((node.clone(), ns.to_vec()));
            aggregates
                .entry(node)
                .or_insert(Agg::ZERO)
                .add(Agg::one(fp));
        }
    }

    let mut rows = 0usize;
    for item in t.by_key.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let (ns, key, author) = k.value();
        let want = by_key.get(&(ns.to_vec(), key.to_vec(), author.to_vec()));
        if want != Some(&v.value()) {
            return Err(corrupt(format!(
                "by-key row {:?} has timestamp {}, the record {want:?}",
                String::from_utf8_lossy(key),
                v.value()
            )));
        }
        rows += 1;
    }
    if rows != by_key.len() {
        return Err(corrupt(format!(
            "{} records but {rows} by-key rows",
            by_key.len()
        )));
    }

    let mut rows = 0usize;
    for item in t.latest.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let (ts, key) = decode_latest(v.value())?;
        if latest.get(k.value().as_slice()) != Some(&(ts, key.to_vec())) {
            return Err(corrupt(format!(
                "latest-per-author row ({ts}, {:?}) disagrees with the records",
                String::from_utf8_lossy(key)
            )));
        }
        rows += 1;
    }
    if rows != latest.len() {
        return Err(corrupt(
            "an author with entries has no latest-per-author row",
        ));
    }

    let mut rows = 0usize;
    for item in t.aggregates.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        let (count, xor) = decode_agg(v.value());
        let want = aggregates.get(k.value());
        if want != Some(&Agg { count, xor }) {
            return Err(corrupt(format!(
                "aggregate node at level {} has count {count}, recomputed {:?}",
                k.value().first().copied().unwrap_or(0),
                want.map(|a| a.count)
            )));
        }
        rows += 1;
    }
    if rows != aggregates.len() {
        return Err(corrupt(format!(
            "{} aggregate nodes stored, {} recomputed",
            rows,
            aggregates.len()
        )));
    }

    // The rows as the transaction sees them: the table with the pending writes applied.
    let mut index: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for item in t.by_fingerprint.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        index.insert(k.value(), v.value().to_vec());
    }
    for (fp, row) in &t.fingerprints_pending {
        match row {
            Some(id) => index.insert(*fp, id.clone()),
            None => index.remove(fp),
        };
    }
    let mut rows = 0usize;
    for (k, v) in &index {
        let named = fingerprints
            .get(k)
            .is_some_and(|ids| ids.iter().any(|id| id == v));
        if !named {
            return Err(corrupt(
                "by-fingerprint row names no record with that fingerprint",
            ));
        }
        rows += 1;
    }
    if rows != fingerprints.len() {
        return Err(corrupt(format!(
            "{} fingerprints among the records but {rows} by-fingerprint rows",
            fingerprints.len()
        )));
    }

    for item in t.peers.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        if !namespaces.contains(k.value()) || v.value().len() % 32 != 0 {
            return Err(corrupt("peers row of an unknown document or malformed"));
        }
    }
    for item in t.policies.iter().map_err(StoreError::backend)? {
        let (k, v) = item.map_err(StoreError::backend)?;
        if !namespaces.contains(k.value()) {
            return Err(corrupt("download policy of an unknown document"));
        }
        decode_policy(v.value())?;
    }
    Ok(())
}
