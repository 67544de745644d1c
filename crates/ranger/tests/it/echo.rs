//! Echoes (`Config::with_echoes`): in a reply short of room, a sparse differing range that holds
//! no lone entry of ours goes back as our fingerprint of it, so that the peer can find its own
//! lone entry there; an echo is never echoed back.

use std::collections::BTreeSet;

use ranger::{
    Config, MemStore, Message, MessagePart, Range, RangeEntry, RangeFingerprint, Session,
};

use crate::support::{
    Counting, Entry, Key, Msg, RunOptions, Side, brute_fingerprint, contents, describe, run_with,
    store,
};

const BUDGET: usize = 8 * 1024;

fn with() -> Config {
    Config::bounded(BUDGET).unwrap()
}

fn without() -> Config {
    with().with_echoes(false)
}

type Entries = Vec<(String, u64)>;

/// 20000 shared entries and 400 scattered differences, alternating sides.
fn sides() -> (Entries, Entries) {
    sides_with(400, 7919)
}

/// 20000 shared entries and `differences` more, the i-th after shared entry `i * step` (mod
/// 20000), alternating sides.
fn sides_with(differences: u64, step: u64) -> (Entries, Entries) {
    let shared: Vec<(String, u64)> = (0..20_000).map(|i| (format!("k{i:06}"), 1)).collect();
    let (mut a, mut b) = (shared.clone(), shared);
    for i in 0..differences {
        // Spread over the whole key space by a multiplicative step.
        let at = (i * step) % 20_000;
        let extra = (format!("k{at:06}x{i}"), 2);
        if i % 2 == 0 {
            a.push(extra);
        } else {
            b.push(extra);
        }
    }
    (a, b)
}

/// Runs a session of `ca` against `cb` on [`sides`]: the final contents of both sides, the
/// transcript, the bytes sent and the entries moved.
fn session(ca: Config, cb: Config) -> (BTreeSetPair, Vec<(Side, Msg)>, usize, u64) {
    let (ea, eb) = sides();
    let (mut a, mut b) = (store(&ea), store(&eb));
    let mut bytes = 0;
    let run = run_with(&mut a, &mut b, ca, cb, &RunOptions::default(), |_, m| {
        bytes += m.encoded_len()
    });
    let moved = run.a.entries_sent + run.b.entries_sent;
    (
        (
            contents(&a).into_iter().collect(),
            contents(&b).into_iter().collect(),
        ),
        run.transcript,
        bytes,
        moved,
    )
}

type BTreeSetPair = (BTreeSet<(String, u64)>, BTreeSet<(String, u64)>);

#[test]
fn the_defaults_echo_and_the_reference_does_not() {
    assert!(with().echoes());
    assert!(!Config::reference().echoes());
    assert!(!Config::custom(4, 1, Some(BUDGET)).unwrap().echoes());
}

#[test]
fn echoes_save_bytes_and_move_nothing_more() {
    let (ends, transcript, bytes, moved) = session(with(), with());
    let (plain_ends, plain_transcript, plain_bytes, plain_moved) = session(without(), without());
    let (ea, eb) = sides();
    let union: BTreeSet<(String, u64)> = ea.into_iter().chain(eb).collect();
    assert_eq!(ends.0, union);
    assert_eq!(ends.1, union);
    assert_eq!(plain_ends, ends);
    assert_eq!((moved, plain_moved), (400, 400));
    // Each echo that finds a lone entry replaces a split into four and the peer's answer.
    assert!(
        bytes * 10 < plain_bytes * 9,
        "{bytes} bytes with echoes, {plain_bytes} without"
    );
    assert!(
        transcript.len() <= plain_transcript.len(),
        "{} messages with echoes, {} without",
        transcript.len(),
        plain_transcript.len()
    );
}

