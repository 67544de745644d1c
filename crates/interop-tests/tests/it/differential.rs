//! For random keys, authors, namespaces, hashes, lengths and timestamps, our signed-entry bytes,
//! signatures, fingerprints, ordering and validation verdicts equal those of iroh-docs 0.101.

use proptest::prelude::*;
use sync_core::encoding::{Decode, DecodeLimits, Encode, write_varint};
use sync_core::{
    Author, ContentHash, Entry, EntrySignature, Fingerprint, NamespaceSecret, Record,
    RecordIdentifier, SignatureCheck, SignedEntry, ValidationConfig, ValidationError, now_micros,
};

/// Input for one entry: secrets, key and record fields.
#[derive(Debug, Clone)]
struct Spec {
    ns: [u8; 32],
    author: [u8; 32],
    key: Vec<u8>,
    hash: [u8; 32],
    len: u64,
    timestamp: u64,
}

fn arb_spec(max_ts: u64) -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<[u8; 32]>(),
        any::<u64>(),
        0..max_ts,
    )
        .prop_map(|(ns, author, key, hash, len, timestamp)| Spec {
            ns,
            author,
            key,
            hash,
            len,
            timestamp,
        })
}

fn ours(spec: &Spec) -> SignedEntry {
    SignedEntry::create(
        &NamespaceSecret::from_bytes(&spec.ns),
        &Author::from_bytes(&spec.author),
        &spec.key,
        Record::new(ContentHash::from_bytes(spec.hash), spec.len, spec.timestamp),
    )
}

fn theirs(spec: &Spec) -> iroh_docs::SignedEntry {
    iroh_docs::SignedEntry::from_parts(
        &iroh_docs::NamespaceSecret::from_bytes(&spec.ns),
        &iroh_docs::Author::from_bytes(&spec.author),
        &spec.key,
        iroh_docs::Record::new(
            iroh_blobs::Hash::from_bytes(spec.hash),
            spec.len,
            spec.timestamp,
        ),
    )
}

