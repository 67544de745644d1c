//! The compact encoding of `/docsync/1`: golden bytes, round trips against the reference
//! encoding, canonical form, hostile bytes.

use proptest::prelude::*;
use ranger::{Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem};
use sync_core::encoding::DecodeLimits;
use sync_core::store::conformance::{author, entry, namespace};
use sync_core::{ContentStatus, NamespaceId, RecordIdentifier};
use sync_net::compact::{self, CompactError};
use sync_net::wire::{Codec, WireError, WireMessage};

fn ns() -> NamespaceId {
    namespace(1).id()
}

fn decode(body: &[u8], namespace: Option<NamespaceId>) -> Result<WireMessage, WireError> {
    compact::decode(body, namespace, DecodeLimits::default())
}

/// One entry of every part kind: a fingerprint from the zero identifier, an item with two
/// values of two authors sharing a key prefix, a request.
fn sample() -> WireMessage {
    let (n, a, b) = (namespace(1), author(3), author(4));
    let id = |who: &sync_core::Author, key: &[u8]| RecordIdentifier::new(n.id(), who.id(), key);
    WireMessage::Init {
        namespace: n.id(),
        message: Message::new(vec![
            MessagePart::RangeFingerprint(RangeFingerprint {
                range: Range::new(RecordIdentifier::zero(), id(&a, b"dir/a")),
                fingerprint: Fingerprint([0x11; 32]),
            }),
            MessagePart::RangeItem(RangeItem {
                range: Range::new(id(&a, b"dir/a"), id(&b, b"dir/c")),
                values: vec![
                    (
                        entry(&n, &a, b"dir/a", 1_700_000_000_000_000, false),
                        ContentStatus::Complete,
                    ),
                    (
                        entry(&n, &b, b"dir/b", 1_699_999_999_999_990, true),
                        ContentStatus::Missing,
                    ),
                ],
                have_local: false,
            }),
            MessagePart::RangeItem(RangeItem {
                range: Range::new(id(&b, b"dir/c"), RecordIdentifier::zero()),
                values: vec![],
                have_local: true,
            }),
        ]),
    }
}

#[test]
fn golden_bytes() {
    let m = sample();
    let body = compact::encode(&m, None).unwrap();
    let golden = include_str!("data/compact-init.hex").trim();
    assert_eq!(hex::encode(&body), golden);
    assert_eq!(decode(&body, None).unwrap(), m);
    // The same message in the reference encoding is far longer.
    let reference = m.encode();
    assert!(
        body.len() * 10 < reference.len() * 7,
        "{} vs {}",
        body.len(),
        reference.len()
    );
    // Head of the body, spelled out: Init, the namespace, two authors in first-use order.
    let (a, b) = (author(3).id(), author(4).id());
    assert_eq!(body[0], 0);
    assert_eq!(&body[1..33], ns().as_bytes());
    assert_eq!(body[33], 2);
    assert_eq!(&body[34..66], a.as_bytes());
    assert_eq!(&body[66..98], b.as_bytes());
    // Three parts; the first: fingerprint tag, zero bound, author 0 with key "dir/a" (no
    // previous key: shared 0, 5 bytes).
    assert_eq!(
        &body[98..110],
        &[3, 0, 0, 1, 0, 5, b'd', b'i', b'r', b'/', b'a', 0x11]
    );
}

