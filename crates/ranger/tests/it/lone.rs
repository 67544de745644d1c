//! Lone differences (`Config::with_lone_differences`): a differing range whose difference is
//! one entry of ours is answered with that entry at once, and only then.

use std::convert::Infallible;
use std::ops::ControlFlow;

use ranger::{
    Config, Fingerprint, Interval, MemStore, Message, MessagePart, Range, RangeEntry,
    RangeFingerprint, Session, Store,
};

use crate::support::{Counting, Entry, Key, Msg, RunOptions, contents, run_with, store};

fn keys(n: usize) -> Vec<(String, u64)> {
    (0..n).map(|i| (format!("k{i:05}"), 1)).collect()
}

fn bounded() -> Config {
    Config::bounded(64 * 1024).unwrap()
}

/// [`bounded`] with dense leaves of one entry: the one-part messages below are dense, and
/// with larger leaves their small ranges would go out whole instead of being split.
fn bounded_small_leaves() -> Config {
    bounded().with_dense_leaf_size(1)
}

/// The same configuration without the shortcut.
fn without() -> Config {
    Config::custom(
        Config::DEFAULT_SPLIT_FACTOR,
        Config::DEFAULT_LEAF_SIZE,
        Some(64 * 1024),
    )
    .unwrap()
    .with_eager_leaves(Config::DEFAULT_EAGER_LEAVES)
}

#[test]
fn defaults_take_the_shortcut_and_the_reference_does_not() {
    assert!(bounded().lone_differences());
    assert!(!Config::reference().lone_differences());
    assert!(!without().lone_differences());
}

/// Sets of 2000 entries, one of them only on one side; returns (messages, entries moved).
fn one_extra(on_responder: bool, config: Config) -> (usize, u64) {
    let base = keys(2000);
    let mut a = store(&base);
    let mut b = store(&base);
    let extra = Entry::new("k01234x", 7);
    if on_responder {
        b.insert(extra.clone());
    } else {
        a.insert(extra.clone());
    }
    let mut messages = 0;
    let run = run_with(
        &mut a,
        &mut b,
        config,
        config,
        &RunOptions::default(),
        |_, _| messages += 1,
    );
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(a.get(&extra.key), Some(&extra));
    (messages, run.a.entries_sent + run.b.entries_sent)
}

#[test]
fn a_lone_entry_of_the_responder_goes_out_in_its_first_reply() {
    // A opens with the fingerprint of everything; B finds that the difference is its extra
    // entry and sends it; A has nothing left to say.
    assert_eq!(one_extra(true, bounded()), (2, 1));
    let (messages, moved) = one_extra(true, without());
    assert_eq!(moved, 1);
    assert!(messages > 6, "{messages} messages without the shortcut");
}

#[test]
fn a_lone_entry_of_the_initiator_is_found_one_split_later() {
    // B cannot find A's extra entry, splits once; A finds it in the sub-range that differs.
    assert_eq!(one_extra(false, bounded()), (3, 1));
    let (messages, moved) = one_extra(false, without());
    assert_eq!(moved, 1);
    assert!(messages > 6, "{messages} messages without the shortcut");
}

#[test]
fn scattered_differences_converge_with_fewer_messages_and_bytes() {
    let base = keys(5000);
    let mut a = store(&base);
    let mut b = store(&base);
    for i in 0..40 {
        let side = if i % 2 == 0 { &mut a } else { &mut b };
        side.insert(Entry::new(&format!("k{:05}x", i * 113 + 7), 3));
    }
    let (mut a2, mut b2) = (a.clone(), b.clone());
    let mut bytes = [0usize; 2];
    let with = run_with(
        &mut a,
        &mut b,
        bounded(),
        bounded(),
        &RunOptions::default(),
        |_, m| bytes[0] += m.encoded_len(),
    );
    let plain = run_with(
        &mut a2,
        &mut b2,
        without(),
        without(),
        &RunOptions::default(),
        |_, m| bytes[1] += m.encoded_len(),
    );
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(contents(&a), contents(&a2));
    assert_eq!(contents(&a2), contents(&b2));
    assert_eq!(with.a.entries_sent + with.b.entries_sent, 40);
    assert!(
        bytes[0] * 2 < bytes[1],
        "{} bytes with the shortcut, {} without",
        bytes[0],
        bytes[1]
    );
    assert!(with.transcript.len() < plain.transcript.len());
}

