//! The shape of one answer to a fingerprint: the sub-ranges partition the range, none is empty,
//! each is a fingerprint or an item by the leaf rule, and with a budget the deferred rest is
//! still covered.

use proptest::prelude::*;
use ranger::{
    Config, Fingerprint, MemStore, Message, MessagePart, Range, RangeFingerprint, Session, Store,
};

use crate::support::{Counting, Entry, Key, Msg, brute_fingerprint, store};

fn key(i: u8) -> Key {
    Key(format!("k{i:02}"))
}

/// Every stored key, and a key between each pair, so that a gap in the partition shows.
fn probes() -> Vec<Key> {
    (0..42u8)
        .flat_map(|i| [key(i), Key(format!("k{i:02}m"))])
        .chain([Key(String::new()), Key("zzz".into())])
        .collect()
}

fn answer(
    store: &mut MemStore<Entry>,
    config: Config,
    range: Range<Key>,
    fp: Fingerprint,
) -> Vec<MessagePart<Entry, ()>> {
    // Three parts over empty ranges that agree with us come along: with one differing part of
    // four the message is sparse, so the configured leaf rule applies (a dense message sends
    // leaves as entries whatever the configuration; see `dense_messages_send_leaves_as_entries`).
    let mut parts = vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range,
        fingerprint: fp,
    })];
    for i in 0..3 {
        parts.push(MessagePart::RangeFingerprint(RangeFingerprint {
            range: Range::new(Key(format!("zz{i}")), Key(format!("zz{}", i + 1))),
            fingerprint: Fingerprint::EMPTY,
        }));
    }
    let msg: Msg = Message::new(parts);
    let mut session = Session::new(config);
    session
        .process_message(store, &mut Counting::default(), msg)
        .unwrap()
        .map(|m| m.parts)
        .unwrap_or_default()
}

fn local(store: &MemStore<Entry>, range: &Range<Key>) -> Vec<Entry> {
    store
        .iter()
        .filter(|e| range.contains(&e.key))
        .cloned()
        .collect()
}