#[test]
fn abort_and_sync() {
    for m in [
        WireMessage::Abort {
            reason: sync_net::AbortReason::AlreadySyncing,
        },
        WireMessage::Sync(Message::new(vec![])),
    ] {
        let body = Codec::Compact.encode(&m, Some(ns())).unwrap();
        assert_eq!(
            Codec::Compact
                .decode(&body, Some(ns()), DecodeLimits::default())
                .unwrap(),
            m
        );
    }
    let abort = WireMessage::Abort {
        reason: sync_net::AbortReason::NotFound,
    };
    assert_eq!(
        Codec::Compact.to_frame(&abort, None, 10).unwrap(),
        [0, 0, 0, 2, 2, 0]
    );
    // A Sync needs the session's namespace both ways.
    let sync = WireMessage::Sync(Message::new(vec![]));
    assert_eq!(
        Codec::Compact.encode(&sync, None),
        Err(WireError::Compact(CompactError::NoNamespace))
    );
    assert_eq!(
        decode(&[1, 0, 0], None),
        Err(WireError::Compact(CompactError::NoNamespace))
    );
    assert_eq!(Codec::from_alpn(b"/docsync/1"), Some(Codec::Compact));
    assert_eq!(Codec::from_alpn(b"/iroh-sync/1"), Some(Codec::Reference));
    assert_eq!(Codec::from_alpn(b"/other/1"), None);
}

#[test]
fn foreign_bounds_and_entries_cannot_be_encoded() {
    let other = namespace(2);
    let a = author(1);
    let foreign = RecordIdentifier::new(other.id(), a.id(), b"k");
    let m = WireMessage::Sync(Message::new(vec![MessagePart::RangeFingerprint(
        RangeFingerprint {
            range: Range::new(foreign.clone(), foreign),
            fingerprint: Fingerprint::EMPTY,
        },
    )]));
    assert_eq!(
        compact::encode(&m, Some(ns())),
        Err(WireError::ForeignRange)
    );
    let own = RecordIdentifier::new(ns(), a.id(), b"k");
    let m = WireMessage::Sync(Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: Range::new(own.clone(), own),
        values: vec![(entry(&other, &a, b"k", 5, false), ContentStatus::Complete)],
        have_local: false,
    })]));
    assert_eq!(
        compact::encode(&m, Some(ns())),
        Err(WireError::ForeignEntry)
    );
}

/// A body with a hand-written tail after `Sync`: authors 1 and 2 as the table.
fn sync_body(authors: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut body = vec![1, authors.len() as u8];
    for &seed in authors {
        body.extend_from_slice(author(seed).id().as_bytes());
    }
    body.extend_from_slice(tail);
    body
}

#[test]
fn non_canonical_and_broken_bodies_are_refused() {
    let fp = [0u8; 32];
    let with_fp = |head: &[u8]| [head, &fp].concat();
    // One fingerprint part over [(author 0, "ab"), (author 0, "ab" + "c")]: accepted.
    let good = sync_body(&[1], &with_fp(&[1, 0, 1, 0, 2, b'a', b'b', 1, 2, 1, b'c']));
    assert!(decode(&good, Some(ns())).is_ok());
    let cases: Vec<(Vec<u8>, WireError)> = vec![
        // Author index 1 in a table of one.
        (
            sync_body(&[1], &with_fp(&[1, 0, 2, 0, 0, 0])),
            CompactError::AuthorIndex {
                index: 1,
                authors: 1,
            }
            .into(),
        ),
        // A table entry the message never uses.
        (
            sync_body(&[1, 2], &with_fp(&[1, 0, 1, 0, 0, 0])),
            CompactError::NonCanonical("an author the message does not use").into(),
        ),
        // Authors used out of table order.
        (
            sync_body(&[1, 2], &with_fp(&[1, 0, 2, 0, 0, 1, 0, 0])),
            CompactError::NonCanonical("authors out of first-use order").into(),
        ),
        // The same author twice.
        (
            sync_body(&[1, 1], &with_fp(&[1, 0, 1, 0, 0, 2, 0, 0])),
            CompactError::NonCanonical("an author twice in the table").into(),
        ),
        // Sharing 3 bytes of a 2-byte previous key.
        (
            sync_body(&[1], &with_fp(&[1, 0, 1, 0, 2, b'a', b'b', 1, 3, 0])),
            CompactError::SharedPrefix {
                shared: 3,
                previous: 2,
            }
            .into(),
        ),
        // Sharing 1 byte where 2 are common.
        (
            sync_body(
                &[1],
                &with_fp(&[1, 0, 1, 0, 2, b'a', b'b', 1, 1, 2, b'b', b'c']),
            ),
            CompactError::NonCanonical("shared prefix not the longest").into(),
        ),
        // An unknown part tag.
        (
            sync_body(&[], &[1, 3, 0, 0]),
            sync_core::DecodeError::UnknownTag {
                what: "MessagePart",
                tag: 3,
            }
            .into(),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            decode(&body, Some(ns())),
            Err(want),
            "{}",
            hex::encode(&body)
        );
    }
    // A key above the limit, assembled from a shared prefix and a rest.
    let long = sync_body(&[1], &with_fp(&[1, 0, 1, 0, 4, 1, 2, 3, 4, 1, 4, 2, 5, 6]));
    assert_eq!(
        compact::decode(&long, Some(ns()), DecodeLimits::with_max_key_len(5)),
        Err(sync_core::DecodeError::KeyTooLong { len: 6, max: 5 }.into())
    );
}

