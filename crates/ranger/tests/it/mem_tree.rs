//! `MemStore` with thousands of entries against a `BTreeMap` model: enough for several levels
//! of nodes, node splits, compactions as the store doubles and halves, and keys that stress the
//! inline key comparisons (long shared prefixes, ties in the first bytes after a node's common
//! prefix, keys that are prefixes of others), for a key type with order bytes and one without.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ranger::{Fingerprint, MemStore, Range, RangeEntry, RangeKey, Store, Summary};

use crate::support::{Entry, Key, Value, toy_hash};

/// A key without order bytes: the store compares whole keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Plain(u32);

impl RangeKey for Plain {
    fn encoded_len(&self) -> usize {
        4
    }
}

#[derive(Debug, Clone)]
struct PlainEntry(Plain, Value);

impl RangeEntry for PlainEntry {
    type Key = Plain;
    type Value = Value;

    fn key(&self) -> &Plain {
        &self.0
    }

    fn value(&self) -> &Value {
        &self.1
    }

    fn fingerprint(&self) -> Fingerprint {
        toy_hash(&self.0.0.to_string(), self.1.0)
    }

    fn encoded_len(&self) -> usize {
        12
    }
}

/// Key `i` as a string, in one of several shapes (see the module docs).
fn text_key(i: u16) -> Key {
    Key(match i % 6 {
        0 => format!("{}", i % 70),
        1 => format!("{}~~~~~~~~~{i:05}", char::from(b'a' + (i % 3) as u8)),
        2 => format!("shared/and/rather/long/prefix/{i:05}"),
        3 => format!(
            "shared/and/rather/long/prefix/{i:05}/{}",
            "x".repeat(usize::from(i % 4))
        ),
        // A common prefix longer than a node keeps (it is cut), then ties past the window.
        4 => format!(
            "{}{}{i:05}",
            "p".repeat(120),
            "q".repeat(usize::from(i % 3) * 9)
        ),
        _ => format!("{i:05}\0z"),
    })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u64),
    Remove(u16),
    /// Removes every key `k` with `k % 8 != keep`: the store shrinks fast.
    Thin(u16),
    Compact,
    /// Looks key `k`'s entry up by its fingerprint, and by that of each other value: entries
    /// added since the last lookup are indexed by the next one.
    Find(u16),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        // Rare thinning and compaction: nodes must fill up and split between them.
        1000 => (0u16..4000, 0u64..4).prop_map(|(k, v)| Op::Insert(k, v)),
        200 => (0u16..4000).prop_map(Op::Remove),
        2 => (0u16..8).prop_map(Op::Thin),
        2 => Just(Op::Compact),
        20 => (0u16..4000).prop_map(Op::Find),
    ];
    prop::collection::vec(op, 0..4000)
}

/// Runs `ops` on a store and a model, then checks every query on `ranges` against the model.
fn check<E: RangeEntry>(
    ops: &[Op],
    ranges: &[(u16, u16)],
    key: impl Fn(u16) -> E::Key,
    entry: impl Fn(u16, u64) -> E,
    value: impl Fn(&E) -> u64,
) -> Result<(), TestCaseError> {
    let mut store: MemStore<E> = MemStore::new();
    let mut model: BTreeMap<E::Key, (u64, Fingerprint)> = BTreeMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                let e = entry(k, v);
                let expect = model.get(&key(k)).is_none_or(|(old, _)| v > *old);
                prop_assert_eq!(store.insert(e.clone()), expect);
                if expect {
                    model.insert(key(k), (v, e.fingerprint()));
                }
            }
            Op::Remove(k) => {
                let removed = store.remove(&key(k)).map(|e| value(&e));
                prop_assert_eq!(removed, model.remove(&key(k)).map(|(v, _)| v));
            }
            Op::Thin(keep) => {
                for k in (0..4000u16).filter(|k| k % 8 != keep) {
                    let removed = store.remove(&key(k)).map(|e| value(&e));
                    prop_assert_eq!(removed, model.remove(&key(k)).map(|(v, _)| v));
                }
            }
            Op::Compact => store.compact(),
            Op::Find(k) => {
                let stored = model.get(&key(k)).map(|(v, _)| *v);
                for v in 0..4 {
                    let found = store
                        .entry_by_fingerprint(&entry(k, v).fingerprint())
                        .unwrap();
                    let want = (stored == Some(v)).then_some((key(k), v));
                    prop_assert_eq!(found.map(|e| (e.key().clone(), value(&e))), want);
                }
            }
        }
    }
    // Half the cases go on with a copy (built anew from sorted order): it must answer the same.
    if ops.len().is_multiple_of(2) {
        store = store.clone();
    }
    prop_assert_eq!(store.len(), model.len());
    let listed: Vec<(E::Key, u64)> = store.iter().map(|e| (e.key().clone(), value(e))).collect();
    let expected: Vec<(E::Key, u64)> = model.iter().map(|(k, (v, _))| (k.clone(), *v)).collect();
    prop_assert_eq!(listed, expected);
    for (k, (v, fp)) in &model {
        prop_assert_eq!(store.get(k).map(&value), Some(*v));
        let found = store.entry_by_fingerprint(fp).unwrap();
        prop_assert_eq!(
            found.map(|e| (e.key().clone(), value(&e))),
            Some((k.clone(), *v))
        );
    }
    for k in (0..4000u16).step_by(7) {
        if !model.contains_key(&key(k)) {
            prop_assert!(store.get(&key(k)).is_none());
        }
    }

    let ranges: Vec<Range<E::Key>> = ranges
        .iter()
        .map(|&(x, y)| Range::new(key(x), key(y)))
        .collect();
    let refs: Vec<&Range<E::Key>> = ranges.iter().collect();
    let one_by_one: Vec<Summary> = ranges
        .iter()
        .map(|r| store.range_summary(r).unwrap())
        .collect();
    prop_assert_eq!(store.range_summaries(&refs).unwrap(), one_by_one);
    for range in &ranges {
        let mut want: Vec<(&E::Key, &(u64, Fingerprint))> =
            model.iter().filter(|(k, _)| range.contains(k)).collect();
        want.sort_by(|a, b| range.circular_cmp(a.0, b.0));
        let fp = want
            .iter()
            .fold(Fingerprint::EMPTY, |acc, (_, (_, f))| acc ^ *f);
        prop_assert_eq!(
            store.range_summary(range).unwrap(),
            Summary {
                count: want.len() as u64,
                fingerprint: fp
            }
        );
        // Pivots at a spread of ranks, past the end included.
        let step = (want.len() / 9).max(1);
        let ranks: Vec<u64> = (0..want.len() + 2)
            .step_by(step)
            .map(|r| r as u64)
            .collect();
        let mut expected = Vec::new();
        let mut below = Fingerprint::EMPTY;
        for (rank, (k, (_, f))) in want.iter().enumerate() {
            if ranks.contains(&(rank as u64)) {
                expected.push((
                    (*k).clone(),
                    Summary {
                        count: rank as u64,
                        fingerprint: below,
                    },
                ));
            }
            below ^= *f;
        }
        prop_assert_eq!(store.range_pivots(range, &ranks).unwrap(), expected);
        let mut seen = Vec::new();
        store
            .range_for_each(range, |e| {
                seen.push(e.key().clone());
                ControlFlow::Continue(())
            })
            .unwrap();
        let want_keys: Vec<E::Key> = want.iter().map(|(k, _)| (*k).clone()).collect();
        prop_assert_eq!(seen, want_keys);
    }
    Ok(())
}

