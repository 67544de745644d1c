//! Reconciliation under attack: two stores, a volley of arbitrary, wire-decoded and mutated
//! messages, then an honest session that must still converge.

use ranger::{
    Config, Fingerprint, Hooks, Message, MessagePart, Range, RangeFingerprint, RangeItem, Session,
};
use sync_core::encoding::{DecodeLimits, Reader};
use sync_core::{
    Capability, ContentStatus, KeyInterval, MemStore, NamespaceId, RecordIdentifier, ReplicaStore,
    SignatureCheck, SignedEntry, Store, ValidationConfig, ValidationError,
};
use sync_net::wire::{ProtocolMessage, decode_protocol_message};

use super::fixtures::{self, NOW, pool};
use crate::input::Input;

/// The most messages of one honest session before it counts as not terminating.
const MAX_ROUNDS: usize = 2_000;

/// Validates as a node does.
struct Validate(NamespaceId);

impl Hooks<SignedEntry, ContentStatus> for Validate {
    type Rejection = ValidationError;

    fn validate(&mut self, entry: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        entry.validate(
            self.0,
            NOW,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
    }

    fn on_insert(&mut self, _: SignedEntry, _: ContentStatus) {}

    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

/// One side: a store holding the document and a neighbour document.
struct Side {
    store: MemStore,
    neighbour: SignedEntry,
}

fn side(neighbour_key: &[u8]) -> Side {
    let mut store = MemStore::new();
    for seed in [1u8, 2] {
        let _ = store.import_namespace(Capability::Write(fixtures::namespace(seed)));
    }
    let neighbour = SignedEntry::create(
        &fixtures::namespace(2),
        &fixtures::author(3),
        neighbour_key,
        fixtures::record(neighbour_key, NOW - 1, false),
    );
    let inserted = store.insert(neighbour.clone());
    assert!(inserted.is_ok(), "memory store: {inserted:?}");
    Side { store, neighbour }
}

fn contents(store: &mut MemStore, ns: NamespaceId) -> Vec<SignedEntry> {
    match store.entries(&ns, &KeyInterval::all(), 0, usize::MAX) {
        Ok(entries) => entries,
        Err(e) => panic!("memory store: {e}"),
    }
}

fn config(input: &mut Input<'_>) -> Config {
    let config = match input.below(4) {
        0 => Ok(Config::reference()),
        // A budget must hold the largest entry and two fingerprint parts (Config docs):
        // about 600 bytes for the pool's entries.
        1 => Config::bounded([1024, 2048, 4096][input.below(3)]),
        2 => Config::custom(2 + input.below(4), 1 + input.below(4), None),
        _ => Config::custom(2 + input.below(4), 1 + input.below(4), Some(2048)),
    };
    match config {
        Ok(config) => config.with_eager_leaves(input.u8() & 0x80 == 0),
        Err(e) => panic!("the configurations here are valid: {e}"),
    }
}

/// An identifier for a range bound: mostly the pool's, sometimes the zero anchor, another
/// document's, or an identifier between keys.
fn bound(input: &mut Input<'_>) -> RecordIdentifier {
    let pool = pool();
    match input.below(8) {
        0 => RecordIdentifier::zero(),
        1 => RecordIdentifier::new(
            fixtures::ns_id(2),
            fixtures::author_id(1),
            fixtures::KEYS[input.below(fixtures::KEYS.len())],
        ),
        2 => RecordIdentifier::new(
            fixtures::ns_id(1),
            fixtures::author_id(1 + input.below(3) as u8),
            input.bytes(3),
        ),
        _ => pool.valid[input.below(pool.valid.len())].id().clone(),
    }
}

fn any_entry(input: &mut Input<'_>) -> SignedEntry {
    let pool = pool();
    if input.below(5) == 0 {
        pool.invalid[input.below(pool.invalid.len())].clone()
    } else {
        pool.valid[input.below(pool.valid.len())].clone()
    }
}

fn status(input: &mut Input<'_>) -> ContentStatus {
    match input.below(3) {
        0 => ContentStatus::Complete,
        1 => ContentStatus::Incomplete,
        _ => ContentStatus::Missing,
    }
}

/// A message made up from the input: overlapping, inverted and whole-set ranges, bogus or
/// real fingerprints, items with valid and invalid entries.
fn arbitrary_message(input: &mut Input<'_>, store: &mut MemStore) -> ProtocolMessage {
    let parts = input.below(6);
    let mut out = Vec::with_capacity(parts);
    for _ in 0..parts {
        let range = Range::new(bound(input), bound(input));
        if input.bool() {
            let fingerprint = match input.below(3) {
                0 => Fingerprint::EMPTY,
                1 => Fingerprint([input.u8(); 32]),
                // The real fingerprint of the range on this side: "equal", nothing to do.
                _ => {
                    let mut view = ReplicaStore::new(store, fixtures::ns_id(1));
                    ranger::Store::range_fingerprint(&mut view, &range)
                        .unwrap_or(Fingerprint::EMPTY)
                }
            };
            out.push(MessagePart::RangeFingerprint(RangeFingerprint {
                range,
                fingerprint,
            }));
        } else {
            let values = (0..input.below(5))
                .map(|_| (any_entry(input), status(input)))
                .collect();
            out.push(MessagePart::RangeItem(RangeItem {
                range,
                values,
                have_local: input.bool(),
            }));
        }
    }
    Message::new(out)
}

/// Changes an honest message the way a buggy or hostile peer might.
fn mutate_message(input: &mut Input<'_>, mut message: ProtocolMessage) -> ProtocolMessage {
    for _ in 0..1 + input.below(3) {
        let n = message.parts.len();
        match input.below(6) {
            0 if n > 0 => {
                message.parts.remove(input.below(n));
            }
            1 if n > 0 => {
                let part = message.parts[input.below(n)].clone();
                message.parts.push(part);
            }
            2 => {
                for part in &mut message.parts {
                    if let MessagePart::RangeFingerprint(fp) = part {
                        fp.fingerprint.0[0] ^= 1;
                    }
                }
            }
            3 => {
                for part in &mut message.parts {
                    if let MessagePart::RangeItem(item) = part {
                        item.have_local = !item.have_local;
                        item.values.truncate(input.below(item.values.len() + 1));
                    }
                }
            }
            4 if n > 0 => {
                let at = input.below(n);
                let range = message.parts[at].range().clone();
                message.parts[at] = MessagePart::RangeFingerprint(RangeFingerprint {
                    range: Range::new(range.y, range.x),
                    fingerprint: Fingerprint::EMPTY,
                });
            }
            _ => message.parts.reverse(),
        }
    }
    message
}

/// Delivers `message` to `side`; returns the reply. Every step may fail with a typed error
/// (which ends that session); none may panic, and a bounded reply respects the budget.
fn deliver(
    side: &mut Side,
    session: &mut Session,
    message: ProtocolMessage,
) -> Option<ProtocolMessage> {
    let ns = fixtures::ns_id(1);
    let budget = session.config().max_message_bytes();
    let mut view = ReplicaStore::new(&mut side.store, ns);
    let reply = session
        .process_message(&mut view, &mut Validate(ns), message)
        .ok()
        .flatten();
    if let (Some(reply), Some(budget)) = (&reply, budget) {
        assert!(
            reply.encoded_len() <= budget,
            "a reply of {} bytes exceeds the budget of {budget}",
            reply.encoded_len()
        );
    }
    reply
}

/// Runs an honest session from `a`; panics unless it ends within [`MAX_ROUNDS`] messages.
fn honest_session(a: &mut Side, b: &mut Side, config: Config) {
    let ns = fixtures::ns_id(1);
    let (mut sa, mut sb) = (Session::new(config), Session::new(config));
    let initial = sa.initial_message(
        &mut ReplicaStore::new(&mut a.store, ns),
        RecordIdentifier::zero(),
    );
    let mut message = match initial {
        Ok(message) => Some(message),
        Err(e) => panic!("an honest session cannot start: {e}"),
    };
    let mut to_b = true;
    let mut rounds = 0;
    while let Some(m) = message {
        rounds += 1;
        assert!(rounds < MAX_ROUNDS, "an honest session does not terminate");
        let (side, session) = if to_b {
            (&mut *b, &mut sb)
        } else {
            (&mut *a, &mut sa)
        };
        let result = session.process_message(
            &mut ReplicaStore::new(&mut side.store, ns),
            &mut Validate(ns),
            m,
        );
        message = match result {
            Ok(reply) => reply,
            Err(e) => panic!("an honest session failed: {e}"),
        };
        to_b = !to_b;
    }
}

/// The target: see the module docs.
pub fn ranger_sync(data: &[u8]) {
    let mut input = Input::new(data);
    let config = config(&mut input);
    let ns = fixtures::ns_id(1);
    let pool = pool();
    let mut a = side(b"only-a");
    let mut b = side(b"only-b");
    for side in [&mut a, &mut b] {
        for _ in 0..input.below(24) {
            let entry = pool.valid[input.below(pool.valid.len())].clone();
            let inserted = side.store.insert(entry);
            assert!(inserted.is_ok(), "memory store: {inserted:?}");
        }
    }

    // The hostile volley: each message goes to one side, under one session per side.
    let (mut sa, mut sb) = (Session::new(config), Session::new(config));
    for _ in 0..input.below(6) {
        let to_a = input.bool();
        let message = {
            let (target, other) = if to_a {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            match input.below(3) {
                0 => arbitrary_message(&mut input, &mut target.store),
                1 => {
                    let len = input.below(512);
                    let bytes = input.bytes(len);
                    let mut reader = Reader::new(bytes, DecodeLimits::default());
                    match decode_protocol_message(&mut reader) {
                        Ok(message) => message,
                        Err(_) => continue,
                    }
                }
                _ => {
                    // An honest opening of the other side, mutated; its reply is mutated too.
                    let opening = Session::new(config).initial_message(
                        &mut ReplicaStore::new(&mut other.store, ns),
                        RecordIdentifier::zero(),
                    );
                    match opening {
                        Ok(message) => mutate_message(&mut input, message),
                        Err(_) => continue,
                    }
                }
            }
        };
        let (target, session, other, other_session) = if to_a {
            (&mut a, &mut sa, &mut b, &mut sb)
        } else {
            (&mut b, &mut sb, &mut a, &mut sa)
        };
        if let Some(reply) = deliver(target, session, message) {
            let reply = mutate_message(&mut input, reply);
            deliver(other, other_session, reply);
        }
    }

    // Whatever the volley did, each store holds only valid entries of the document, and its
    // neighbour document is as it was.
    for side in [&mut a, &mut b] {
        for entry in contents(&mut side.store, ns) {
            let valid = entry.validate(
                ns,
                NOW,
                &ValidationConfig::default(),
                SignatureCheck::Verify,
            );
            assert!(valid.is_ok(), "an invalid entry was stored: {valid:?}");
        }
        let neighbours = contents(&mut side.store, fixtures::ns_id(2));
        assert_eq!(
            neighbours,
            vec![side.neighbour.clone()],
            "a neighbour document changed"
        );
    }

    // The model: one store holding everything both sides hold now.
    let mut model = MemStore::new();
    let _ = model.import_namespace(Capability::Write(fixtures::namespace(1)));
    for entry in contents(&mut a.store, ns)
        .into_iter()
        .chain(contents(&mut b.store, ns))
    {
        let inserted = model.insert(entry);
        assert!(inserted.is_ok(), "memory store: {inserted:?}");
    }
    let want = contents(&mut model, ns);

    if input.bool() {
        honest_session(&mut a, &mut b, config);
    } else {
        honest_session(&mut b, &mut a, config);
    }
    assert_eq!(contents(&mut a.store, ns), want, "side a did not converge");
    assert_eq!(contents(&mut b.store, ns), want, "side b did not converge");
    for side in [&mut a, &mut b] {
        let neighbours = contents(&mut side.store, fixtures::ns_id(2));
        assert_eq!(
            neighbours,
            vec![side.neighbour.clone()],
            "a neighbour document leaked"
        );
    }
}

pub(super) fn seeds() -> Vec<Vec<u8>> {
    // Byte strings of the shape the target reads: config, two sets, a volley, the initiator.
    let mut seeds = Vec::new();
    for config in 0..4u8 {
        let mut s = vec![config, 1, 0];
        s.push(10);
        s.extend((0..10u8).map(|i| i.wrapping_mul(7)));
        s.push(12);
        s.extend((0..12u8).map(|i| i.wrapping_mul(11).wrapping_add(3)));
        s.extend_from_slice(&[3, 1, 0, 3, 1, 2, 0x40, 0x41, 0x10, 2, 1, 1, 0, 2, 0]);
        seeds.push(s);
    }
    seeds.push(Vec::new());
    seeds
}
