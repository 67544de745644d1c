//! Batch signature verification gives exactly the verdicts of one-by-one strict verification,
//! including for signatures made by a key holder to pass a cofactored check but not a strict one.

use std::num::NonZeroUsize;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use sync_core::{
    Author, AuthorId, ContentHash, Entry, EntrySignature, NamespaceSecret, Record,
    RecordIdentifier, SignedEntry, ValidationConfig, ValidationError, VerifyError,
};

const TWO: NonZeroUsize = NonZeroUsize::new(2).unwrap();
const ONE: NonZeroUsize = NonZeroUsize::MIN;

fn honest(ns: &NamespaceSecret, author: &Author, i: u64) -> SignedEntry {
    let content = format!("value {i}");
    let record = Record::new(
        ContentHash::of(content.as_bytes()),
        content.len() as u64,
        1_000 + i,
    );
    SignedEntry::create(ns, author, format!("key/{i}"), record)
}

fn one_by_one(entries: &[SignedEntry]) -> Vec<Result<(), VerifyError>> {
    entries.iter().map(SignedEntry::verify).collect()
}

fn batch(entries: &[SignedEntry], threads: NonZeroUsize) -> Vec<Result<(), VerifyError>> {
    let refs: Vec<&SignedEntry> = entries.iter().collect();
    SignedEntry::verify_batch(&refs, threads)
}

