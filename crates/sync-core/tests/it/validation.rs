//! Validation verdicts: every rule accepts what it should and rejects what it should.

use sync_core::{
    Author, ContentHash, Entry, EntrySignature, NamespaceSecret, Record, RecordIdentifier,
    SignatureCheck, SignedEntry, ValidationConfig, ValidationError, VerifyError,
};

use crate::{golden_author, golden_namespace};

const NOW: u64 = 1_700_000_000_000_000;
const TEN_MIN: u64 = 600_000_000;

fn entry_at(ts: u64) -> SignedEntry {
    SignedEntry::create(
        &golden_namespace(),
        &golden_author(),
        b"k",
        Record::new(ContentHash::of(b"v"), 1, ts),
    )
}

fn check(entry: &SignedEntry) -> Result<(), ValidationError> {
    entry.validate(
        golden_namespace().id(),
        NOW,
        &ValidationConfig::default(),
        SignatureCheck::Verify,
    )
}

#[test]
fn future_window_is_ten_minutes_inclusive() {
    check(&entry_at(NOW)).unwrap();
    check(&entry_at(NOW + TEN_MIN)).unwrap();
    check(&entry_at(0)).unwrap();
    assert_eq!(
        check(&entry_at(NOW + TEN_MIN + 1)),
        Err(ValidationError::TooFarInTheFuture)
    );
    // The window is a parameter.
    let tight =
        ValidationConfig::default().with_max_future_shift(std::time::Duration::from_secs(1));
    assert_eq!(
        entry_at(NOW + 1_000_001).validate(
            golden_namespace().id(),
            NOW,
            &tight,
            SignatureCheck::Verify
        ),
        Err(ValidationError::TooFarInTheFuture)
    );
    // No overflow at the top of the clock.
    check(&entry_at(u64::MAX)).unwrap_err();
    entry_at(u64::MAX)
        .validate(
            golden_namespace().id(),
            u64::MAX,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
        .unwrap();
}

#[test]
fn wrong_namespace_is_rejected() {
    let other = NamespaceSecret::from_bytes(&[9; 32]);
    assert_eq!(
        entry_at(NOW).validate(
            other.id(),
            NOW,
            &ValidationConfig::default(),
            SignatureCheck::Skip
        ),
        Err(ValidationError::InvalidNamespace)
    );
}

#[test]
fn tampered_signatures_are_rejected() {
    let entry = entry_at(NOW);
    let (sig, e) = entry.clone().into_parts();

    let mut author = *sig.author();
    author[10] ^= 0x40;
    let bad = SignedEntry::from_parts(
        EntrySignature::from_parts(author, *sig.namespace()),
        e.clone(),
    );
    assert_eq!(
        check(&bad),
        Err(ValidationError::BadSignature(VerifyError::Author))
    );
    // Skipping the check (a local entry) accepts it: the caller vouches for it.
    bad.validate(
        golden_namespace().id(),
        NOW,
        &ValidationConfig::default(),
        SignatureCheck::Skip,
    )
    .unwrap();

    let mut ns = *sig.namespace();
    ns[0] ^= 1;
    let bad = SignedEntry::from_parts(EntrySignature::from_parts(*sig.author(), ns), e.clone());
    assert_eq!(
        check(&bad),
        Err(ValidationError::BadSignature(VerifyError::Namespace))
    );

    // Swapped signatures: each is valid, but for the other key.
    let swapped = SignedEntry::from_parts(
        EntrySignature::from_parts(*sig.namespace(), *sig.author()),
        e,
    );
    assert!(matches!(
        check(&swapped),
        Err(ValidationError::BadSignature(_))
    ));

    // A signed entry whose record was changed afterwards.
    let (sig, e) = entry.into_parts();
    let changed = Entry::new(e.id().clone(), Record::new(ContentHash::of(b"v"), 2, NOW));
    assert!(matches!(
        check(&SignedEntry::from_parts(sig, changed)),
        Err(ValidationError::BadSignature(VerifyError::Namespace))
    ));
}

#[test]
fn signed_by_someone_else_is_rejected() {
    // Signed with another author's key but claiming the golden author.
    let impostor = Author::from_bytes(&[7; 32]);
    let id = RecordIdentifier::new(golden_namespace().id(), golden_author().id(), b"k");
    let forged = Entry::new(id, Record::new(ContentHash::of(b"v"), 1, NOW))
        .sign(&golden_namespace(), &impostor);
    assert_eq!(
        check(&forged),
        Err(ValidationError::BadSignature(VerifyError::Author))
    );
}

#[test]
fn empty_entry_rule() {
    let ns = golden_namespace();
    let author = golden_author();
    let tombstone = SignedEntry::create(&ns, &author, b"k", Record::empty(NOW));
    check(&tombstone).unwrap();
    let zero_len = SignedEntry::create(
        &ns,
        &author,
        b"k",
        Record::new(ContentHash::of(b"x"), 0, NOW),
    );
    assert_eq!(check(&zero_len), Err(ValidationError::InvalidEmptyEntry));
    let empty_hash =
        SignedEntry::create(&ns, &author, b"k", Record::new(ContentHash::EMPTY, 3, NOW));
    assert_eq!(check(&empty_hash), Err(ValidationError::InvalidEmptyEntry));
}

#[test]
fn key_length_bound() {
    let ns = golden_namespace();
    let author = golden_author();
    let record = Record::new(ContentHash::of(b"v"), 1, NOW);
    let config = ValidationConfig::default().with_max_key_len(8);
    let ok = SignedEntry::create(&ns, &author, [b'a'; 8], record);
    ok.validate(ns.id(), NOW, &config, SignatureCheck::Verify)
        .unwrap();
    let long = SignedEntry::create(&ns, &author, [b'a'; 9], record);
    assert_eq!(
        long.validate(ns.id(), NOW, &config, SignatureCheck::Verify),
        Err(ValidationError::KeyTooLong { len: 9, max: 8 })
    );
    // The default is 4 KiB.
    let at_default = SignedEntry::create(&ns, &author, vec![b'a'; 4096], record);
    check(&at_default).unwrap();
    let past_default = SignedEntry::create(&ns, &author, vec![b'a'; 4097], record);
    assert!(matches!(
        check(&past_default),
        Err(ValidationError::KeyTooLong { .. })
    ));
}