/// Answers one fingerprint part for `range` that differs from ours by `difference`.
fn answer(store: &mut MemStore<Entry>, range: Range<Key>, difference: Fingerprint) -> Vec<String> {
    let ours = store.range_fingerprint(&range).unwrap();
    let msg: Msg = Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range,
        fingerprint: ours ^ difference,
    })]);
    let reply = Session::new(bounded_small_leaves())
        .process_message(store, &mut Counting::default(), msg)
        .unwrap()
        .expect("a differing range is answered");
    reply
        .parts
        .iter()
        .map(|p| match p {
            MessagePart::RangeItem(item) => format!(
                "item {:?} have_local {}",
                item.values
                    .iter()
                    .map(|(e, _)| e.key.0.as_str())
                    .collect::<Vec<_>>(),
                item.have_local
            ),
            MessagePart::RangeFingerprint(_) => "fingerprint".to_string(),
        })
        .collect()
}

#[test]
fn only_an_entry_inside_the_range_is_taken_for_the_difference() {
    let mut store = store(&keys(100));
    let range = Range::new(Key("k00010".into()), Key("k00020".into()));
    let inside = Entry::new("k00015", 1).fingerprint();
    let outside = Entry::new("k00050", 1).fingerprint();
    assert_eq!(
        answer(&mut store, range.clone(), inside),
        ["item [\"k00015\"] have_local true"]
    );
    // The XOR names an entry we hold, but elsewhere: the range is split as usual.
    let reply = answer(&mut store, range, outside);
    assert_eq!(reply, ["fingerprint"; 4]);
}

/// A store whose fingerprint index is wrong: it names the entry `wrong` for every lookup.
struct Lying {
    inner: MemStore<Entry>,
    wrong: Entry,
}

impl Store<Entry> for Lying {
    type Error = Infallible;

    fn count(&mut self, interval: Interval<'_, Key>) -> Result<u64, Infallible> {
        self.inner.count(interval)
    }

    fn fingerprint(&mut self, interval: Interval<'_, Key>) -> Result<Fingerprint, Infallible> {
        self.inner.fingerprint(interval)
    }

    fn key_at(
        &mut self,
        interval: Interval<'_, Key>,
        rank: u64,
    ) -> Result<Option<Key>, Infallible> {
        self.inner.key_at(interval, rank)
    }

    fn for_each<F>(&mut self, interval: Interval<'_, Key>, f: F) -> Result<(), Infallible>
    where
        F: FnMut(Entry) -> ControlFlow<()>,
    {
        self.inner.for_each(interval, f)
    }

    fn insert(&mut self, entry: &Entry) -> Result<bool, Infallible> {
        Store::insert(&mut self.inner, entry)
    }

    fn entry_by_fingerprint(&mut self, _: &Fingerprint) -> Result<Option<Entry>, Infallible> {
        Ok(Some(self.wrong.clone()))
    }
}

#[test]
fn an_entry_whose_fingerprint_is_not_the_difference_is_not_sent() {
    let inner = store(&keys(100));
    let wrong = Entry::new("k00015", 1);
    let mut store = Lying { inner, wrong };
    let range = Range::new(Key("k00010".into()), Key("k00020".into()));
    let ours = store.range_fingerprint(&range).unwrap();
    let msg: Msg = Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range,
        fingerprint: ours ^ Fingerprint([1; 32]),
    })]);
    let reply = Session::new(bounded_small_leaves())
        .process_message(&mut store, &mut Counting::default(), msg)
        .unwrap()
        .unwrap();
    assert_eq!(reply.value_count(), 0, "{reply:?}");
    assert_eq!(reply.parts.len(), 4);
}
