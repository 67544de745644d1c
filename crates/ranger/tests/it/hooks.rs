//! Validation, insertion and metadata hooks.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use ranger::{Config, Hooks, MemStore, Message, Session, Verdicts};

use crate::support::{Entry, Key, contents, dense_overlap, store};

/// Refuses every entry, remembering the reasons.
#[derive(Default)]
struct RejectAll {
    rejected: Vec<(Entry, &'static str)>,
    inserted: usize,
}

impl Hooks<Entry, u8> for RejectAll {
    type Rejection = &'static str;

    fn validate(&mut self, _entry: &Entry, _meta: &u8) -> Result<(), &'static str> {
        Err("no")
    }

    fn on_reject(&mut self, entry: Entry, _meta: u8, reason: &'static str) {
        self.rejected.push((entry, reason));
    }

    fn on_insert(&mut self, _entry: Entry, _meta: u8) {
        self.inserted += 1;
    }

    fn meta(&mut self, entry: &Entry) -> u8 {
        entry.key.0.len() as u8
    }
}

/// Accepts everything, sends the key length as metadata, records what it saw.
#[derive(Default)]
struct Recording {
    inserted: Vec<(Entry, u8)>,
}

impl Hooks<Entry, u8> for Recording {
    type Rejection = Infallible;

    fn validate(&mut self, _entry: &Entry, _meta: &u8) -> Result<(), Infallible> {
        Ok(())
    }

    fn on_insert(&mut self, entry: Entry, meta: u8) {
        self.inserted.push((entry, meta));
    }

    fn meta(&mut self, entry: &Entry) -> u8 {
        entry.key.0.len() as u8
    }
}

/// Runs a session with typed hooks; returns the number of messages.
fn drive<HA: Hooks<Entry, u8>, HB: Hooks<Entry, u8>>(
    a: &mut MemStore<Entry>,
    b: &mut MemStore<Entry>,
    ha: &mut HA,
    hb: &mut HB,
    sa: &mut Session,
    sb: &mut Session,
) -> usize {
    let mut msg: Message<Entry, u8> = sa.initial_message(a, Key(String::new())).unwrap();
    let mut n = 1;
    while let Some(reply) = sb.process_message(b, hb, msg).unwrap() {
        n += 1;
        let Some(next) = sa.process_message(a, ha, reply).unwrap() else {
            break;
        };
        n += 1;
        msg = next;
        assert!(n < 1000);
    }
    n
}

#[test]
fn rejecting_everything_leaves_both_sets_unchanged() {
    for config in [
        Config::reference(),
        Config::custom(3, 2, Some(200)).unwrap(),
    ] {
        let mut a = store(&[("ape", 1), ("cat", 1), ("eel", 3), ("fox", 1)]);
        let mut b = store(&[("bee", 1), ("eel", 2), ("gnu", 1), ("hog", 1), ("owl", 5)]);
        let (before_a, before_b) = (contents(&a), contents(&b));
        let (mut ha, mut hb) = (RejectAll::default(), RejectAll::default());
        let (mut sa, mut sb) = (Session::new(config), Session::new(config));
        drive(&mut a, &mut b, &mut ha, &mut hb, &mut sa, &mut sb);
        assert_eq!(contents(&a), before_a);
        assert_eq!(contents(&b), before_b);
        for (session, hooks) in [(&sa, &ha), (&sb, &hb)] {
            let o = session.outcome();
            assert!(o.entries_received > 0, "nothing was exchanged");
            assert_eq!(o.entries_rejected, o.entries_received);
            assert_eq!(o.entries_inserted, 0);
            assert_eq!(hooks.inserted, 0);
            assert_eq!(hooks.rejected.len() as u64, o.entries_rejected);
            assert!(hooks.rejected.iter().all(|(_, reason)| *reason == "no"));
        }
    }
}

#[test]
fn on_insert_sees_only_stored_entries_with_their_metadata() {
    // A holds a newer "eel": B's copy arrives at A but is not stored.
    let mut a = store(&[("ape", 1), ("eel", 3)]);
    let mut b = store(&[("eel", 2), ("hog", 1), ("longer-key", 1)]);
    let (mut ha, mut hb) = (Recording::default(), Recording::default());
    let config = Config::reference();
    let (mut sa, mut sb) = (Session::new(config), Session::new(config));
    drive(&mut a, &mut b, &mut ha, &mut hb, &mut sa, &mut sb);
    assert_eq!(contents(&a), contents(&b));

    let mut at_a: Vec<(String, u64, u8)> = ha
        .inserted
        .iter()
        .map(|(e, m)| (e.key.0.clone(), e.value.0, *m))
        .collect();
    at_a.sort();
    assert_eq!(
        at_a,
        vec![("hog".into(), 1, 3), ("longer-key".into(), 1, 10)],
        "A must not report B's older eel"
    );
    assert_eq!(sa.outcome().entries_inserted, 2);
    assert!(sa.outcome().entries_received >= 2);

    let mut at_b: Vec<(String, u64, u8)> = hb
        .inserted
        .iter()
        .map(|(e, m)| (e.key.0.clone(), e.value.0, *m))
        .collect();
    at_b.sort();
    assert_eq!(at_b, vec![("ape".into(), 1, 3), ("eel".into(), 3, 3)]);
}