/// Re-reads our bytes as an iroh-docs entry (any tampering included).
fn as_theirs(entry: &SignedEntry) -> iroh_docs::SignedEntry {
    postcard::from_bytes(&entry.to_vec()).expect("iroh-docs decodes our bytes")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// The reference's verdict on a remote entry offered to the replica of `replica_ns`.
fn reference_verdict(
    rt: &tokio::runtime::Runtime,
    replica_ns: &[u8; 32],
    entry: iroh_docs::SignedEntry,
) -> Result<(), String> {
    let mut store = iroh_docs::store::Store::memory();
    let mut replica = store
        .new_replica(iroh_docs::NamespaceSecret::from_bytes(replica_ns))
        .expect("replica");
    rt.block_on(replica.insert_remote_entry(entry, [0u8; 32], iroh_docs::ContentStatus::Missing))
        .map(|_removed| ())
        .map_err(|e| format!("{e:?}"))
}

/// The initial message of a reference replica holding `entries` (they must not interact).
fn reference_initial_message(
    rt: &tokio::runtime::Runtime,
    ns: &[u8; 32],
    entries: Vec<iroh_docs::SignedEntry>,
) -> Vec<u8> {
    let mut store = iroh_docs::store::Store::memory();
    let mut replica = store
        .new_replica(iroh_docs::NamespaceSecret::from_bytes(ns))
        .expect("replica");
    for entry in entries {
        rt.block_on(replica.insert_remote_entry(
            entry,
            [0u8; 32],
            iroh_docs::ContentStatus::Missing,
        ))
        .expect("insert");
    }
    let msg = replica.sync_initial_message().expect("initial message");
    postcard::to_stdvec(&msg).expect("encode")
}

fn our_initial_message(first: &RecordIdentifier, fp: Fingerprint) -> Vec<u8> {
    let mut out = Vec::new();
    write_varint(&mut out, 1);
    write_varint(&mut out, 0);
    first.encode(&mut out);
    first.encode(&mut out);
    out.extend_from_slice(fp.as_bytes());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn entry_bytes_and_signatures_match(spec in arb_spec(u64::MAX)) {
        let ours = ours(&spec);
        let theirs = theirs(&spec);
        let their_bytes = postcard::to_stdvec(&theirs).unwrap();
        prop_assert_eq!(hex::encode(ours.to_vec()), hex::encode(&their_bytes));
        // Their bytes decode to our value and back.
        prop_assert_eq!(SignedEntry::from_slice(&their_bytes, DecodeLimits::default()).unwrap(), ours.clone());
        // The signed bytes are the same message.
        prop_assert_eq!(ours.entry().signed_bytes(), theirs.entry().to_vec());
        // Each verifies the other's signatures.
        prop_assert!(as_theirs(&ours).verify(&()).is_ok());
    }

    #[test]
    fn ids_and_text_forms_match(ns in any::<[u8; 32]>(), author in any::<[u8; 32]>()) {
        let (our_ns, their_ns) = (NamespaceSecret::from_bytes(&ns), iroh_docs::NamespaceSecret::from_bytes(&ns));
        let (our_a, their_a) = (Author::from_bytes(&author), iroh_docs::Author::from_bytes(&author));
        prop_assert_eq!(our_ns.id().to_string(), their_ns.id().to_string());
        prop_assert_eq!(our_a.id().to_string(), their_a.id().to_string());
        prop_assert_eq!(our_ns.to_string(), their_ns.to_string());
        prop_assert_eq!(our_a.to_string(), their_a.to_string());
        // Text copies across in both directions.
        let parsed: iroh_docs::AuthorId = our_a.id().to_string().parse().unwrap();
        prop_assert_eq!(*parsed.as_bytes(), *our_a.id().as_bytes());
        let parsed: sync_core::NamespaceId = their_ns.id().to_string().parse().unwrap();
        prop_assert_eq!(*parsed.as_bytes(), *their_ns.id().as_bytes());
        // Secret key encodings.
        prop_assert_eq!(our_a.to_vec(), postcard::to_stdvec(&their_a).unwrap());
        prop_assert_eq!(our_ns.to_vec(), postcard::to_stdvec(&their_ns).unwrap());
        let our_cap = sync_core::Capability::Write(our_ns.clone());
        let their_cap = iroh_docs::Capability::Write(their_ns.clone());
        prop_assert_eq!(our_cap.to_vec(), postcard::to_stdvec(&their_cap).unwrap());
        let our_cap = sync_core::Capability::Read(our_ns.id());
        let their_cap = iroh_docs::Capability::Read(their_ns.id());
        prop_assert_eq!(our_cap.to_vec(), postcard::to_stdvec(&their_cap).unwrap());
    }

    #[test]
    fn ordering_matches(a in arb_spec(4), b in arb_spec(4), same_ns in any::<bool>(), same_author in any::<bool>(), same_hash in any::<bool>()) {
        // Small timestamps and shared parts make ties likely.
        let mut b = b;
        if same_ns { b.ns = a.ns; }
        if same_author { b.author = a.author; }
        if same_hash { b.hash = a.hash; }
        let (oa, ob) = (ours(&a), ours(&b));
        let (ta, tb) = (theirs(&a), theirs(&b));
        prop_assert_eq!(oa.id().cmp(ob.id()), ta.id().cmp(tb.id()));
        let (our_rec, their_rec) = (oa.record().cmp(ob.record()), ta.entry().record().cmp(tb.entry().record()));
        if a.timestamp == b.timestamp && a.hash == b.hash && a.len != b.len {
            // W17: the reference calls these equal in order; we break the tie on len.
            prop_assert!(their_rec.is_eq());
            prop_assert_eq!(our_rec, a.len.cmp(&b.len));
        } else {
            prop_assert_eq!(our_rec, their_rec);
        }
    }

    #[test]
    fn fingerprints_match(specs in proptest::collection::vec(arb_spec(1_000_000), 0..6), ns in any::<[u8; 32]>()) {
        // One author per entry so that the reference store keeps all of them.
        let specs: Vec<Spec> = specs
            .into_iter()
            .map(|mut s| { s.ns = ns; s })
            .collect();
        let mut authors: Vec<[u8; 32]> = specs.iter().map(|s| s.author).collect();
        authors.sort();
        authors.dedup();
        prop_assume!(authors.len() == specs.len());
        let specs: Vec<Spec> = specs.into_iter().map(|mut s| { if s.len == 0 { s.len = 1 } s }).collect();

        let rt = runtime();
        let theirs_msg = reference_initial_message(&rt, &ns, specs.iter().map(theirs).collect());
        let entries: Vec<SignedEntry> = specs.iter().map(ours).collect();
        let fp = entries.iter().fold(Fingerprint::EMPTY, |acc, e| acc ^ e.entry().fingerprint());
        let first = entries.iter().map(|e| e.id().clone()).min().unwrap_or_else(RecordIdentifier::zero);
        prop_assert_eq!(hex::encode(our_initial_message(&first, fp)), hex::encode(theirs_msg));
    }

    #[test]
    fn validation_verdicts_match(
        spec in arb_spec(u64::MAX),
        fault in 0u8..7,
        byte in any::<prop::sample::Index>(),
        other_ns in any::<[u8; 32]>(),
    ) {
        let now = now_micros();
        let mut spec = spec;
        // Make the base entry valid: a timestamp in the past, a non-empty consistent record.
        spec.timestamp %= now;
        if spec.len == 0 { spec.len = 1; }
        let mut replica_ns = spec.ns;
        let base = ours(&spec);
        let entry = match fault {
            0 => base,
            1 => {
                let (sig, e) = base.into_parts();
                let mut a = *sig.author();
                a[byte.index(64)] ^= 0x10;
                SignedEntry::from_parts(EntrySignature::from_parts(a, *sig.namespace()), e)
            }
            2 => {
                let (sig, e) = base.into_parts();
                let mut n = *sig.namespace();
                n[byte.index(64)] ^= 0x01;
                SignedEntry::from_parts(EntrySignature::from_parts(*sig.author(), n), e)
            }
            3 => {
                prop_assume!(other_ns != spec.ns);
                replica_ns = other_ns;
                base
            }
            4 => {
                // Far in the future: one minute past the ten-minute window.
                spec.timestamp = now + 660_000_000;
                ours(&spec)
            }
            5 => {
                // Just inside the window.
                spec.timestamp = now + 540_000_000;
                ours(&spec)
            }
            _ => {
                // A record changed after signing.
                let (sig, e) = base.into_parts();
                let changed = Entry::new(e.id().clone(), Record::new(e.record().content_hash(), e.record().content_len() + 1, e.record().timestamp()));
                SignedEntry::from_parts(sig, changed)
            }
        };
        let rt = runtime();
        let reference = reference_verdict(&rt, &replica_ns, as_theirs(&entry));
        let ours = entry.validate(
            sync_core::NamespaceId::from_bytes(NamespaceSecret::from_bytes(&replica_ns).id().as_bytes().to_owned()),
            now_micros(),
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        );
        match (&ours, &reference) {
            (Ok(()), Ok(())) => {}
            (Err(ValidationError::InvalidNamespace), Err(r)) => prop_assert!(r.contains("InvalidNamespace"), "{}", r),
            (Err(ValidationError::BadSignature(_)), Err(r)) => prop_assert!(r.contains("BadSignature"), "{}", r),
            (Err(ValidationError::TooFarInTheFuture), Err(r)) => prop_assert!(r.contains("TooFarInTheFuture"), "{}", r),
            _ => prop_assert!(false, "verdicts differ: ours {:?}, reference {:?}", ours, reference),
        }
    }

    #[test]
    fn empty_rule_matches_the_gossip_path(spec in arb_spec(1_000_000), empty_hash in any::<bool>(), zero_len in any::<bool>()) {
        let mut spec = spec;
        if empty_hash { spec.hash = *ContentHash::EMPTY.as_bytes(); }
        if zero_len { spec.len = 0; } else if spec.len == 0 { spec.len = 1; }
        let rt = runtime();
        let reference = reference_verdict(&rt, &spec.ns, as_theirs(&ours(&spec)));
        let ours = ours(&spec).validate(
            NamespaceSecret::from_bytes(&spec.ns).id(),
            now_micros(),
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        );
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "ours {:?}, reference {:?}", ours, reference);
        if let Err(r) = reference {
            prop_assert!(r.contains("InvalidEmptyEntry"));
            prop_assert_eq!(ours, Err(ValidationError::InvalidEmptyEntry));
        }
    }
}
