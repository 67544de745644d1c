//! The golden values of `data/vectors.txt` (produced by the reference), reproduced exactly.

use std::collections::HashMap;

use sync_core::encoding::{Decode, DecodeLimits, Encode, write_varint};
use sync_core::{
    Author, ContentHash, Fingerprint, NamespaceSecret, Record, RecordIdentifier, SignatureCheck,
    SignedEntry, ValidationConfig,
};

use crate::{golden_author, golden_namespace};

const VECTORS: &str = include_str!("data/vectors.txt");
const TS: u64 = 1_700_000_000_000_000;

/// The `name=hex` lines of the vectors file.
fn golden() -> HashMap<&'static str, Vec<u8>> {
    VECTORS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.contains(' '))
        .map(|(k, v)| (k, hex::decode(v.trim()).expect("hex")))
        .collect()
}

/// Hex values mentioned in the header comments, such as `AuthorId    bc7c...`.
fn header_hex_after(marker: &str) -> String {
    let line = VECTORS
        .lines()
        .find(|l| l.contains(marker))
        .expect("marker present");
    let rest = &line[line.find(marker).expect("marker") + marker.len()..];
    rest.split_whitespace()
        .find(|w| w.len() == 64)
        .expect("64 hex chars")
        .to_string()
}

fn golden_entry() -> SignedEntry {
    SignedEntry::create(
        &golden_namespace(),
        &golden_author(),
        b"wire-format-test",
        Record::empty(TS),
    )
}

#[test]
fn key_ids() {
    assert_eq!(
        golden_author().id().to_string(),
        header_hex_after("-> AuthorId")
    );
    assert_eq!(
        golden_namespace().id().to_string(),
        header_hex_after("-> NamespaceId")
    );
    assert_eq!(
        ContentHash::EMPTY.to_string(),
        header_hex_after("blake3(\"\") = Hash::EMPTY = Fingerprint::empty() =")
    );
    assert_eq!(ContentHash::of(b""), ContentHash::EMPTY);
}

#[test]
fn signed_entry_bytes_and_signatures() {
    let expected = &golden()["signed_entry"];
    let entry = golden_entry();
    assert_eq!(hex::encode(entry.to_vec()), hex::encode(expected));
    assert_eq!(entry.encoded_len(), expected.len());
    assert_eq!(expected.len(), 250);

    let decoded = SignedEntry::from_slice(expected, DecodeLimits::default()).unwrap();
    assert_eq!(decoded, entry);
    decoded.verify().unwrap();
    decoded
        .validate(
            golden_namespace().id(),
            TS,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
        .unwrap();
}

#[test]
fn entry_fingerprint() {
    let entry = golden_entry();
    assert_eq!(
        entry.entry().fingerprint().to_string(),
        "82633c86fc3982b032c8ca98e8d2be370cd46ecdc130a40397d7c98042587afc"
    );
    assert_eq!(
        (Fingerprint::EMPTY ^ entry.entry().fingerprint()).to_string(),
        "2d70753f09c0231692888772de0e777e971f4b046cf1b6b45b4d5a4aa647489e"
    );
}

/// The initial message of the reference: one part, `RangeFingerprint` (tag 0) over `(x, x)` with
/// the fingerprint of the whole set.
fn initial_message(x: &RecordIdentifier, fp: Fingerprint) -> Vec<u8> {
    let mut out = Vec::new();
    write_varint(&mut out, 1);
    write_varint(&mut out, 0);
    x.encode(&mut out);
    x.encode(&mut out);
    out.extend_from_slice(fp.as_bytes());
    out
}

#[test]
fn initial_messages() {
    let g = golden();
    assert_eq!(
        hex::encode(initial_message(
            &RecordIdentifier::zero(),
            Fingerprint::EMPTY
        )),
        hex::encode(&g["init_empty_store_protocol_message"])
    );

    let e1 = golden_entry();
    let fp1 = Fingerprint::EMPTY ^ e1.entry().fingerprint();
    assert_eq!(
        hex::encode(initial_message(e1.id(), fp1)),
        hex::encode(&g["init_one_entry"])
    );

    let e2 = SignedEntry::create(
        &golden_namespace(),
        &golden_author(),
        b"k2",
        Record::new(ContentHash::of(b"hello"), 5, TS + 1),
    );
    assert!(e2.id() < e1.id(), "k2 sorts first");
    let fp2 = fp1 ^ e2.entry().fingerprint();
    assert_eq!(
        hex::encode(initial_message(e2.id(), fp2)),
        hex::encode(&g["init_two_entries"])
    );
}

#[test]
fn secret_key_encodings() {
    // A dalek signing key is serialised as a byte string: length 32, then the seed.
    let author = Author::from_bytes(&[0xa1; 32]);
    let mut expected = vec![0x20];
    expected.extend_from_slice(&[0xa1; 32]);
    assert_eq!(author.to_vec(), expected);
    let ns = NamespaceSecret::from_bytes(&[0xb2; 32]);
    assert_eq!(ns.to_vec()[0], 0x20);
    assert_eq!(
        NamespaceSecret::from_slice(&ns.to_vec(), DecodeLimits::default()).unwrap(),
        ns
    );
}

/// Changing any single byte of the golden encoding changes what it decodes to or makes it fail.
#[test]
fn every_byte_matters() {
    let expected = &golden()["signed_entry"];
    let original = SignedEntry::from_slice(expected, DecodeLimits::default()).unwrap();
    for i in 0..expected.len() {
        let mut bytes = expected.clone();
        bytes[i] ^= 0x01;
        if let Ok(decoded) = SignedEntry::from_slice(&bytes, DecodeLimits::default()) {
            assert_ne!(decoded, original, "flipping byte {i} went unnoticed");
            // The signatures cover every field, so any accepted change fails verification.
            assert!(decoded.verify().is_err(), "byte {i}");
        }
    }
}