/// The verdicts of the batch-deciding hooks here: entries with an odd value are refused.
fn odd_refused(values: &[(&Entry, &u8)]) -> Vec<Result<(), &'static str>> {
    values
        .iter()
        .map(|(e, _)| {
            if e.value.0 % 2 == 1 {
                Err("odd")
            } else {
                Ok(())
            }
        })
        .collect()
}

/// Decides on whole messages: refuses entries whose value is odd, records the batch sizes.
#[derive(Default)]
struct Batched {
    batches: Vec<usize>,
    rejected: Vec<String>,
    /// Returns one verdict too few when set.
    short: bool,
}

impl Hooks<Entry, u8> for Batched {
    type Rejection = &'static str;

    fn validate(&mut self, _entry: &Entry, _meta: &u8) -> Result<(), &'static str> {
        panic!("validate_all is overridden; validate must not be called");
    }

    fn validate_all(&mut self, values: &[(&Entry, &u8)]) -> Vec<Result<(), &'static str>> {
        self.batches.push(values.len());
        let mut verdicts = odd_refused(values);
        if self.short {
            verdicts.pop();
        }
        verdicts
    }

    fn on_reject(&mut self, entry: Entry, _meta: u8, _reason: &'static str) {
        self.rejected.push(entry.key.0);
    }

    fn on_insert(&mut self, _entry: Entry, _meta: u8) {}

    fn meta(&mut self, _entry: &Entry) -> u8 {
        0
    }
}

#[test]
fn validate_all_decides_per_message_and_its_verdicts_apply_in_order() {
    let mut a = store(&[("ape", 2), ("bee", 3), ("cat", 4), ("dog", 5), ("eel", 6)]);
    let mut b = store::<&str>(&[]);
    let (mut ha, mut hb) = (Batched::default(), Batched::default());
    let config = Config::reference();
    let (mut sa, mut sb) = (Session::new(config), Session::new(config));
    drive(&mut a, &mut b, &mut ha, &mut hb, &mut sa, &mut sb);
    let at_b = contents(&b);
    assert_eq!(
        at_b.keys().cloned().collect::<Vec<_>>(),
        vec!["ape", "cat", "eel"]
    );
    let mut rejected = hb.rejected.clone();
    rejected.sort();
    assert_eq!(rejected, vec!["bee", "dog"]);
    assert_eq!(
        hb.batches.iter().sum::<usize>() as u64,
        sb.outcome().entries_received
    );
    assert!(
        hb.batches.iter().all(|&n| n > 0),
        "no call for messages without entries"
    );
    assert_eq!(sb.outcome().entries_rejected, 2);
}

#[test]
fn a_wrong_number_of_verdicts_ends_the_session_with_an_error() {
    let mut b = store::<&str>(&[]);
    let mut sa = Session::new(Config::reference());
    let mut sb = Session::new(Config::reference());
    let mut a = store(&[("ape", 2), ("bee", 4)]);
    let mut ha = Batched::default();
    let mut hb = Batched {
        short: true,
        ..Batched::default()
    };
    let mut msg: Message<Entry, u8> = sa.initial_message(&mut a, Key(String::new())).unwrap();
    let mut error = None;
    for _ in 0..20 {
        match sb.process_message(&mut b, &mut hb, msg) {
            Err(e) => {
                error = Some(e);
                break;
            }
            Ok(None) => break,
            Ok(Some(reply)) => match sa.process_message(&mut a, &mut ha, reply).unwrap() {
                Some(next) => msg = next,
                None => break,
            },
        }
    }
    let error = error.expect("the short verdict list must be noticed");
    assert!(
        matches!(error, ranger::ProcessError::Hooks { values, verdicts } if verdicts + 1 == values),
        "{error:?}"
    );
    assert!(
        contents(&b).is_empty(),
        "nothing is stored from that message"
    );
}

/// Streams its verdicts in chunks of `chunk` (odd values refused), logging when each chunk is
/// asked for and when each entry is stored, so that a test can see the two interleave.
struct Streaming {
    chunk: usize,
    /// Verdicts to leave out (negative) or add (positive) at the end of the stream.
    skew: isize,
    log: Rc<RefCell<Vec<String>>>,
    valid: Vec<String>,
}

impl Streaming {
    fn new(chunk: usize, skew: isize) -> Self {
        Streaming {
            chunk,
            skew,
            log: Rc::default(),
            valid: Vec::new(),
        }
    }
}

impl Hooks<Entry, u8> for Streaming {
    type Rejection = &'static str;

