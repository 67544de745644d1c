//! Arbitrary messages (overlapping, inverted and whole-set ranges, bogus fingerprints, duplicate
//! keys) never panic, and with a budget the reply still respects it.

use proptest::prelude::*;
use ranger::{
    Config, Fingerprint, MemStore, Message, MessagePart, Range, RangeFingerprint, RangeItem,
    Session,
};

use crate::support::{Counting, Entry, Key, Msg, store};

fn key() -> impl Strategy<Value = Key> {
    (0u8..40).prop_map(|i| Key(format!("k{i:02}")))
}

fn range() -> impl Strategy<Value = Range<Key>> {
    (key(), key()).prop_map(|(x, y)| Range::new(x, y))
}

fn part() -> impl Strategy<Value = MessagePart<Entry, ()>> {
    let fingerprint = prop_oneof![
        Just(Fingerprint::EMPTY),
        any::<[u8; 32]>().prop_map(Fingerprint),
    ];
    let values = prop::collection::vec(
        (key(), 0u64..4).prop_map(|(k, v)| {
            (
                Entry {
                    key: k,
                    value: crate::support::Value(v),
                },
                (),
            )
        }),
        0..6,
    );
    prop_oneof![
        (range(), fingerprint).prop_map(|(range, fingerprint)| {
            MessagePart::RangeFingerprint(RangeFingerprint { range, fingerprint })
        }),
        (range(), values, any::<bool>()).prop_map(|(range, values, have_local)| {
            MessagePart::RangeItem(RangeItem {
                range,
                values,
                have_local,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_messages_are_handled(
        parts in prop::collection::vec(part(), 0..12),
        entries in prop::collection::btree_map(0u8..40, 0u64..4, 0..30),
        budget in prop_oneof![Just(None), (120usize..800).prop_map(Some)],
    ) {
        let entries: Vec<(String, u64)> =
            entries.into_iter().map(|(k, v)| (format!("k{k:02}"), v)).collect();
        let mut s: MemStore<Entry> = store(&entries);
        let config = Config::custom(3, 2, budget).unwrap();
        let mut session = Session::new(config);
        let msg: Msg = Message::new(parts);
        let received = msg.value_count() as u64;
        let reply = session.process_message(&mut s, &mut Counting::default(), msg).unwrap();
        if let (Some(reply), Some(budget)) = (&reply, budget) {
            prop_assert!(reply.encoded_len() <= budget);
        }
        prop_assert_eq!(session.outcome().entries_received, received);
    }
}
