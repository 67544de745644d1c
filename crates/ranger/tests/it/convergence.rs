//! Two random sets reconcile to their last-write-wins union, in every configuration and mix of
//! configurations (one side in reference mode stands in for an unmodified iroh-docs peer).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use ranger::{Config, MessagePart};

use crate::support::{RunOptions, Side, contents, lww_union, run_with, store};

type Set = BTreeMap<String, u64>;

fn set() -> impl Strategy<Value = Set> {
    prop::collection::btree_map((0u16..300).prop_map(|i| format!("k{i:03}")), 0u64..4, 0..90)
}

/// Pairs of sets: random (with conflicting values), equal, one empty, one dominating, disjoint.
fn pair() -> impl Strategy<Value = (Set, Set)> {
    (set(), set(), 0u8..7).prop_map(|(a, b, shape)| match shape {
        0 | 1 => (a, b),
        2 => (a.clone(), a),
        3 => (a, Set::new()),
        4 => (Set::new(), b),
        5 => {
            let newer = a.iter().map(|(k, v)| (k.clone(), v + 1)).collect();
            (a, newer)
        }
        _ => {
            let other = b.into_iter().map(|(k, v)| (format!("z{k}"), v)).collect();
            (a, other)
        }
    })
}

fn config() -> impl Strategy<Value = Config> {
    let budget = prop_oneof![
        Just(None),
        Just(Some(Config::MIN_MESSAGE_BYTES)),
        Just(Some(160)),
        Just(Some(400)),
        Just(Some(4096)),
    ];
    prop_oneof![
        2 => Just(Config::reference()),
        1 => (2usize..7, 1usize..5, budget, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(k, leaf, b, eager, lone, echoes)| {
                Config::custom(k, leaf, b)
                    .unwrap()
                    .with_eager_leaves(eager)
                    .with_lone_differences(lone)
                    .with_echoes(echoes)
            }
        ),
        1 => (160usize..4096).prop_map(|b| Config::bounded(b).unwrap()),
        1 => (2usize..7, 1usize..5).prop_map(|(k, leaf)| Config::custom(k, leaf, Some(Config::MIN_MESSAGE_BYTES)).unwrap()),
    ]
}

fn entries(set: &Set) -> Vec<(String, u64)> {
    set.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// Smallest d with k^d >= n.
fn ceil_log(k: usize, n: usize) -> usize {
    let mut d = 0;
    let mut p = 1usize;
    while p < n {
        p = p.saturating_mul(k);
        d += 1;
    }
    d
}

proptest! {
    #[test]
    fn sets_converge_to_the_lww_union((a, b) in pair(), ca in config(), cb in config()) {
        let mut sa = store(&entries(&a));
        let mut sb = store(&entries(&b));
        let expected = lww_union(&a, &b);
        let mut over_budget = Vec::new();
        let mut messages = 0usize;
        let mut sent: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        let options = RunOptions { keep_transcript: false, ..RunOptions::default() };
        let run = run_with(&mut sa, &mut sb, ca, cb, &options, |side, msg| {
            messages += 1;
            let config = if side == Side::A { ca } else { cb };
            if let Some(budget) = config.max_message_bytes()
                && msg.encoded_len() > budget
            {
                over_budget.push((side, msg.encoded_len(), budget));
            }
            let i = if side == Side::A { 0 } else { 1 };
            sent[i].extend(msg.values().map(|(e, _)| e.key.0.clone()));
        });
        prop_assert_eq!(contents(&sa), expected.clone());
        prop_assert_eq!(contents(&sb), expected);
        prop_assert!(over_budget.is_empty(), "messages over budget: {:?}", over_budget);

        // Counters agree with what went over the wire.
        prop_assert_eq!(run.a.entries_sent, sent[0].len() as u64);
        prop_assert_eq!(run.b.entries_received, sent[0].len() as u64);
        prop_assert_eq!(run.b.entries_sent, sent[1].len() as u64);
        prop_assert_eq!(run.a.entries_received, sent[1].len() as u64);
        prop_assert_eq!(run.a.messages_sent + run.b.messages_sent, messages as u64);

        let unbounded = ca.max_message_bytes().is_none() && cb.max_message_bytes().is_none();
        if unbounded {
            // Each side splits its own entries by at least the smaller split factor every other
            // message, so after 2 * log_k(n) messages every range is a leaf; a few more exchange
            // the leaves.
            let k = ca.split_factor().min(cb.split_factor());
            let n = a.len().max(b.len()) + 1;
            let bound = 2 * ceil_log(k, n) + 4;
            prop_assert!(messages <= bound, "{} messages, bound {}", messages, bound);
        }
        if ca == Config::reference() && cb == Config::reference() {
            for keys in &sent {
                let unique: BTreeSet<&String> = keys.iter().collect();
                prop_assert_eq!(unique.len(), keys.len(), "a key was sent twice: {:?}", keys);
            }
        }
    }

    /// With a budget, the replies to items never repeat the values the item carried (the peer
    /// already has them).
    #[test]
    fn bounded_replies_do_not_echo_received_values((a, b) in pair(), budget in 120usize..600) {
        let mut sa = store(&entries(&a));
        let mut sb = store(&entries(&b));
        let config = Config::custom(2, 1, Some(budget)).unwrap();
        let options = RunOptions { keep_transcript: true, ..RunOptions::default() };
        let run = run_with(&mut sa, &mut sb, config, config, &options, |_, _| {});
        for pair in run.transcript.windows(2) {
            let (request, reply) = (&pair[0].1, &pair[1].1);
            for part in &reply.parts {
                let MessagePart::RangeItem(item) = part else { continue };
                if !item.have_local {
                    continue;
                }
                for (e, _) in &item.values {
                    let echoed = request.values().any(|(r, _)| r == e);
                    prop_assert!(!echoed, "{:?} sent back to the peer that sent it", e);
                }
            }
        }
    }
}