/// The secret scalar `a` of an Ed25519 key given by its 32-byte seed (RFC 8032 §5.1.5).
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h = Sha512::digest(seed);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// A signature of `msg` by secret scalar `a` under the public key bytes `public` whose `R` is
/// `[r]B + torsion`: it passes a cofactored check, and strict verification refuses it unless the
/// torsion is the identity.
fn sign_with_torsion(
    a: &Scalar,
    public: &[u8; 32],
    msg: &[u8],
    nonce: u64,
    torsion: EdwardsPoint,
) -> [u8; 64] {
    let r = Scalar::from(nonce + 12_345);
    let big_r = (EdwardsPoint::mul_base(&r) + torsion).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(public);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// `entry` re-signed by its author with a torsion component in the author signature's `R`.
fn author_torsion(
    entry: &SignedEntry,
    author_seed: &[u8; 32],
    torsion: EdwardsPoint,
) -> SignedEntry {
    let msg = entry.entry().signed_bytes();
    let author_sig = sign_with_torsion(
        &secret_scalar(author_seed),
        entry.author().as_bytes(),
        &msg,
        entry.timestamp(),
        torsion,
    );
    let signature = EntrySignature::from_parts(author_sig, *entry.signature().namespace());
    SignedEntry::from_parts(signature, entry.entry().clone())
}

fn corrupt(entry: &SignedEntry, byte: usize) -> SignedEntry {
    let mut author = *entry.signature().author();
    let mut namespace = *entry.signature().namespace();
    if byte < 64 {
        namespace[byte] ^= 0x01;
    } else {
        author[byte - 64] ^= 0x01;
    }
    SignedEntry::from_parts(
        EntrySignature::from_parts(author, namespace),
        entry.entry().clone(),
    )
}

#[test]
fn honest_batches_all_verify_on_any_number_of_threads() {
    let ns = NamespaceSecret::from_bytes(&[3; 32]);
    let authors: Vec<Author> = (0..5u8)
        .map(|i| Author::from_bytes(&[10 + i; 32]))
        .collect();
    for n in [0, 1, 47, 48, 49, 200, 1001] {
        let entries: Vec<SignedEntry> = (0..n)
            .map(|i| honest(&ns, &authors[(i % 5) as usize], i))
            .collect();
        for threads in [ONE, TWO, NonZeroUsize::new(7).unwrap()] {
            let got = batch(&entries, threads);
            assert_eq!(got.len(), entries.len());
            assert!(
                got.iter().all(Result::is_ok),
                "n = {n}, threads = {threads}"
            );
        }
    }
}

#[test]
fn every_kind_of_bad_signature_gets_the_one_by_one_verdict() {
    let ns = NamespaceSecret::from_bytes(&[4; 32]);
    let author = Author::from_bytes(&[5; 32]);
    let mut entries: Vec<SignedEntry> = (0..300).map(|i| honest(&ns, &author, i)).collect();
    // A flipped bit in R or S of either signature, at spread positions.
    for (n, byte) in [0usize, 17, 31, 32, 40, 63, 64, 80, 95, 96, 111, 127]
        .into_iter()
        .enumerate()
    {
        let i = 7 + 20 * n;
        entries[i] = corrupt(&entries[i], byte);
    }
    // A non-canonical S (S + ℓ), which strict verification refuses.
    let i = 5;
    let mut author_sig = *entries[i].signature().author();
    let s = Scalar::from_canonical_bytes(author_sig[32..].try_into().unwrap()).unwrap();
    let l_plus = {
        // ℓ + s as 32 little-endian bytes (no overflow: s < ℓ < 2^253).
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for j in 0..32 {
            let v = u16::from(l[j]) + u16::from(s.as_bytes()[j]) + carry;
            out[j] = v as u8;
            carry = v >> 8;
        }
        out
    };
    author_sig[32..].copy_from_slice(&l_plus);
    entries[i] = SignedEntry::from_parts(
        EntrySignature::from_parts(author_sig, *entries[i].signature().namespace()),
        entries[i].entry().clone(),
    );
    // A small-order R (the identity).
    let i = 9;
    let mut ns_sig = *entries[i].signature().namespace();
    ns_sig[..32].copy_from_slice(EdwardsPoint::default().compress().as_bytes());
    entries[i] = SignedEntry::from_parts(
        EntrySignature::from_parts(*entries[i].signature().author(), ns_sig),
        entries[i].entry().clone(),
    );
    // An author id that is not a curve point, with the namespace signature still valid.
    let bad_author = (0u8..=255)
        .map(|b| [b; 32])
        .find(|bytes| AuthorId::from_bytes(*bytes).public_key().is_err())
        .expect("some constant byte string is not a point");
    let id = RecordIdentifier::new(ns.id(), AuthorId::from_bytes(bad_author), b"x");
    let entry = Entry::new(id, *entries[11].record());
    let signed = entry.sign(&ns, &author);
    entries[11] = signed;

    let expected = one_by_one(&entries);
    assert!(expected.iter().filter(|r| r.is_err()).count() >= 15);
    for threads in [ONE, TWO] {
        assert_eq!(batch(&entries, threads), expected);
    }
}

#[test]
fn torsion_in_r_is_refused_every_time() {
    let ns = NamespaceSecret::from_bytes(&[6; 32]);
    let seed = [7; 32];
    let author = Author::from_bytes(&seed);
    let honest_entries: Vec<SignedEntry> = (0..100).map(|i| honest(&ns, &author, i)).collect();
    for r in honest_entries.iter().map(SignedEntry::verify) {
        r.unwrap();
    }
    // Order 2, 4 and 8 torsion; a batch without the torsion rounds lets an order-2 component
    // through about every other time.
    for torsion_index in [4usize, 2, 1] {
        let torsion = EIGHT_TORSION[torsion_index];
        let mut entries = honest_entries.clone();
        entries[50] = author_torsion(&entries[50], &seed, torsion);
        assert_eq!(entries[50].verify(), Err(VerifyError::Author));
        for round in 0..64 {
            let got = batch(&entries, ONE);
            assert_eq!(
                got[50],
                Err(VerifyError::Author),
                "torsion {torsion_index}, round {round}"
            );
            assert!(got.iter().enumerate().all(|(i, r)| i == 50 || r.is_ok()));
        }
    }
}

#[test]
fn torsion_that_cancels_across_signatures_is_refused() {
    let ns = NamespaceSecret::from_bytes(&[8; 32]);
    let seed = [9; 32];
    let author = Author::from_bytes(&seed);
    let mut entries: Vec<SignedEntry> = (0..100).map(|i| honest(&ns, &author, i)).collect();
    // T and -T: a batch with equal weights mod 8 would see them cancel.
    let t = EIGHT_TORSION[2];
    entries[10] = author_torsion(&entries[10], &seed, t);
    entries[11] = author_torsion(&entries[11], &seed, -t);
    for _ in 0..64 {
        let got = batch(&entries, ONE);
        assert_eq!(got[10], Err(VerifyError::Author));
        assert_eq!(got[11], Err(VerifyError::Author));
    }
}

#[test]
fn keys_with_torsion_get_the_one_by_one_verdict() {
    // A public key A + T2 (not small order, not torsion-free) with signatures made by its
    // holder: strict verification accepts those whose challenge k is even, refuses the others.
    let ns = NamespaceSecret::from_bytes(&[12; 32]);
    let seed = [13; 32];
    let a = secret_scalar(&seed);
    let public = (EdwardsPoint::mul_base(&a) + EIGHT_TORSION[4])
        .compress()
        .to_bytes();
    let author_id = AuthorId::from_bytes(public);
    assert!(author_id.public_key().is_ok());
    let entries: Vec<SignedEntry> = (0..120u64)
        .map(|i| {
            let id = RecordIdentifier::new(ns.id(), author_id, format!("k{i}"));
            let content = format!("v{i}");
            let record = Record::new(
                ContentHash::of(content.as_bytes()),
                content.len() as u64,
                5 + i,
            );
            let entry = Entry::new(id, record);
            let msg = entry.signed_bytes();
            let ns_sig = ns.sign(&msg);
            let author_sig = sign_with_torsion(&a, &public, &msg, i, EdwardsPoint::default());
            SignedEntry::from_parts(EntrySignature::from_parts(author_sig, ns_sig), entry)
        })
        .collect();
    let expected = one_by_one(&entries);
    let ok = expected.iter().filter(|r| r.is_ok()).count();
    assert!(ok > 20 && ok < 100, "about half verify strictly, got {ok}");
    for _ in 0..8 {
        assert_eq!(batch(&entries, ONE), expected);
    }
}

#[test]
fn validate_batch_matches_validate() {
    let ns = NamespaceSecret::from_bytes(&[14; 32]);
    let other = NamespaceSecret::from_bytes(&[15; 32]);
    let author = Author::from_bytes(&[16; 32]);
    let config = ValidationConfig::default();
    let now = 10_000;
    let mut entries: Vec<SignedEntry> = (0..200).map(|i| honest(&ns, &author, i)).collect();
    entries[3] = honest(&other, &author, 3);
    entries[4] = corrupt(&entries[4], 70);
    let far = Record::new(
        ContentHash::of(b"x"),
        1,
        now + config.max_future_shift_micros + 1,
    );
    entries[5] = SignedEntry::create(&ns, &author, b"future", far);
    let expected: Vec<Result<(), ValidationError>> = entries
        .iter()
        .map(|e| e.validate(ns.id(), now, &config, sync_core::SignatureCheck::Verify))
        .collect();
    let refs: Vec<&SignedEntry> = entries.iter().collect();
    let got = SignedEntry::validate_batch(&refs, ns.id(), now, &config, TWO);
    assert_eq!(got, expected);
    assert_eq!(got[3], Err(ValidationError::InvalidNamespace));
    assert_eq!(
        got[4],
        Err(ValidationError::BadSignature(VerifyError::Author))
    );
    assert_eq!(got[5], Err(ValidationError::TooFarInTheFuture));
    assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 197);
}

