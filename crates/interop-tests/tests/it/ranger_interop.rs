//! Our ranger against a real iroh-docs 0.101 replica, in process: every message goes through our
//! wire encoding and iroh-docs' postcard decoding (and back), both sides initiate, and both end
//! with the same entries, signatures included.

use proptest::prelude::*;
use ranger::{Config, Hooks, Session};
use sync_core::encoding::{DecodeLimits, Encode, Reader};
use sync_core::{
    Author, Capability, ContentHash, ContentStatus, MemStore, NamespaceId, NamespaceSecret, Query,
    QueryCursor, Record, RecordIdentifier, ReplicaStore, SignatureCheck, SignedEntry, Store,
    ValidationConfig, ValidationError, now_micros,
};
use sync_net::wire::{ProtocolMessage, decode_protocol_message, encode_protocol_message};

struct Validate(NamespaceId);

impl Hooks<SignedEntry, ContentStatus> for Validate {
    type Rejection = ValidationError;
    fn validate(&mut self, e: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        e.validate(
            self.0,
            now_micros(),
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
    }
    fn on_insert(&mut self, _: SignedEntry, _: ContentStatus) {}
    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

fn to_theirs(m: &ProtocolMessage) -> iroh_docs::sync::ProtocolMessage {
    let mut bytes = Vec::new();
    encode_protocol_message(m, &mut bytes);
    postcard::from_bytes(&bytes).expect("iroh-docs decodes our message")
}

fn to_ours(m: &iroh_docs::sync::ProtocolMessage) -> ProtocolMessage {
    let bytes = postcard::to_stdvec(m).unwrap();
    let mut reader = Reader::new(&bytes, DecodeLimits::default());
    let ours = decode_protocol_message(&mut reader).expect("we decode their message");
    reader.finish().unwrap();
    // Byte-identical in both directions.
    let mut again = Vec::new();
    encode_protocol_message(&ours, &mut again);
    assert_eq!(again, bytes);
    ours
}

/// Entry specs: (author seed, key index, timestamp offset, content byte).
type Spec = Vec<(u8, u8, u64, u8)>;

fn make(ns: &NamespaceSecret, spec: &Spec, base: u64) -> Vec<SignedEntry> {
    spec.iter()
        .map(|(a, k, ts, c)| {
            let author = Author::from_bytes(&[*a; 32]);
            // Fixed-length keys: no key is a prefix of another, and no deletion markers, so that
            // both insertion rules (ours and the reference's, see W8) agree on the result.
            let key = format!("key-{k:03}");
            let data = [*c; 3];
            SignedEntry::create(
                ns,
                &author,
                key,
                Record::new(ContentHash::of(data), 3, base + ts),
            )
        })
        .collect()
}

fn ours_all(store: &mut MemStore, ns: NamespaceId) -> Vec<Vec<u8>> {
    let q = Query::all().with_include_empty(true);
    let mut v: Vec<Vec<u8>> = store
        .query(&ns, &q, &QueryCursor::start(&q), usize::MAX)
        .unwrap()
        .entries
        .iter()
        .map(Encode::to_vec)
        .collect();
    v.sort();
    v
}

fn theirs_all(store: &mut iroh_docs::store::Store, ns: NamespaceId) -> Vec<Vec<u8>> {
    let id = iroh_docs::NamespaceId::from(ns.as_bytes());
    let mut v: Vec<Vec<u8>> = store
        .get_many(id, iroh_docs::store::Query::all().include_empty().build())
        .unwrap()
        .map(|e| postcard::to_stdvec(&e.unwrap()).unwrap())
        .collect();
    v.sort();
    v
}

/// Runs one session; `we_start` picks the initiator. Returns the number of messages.
fn session(
    rt: &tokio::runtime::Runtime,
    ours: &mut MemStore,
    theirs: &mut iroh_docs::store::Store,
    secret: &NamespaceSecret,
    config: Config,
    we_start: bool,
) -> usize {
    let ns = secret.id();
    let their_id = iroh_docs::NamespaceId::from(ns.as_bytes());
    let mut replica = theirs.open_replica(&their_id).unwrap();
    let mut their_state = iroh_docs::sync::SyncOutcome::default();
    let mut session = Session::new(config);
    let mut hooks = Validate(ns);
    let mut messages = 0;
    // `next` is always the message for us to process, already in our form.
    let mut next: Option<ProtocolMessage> = if we_start {
        let init = session
            .initial_message(&mut ReplicaStore::new(ours, ns), RecordIdentifier::zero())
            .unwrap();
        messages += 1;
        let reply = rt
            .block_on(replica.sync_process_message(to_theirs(&init), [1; 32], &mut their_state))
            .unwrap();
        messages += 1;
        reply.as_ref().map(to_ours)
    } else {
        let init = replica.sync_initial_message().unwrap();
        messages += 1;
        Some(to_ours(&init))
    };
    while let Some(message) = next {
        let reply = session
            .process_message(&mut ReplicaStore::new(ours, ns), &mut hooks, message)
            .unwrap();
        messages += 1;
        assert!(messages < 2000, "does not terminate");
        let Some(reply) = reply else { break };
        if let Some(budget) = config.max_message_bytes() {
            let mut bytes = Vec::new();
            encode_protocol_message(&reply, &mut bytes);
            assert!(bytes.len() <= budget, "{} > {budget}", bytes.len());
        }
        let theirs_reply = rt
            .block_on(replica.sync_process_message(to_theirs(&reply), [1; 32], &mut their_state))
            .unwrap();
        messages += 1;
        next = theirs_reply.as_ref().map(to_ours);
    }
    theirs.close_replica(their_id);
    messages
}

fn setup(
    secret: &NamespaceSecret,
    a: &[SignedEntry],
    b: &[SignedEntry],
) -> (MemStore, iroh_docs::store::Store) {
    let mut ours = MemStore::new();
    ours.import_namespace(Capability::Write(secret.clone()))
        .unwrap();
    for e in a {
        ours.insert(e.clone()).unwrap();
    }
    let mut theirs = iroh_docs::store::Store::memory();
    let their_secret = iroh_docs::NamespaceSecret::from_bytes(&secret.to_bytes());
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut replica = theirs.new_replica(their_secret).unwrap();
        for e in b {
            let theirs_entry: iroh_docs::SignedEntry = postcard::from_bytes(&e.to_vec()).unwrap();
            // Duplicates and older values are refused by the store; that is fine.
            let _ = rt.block_on(replica.insert_remote_entry(
                theirs_entry,
                [0; 32],
                iroh_docs::ContentStatus::Missing,
            ));
        }
    }
    theirs.close_replica(iroh_docs::NamespaceId::from(secret.id().as_bytes()));
    (ours, theirs)
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    proptest::collection::vec((1u8..4, 0u8..40, 0u64..5, any::<u8>()), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn converges_with_iroh_docs(a in arb_spec(), b in arb_spec(), we_start in any::<bool>(), bounded in any::<bool>()) {
        let secret = NamespaceSecret::from_bytes(&[0x42; 32]);
        let base = now_micros() - 1_000_000;
        let (ea, eb) = (make(&secret, &a, base), make(&secret, &b, base));
        let (mut ours, mut theirs) = setup(&secret, &ea, &eb);
        let config = if bounded { Config::bounded(1200).unwrap() } else { Config::reference() };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        session(&rt, &mut ours, &mut theirs, &secret, config, we_start);
        let (o, t) = (ours_all(&mut ours, secret.id()), theirs_all(&mut theirs, secret.id()));
        prop_assert_eq!(&o, &t);
        // And that is the last-write-wins union of both sides.
        let mut union = MemStore::new();
        union.import_namespace(Capability::Write(secret.clone())).unwrap();
        for e in ea.iter().chain(eb.iter()) {
            union.insert(e.clone()).unwrap();
        }
        prop_assert_eq!(o, ours_all(&mut union, secret.id()));
    }
}

#[test]
fn bootstrap_of_an_empty_reference_peer_stays_under_budget() {
    let secret = NamespaceSecret::from_bytes(&[0x43; 32]);
    let base = now_micros() - 1_000_000;
    let spec: Spec = (0..300u32)
        .map(|i| ((i % 3) as u8 + 1, (i / 3) as u8, 0, i as u8))
        .collect();
    let entries = make(&secret, &spec, base);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for we_start in [true, false] {
        let (mut ours, mut theirs) = setup(&secret, &entries, &[]);
        let messages = session(
            &rt,
            &mut ours,
            &mut theirs,
            &secret,
            Config::bounded(4096).unwrap(),
            we_start,
        );
        assert!(messages > 4, "300 entries cannot fit one 4 KiB message");
        let (o, t) = (
            ours_all(&mut ours, secret.id()),
            theirs_all(&mut theirs, secret.id()),
        );
        assert_eq!(o.len(), 300);
        assert_eq!(o, t);
    }
    // And the other way round: an empty side of ours learns everything from the reference.
    let (mut ours, mut theirs) = setup(&secret, &[], &entries);
    session(
        &rt,
        &mut ours,
        &mut theirs,
        &secret,
        Config::bounded(4096).unwrap(),
        true,
    );
    assert_eq!(ours_all(&mut ours, secret.id()).len(), 300);
}

/// A lone entry of ours (`Config::with_lone_differences`) reaches a reference peer in the
/// whole-set item with `have_local == true` that the shortcut sends, whoever starts, and one
/// of theirs still reaches us the usual way.
#[test]
fn lone_entries_reach_the_reference_peer() {
    let secret = NamespaceSecret::from_bytes(&[0x44; 32]);
    let base = now_micros() - 1_000_000;
    let shared: Spec = (0..200u32)
        .map(|i| ((i % 3) as u8 + 1, (i / 3) as u8, 0, i as u8))
        .collect();
    let shared = make(&secret, &shared, base);
    let ours_only = make(&secret, &vec![(3, 250, 1, 9)], base);
    let theirs_only = make(&secret, &vec![(1, 251, 1, 7)], base);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = Config::bounded(64 * 1024).unwrap();
    for we_start in [true, false] {
        let mut a = shared.clone();
        a.extend(ours_only.iter().cloned());
        let (mut ours, mut theirs) = setup(&secret, &a, &shared);
        let messages = session(&rt, &mut ours, &mut theirs, &secret, config, we_start);
        let (o, t) = (
            ours_all(&mut ours, secret.id()),
            theirs_all(&mut theirs, secret.id()),
        );
        assert_eq!(o.len(), 201);
        assert_eq!(o, t);
        // The reference opening: we answer its whole-set fingerprint with the entry at once,
        // and it has nothing to say to that (`session` counts its empty step too).
        if !we_start {
            assert_eq!(messages, 3, "the lone entry goes out in the first reply");
        }

        let mut b = shared.clone();
        b.extend(theirs_only.iter().cloned());
        let (mut ours, mut theirs) = setup(&secret, &shared, &b);
        session(&rt, &mut ours, &mut theirs, &secret, config, we_start);
        let (o, t) = (
            ours_all(&mut ours, secret.id()),
            theirs_all(&mut theirs, secret.id()),
        );
        assert_eq!(o.len(), 201);
        assert_eq!(o, t);
    }
}