fn assert_partition(
    parts: &[MessagePart<Entry, ()>],
    range: &Range<Key>,
) -> Result<(), TestCaseError> {
    for probe in probes() {
        let covering = parts.iter().filter(|p| p.range().contains(&probe)).count();
        let want = usize::from(range.contains(&probe));
        prop_assert_eq!(
            covering,
            want,
            "probe {:?} covered {} times",
            probe,
            covering
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_differing_range_is_partitioned(
        keys in prop::collection::btree_set(0u8..40, 0..30),
        x in 0u8..41,
        y in 0u8..41,
        split in 2usize..7,
        leaf in 1usize..5,
        remote_empty in any::<bool>(),
        eager in any::<bool>(),
    ) {
        let entries: Vec<(String, u64)> = keys.iter().map(|k| (key(*k).0, 1)).collect();
        let mut s = store(&entries);
        let range = Range::new(key(x), key(y));
        let config = Config::custom(split, leaf, None).unwrap().with_eager_leaves(eager);
        let remote = if remote_empty { Fingerprint::EMPTY } else { Fingerprint([1; 32]) };
        let ours = brute_fingerprint(&s, &range);
        let parts = answer(&mut s, config, range.clone(), remote);
        let mine = local(&s, &range);

        if ours == remote {
            prop_assert!(parts.is_empty());
            return Ok(());
        }
        let cut = !eager && !remote_empty && !mine.is_empty() && mine.len() <= leaf;
        if cut && mine.len() == 1 && range.x == mine[0].key {
            // Our only entry starts the range: cut right after it (the test keys' successor).
            assert_partition(&parts, &range)?;
            prop_assert_eq!(parts.len(), 2);
            let MessagePart::RangeFingerprint(fp) = &parts[0] else { panic!("expected a fingerprint") };
            prop_assert_eq!(&fp.range.x, &range.x);
            prop_assert_eq!(local(&s, &fp.range), mine.clone());
            prop_assert_eq!(fp.fingerprint, brute_fingerprint(&s, &fp.range));
            let MessagePart::RangeItem(item) = &parts[1] else { panic!("expected a request") };
            prop_assert!(item.values.is_empty() && !item.have_local);
            return Ok(());
        }
        if cut {
            // Lazy leaves: cut at our entries; a request for the part before the first one
            // (if any), then each of our entries as the fingerprint of the sub-range it starts.
            assert_partition(&parts, &range)?;
            let mut circular = mine.clone();
            circular.sort_by(|a, b| range.circular_cmp(&a.key, &b.key));
            let request = usize::from(range.x != circular[0].key);
            prop_assert_eq!(parts.len(), request + mine.len());
            if request == 1 {
                let MessagePart::RangeItem(item) = &parts[0] else { panic!("expected a request") };
                prop_assert!(item.values.is_empty() && !item.have_local);
                prop_assert_eq!(&item.range, &Range::new(range.x.clone(), circular[0].key.clone()));
            }
            for (part, e) in parts[request..].iter().zip(&circular) {
                let MessagePart::RangeFingerprint(fp) = part else { panic!("expected a fingerprint") };
                prop_assert_eq!(&fp.range.x, &e.key);
                prop_assert_eq!(local(&s, &fp.range), vec![e.clone()]);
                prop_assert_eq!(fp.fingerprint, brute_fingerprint(&s, &fp.range));
            }
            return Ok(());
        }
        if mine.len() <= leaf || remote_empty {
            // The recursion anchor: all our entries of the range, ascending, as one request.
            prop_assert_eq!(parts.len(), 1);
            let MessagePart::RangeItem(item) = &parts[0] else { panic!("expected an item") };
            prop_assert_eq!(&item.range, &range);
            prop_assert!(!item.have_local);
            let sent: Vec<Entry> = item.values.iter().map(|(e, _)| e.clone()).collect();
            prop_assert_eq!(sent, mine);
            return Ok(());
        }
        prop_assert!(parts.len() >= 2 && parts.len() <= split, "{} parts for split {}", parts.len(), split);
        assert_partition(&parts, &range)?;
        for part in &parts {
            let sub = local(&s, part.range());
            prop_assert!(!sub.is_empty(), "empty sub-range {:?}", part.range());
            prop_assert!(!part.range().is_all(), "whole-set sub-range");
            match part {
                MessagePart::RangeFingerprint(fp) => {
                    prop_assert!(sub.len() > leaf || !eager);
                    prop_assert_eq!(fp.fingerprint, brute_fingerprint(&s, &fp.range));
                }
                MessagePart::RangeItem(item) => {
                    prop_assert!(eager && sub.len() <= leaf);
                    prop_assert!(!item.have_local);
                    let sent: Vec<Entry> = item.values.iter().map(|(e, _)| e.clone()).collect();
                    prop_assert_eq!(sent, sub);
                }
            }
        }
        // Sub-range sizes follow the pivot ranks floor(n * i / k): no part is more than one
        // entry above its share.
        let n = mine.len();
        for part in &parts {
            prop_assert!(local(&s, part.range()).len() <= n.div_ceil(split) + 1);
        }
    }

    /// With a small budget the answer to "send me everything" is a prefix as items plus
    /// fingerprints of the rest, still covering the range exactly once.
    #[test]
    fn a_deferred_answer_still_covers_the_range(
        keys in prop::collection::btree_set(0u8..40, 1..40),
        x in 0u8..41,
        y in 0u8..41,
        budget in 110usize..300,
    ) {
        let entries: Vec<(String, u64)> = keys.iter().map(|k| (key(*k).0, 1)).collect();
        let mut s = store(&entries);
        let range = Range::new(key(x), key(y));
        let config = Config::custom(2, 1, Some(budget)).unwrap();
        let parts = answer(&mut s, config, range.clone(), Fingerprint::EMPTY);
        if local(&s, &range).is_empty() {
            // Both fingerprints are EMPTY: nothing to say.
            prop_assert!(parts.is_empty());
            return Ok(());
        }
        let size: usize = ranger::MESSAGE_OVERHEAD + parts.iter().map(|p| p.encoded_len()).sum::<usize>();
        prop_assert!(size <= budget);
        assert_partition(&parts, &range)?;
        let mut total_sent = 0;
        for part in &parts {
            match part {
                MessagePart::RangeItem(item) => {
                    let sent: Vec<Entry> = item.values.iter().map(|(e, _)| e.clone()).collect();
                    prop_assert_eq!(&sent, &local(&s, &item.range));
                    total_sent += sent.len();
                }
                MessagePart::RangeFingerprint(fp) => {
                    prop_assert_eq!(fp.fingerprint, s.range_fingerprint(&fp.range).unwrap());
                }
            }
        }
        prop_assert!(total_sent >= 1, "no progress");
    }
}

/// The all-range split with k = 2 follows the reference: first [L[n/2], L[0]), then
/// [L[0], L[n/2]) in circular order from x.
#[test]
fn whole_set_split_starts_at_the_middle_pivot() {
    let entries: Vec<(String, u64)> = (0..7u8).map(|i| (key(i * 2).0, 1)).collect();
    let mut s = store(&entries);
    // Anchored at k05: circular order k06 k08 k10 k12 k00 k02 k04, n = 7, n/2 = 3 -> k12.
    let range = Range::new(key(5), key(5));
    let parts = answer(&mut s, Config::reference(), range, Fingerprint([1; 32]));
    let ranges: Vec<(String, String)> = parts
        .iter()
        .map(|p| (p.range().x.0.clone(), p.range().y.0.clone()))
        .collect();
    assert_eq!(
        ranges,
        [("k12".into(), "k06".into()), ("k06".into(), "k12".into())]
    );
}

/// Lazy leaves go out as fingerprints only while differences are sparse: when at least three
/// quarters of a message's fingerprints differ from ours, leaves go out as entries at once,
/// unless most of the peer's ranges start at entries of ours (a peer that shares most entries
/// and differs in many places, where entries sent at once would mostly be ones it has).
#[test]
fn dense_messages_send_leaves_as_entries() {
    let entries: Vec<(String, u64)> = (0..16u8).map(|k| (key(k).0, 1)).collect();
    let config = Config::custom(4, 1, None).unwrap().with_eager_leaves(false);
    // Quarters of four entries each, starting at keys of ours or just before them.
    let ours: Vec<Range<Key>> = (0..4u8)
        .map(|q| Range::new(key(4 * q), key(4 * q + 4)))
        .collect();
    let before = |q: u8| match q {
        0 => Key("k".into()),
        q => Key(format!("k{:02}~", 4 * q - 1)),
    };
    let theirs: Vec<Range<Key>> = (0..4u8)
        .map(|q| Range::new(before(q), if q == 3 { key(16) } else { before(q + 1) }))
        .collect();
    for (quarters, starts_ours) in [(&theirs, false), (&ours, true)] {
        for differing in 1..=4usize {
            let mut s = store(&entries);
            let parts: Vec<MessagePart<Entry, ()>> = quarters
                .iter()
                .enumerate()
                .map(|(i, range)| {
                    let fingerprint = if i < differing {
                        Fingerprint([1; 32])
                    } else {
                        brute_fingerprint(&s, range)
                    };
                    MessagePart::RangeFingerprint(RangeFingerprint {
                        range: range.clone(),
                        fingerprint,
                    })
                })
                .collect();
            // Without a budget no message is short of room, so it cannot hold ranges of ours
            // sent back merged, and one message whose starts are ours is enough.
            let reply = Session::new(config)
                .process_message(&mut s, &mut Counting::default(), Message::new(parts))
                .unwrap()
                .unwrap();
            // Every differing quarter splits into its four single entries.
            assert_eq!(reply.parts.len(), 4 * differing);
            let items = reply
                .parts
                .iter()
                .filter(
                    |p| matches!(p, MessagePart::RangeItem(i) if !i.have_local && i.values.len() == 1),
                )
                .count();
            let dense = differing >= 3 && !starts_ours;
            assert_eq!(
                items,
                if dense { 4 * differing } else { 0 },
                "{differing} of 4 fingerprints differ, starts ours: {starts_ours}"
            );
        }
    }
}