#[test]
fn validate_streamed_gives_the_verdicts_of_validate_in_order() {
    let ns = NamespaceSecret::from_bytes(&[17; 32]);
    let other = NamespaceSecret::from_bytes(&[18; 32]);
    let author = Author::from_bytes(&[19; 32]);
    let config = ValidationConfig::default();
    let now = 10_000;
    // Several chunks of 256 and a short last one, with bad entries in different chunks.
    for (n, threads) in [(1000usize, TWO), (700, ONE), (300, TWO), (40, TWO)] {
        let mut entries: Vec<SignedEntry> =
            (0..n as u64).map(|i| honest(&ns, &author, i)).collect();
        for &i in &[1usize, 255, 256, 600, 999] {
            if i < n {
                entries[i] = if i % 2 == 0 {
                    corrupt(&entries[i], 70)
                } else {
                    honest(&other, &author, i as u64)
                };
            }
        }
        let expected: Vec<Result<(), ValidationError>> = entries
            .iter()
            .map(|e| e.validate(ns.id(), now, &config, sync_core::SignatureCheck::Verify))
            .collect();
        let refs: Vec<&SignedEntry> = entries.iter().collect();
        let got: Vec<_> =
            SignedEntry::validate_streamed(&refs, ns.id(), now, config, threads).collect();
        assert_eq!(got, expected, "{n} entries on {threads} threads");
        assert!(got.iter().any(Result::is_err));
    }
}