fn arb_message() -> impl Strategy<Value = WireMessage> {
    // Keys from a small alphabet, so that prefixes, equal keys and empty keys all occur.
    let key = proptest::collection::vec(0u8..3, 0..4);
    let bound = (0u8..3, key.clone()).prop_map(|(who, key)| {
        if who == 0 {
            RecordIdentifier::zero()
        } else {
            RecordIdentifier::new(ns(), author(who).id(), key)
        }
    });
    let value = (1u8..4, key, any::<u64>(), any::<bool>(), 0u8..3).prop_map(
        |(who, key, ts, tombstone, status)| {
            let status = [
                ContentStatus::Complete,
                ContentStatus::Incomplete,
                ContentStatus::Missing,
            ][status as usize];
            (
                entry(&namespace(1), &author(who), &key, ts, tombstone),
                status,
            )
        },
    );
    let part = (
        any::<bool>(),
        bound.clone(),
        bound,
        any::<[u8; 32]>(),
        proptest::collection::vec(value, 0..4),
        any::<bool>(),
    )
        .prop_map(|(is_fp, x, y, fp, values, have_local)| {
            let range = Range::new(x, y);
            if is_fp {
                MessagePart::RangeFingerprint(RangeFingerprint {
                    range,
                    fingerprint: Fingerprint(fp),
                })
            } else {
                MessagePart::RangeItem(RangeItem {
                    range,
                    values,
                    have_local,
                })
            }
        });
    (proptest::collection::vec(part, 0..5), any::<bool>()).prop_map(|(parts, init)| {
        let message = Message::new(parts);
        if init {
            WireMessage::Init {
                namespace: ns(),
                message,
            }
        } else {
            WireMessage::Sync(message)
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trips_and_never_outgrows_the_reference(m in arb_message()) {
        let body = compact::encode(&m, Some(ns())).unwrap();
        prop_assert_eq!(decode(&body, Some(ns())).unwrap(), m.clone());
        // Never longer than the reference encoding but for a message without parts (the
        // empty author table is one byte more): the budget holds for both.
        let reference = m.encode().len();
        let empty = match &m {
            WireMessage::Init { message, .. } | WireMessage::Sync(message) => message.parts.is_empty(),
            WireMessage::Abort { .. } => false,
        };
        let allowed = if empty { reference + 1 } else { reference };
        prop_assert!(body.len() <= allowed, "{} > {}", body.len(), reference);
        let mut longer = body.clone();
        longer.push(0);
        prop_assert!(decode(&longer, Some(ns())).is_err());
        for cut in 0..body.len() {
            prop_assert!(decode(&body[..cut], Some(ns())).is_err());
        }
    }

    #[test]
    fn accepted_bodies_are_canonical(m in arb_message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut body = compact::encode(&m, Some(ns())).unwrap();
        let i = at.index(body.len());
        body[i] = byte;
        if let Ok(decoded) = decode(&body, Some(ns())) {
            prop_assert_eq!(compact::encode(&decoded, Some(ns())).unwrap(), body);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes, Some(ns()));
    }
}