    fn validate(&mut self, _entry: &Entry, _meta: &u8) -> Result<(), &'static str> {
        panic!("validate_stream is overridden; validate must not be called");
    }

    fn validate_stream(&mut self, values: &[(&Entry, &u8)]) -> Verdicts<&'static str> {
        let mut verdicts = odd_refused(values);
        if self.skew < 0 {
            verdicts.truncate(verdicts.len().saturating_sub(self.skew.unsigned_abs()));
        } else {
            verdicts.extend((0..self.skew).map(|_| Ok(())));
        }
        let chunks: Vec<Vec<_>> = verdicts.chunks(self.chunk).map(<[_]>::to_vec).collect();
        let mut chunks = chunks.into_iter().enumerate();
        let log = Rc::clone(&self.log);
        Verdicts::streamed(move || {
            let (i, chunk) = chunks.next()?;
            log.borrow_mut().push(format!("chunk {i}"));
            Some(chunk)
        })
    }

    fn on_valid(&mut self, entry: &Entry, _meta: &u8) {
        self.valid.push(entry.key.0.clone());
    }

    fn on_insert(&mut self, entry: Entry, _meta: u8) {
        self.log
            .borrow_mut()
            .push(format!("insert {}", entry.key.0));
    }

    fn meta(&mut self, _entry: &Entry) -> u8 {
        0
    }
}

/// Sends all of `a` to an empty peer in one reference-mode message and lets `hooks` take it.
fn receive_everything(hooks: &mut Streaming) -> Result<MemStore<Entry>, String> {
    let mut a = store(&[("ape", 2), ("bee", 3), ("cat", 4), ("dog", 6), ("eel", 8)]);
    let mut b = store::<&str>(&[]);
    let mut sa = Session::new(Config::reference());
    let mut sb = Session::new(Config::reference());
    let init: Message<Entry, u8> = sa.initial_message(&mut b, Key(String::new())).unwrap();
    // b is empty: a answers with all its entries as one item.
    let all = sa
        .process_message(&mut a, &mut Batched::default(), init)
        .unwrap()
        .unwrap();
    assert_eq!(all.value_count(), 5);
    sb.process_message(&mut b, hooks, all)
        .map_err(|e| e.to_string())?;
    Ok(b)
}

#[test]
fn streamed_verdicts_are_taken_as_the_values_are_stored() {
    let mut hooks = Streaming::new(2, 0);
    let b = receive_everything(&mut hooks).unwrap();
    assert_eq!(
        contents(&b).keys().cloned().collect::<Vec<_>>(),
        ["ape", "cat", "dog", "eel"]
    );
    assert_eq!(hooks.valid, ["ape", "cat", "dog", "eel"]);
    // A chunk is asked for only when its first value is about to be stored.
    assert_eq!(
        *hooks.log.borrow(),
        [
            "chunk 0",
            "insert ape",
            "chunk 1",
            "insert cat",
            "insert dog",
            "chunk 2",
            "insert eel"
        ]
    );
}

#[test]
fn too_few_or_too_many_streamed_verdicts_end_the_session_with_an_error() {
    for skew in [-1, 1] {
        let mut hooks = Streaming::new(2, skew);
        let err = receive_everything(&mut hooks).unwrap_err();
        assert!(err.contains("verdicts for 5 values"), "{err}");
    }
}

/// Hooks that count what they are asked.
#[derive(Default)]
struct Tally {
    validated: u64,
    valid: u64,
}

impl Hooks<Entry, u8> for Tally {
    type Rejection = Infallible;

    fn validate(&mut self, _: &Entry, _: &u8) -> Result<(), Self::Rejection> {
        self.validated += 1;
        Ok(())
    }

    fn on_valid(&mut self, _: &Entry, _: &u8) {
        self.valid += 1;
    }

    fn on_insert(&mut self, _: Entry, _: u8) {}

    fn meta(&mut self, _: &Entry) -> u8 {
        0
    }
}

/// A peer that sends its leaves as entries at once, as iroh-docs does, to a session that sees
/// it shares most entries: the entries the session already holds are taken without checks
/// (and not stored again), the others are checked and stored.
#[test]
fn entries_already_held_are_not_checked_again() {
    let (shared, own) = (4000, 500);
    let (mut a, mut b) = dense_overlap(shared, own);
    let mut ours = Session::new(Config::bounded(64 * 1024).unwrap());
    let mut eager = Session::new(Config::reference());
    let (mut hooks, mut peer_hooks) = (Tally::default(), Tally::default());
    drive(
        &mut a,
        &mut b,
        &mut hooks,
        &mut peer_hooks,
        &mut ours,
        &mut eager,
    );
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(a.len(), shared + 2 * own);
    let outcome = ours.outcome();
    assert_eq!(outcome.entries_inserted, own as u64);
    assert!(outcome.entries_known > 0, "{outcome:?}");
    // Every value received was either known (not checked) or checked and new.
    assert_eq!(
        outcome.entries_known + outcome.entries_inserted,
        outcome.entries_received,
        "{outcome:?}"
    );
    assert_eq!(
        hooks.validated,
        outcome.entries_received - outcome.entries_known
    );
    assert_eq!(hooks.valid, outcome.entries_received);
    // The peer checks everything.
    assert_eq!(peer_hooks.validated, eager.outcome().entries_received);
}
