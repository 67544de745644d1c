//! The reference transcripts of `data/vectors.txt`, reproduced byte for byte: our ranger in
//! reference mode over our store, encoded by our wire module.

use ranger::{Config, Hooks, Session};
use sync_core::encoding::DecodeLimits;
use sync_core::{
    Author, Capability, ContentHash, ContentStatus, MemStore, NamespaceSecret, Record,
    RecordIdentifier, ReplicaStore, SignatureCheck, SignedEntry, Store, ValidationConfig,
    ValidationError,
};
use sync_net::wire::{ProtocolMessage, decode_protocol_message, encode_protocol_message};

const VECTORS: &str = include_str!("data/vectors.txt");

struct Validate(sync_core::NamespaceId);

impl Hooks<SignedEntry, ContentStatus> for Validate {
    type Rejection = ValidationError;
    fn validate(&mut self, e: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        e.validate(
            self.0,
            1_000_000_000,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
    }
    fn on_insert(&mut self, _: SignedEntry, _: ContentStatus) {}
    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

/// A store holding the entries of `spec` ("key" or "key@ts") for the golden keys.
fn store(ns: &NamespaceSecret, author: &Author, spec: &[String]) -> MemStore {
    let mut store = MemStore::new();
    store
        .import_namespace(Capability::Write(ns.clone()))
        .unwrap();
    for item in spec {
        let (key, ts, data) = match item.split_once('@') {
            Some((key, ts)) => (key.to_string(), ts.parse().unwrap(), item.clone()),
            None => (item.clone(), 1000, item.clone()),
        };
        let record = Record::new(ContentHash::of(data.as_bytes()), data.len() as u64, ts);
        store
            .insert(SignedEntry::create(ns, author, key.as_bytes(), record))
            .unwrap();
    }
    store
}

fn keys(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn encode(m: &ProtocolMessage) -> String {
    let mut out = Vec::new();
    encode_protocol_message(m, &mut out);
    hex::encode(out)
}

/// The lines of one case: (direction, hex or None), in order, and the END counters.
fn expected(case: &str) -> (Vec<(String, Option<String>)>, String) {
    let mut steps = Vec::new();
    let mut end = String::new();
    // The transcripts proper; the decoded summary after them repeats some lines.
    let transcripts = VECTORS
        .split("## Decoded summary")
        .next()
        .unwrap_or_default();
    for line in transcripts.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [c, "END", counters @ ..] if *c == case => end = counters.join(" "),
            [c, dir, "<none>"] if *c == case => steps.push((dir.to_string(), None)),
            [c, dir, hex] if *c == case && dir.contains("->") => {
                steps.push((dir.to_string(), Some(hex.to_string())))
            }
            _ => {}
        }
    }
    (steps, end)
}

fn run_case(case: &str, a: &[String], b: &[String]) {
    let ns = NamespaceSecret::from_bytes(&[0xb2; 32]);
    let author = Author::from_bytes(&[0xa1; 32]);
    let (mut store_a, mut store_b) = (store(&ns, &author, a), store(&ns, &author, b));
    let (mut sa, mut sb) = (
        Session::new(Config::reference()),
        Session::new(Config::reference()),
    );
    let (steps, end) = expected(case);
    assert!(!steps.is_empty(), "case {case} is in the vectors file");

    let mut produced = Vec::new();
    let first = sa
        .initial_message(
            &mut ReplicaStore::new(&mut store_a, ns.id()),
            RecordIdentifier::zero(),
        )
        .unwrap();
    produced.push(("A->B".to_string(), Some(encode(&first))));
    let mut next = Some(first);
    let mut to_b = true;
    while let Some(message) = next {
        // Everything goes through the wire encoding and back.
        let mut bytes = Vec::new();
        encode_protocol_message(&message, &mut bytes);
        let mut reader = sync_core::encoding::Reader::new(&bytes, DecodeLimits::default());
        let decoded = decode_protocol_message(&mut reader).unwrap();
        reader.finish().unwrap();
        assert_eq!(decoded, message);
        next = if to_b {
            sb.process_message(
                &mut ReplicaStore::new(&mut store_b, ns.id()),
                &mut Validate(ns.id()),
                decoded,
            )
            .unwrap()
        } else {
            sa.process_message(
                &mut ReplicaStore::new(&mut store_a, ns.id()),
                &mut Validate(ns.id()),
                decoded,
            )
            .unwrap()
        };
        // The reference harness printed every message, and `<none>` only for B's last step.
        match (&next, to_b) {
            (Some(m), true) => produced.push(("B->A".to_string(), Some(encode(m)))),
            (Some(m), false) => produced.push(("A->B".to_string(), Some(encode(m)))),
            (None, true) => produced.push(("B->A".to_string(), None)),
            (None, false) => {}
        }
        to_b = !to_b;
    }
    assert_eq!(produced.len(), steps.len(), "{case}: number of messages");
    for (i, (ours, theirs)) in produced.iter().zip(&steps).enumerate() {
        assert_eq!(ours, theirs, "{case}: message {i}");
    }
    let (oa, ob) = (sa.outcome(), sb.outcome());
    let counters = format!(
        "a_sent={} a_recv={} b_sent={} b_recv={}",
        oa.entries_sent, oa.entries_received, ob.entries_sent, ob.entries_received
    );
    assert_eq!(counters, end, "{case}: counters");
}

#[test]
fn paper1() {
    run_case(
        "paper1",
        &keys("ape,eel,fox,gnu"),
        &keys("bee,cat,doe,eel,fox,hog"),
    );
}

#[test]
fn equal() {
    run_case("equal", &keys("ape,eel"), &keys("ape,eel"));
}

#[test]
fn empty_a() {
    run_case("emptyA", &[], &keys("ape,eel,fox"));
}

#[test]
fn empty_b() {
    run_case("emptyB", &keys("ape,eel,fox"), &[]);
}

#[test]
fn lww() {
    run_case("lww", &keys("k@1000"), &keys("k@2000"));
}

#[test]
fn many() {
    let a: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
    let mut b: Vec<String> = a
        .iter()
        .filter(|k| *k != "k05" && *k != "k11")
        .cloned()
        .collect();
    b.push("k99".into());
    run_case("many", &a, &b);
}