fn ranges() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop::collection::vec((0u16..4000, 0u16..4000), 1..8)
}

/// Mostly ascending inserts, as a peer's entries arrive: each `(kind, n)` appends the next keys
/// (these take the store's shortcut for a key above all others and skip compactions), removes
/// the greatest ones (which can leave the last leaf empty below a separator that no key
/// reaches, so that the next appends must not take the shortcut), rewrites a key in the middle,
/// looks a key up by its fingerprint, or compacts.
fn ascending_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..12, 0u16..4000), 0..120).prop_map(|steps| {
        let mut ops = Vec::new();
        let mut next = 0u16;
        for (kind, n) in steps {
            match kind {
                0..=5 => {
                    let end = next.saturating_add(n % 200).min(4000);
                    ops.extend((next..end).map(|k| Op::Insert(k, 0)));
                    next = end;
                }
                6 | 7 => {
                    let start = next.saturating_sub(n % 80);
                    ops.extend((start..next).rev().map(Op::Remove));
                    next = start;
                }
                8 if next > 0 => ops.push(Op::Insert(n % next, 1)),
                10 | 11 => ops.push(Op::Find(n % next.max(1))),
                _ => ops.push(Op::Compact),
            }
        }
        ops
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_store_filled_in_key_order_matches_the_model(ops in ascending_ops(), ranges in ranges()) {
        check(&ops, &ranges, |k| Plain(u32::from(k)), |k, v| PlainEntry(Plain(u32::from(k)), Value(v)), |e| e.1.0)?;
    }

    #[test]
    fn a_large_store_of_text_keys_matches_the_model(ops in ops(), ranges in ranges()) {
        check(&ops, &ranges, text_key, |k, v| Entry { key: text_key(k), value: Value(v) }, |e| e.value.0)?;
    }

    #[test]
    fn a_large_store_of_keys_without_order_bytes_matches_the_model(ops in ops(), ranges in ranges()) {
        check(&ops, &ranges, |k| Plain(u32::from(k)), |k, v| PlainEntry(Plain(u32::from(k)), Value(v)), |e| e.1.0)?;
    }
}

/// Sequential inserts (each new key the greatest, then each the smallest) split the same edge
/// of the tree over and over; every answer stays right.
#[test]
fn inserts_in_key_order_and_in_reverse_keep_every_answer() {
    for reverse in [false, true] {
        let mut store: MemStore<Entry> = MemStore::new();
        let order: Vec<u16> = if reverse {
            (0..3000).rev().collect()
        } else {
            (0..3000).collect()
        };
        for &i in &order {
            assert!(store.insert(Entry::new(&format!("{i:05}"), 1)));
        }
        let all = Range::new(Key(String::new()), Key(String::new()));
        let fp = (0..3000u16).fold(Fingerprint::EMPTY, |acc, i| {
            acc ^ toy_hash(&format!("{i:05}"), 1)
        });
        assert_eq!(
            store.range_summary(&all).unwrap(),
            Summary {
                count: 3000,
                fingerprint: fp
            }
        );
        let mid = Range::new(Key("01000".into()), Key("02000".into()));
        assert_eq!(store.range_count(&mid).unwrap(), 1000);
        assert_eq!(
            store.range_key_at(&mid, 999).unwrap(),
            Some(Key("01999".into()))
        );
        assert_eq!(store.range_key_at(&mid, 1000).unwrap(), None);
        let keys: Vec<String> = store.iter().map(|e| e.key.0.clone()).collect();
        let want: Vec<String> = (0..3000u16).map(|i| format!("{i:05}")).collect();
        assert_eq!(keys, want);
    }
}
