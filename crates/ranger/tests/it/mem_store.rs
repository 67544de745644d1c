//! `MemStore` against a `BTreeMap` model: counts, fingerprints, ranks and iteration of every
//! kind of range, under inserts (last-write-wins) and removals.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use proptest::prelude::*;
use ranger::{Fingerprint, Interval, MemStore, Range, RangeEntry, Store, Summary};

use crate::support::{Entry, Key, toy_hash};

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u64),
    Remove(u8),
}

fn key(i: u8) -> Key {
    Key(format!("{i:03}"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..60, 0u64..5).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => (0u8..60).prop_map(Op::Remove),
    ]
}

/// The model's entries of `range` in circular order.
fn model_range(model: &BTreeMap<Key, u64>, range: &Range<Key>) -> Vec<(Key, u64)> {
    let mut v: Vec<(Key, u64)> = model
        .iter()
        .filter(|(k, _)| range.contains(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    v.sort_by(|a, b| range.circular_cmp(&a.0, &b.0));
    v
}

proptest! {
    #[test]
    fn mem_store_matches_model(
        ops in prop::collection::vec(op(), 0..200),
        ranges in prop::collection::vec((0u8..62, 0u8..62), 1..12),
    ) {
        let mut store: MemStore<Entry> = MemStore::new();
        let mut model: BTreeMap<Key, u64> = BTreeMap::new();
        for (i, op) in ops.into_iter().enumerate() {
            // Summaries asked between changes must not leave stale answers behind.
            if i % 5 == 0 {
                let (x, y) = (key(i as u8 % 61), key((i as u8).wrapping_mul(7) % 61));
                let (r1, r2) = (Range::new(x.clone(), y.clone()), Range::new(y, x));
                store.range_summaries(&[&r1, &r2]).unwrap();
            }
            // Relaying the nodes out changes no answer, before or after further changes.
            if i % 13 == 12 {
                store.compact();
            }
            match op {
                Op::Insert(k, v) => {
                    let stored = store.insert(Entry { key: key(k), value: crate::support::Value(v) });
                    let expect = model.get(&key(k)).is_none_or(|old| v > *old);
                    prop_assert_eq!(stored, expect);
                    if expect {
                        model.insert(key(k), v);
                    }
                }
                Op::Remove(k) => {
                    let removed = store.remove(&key(k)).map(|e| e.value.0);
                    prop_assert_eq!(removed, model.remove(&key(k)));
                }
            }
        }
        // Half the cases go on with a copy (laid out anew): it must answer the same.
        if ranges.len() % 2 == 0 {
            store = store.clone();
        }
        prop_assert_eq!(store.len(), model.len());
        let listed: Vec<(Key, u64)> = store.iter().map(|e| (e.key.clone(), e.value.0)).collect();
        let expected: Vec<(Key, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
        prop_assert_eq!(listed, expected);
        for (k, v) in &model {
            prop_assert_eq!(store.get(k).map(|e| e.value.0), Some(*v));
        }
        // The fingerprint index names exactly the stored entries: every stored one under its
        // fingerprint, and no value of a key that was replaced or removed.
        for (k, v) in &model {
            let found = store.entry_by_fingerprint(&toy_hash(&k.0, *v)).unwrap();
            prop_assert_eq!(found.map(|e| (e.key, e.value.0)), Some((k.clone(), *v)));
        }
        for i in 0u8..62 {
            for v in 0u64..8 {
                if model.get(&key(i)) != Some(&v) {
                    prop_assert_eq!(store.entry_by_fingerprint(&toy_hash(&key(i).0, v)).unwrap(), None);
                }
            }
        }

        // Some ranges are forced to be the whole set.
        let ranges: Vec<Range<Key>> = ranges
            .into_iter()
            .enumerate()
            .map(|(i, (x, y))| if i % 4 == 3 { Range::new(key(x), key(x)) } else { Range::new(key(x), key(y)) })
            .collect();
        // All of them at once (overlapping, repeated, in any order) as one by one.
        let refs: Vec<&Range<Key>> = ranges.iter().collect();
        let one_by_one: Vec<Summary> = ranges.iter().map(|r| store.range_summary(r).unwrap()).collect();
        prop_assert_eq!(store.range_summaries(&refs).unwrap(), one_by_one);
        for (i, range) in ranges.into_iter().enumerate() {
            let want = model_range(&model, &range);
            prop_assert_eq!(store.range_count(&range).unwrap(), want.len() as u64);

            let mut fp = Fingerprint::EMPTY;
            for (k, v) in &want {
                fp ^= toy_hash(&k.0, *v);
            }
            prop_assert_eq!(store.range_fingerprint(&range).unwrap(), fp);

            for (rank, (k, _)) in want.iter().enumerate() {
                prop_assert_eq!(store.range_key_at(&range, rank as u64).unwrap(), Some(k.clone()));
            }
            prop_assert_eq!(store.range_key_at(&range, want.len() as u64).unwrap(), None);

            // The one-descent answers (`summary`, `pivots`) agree with the model too: each
            // pivot's summary is that of the entries before it in circular order.
            prop_assert_eq!(
                store.range_summary(&range).unwrap(),
                Summary { count: want.len() as u64, fingerprint: fp }
            );
            let ranks: Vec<u64> = (0..=want.len() as u64 + 1).step_by(1 + i % 3).collect();
            let mut expected = Vec::new();
            for &rank in &ranks {
                let Some((k, _)) = want.get(rank as usize) else { break };
                let below = want[..rank as usize]
                    .iter()
                    .fold(Fingerprint::EMPTY, |acc, (k, v)| acc ^ toy_hash(&k.0, *v));
                expected.push((k.clone(), Summary { count: rank, fingerprint: below }));
            }
            prop_assert_eq!(store.range_pivots(&range, &ranks).unwrap(), expected);

            let mut seen = Vec::new();
            store.range_for_each(&range, |e| { seen.push((e.key.clone(), e.value.0)); ControlFlow::Continue(()) }).unwrap();
            prop_assert_eq!(&seen, &want);

            // Stopping early stops early.
            let mut firsts = Vec::new();
            store.range_for_each(&range, |e| {
                firsts.push(e.key().clone());
                if firsts.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            }).unwrap();
            let want_firsts: Vec<Key> = want.iter().take(2).map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(firsts, want_firsts);
        }
    }
}

#[test]
fn interval_queries_on_a_small_store() {
    let mut store: MemStore<Entry> = ["b", "d", "f", "h"]
        .iter()
        .map(|k| Entry::new(k, 1))
        .collect();
    let (b, f, z) = (Key("b".into()), Key("f".into()), Key("z".into()));
    let iv = Interval::new(Some(&b), Some(&f)).unwrap();
    assert_eq!(store.count(iv).unwrap(), 2);
    assert_eq!(store.key_at(iv, 1).unwrap(), Some(Key("d".into())));
    assert_eq!(store.key_at(iv, 2).unwrap(), None);
    let above = Interval::new(Some(&z), None).unwrap();
    assert_eq!(store.count(above).unwrap(), 0);
    assert_eq!(store.fingerprint(above).unwrap(), Fingerprint::EMPTY);
    let all = Interval::all();
    let fp = ["b", "d", "f", "h"]
        .iter()
        .fold(Fingerprint::EMPTY, |acc, k| acc ^ toy_hash(k, 1));
    assert_eq!(store.fingerprint(all).unwrap(), fp);
}

#[test]
fn wrap_range_iterates_upper_part_first() {
    let mut store: MemStore<Entry> = ["a", "c", "e", "g"]
        .iter()
        .map(|k| Entry::new(k, 1))
        .collect();
    let range = Range::new(Key("e".into()), Key("c".into()));
    let mut seen = Vec::new();
    store
        .range_for_each(&range, |e| {
            seen.push(e.key.0.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, ["e", "g", "a"]);
    assert_eq!(
        store.range_key_at(&range, 2).unwrap(),
        Some(Key("a".into()))
    );
    // The whole set anchored at a key that is not stored starts above it.
    let all = Range::new(Key("d".into()), Key("d".into()));
    assert_eq!(store.range_key_at(&all, 0).unwrap(), Some(Key("e".into())));
    assert_eq!(store.range_key_at(&all, 3).unwrap(), Some(Key("c".into())));
    assert_eq!(store.range_count(&all).unwrap(), 4);
}

/// An entry with a fingerprint of our choosing.
#[derive(Debug, Clone, PartialEq)]
struct Chosen {
    key: Key,
    fingerprint: Fingerprint,
}

impl RangeEntry for Chosen {
    type Key = Key;
    type Value = crate::support::Value;

    fn key(&self) -> &Key {
        &self.key
    }

    fn value(&self) -> &crate::support::Value {
        &crate::support::Value(0)
    }

    fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    fn encoded_len(&self) -> usize {
        1
    }
}

/// The fingerprint index places entries by the first bytes of their fingerprints: entries that
/// share them all land on one run of the table. Every entry stays found by its whole
/// fingerprint and only by it, through inserts, removals (which close the gaps they leave in the
/// run), rewrites and compactions.
#[test]
fn fingerprints_that_share_their_first_bytes_are_all_found() {
    let chosen = |i: u16| {
        let mut fp = [0x5a; 32];
        fp[30..].copy_from_slice(&i.to_be_bytes());
        Chosen {
            key: Key(format!("{i:04}")),
            fingerprint: Fingerprint(fp),
        }
    };
    let mut store: MemStore<Chosen> = MemStore::new();
    let mut model: BTreeMap<u16, Chosen> = BTreeMap::new();
    let check = |store: &mut MemStore<Chosen>, model: &BTreeMap<u16, Chosen>| {
        for i in 0..600u16 {
            let found = store.entry_by_fingerprint(&chosen(i).fingerprint).unwrap();
            assert_eq!(
                found.map(|e| e.key),
                model.get(&i).map(|e| e.key.clone()),
                "entry {i}"
            );
        }
        let all = model
            .values()
            .fold(Fingerprint::EMPTY, |acc, e| acc ^ e.fingerprint);
        assert_eq!(store.fingerprint(Interval::all()).unwrap(), all);
    };
    for i in 0..500u16 {
        store.insert(chosen(i));
        model.insert(i, chosen(i));
    }
    check(&mut store, &model);
    // Removals from the middle of the run, in an order unrelated to it.
    for i in (0..500u16).filter(|i| i % 3 != 1) {
        let j = (i * 7) % 500;
        if model.remove(&j).is_some() {
            assert!(store.remove(&chosen(j).key).is_some());
        }
    }
    check(&mut store, &model);
    for i in 450..600u16 {
        store.insert(chosen(i));
        model.insert(i, chosen(i));
    }
    check(&mut store, &model);
    store.compact();
    check(&mut store, &model);
    let mut copy = store.clone();
    check(&mut copy, &model);
}