/// 2560 entries `k00000..`, and a message of 256 fingerprints over ranges of ten of them, every
/// fourth differing from ours by one entry the peer holds alone.
fn sparse_message() -> (MemStore<Entry>, Msg, Vec<Range<Key>>) {
    let store = store(
        &(0..2560)
            .map(|i| (format!("k{i:05}"), 1))
            .collect::<Vec<_>>(),
    );
    let mut parts = Vec::new();
    let mut differing = Vec::new();
    for i in 0..256 {
        let range = Range::new(
            Key(format!("k{:05}", 10 * i)),
            Key(format!("k{:05}", 10 * i + 10)),
        );
        let mut fingerprint = brute_fingerprint(&store, &range);
        if i % 4 == 0 {
            fingerprint ^= Entry::new(&format!("k{:05}x", 10 * i + 3), 1).fingerprint();
            differing.push(range.clone());
        }
        parts.push(MessagePart::RangeFingerprint(RangeFingerprint {
            range,
            fingerprint,
        }));
    }
    (store, Message::new(parts), differing)
}

/// The fingerprint parts of `msg` with our fingerprint of their range.
fn ours(store: &MemStore<Entry>, msg: &Msg) -> Vec<(Range<Key>, bool)> {
    msg.parts
        .iter()
        .filter_map(|p| match p {
            MessagePart::RangeFingerprint(fp) => Some((
                fp.range.clone(),
                fp.fingerprint == brute_fingerprint(store, &fp.range),
            )),
            MessagePart::RangeItem(_) => None,
        })
        .collect()
}

#[test]
fn a_sparse_differing_range_goes_back_whole_and_is_split_when_it_comes_back() {
    let (mut store, msg, differing) = sparse_message();
    let mut session = Session::new(with());
    // 64 differing ranges split in four would not fit the budget: each is echoed, with our
    // fingerprint, and nothing else is sent.
    let reply = session
        .process_message(&mut store, &mut Counting::default(), msg.clone())
        .unwrap()
        .unwrap();
    let echoed: Vec<(Range<Key>, bool)> = differing.iter().map(|r| (r.clone(), true)).collect();
    assert_eq!(ours(&store, &reply), echoed);
    assert_eq!(reply.value_count(), 0);

    // The same ranges coming back (the peer's fingerprints, not the lone entries we hoped it
    // held) are split, not echoed again: the first goes out as sub-ranges.
    let reply = session
        .process_message(&mut store, &mut Counting::default(), msg.clone())
        .unwrap()
        .unwrap();
    let parts = ours(&store, &reply);
    let first = &differing[0];
    assert!(
        parts
            .iter()
            .any(|(r, mine)| *mine && r.x == first.x && r.y < first.y),
        "the first range is not split: {parts:?}"
    );
    assert!(!parts.iter().any(|(r, _)| r == first), "{parts:?}");

    // A session that did not send them echoes them again.
    let reply = Session::new(with())
        .process_message(&mut store, &mut Counting::default(), msg)
        .unwrap()
        .unwrap();
    assert_eq!(ours(&store, &reply), echoed);
}

#[test]
fn echoes_converge_with_a_peer_that_never_echoes() {
    for (ca, cb) in [(with(), without()), (without(), with())] {
        let (ends, _, _, moved) = session(ca, cb);
        assert_eq!(ends.0, ends.1);
        assert_eq!(moved, 400);
    }
    // And with the reference rules on the other side (no budget, no lone entries: it splits
    // every echoed range).
    let (ends, _, _, _) = session(with(), Config::reference());
    assert_eq!(ends.0, ends.1);
}

#[test]
fn small_replies_do_not_echo() {
    // Twenty differences: no reply comes near the budget, so nothing is echoed (an echo that
    // misses would cost a round trip, and here round trips are all that counts): the session
    // is the same with echoes off.
    let (ea, eb) = sides_with(20, 999);
    let transcript = |config: Config| {
        let (mut a, mut b) = (store(&ea), store(&eb));
        let run = run_with(
            &mut a,
            &mut b,
            config,
            config,
            &RunOptions::default(),
            |_, _| {},
        );
        assert_eq!(contents(&a), contents(&b));
        run.transcript
            .iter()
            .map(|(side, m)| (*side, describe(m)))
            .collect::<Vec<_>>()
    };
    assert_eq!(transcript(with()), transcript(without()));
}
