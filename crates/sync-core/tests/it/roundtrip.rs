//! Round trips of every encoding, a cross-check against the postcard library itself, and
//! arbitrary input that must decode to an error rather than a panic.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sync_core::encoding::{Decode, DecodeLimits, Encode};
use sync_core::{
    Author, AuthorId, Capability, ContentHash, DecodeError, NamespaceId, NamespaceSecret, Record,
    RecordIdentifier, SignedEntry,
};

/// The shape serde gives iroh-docs' `SignedEntry`, written with plain serde types so that the
/// postcard crate, not our code, produces the reference bytes.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct MirrorSignedEntry {
    author_sig: ([u8; 32], [u8; 32]),
    namespace_sig: ([u8; 32], [u8; 32]),
    id: Vec<u8>,
    record: (u64, [u8; 32], u64),
}

fn split64(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&sig[..32]);
    b.copy_from_slice(&sig[32..]);
    (a, b)
}

fn mirror(entry: &SignedEntry) -> MirrorSignedEntry {
    MirrorSignedEntry {
        author_sig: split64(entry.signature().author()),
        namespace_sig: split64(entry.signature().namespace()),
        id: entry.id().as_bytes().to_vec(),
        record: (
            entry.content_len(),
            *entry.content_hash().as_bytes(),
            entry.timestamp(),
        ),
    }
}

