//! A toy entry type, a two-peer driver and transcript helpers shared by the tests.

use std::collections::BTreeMap;
use std::convert::Infallible;

use ranger::{
    Config, Fingerprint, Hooks, MemStore, Message, MessagePart, Range, RangeEntry, RangeKey,
    RangeValue, Session, SessionOutcome, varint_len,
};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key(pub(crate) String);

impl RangeKey for Key {
    fn encoded_len(&self) -> usize {
        varint_len(self.0.len() as u64) + self.0.len()
    }

    fn successor(&self) -> Option<Self> {
        Some(Key(format!("{}\0", self.0)))
    }

    fn order_bytes(&self) -> Option<&[u8]> {
        Some(self.0.as_bytes())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Value(pub(crate) u64);

impl RangeValue for Value {}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) value: Value,
}

impl Entry {
    pub(crate) fn new(key: &str, value: u64) -> Self {
        Entry {
            key: Key(key.to_string()),
            value: Value(value),
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A toy (non-cryptographic) 32-byte hash of key and value; good enough to tell test sets apart.
pub(crate) fn toy_hash(key: &str, value: u64) -> Fingerprint {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(value.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &splitmix(h ^ (i as u64).wrapping_mul(0xa076_1d64_78bd_642f)).to_le_bytes(),
        );
    }
    Fingerprint(out)
}

impl RangeEntry for Entry {
    type Key = Key;
    type Value = Value;

    fn key(&self) -> &Key {
        &self.key
    }

    fn value(&self) -> &Value {
        &self.value
    }

    fn fingerprint(&self) -> Fingerprint {
        toy_hash(&self.key.0, self.value.0)
    }

    fn encoded_len(&self) -> usize {
        self.key.encoded_len() + varint_len(self.value.0)
    }
}

pub(crate) type Msg = Message<Entry, ()>;

pub(crate) fn store<S: AsRef<str>>(entries: &[(S, u64)]) -> MemStore<Entry> {
    entries
        .iter()
        .map(|(k, v)| Entry::new(k.as_ref(), *v))
        .collect()
}

pub(crate) fn contents(store: &MemStore<Entry>) -> BTreeMap<String, u64> {
    store.iter().map(|e| (e.key.0.clone(), e.value.0)).collect()
}

/// The fingerprint of `range` computed the slow way, from the entries.
pub(crate) fn brute_fingerprint(store: &MemStore<Entry>, range: &Range<Key>) -> Fingerprint {
    let mut fp = Fingerprint::EMPTY;
    for e in store.iter().filter(|e| range.contains(&e.key)) {
        fp ^= e.fingerprint();
    }
    fp
}

/// Counting hooks that accept everything.
#[derive(Debug, Default)]
pub(crate) struct Counting {
    pub(crate) inserted: Vec<Entry>,
    pub(crate) metas_asked: usize,
}

impl Hooks<Entry, ()> for Counting {
    type Rejection = Infallible;

    fn validate(&mut self, _entry: &Entry, _meta: &()) -> Result<(), Infallible> {
        Ok(())
    }

    fn on_insert(&mut self, entry: Entry, _meta: ()) {
        self.inserted.push(entry);
    }

    fn meta(&mut self, _entry: &Entry) {
        self.metas_asked += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

pub(crate) struct Run {
    /// Every message in order, with its sender.
    pub(crate) transcript: Vec<(Side, Msg)>,
    pub(crate) a: SessionOutcome,
    pub(crate) b: SessionOutcome,
}

pub(crate) struct RunOptions {
    pub(crate) keep_transcript: bool,
    /// Check every fingerprint part against a brute-force fingerprint of the sender's set.
    pub(crate) check_fingerprints: bool,
    pub(crate) max_messages: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            keep_transcript: true,
            check_fingerprints: true,
            max_messages: 10_000,
        }
    }
}

/// Runs a session with `a` initiating, until one side answers `None`. Every message is passed to
/// `observe` (with its sender) before the peer processes it.
pub(crate) fn run_with(
    a: &mut MemStore<Entry>,
    b: &mut MemStore<Entry>,
    config_a: Config,
    config_b: Config,
    options: &RunOptions,
    mut observe: impl FnMut(Side, &Msg),
) -> Run {
    let mut sa = Session::new(config_a);
    let mut sb = Session::new(config_b);
    let mut ha = Counting::default();
    let mut hb = Counting::default();
    let mut transcript = Vec::new();
    let mut msg: Msg = sa.initial_message(a, Key(String::new())).unwrap();
    let mut from = Side::A;
    let mut sent = 1;
    loop {
        observe(from, &msg);
        if options.check_fingerprints {
            let sender = if from == Side::A { &*a } else { &*b };
            check_fingerprints(sender, &msg);
        }
        if options.keep_transcript {
            transcript.push((from, msg.clone()));
        }
        let reply = match from {
            Side::A => sb.process_message(b, &mut hb, msg).unwrap(),
            Side::B => sa.process_message(a, &mut ha, msg).unwrap(),
        };
        let Some(reply) = reply else { break };
        msg = reply;
        from = if from == Side::A { Side::B } else { Side::A };
        sent += 1;
        assert!(
            sent <= options.max_messages,
            "session did not end after {sent} messages"
        );
    }
    Run {
        transcript,
        a: sa.into_outcome(),
        b: sb.into_outcome(),
    }
}

pub(crate) fn run(
    a: &mut MemStore<Entry>,
    b: &mut MemStore<Entry>,
    config_a: Config,
    config_b: Config,
) -> Run {
    run_with(a, b, config_a, config_b, &RunOptions::default(), |_, _| {})
}

fn check_fingerprints(sender: &MemStore<Entry>, msg: &Msg) {
    for part in &msg.parts {
        if let MessagePart::RangeFingerprint(fp) = part {
            assert_eq!(
                fp.fingerprint,
                brute_fingerprint(sender, &fp.range),
                "fingerprint part {:?} does not match the sender's set",
                fp.range
            );
        }
    }
}

/// One line per part, in the style of the decoded transcripts of the reference vectors.
pub(crate) fn describe(msg: &Msg) -> Vec<String> {
    msg.parts
        .iter()
        .map(|part| match part {
            MessagePart::RangeFingerprint(fp) => {
                format!("FP[{}..{})", fp.range.x.0, fp.range.y.0)
            }
            MessagePart::RangeItem(item) => {
                let keys: Vec<&str> = item.values.iter().map(|(e, _)| e.key.0.as_str()).collect();
                format!(
                    "ITEM[{}..{}) [{}] hl={}",
                    item.range.x.0,
                    item.range.y.0,
                    keys.join(","),
                    item.have_local
                )
            }
        })
        .collect()
}

/// The last-write-wins union of two sets.
pub(crate) fn lww_union(
    a: &BTreeMap<String, u64>,
    b: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut out = a.clone();
    for (k, v) in b {
        let e = out.entry(k.clone()).or_insert(*v);
        *e = (*e).max(*v);
    }
    out
}

/// `shared` entries on both sides and `own` more on each, spread evenly over the key space.
pub(crate) fn dense_overlap(shared: usize, own: usize) -> (MemStore<Entry>, MemStore<Entry>) {
    // Entry i of the key space: shared, a's alone or b's alone.
    let key = |i: usize| format!("key-{:07}", i * 7919 % 1_000_003);
    let (mut a, mut b) = (MemStore::<Entry>::new(), MemStore::<Entry>::new());
    let every = (shared + 2 * own) / own;
    for i in 0..shared + 2 * own {
        let entry = Entry::new(&key(i), 7);
        let (to_a, to_b) = match i % every {
            0 if i / every < own => (true, false),
            1 if i / every < own => (false, true),
            _ => (true, true),
        };
        if to_a {
            a.insert(entry.clone());
        }
        if to_b {
            b.insert(entry);
        }
    }
    (a, b)
}
