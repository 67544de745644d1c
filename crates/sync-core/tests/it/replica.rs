//! Reconciliation of two stores through `ReplicaStore`, with neighbouring documents present.

use proptest::prelude::*;
use ranger::{Config, Hooks, Message, Session};
use sync_core::store::conformance::{author, entry, namespace};
use sync_core::{
    Capability, ContentStatus, KeyInterval, MemStore, NamespaceId, Query, QueryCursor,
    ReplicaStore, SignatureCheck, SignedEntry, Store, ValidationConfig, ValidationError,
};

/// Validates as a node would; records what was inserted.
struct Validate {
    namespace: NamespaceId,
    inserted: Vec<SignedEntry>,
}

impl Hooks<SignedEntry, ContentStatus> for Validate {
    type Rejection = ValidationError;

    fn validate(&mut self, entry: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        entry.validate(
            self.namespace,
            u64::MAX / 2,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
    }

    fn on_insert(&mut self, entry: SignedEntry, _: ContentStatus) {
        self.inserted.push(entry);
    }

    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

fn contents(store: &mut MemStore, ns: &NamespaceId) -> Vec<SignedEntry> {
    let query = Query::all().with_include_empty(true);
    store
        .query(ns, &query, &QueryCursor::start(&query), usize::MAX)
        .unwrap()
        .entries
}

/// Runs a session between `a` (initiator) and `b` on `ns`; returns the number of messages.
fn reconcile(a: &mut MemStore, b: &mut MemStore, ns: NamespaceId, config: Config) -> usize {
    let mut sa = Session::new(config);
    let mut sb = Session::new(config);
    let mut ha = Validate {
        namespace: ns,
        inserted: vec![],
    };
    let mut hb = Validate {
        namespace: ns,
        inserted: vec![],
    };
    let mut msg: Option<Message<SignedEntry, ContentStatus>> = Some(
        sa.initial_message(
            &mut ReplicaStore::new(a, ns),
            sync_core::RecordIdentifier::zero(),
        )
        .unwrap(),
    );
    let mut messages = 1;
    let mut to_b = true;
    while let Some(m) = msg {
        msg = if to_b {
            sb.process_message(&mut ReplicaStore::new(b, ns), &mut hb, m)
                .unwrap()
        } else {
            sa.process_message(&mut ReplicaStore::new(a, ns), &mut ha, m)
                .unwrap()
        };
        to_b = !to_b;
        messages += 1;
        assert!(messages < 10_000, "does not terminate");
    }
    messages
}

fn arb_side() -> impl Strategy<Value = Vec<(u8, u8, u64, bool)>> {
    // (author seed, key index, timestamp, tombstone)
    proptest::collection::vec(
        (1u8..4, 0u8..12, 1u64..50, proptest::bool::weighted(0.15)),
        0..30,
    )
}

const KEYS: [&str; 12] = [
    "", "a", "a/1", "a/2", "b", "b/x", "c", "d", "e", "ee", "f", "g",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn two_stores_converge_and_neighbours_are_untouched(
        side_a in arb_side(),
        side_b in arb_side(),
        bounded in any::<bool>(),
    ) {
        let ns = namespace(1);
        let neighbour = namespace(2);
        let mut a = MemStore::new();
        let mut b = MemStore::new();
        for store in [&mut a, &mut b] {
            store.import_namespace(Capability::Write(ns.clone())).unwrap();
            store.import_namespace(Capability::Write(neighbour.clone())).unwrap();
        }
        // Different neighbouring documents on each side: none may cross over.
        a.insert(entry(&neighbour, &author(1), b"only-a", 5, false)).unwrap();
        b.insert(entry(&neighbour, &author(1), b"only-b", 5, false)).unwrap();
        for (store, side) in [(&mut a, &side_a), (&mut b, &side_b)] {
            for (who, key, ts, tomb) in side {
                store.insert(entry(&ns, &author(*who), KEYS[*key as usize].as_bytes(), *ts, *tomb)).unwrap();
            }
        }
        let config = if bounded { Config::bounded(2048).unwrap() } else { Config::reference() };
        reconcile(&mut a, &mut b, ns.id(), config);
        let (ca, cb) = (contents(&mut a, &ns.id()), contents(&mut b, &ns.id()));
        prop_assert_eq!(&ca, &cb);
        // The result is what one store holding everything would hold.
        let mut union = MemStore::new();
        union.import_namespace(Capability::Write(ns.clone())).unwrap();
        for (who, key, ts, tomb) in side_a.iter().chain(side_b.iter()) {
            union.insert(entry(&ns, &author(*who), KEYS[*key as usize].as_bytes(), *ts, *tomb)).unwrap();
        }
        // Insertion order can matter only where a newer entry and an older child meet, and the
        // rule removes or refuses the child either way: the final set is order-independent.
        prop_assert_eq!(ca, contents(&mut union, &ns.id()));
        prop_assert_eq!(a.count(&neighbour.id(), &KeyInterval::all()).unwrap(), 1);
        prop_assert_eq!(b.count(&neighbour.id(), &KeyInterval::all()).unwrap(), 1);
        prop_assert!(b.get_exact(&neighbour.id(), &author(1).id(), b"only-a", true).unwrap().is_none());
    }
}

/// A range can be cut right after an identifier: its successor is the identifier with a zero
/// byte appended, nothing lies between them, and keys at the decoding limit have none (a peer
/// would refuse the longer bound).
#[test]
fn identifier_successor_is_the_next_identifier() {
    use ranger::RangeKey;
    use sync_core::{DEFAULT_MAX_KEY_LEN, RecordIdentifier};
    let ns = namespace(1).id();
    let a = author(1).id();
    let id = RecordIdentifier::new(ns, a, b"dir/file");
    let next = id.successor().unwrap();
    assert!(next > id);
    assert_eq!(next.key(), b"dir/file\0");
    assert_eq!((next.namespace(), next.author()), (ns, a));
    // Every identifier above `id` is at least its successor.
    for above in [
        RecordIdentifier::new(ns, a, b"dir/file\0"),
        RecordIdentifier::new(ns, a, b"dir/file\0\0"),
        RecordIdentifier::new(ns, a, b"dir/filf"),
        RecordIdentifier::new(ns, a, b"dir/file/x"),
    ] {
        assert!(above > id && above >= next, "{above:?}");
    }
    let longest = RecordIdentifier::new(ns, a, vec![7u8; DEFAULT_MAX_KEY_LEN]);
    assert_eq!(longest.successor(), None);
    let below_limit = RecordIdentifier::new(ns, a, vec![7u8; DEFAULT_MAX_KEY_LEN - 1]);
    assert_eq!(
        below_limit.successor().unwrap().key().len(),
        DEFAULT_MAX_KEY_LEN
    );
}

proptest! {
    /// Identifiers are ordered by their order bytes, as `RangeKey::order_bytes` promises (stores
    /// compare keys by them).
    #[test]
    fn identifiers_are_ordered_by_their_order_bytes(
        a in (0u8..3, 0u8..3, proptest::collection::vec(0u8..3, 0..4)),
        b in (0u8..3, 0u8..3, proptest::collection::vec(0u8..3, 0..4)),
    ) {
        use ranger::RangeKey;
        use sync_core::RecordIdentifier;
        let id = |(n, w, key): &(u8, u8, Vec<u8>)| {
            RecordIdentifier::new(namespace(*n).id(), author(*w).id(), key)
        };
        let (x, y) = (id(&a), id(&b));
        prop_assert_eq!(x.cmp(&y), x.order_bytes().cmp(&y.order_bytes()));
        prop_assert!(x.order_bytes().is_some());
    }

    /// Identifiers held inline (up to `RecordIdentifier::INLINE` bytes) and shared (longer)
    /// behave as their flat bytes: equality, order, hash, the accessors and the round trips
    /// through `from_bytes`, `copy_from_slice`, `to_bytes` and the wire encoding.
    #[test]
    fn identifiers_behave_as_their_bytes_across_the_inline_limit(
        a in (0u8..2, proptest::collection::vec(0u8..2, 58..68)),
        b in (0u8..2, proptest::collection::vec(0u8..2, 58..68)),
    ) {
        use std::hash::{BuildHasher, RandomState};
        use sync_core::RecordIdentifier;
        use sync_core::encoding::{Decode, Encode, Reader, DecodeLimits};
        let flat = |(w, key): &(u8, Vec<u8>)| {
            let mut v = namespace(1).id().as_bytes().to_vec();
            v.extend_from_slice(author(*w).id().as_bytes());
            v.extend_from_slice(key);
            v
        };
        let (fa, fb) = (flat(&a), flat(&b));
        let x = RecordIdentifier::new(namespace(1).id(), author(a.0).id(), &a.1);
        let y = RecordIdentifier::from_bytes(fb.clone().into()).unwrap();
        prop_assert_eq!(x.as_bytes(), &fa[..]);
        prop_assert_eq!(y.as_bytes(), &fb[..]);
        prop_assert_eq!(x.cmp(&y), fa.cmp(&fb));
        prop_assert_eq!(x == y, fa == fb);
        let hasher = RandomState::new();
        if fa == fb {
            prop_assert_eq!(hasher.hash_one(&x), hasher.hash_one(&y));
        }
        prop_assert_eq!(x.key(), &a.1[..]);
        prop_assert_eq!(&x.key_bytes()[..], &a.1[..]);
        prop_assert_eq!(&x.to_bytes()[..], &fa[..]);
        prop_assert_eq!(x.author(), author(a.0).id());
        prop_assert_eq!(x.namespace(), namespace(1).id());
        let z = RecordIdentifier::copy_from_slice(&fa).unwrap();
        prop_assert_eq!(&z, &x);
        let mut wire = Vec::new();
        x.encode(&mut wire);
        prop_assert_eq!(wire.len(), ranger::RangeKey::encoded_len(&x));
        let mut reader = Reader::new(&wire, DecodeLimits::default());
        prop_assert_eq!(RecordIdentifier::decode(&mut reader).unwrap(), x.clone());
        prop_assert!(RecordIdentifier::copy_from_slice(&fa[..63]).is_err());
    }
}