prop_compose! {
    fn arb_entry()(
        ns in any::<[u8; 32]>(),
        author in any::<[u8; 32]>(),
        key in proptest::collection::vec(any::<u8>(), 0..200),
        data in proptest::collection::vec(any::<u8>(), 0..64),
        len in any::<u64>(),
        timestamp in any::<u64>(),
    ) -> SignedEntry {
        let ns = NamespaceSecret::from_bytes(&ns);
        let author = Author::from_bytes(&author);
        SignedEntry::create(&ns, &author, key, Record::new(ContentHash::of(data), len, timestamp))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn signed_entry_round_trips_and_matches_postcard(entry in arb_entry()) {
        let ours = entry.to_vec();
        prop_assert_eq!(ours.len(), entry.encoded_len());
        prop_assert_eq!(&ours, &postcard::to_stdvec(&mirror(&entry)).unwrap());
        let decoded = SignedEntry::from_slice(&ours, DecodeLimits::default()).unwrap();
        prop_assert_eq!(&decoded, &entry);
        decoded.verify().unwrap();
    }

    #[test]
    fn capability_and_keys_round_trip(seed in any::<[u8; 32]>(), write in any::<bool>()) {
        let secret = NamespaceSecret::from_bytes(&seed);
        let cap = if write { Capability::Write(secret.clone()) } else { Capability::Read(secret.id()) };
        let bytes = cap.to_vec();
        prop_assert_eq!(bytes.len(), cap.encoded_len());
        prop_assert_eq!(Capability::from_slice(&bytes, DecodeLimits::default()).unwrap(), cap);
        // The serde shape of the reference: enum index, then the secret as bytes or the raw id.
        let expected = if write {
            postcard::to_stdvec(&(0u8, seed.to_vec())).unwrap()
        } else {
            postcard::to_stdvec(&(1u8, *secret.id().as_bytes())).unwrap()
        };
        prop_assert_eq!(bytes, expected);

        let author = Author::from_bytes(&seed);
        prop_assert_eq!(Author::from_slice(&author.to_vec(), DecodeLimits::default()).unwrap(), author.clone());
        let id = author.id();
        prop_assert_eq!(AuthorId::from_slice(&id.to_vec(), DecodeLimits::default()).unwrap(), id);
        let ns_id = secret.id();
        prop_assert_eq!(NamespaceId::from_slice(&ns_id.to_vec(), DecodeLimits::default()).unwrap(), ns_id);
        // Text forms round-trip too.
        prop_assert_eq!(author.to_string().parse::<Author>().unwrap(), author);
        prop_assert_eq!(ns_id.to_string().parse::<NamespaceId>().unwrap(), ns_id);
        prop_assert_eq!(secret.to_string().parse::<NamespaceSecret>().unwrap(), secret);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let limits = DecodeLimits::default();
        let _ = SignedEntry::from_slice(&bytes, limits);
        let _ = RecordIdentifier::from_slice(&bytes, limits);
        let _ = Record::from_slice(&bytes, limits);
        let _ = Capability::from_slice(&bytes, limits);
        let _ = Author::from_slice(&bytes, limits);
    }

    #[test]
    fn truncations_are_errors(entry in arb_entry(), cut in any::<prop::sample::Index>()) {
        let bytes = entry.to_vec();
        let cut = cut.index(bytes.len());
        prop_assert!(SignedEntry::from_slice(&bytes[..cut], DecodeLimits::default()).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(
            SignedEntry::from_slice(&longer, DecodeLimits::default()),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn identifier_order_is_namespace_author_key(
        a in (any::<[u8; 32]>(), any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..8)),
        b in (any::<[u8; 32]>(), any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let ia = RecordIdentifier::new(NamespaceId::from_bytes(a.0), AuthorId::from_bytes(a.1), &a.2);
        let ib = RecordIdentifier::new(NamespaceId::from_bytes(b.0), AuthorId::from_bytes(b.1), &b.2);
        prop_assert_eq!(ia.cmp(&ib), (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        prop_assert_eq!(ia.namespace(), NamespaceId::from_bytes(a.0));
        prop_assert_eq!(ia.author(), AuthorId::from_bytes(a.1));
        prop_assert_eq!(ia.key(), &a.2[..]);
    }

    #[test]
    fn record_order_agrees_with_equality(
        a in (any::<u64>(), 0u8..3, 0u64..3),
        b in (any::<u64>(), 0u8..3, 0u64..3),
    ) {
        let ra = Record::new(ContentHash::from_bytes([a.1; 32]), a.2, a.0 % 3);
        let rb = Record::new(ContentHash::from_bytes([b.1; 32]), b.2, b.0 % 3);
        prop_assert_eq!(ra == rb, ra.cmp(&rb).is_eq());
        // Timestamp dominates, then hash.
        if ra.timestamp() != rb.timestamp() {
            prop_assert_eq!(ra.cmp(&rb), ra.timestamp().cmp(&rb.timestamp()));
        } else if ra.content_hash() != rb.content_hash() {
            prop_assert_eq!(ra.cmp(&rb), ra.content_hash().cmp(&rb.content_hash()));
        } else {
            prop_assert_eq!(ra.cmp(&rb), ra.content_len().cmp(&rb.content_len()));
        }
    }
}

#[test]
fn short_identifiers_are_decode_errors() {
    for n in [0usize, 1, 32, 63] {
        let mut bytes = vec![n as u8];
        bytes.extend(std::iter::repeat_n(7u8, n));
        assert_eq!(
            RecordIdentifier::from_slice(&bytes, DecodeLimits::default()),
            Err(DecodeError::ShortIdentifier(n))
        );
    }
    let mut ok = vec![64u8];
    ok.extend([7u8; 64]);
    let id = RecordIdentifier::from_slice(&ok, DecodeLimits::default()).unwrap();
    assert!(id.key().is_empty());
}

#[test]
fn long_keys_are_bounded_when_decoding() {
    let id = RecordIdentifier::new(NamespaceId::default(), AuthorId::default(), [1u8; 101]);
    let bytes = id.to_vec();
    assert_eq!(
        RecordIdentifier::from_slice(&bytes, DecodeLimits::with_max_key_len(100)),
        Err(DecodeError::KeyTooLong { len: 101, max: 100 })
    );
    assert_eq!(
        RecordIdentifier::from_slice(&bytes, DecodeLimits::with_max_key_len(101)).unwrap(),
        id
    );
}
