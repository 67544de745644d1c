//! The decoder targets: every format that arrives from outside, from bytes or from text.

use std::str::FromStr;

use bytes::Bytes;
use ranger::{
    Config, Fingerprint, Hooks, Message, MessagePart, Range, RangeEntry, RangeFingerprint,
    RangeItem, Session,
};
use sync_core::encoding::{Decode, DecodeLimits, Encode};
use sync_core::{
    Author, AuthorId, Capability, ContentStatus, MemStore, NamespaceId, NamespaceSecret, Record,
    RecordIdentifier, ReplicaStore, SignatureCheck, SignedEntry, Store, ValidationConfig,
    ValidationError,
};
use sync_net::compact;
use sync_net::wire::{
    AbortReason, DEFAULT_MAX_FRAME, INIT_OVERHEAD, ProtocolMessage, WireMessage, check_ranges,
    encode_protocol_message,
};

use super::fixtures::{self, NOW, pool};
use crate::input::Input;

// ---------------------------------------------------------------------------------------------
// wire_message

/// One frame body: decoded under the default limits and under a tight key limit.
pub fn wire_message(data: &[u8]) {
    for limits in [DecodeLimits::default(), DecodeLimits::with_max_key_len(8)] {
        let Ok(message) = WireMessage::decode(data, limits) else {
            continue;
        };
        assert_eq!(
            message.encode(),
            data,
            "an accepted body must re-encode to the same bytes (canonical decoding)"
        );
        match &message {
            WireMessage::Init { namespace, message } => check_message(message, *namespace, limits),
            WireMessage::Sync(message) => {
                // Fence against the namespace of the first bound, as a session of that
                // document would.
                let namespace = message
                    .parts
                    .first()
                    .map_or(fixtures::ns_id(1), |p| p.range().x.namespace());
                check_message(message, namespace, limits);
            }
            WireMessage::Abort { .. } => assert_eq!(data.len(), 2, "an abort is two bytes"),
        }
    }
}

/// What every decoded reconciliation message must satisfy.
fn check_message(message: &ProtocolMessage, namespace: NamespaceId, limits: DecodeLimits) {
    let mut body = Vec::new();
    encode_protocol_message(message, &mut body);
    assert!(
        message.encoded_len() >= body.len(),
        "ranger's size estimate ({}) must bound the encoded size ({}): budgets rely on it",
        message.encoded_len(),
        body.len()
    );
    let max = limits.max_key_len;
    for part in &message.parts {
        let range = part.range();
        for id in [&range.x, &range.y] {
            assert!(
                id.as_bytes().len() >= 64,
                "identifiers are at least 64 bytes"
            );
            assert!(
                id.key().len() <= max,
                "the key limit holds for range bounds"
            );
        }
        if let MessagePart::RangeItem(item) = part {
            for (entry, _) in &item.values {
                assert!(entry.key().len() <= max, "the key limit holds for entries");
            }
        }
    }
    let zero = RecordIdentifier::zero();
    let ours = |id: &RecordIdentifier| id.namespace() == namespace || *id == zero;
    let expected = message
        .parts
        .iter()
        .all(|p| ours(&p.range().x) && ours(&p.range().y));
    assert_eq!(
        check_ranges(message, namespace).is_ok(),
        expected,
        "the range fence admits exactly the bounds of the document (or the zero anchor)"
    );
}

fn seed_messages() -> Vec<WireMessage> {
    let ns = fixtures::ns_id(1);
    let pool = pool();
    let first = pool.valid[0].id().clone();
    let last = pool.valid[pool.valid.len() - 1].id().clone();
    let item = |values: &[SignedEntry], have_local| {
        MessagePart::RangeItem(RangeItem {
            range: Range::new(first.clone(), last.clone()),
            values: values
                .iter()
                .map(|e| (e.clone(), ContentStatus::Complete))
                .collect(),
            have_local,
        })
    };
    let fingerprint = MessagePart::RangeFingerprint(RangeFingerprint {
        range: Range::new(first.clone(), first.clone()),
        fingerprint: Fingerprint([7; 32]),
    });
    let messages = [
        WireMessage::Init {
            namespace: ns,
            message: Message::new(vec![fingerprint.clone()]),
        },
        WireMessage::Init {
            namespace: ns,
            message: Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
                range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
                fingerprint: Fingerprint::EMPTY,
            })]),
        },
        WireMessage::Sync(Message::new(vec![
            item(&pool.valid[..3], false),
            fingerprint.clone(),
        ])),
        WireMessage::Sync(Message::new(vec![item(&pool.valid[5..6], true)])),
        WireMessage::Sync(Message::new(vec![item(&pool.invalid[..2], false)])),
        WireMessage::Sync(Message::new(Vec::new())),
        WireMessage::Abort {
            reason: AbortReason::NotFound,
        },
        WireMessage::Abort {
            reason: AbortReason::AlreadySyncing,
        },
    ];
    messages.to_vec()
}

pub(super) fn wire_message_seeds() -> Vec<Vec<u8>> {
    seed_messages().iter().map(WireMessage::encode).collect()
}

// ---------------------------------------------------------------------------------------------
// compact_message

/// One compact (`/docsync/1`) body of a session on the fixtures' first document, decoded under
/// the default limits and under a tight key limit.
pub fn compact_message(data: &[u8]) {
    let session = fixtures::ns_id(1);
    for limits in [DecodeLimits::default(), DecodeLimits::with_max_key_len(8)] {
        let Ok(message) = compact::decode(data, Some(session), limits) else {
            continue;
        };
        assert_eq!(
            compact::encode(&message, Some(session)).as_deref(),
            Ok(data),
            "an accepted compact body must re-encode to the same bytes (canonical decoding)"
        );
        // The same message in the reference encoding: it decodes back to the same message and
        // is never shorter (but for a message without parts), so budgets hold for both.
        let reference = message.encode();
        assert_eq!(
            WireMessage::decode(&reference, limits).as_ref(),
            Ok(&message),
            "a compact message must survive the reference encoding"
        );
        let (message, namespace) = match &message {
            WireMessage::Init { namespace, message } => (message, *namespace),
            WireMessage::Sync(message) => (message, session),
            WireMessage::Abort { .. } => {
                assert_eq!(data.len(), 2, "an abort is two bytes");
                continue;
            }
        };
        let slack = usize::from(message.parts.is_empty());
        assert!(
            data.len() <= reference.len() + slack,
            "a compact body ({}) must not outgrow the reference one ({})",
            data.len(),
            reference.len()
        );
        check_message(message, namespace, limits);
        // Every bound is of the document or the zero anchor: the encoding has no room for
        // another document.
        assert!(check_ranges(message, namespace).is_ok());
    }
}

pub(super) fn compact_message_seeds() -> Vec<Vec<u8>> {
    let session = fixtures::ns_id(1);
    seed_messages()
        .iter()
        .filter_map(|m| compact::encode(m, Some(session)).ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// wire_frames

/// The frame limits a stream is read under, chosen by the first byte.
const FRAME_LIMITS: [usize; 4] = [1024, 4096, 64 * 1024, DEFAULT_MAX_FRAME];

/// Records what the session stored; validates as a node does.
struct NodeHooks {
    namespace: NamespaceId,
    inserted: usize,
}

impl Hooks<SignedEntry, ContentStatus> for NodeHooks {
    type Rejection = ValidationError;

    fn validate(&mut self, entry: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        entry.validate(
            self.namespace,
            NOW,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        )
    }

    fn on_insert(&mut self, _: SignedEntry, _: ContentStatus) {
        self.inserted += 1;
    }

    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

/// A byte stream from a hostile peer, as the accepting side of one session reads it: frames
/// under a limit, the first an `Init`, every message fenced to the document and processed by
/// a bounded session against a store holding two documents. Whatever arrives, every reply
/// must fit a frame, and the store must end up holding only valid entries of the document
/// (and the other document untouched).
pub fn wire_frames(data: &[u8]) {
    let mut input = Input::new(data);
    let max_frame = FRAME_LIMITS[input.below(FRAME_LIMITS.len())];
    let Ok(config) = Config::bounded(max_frame - INIT_OVERHEAD) else {
        panic!("every frame limit here leaves a valid budget");
    };
    let mut stream = input.rest();

    let ns = fixtures::namespace(1);
    let neighbour = fixtures::namespace(2);
    let mut store = MemStore::new();
    for secret in [&ns, &neighbour] {
        store
            .import_namespace(Capability::Write(secret.clone()))
            .unwrap_or_else(|e| panic!("memory store: {e}"));
    }
    let pool = pool();
    for entry in pool.valid.iter().step_by(5) {
        store
            .insert(entry.clone())
            .unwrap_or_else(|e| panic!("memory store: {e}"));
    }
    let other = pool.invalid[0].clone();
    assert_eq!(other.namespace(), neighbour.id());
    store
        .insert(other.clone())
        .unwrap_or_else(|e| panic!("memory store: {e}"));

    let mut session = Session::new(config);
    let mut hooks = NodeHooks {
        namespace: ns.id(),
        inserted: 0,
    };
    let mut started = false;
    // Frame: u32 BE length, checked against the limit before the body is looked at.
    while let Some(prefix) = stream.get(..4) {
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > max_frame {
            break;
        }
        let Some(body) = stream.get(4..4 + len) else {
            break;
        };
        let frame = &stream[..4 + len];
        stream = &stream[4 + len..];
        let Ok(message) = WireMessage::decode(body, DecodeLimits::default()) else {
            break;
        };
        assert_eq!(
            message.to_frame(max_frame).as_deref(),
            Ok(frame),
            "a frame that was read re-frames to the same bytes"
        );
        let message = match (message, started) {
            (WireMessage::Init { namespace, message }, false) if namespace == ns.id() => message,
            (WireMessage::Sync(message), true) => message,
            // Anything else ends the session (a wrong document, a second Init, an Abort).
            _ => break,
        };
        started = true;
        if check_ranges(&message, ns.id()).is_err() {
            break;
        }
        let mut view = ReplicaStore::new(&mut store, ns.id());
        match session.process_message(&mut view, &mut hooks, message) {
            Ok(Some(reply)) => {
                assert!(
                    reply.encoded_len() <= max_frame - INIT_OVERHEAD,
                    "a reply stays within the budget"
                );
                let reply = WireMessage::Sync(reply);
                let framed = reply.to_frame(max_frame);
                assert!(framed.is_ok(), "a reply always fits a frame: {framed:?}");
            }
            Ok(None) => break,
            // The session ends with a typed error (a part the budget cannot hold).
            Err(_) => break,
        }
    }

    // Only valid entries of the document, and the neighbour exactly as it was.
    let all = sync_core::KeyInterval::all();
    let entries = store
        .entries(&ns.id(), &all, 0, usize::MAX)
        .unwrap_or_else(|e| panic!("memory store: {e}"));
    for entry in &entries {
        let valid = entry.validate(
            ns.id(),
            NOW,
            &ValidationConfig::default(),
            SignatureCheck::Verify,
        );
        assert!(valid.is_ok(), "stored an invalid entry: {valid:?}");
    }
    let neighbours = store
        .entries(&neighbour.id(), &all, 0, usize::MAX)
        .unwrap_or_else(|e| panic!("memory store: {e}"));
    assert_eq!(neighbours, vec![other], "the other document is untouched");
}

pub(super) fn wire_frame_seeds() -> Vec<Vec<u8>> {
    let messages = wire_message_seeds();
    let frame = |body: &[u8]| {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    };
    let mut seeds = Vec::new();
    for limit in 0..FRAME_LIMITS.len() as u8 {
        // An Init, then every Sync of the seeds.
        let mut stream = vec![limit];
        stream.extend(frame(&messages[0]));
        for body in &messages[2..6] {
            stream.extend(frame(body));
        }
        seeds.push(stream);
    }
    // A session replayed from an honest exchange with a peer holding part of the pool.
    seeds.push(honest_stream());
    seeds
}

/// The frames an honest peer sends in a session with the node of [`wire_frames`].
fn honest_stream() -> Vec<u8> {
    let ns = fixtures::namespace(1);
    let pool = pool();
    let mut peer = MemStore::new();
    let mut node = MemStore::new();
    for store in [&mut peer, &mut node] {
        let _ = store.import_namespace(Capability::Write(ns.clone()));
    }
    for (i, entry) in pool.valid.iter().enumerate() {
        if i % 3 == 0 {
            let _ = peer.insert(entry.clone());
        }
        if i % 5 == 0 {
            let _ = node.insert(entry.clone());
        }
    }
    let Ok(config) = Config::bounded(FRAME_LIMITS[3] - INIT_OVERHEAD) else {
        return Vec::new();
    };
    let (mut ours, mut theirs) = (Session::new(config), Session::new(config));
    let mut hooks = NodeHooks {
        namespace: ns.id(),
        inserted: 0,
    };
    let mut out = vec![3u8];
    let Ok(mut message) = ours.initial_message(
        &mut ReplicaStore::new(&mut peer, ns.id()),
        RecordIdentifier::zero(),
    ) else {
        return out;
    };
    let mut first = true;
    for _ in 0..64 {
        let wire = if first {
            WireMessage::Init {
                namespace: ns.id(),
                message: message.clone(),
            }
        } else {
            WireMessage::Sync(message.clone())
        };
        first = false;
        if let Ok(frame) = wire.to_frame(FRAME_LIMITS[3]) {
            out.extend(frame);
        }
        let reply = theirs.process_message(
            &mut ReplicaStore::new(&mut node, ns.id()),
            &mut hooks,
            message,
        );
        let Ok(Some(reply)) = reply else { break };
        let next = ours.process_message(
            &mut ReplicaStore::new(&mut peer, ns.id()),
            &mut hooks,
            reply,
        );
        match next {
            Ok(Some(next)) => message = next,
            _ => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// signed_entry

/// `SignedEntry` and `Record` from postcard, then everything that looks at an entry.
pub fn signed_entry(data: &[u8]) {
    let limits = DecodeLimits::default();
    if let Ok(record) = Record::from_slice(data, limits) {
        assert_eq!(record.to_vec(), data, "records decode canonically");
    }
    let Ok(entry) = SignedEntry::from_slice(data, limits) else {
        return;
    };
    assert_eq!(entry.to_vec(), data, "entries decode canonically");
    assert_eq!(
        RangeEntry::encoded_len(&entry),
        data.len() + 1,
        "the size estimate is the encoding plus the status byte"
    );
    let _ = format!("{entry:?}");
    let _ = entry.entry().fingerprint();
    let signed = entry.entry().signed_bytes();
    assert_eq!(signed.len(), entry.id().as_bytes().len() + 48);
    let verified = entry.verify().is_ok();
    for check in [SignatureCheck::Skip, SignatureCheck::Verify] {
        let result = entry.validate(entry.namespace(), NOW, &ValidationConfig::default(), check);
        if check == SignatureCheck::Verify && result.is_ok() {
            assert!(
                verified,
                "validation accepted an entry whose signatures fail"
            );
        }
    }
    // A document other than the entry's own is always refused.
    let other = NamespaceId::from_bytes(entry.namespace().as_bytes().map(|b| b ^ 1));
    assert!(
        entry
            .validate(
                other,
                NOW,
                &ValidationConfig::default(),
                SignatureCheck::Skip
            )
            .is_err(),
        "an entry of another document is refused"
    );
}

pub(super) fn signed_entry_seeds() -> Vec<Vec<u8>> {
    let pool = pool();
    pool.valid
        .iter()
        .step_by(7)
        .chain(pool.invalid.iter().take(4))
        .map(Encode::to_vec)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// record_identifier

/// `RecordIdentifier` from postcard (with a small and the default key limit) and from raw bytes.
pub fn record_identifier(data: &[u8]) {
    for limits in [DecodeLimits::default(), DecodeLimits::with_max_key_len(3)] {
        if let Ok(id) = RecordIdentifier::from_slice(data, limits) {
            assert_eq!(id.to_vec(), data, "identifiers decode canonically");
            assert!(id.key().len() <= limits.max_key_len);
            check_identifier(&id);
        }
    }
    match RecordIdentifier::from_bytes(Bytes::copy_from_slice(data)) {
        Ok(id) => {
            assert!(data.len() >= 64);
            check_identifier(&id);
        }
        Err(_) => assert!(data.len() < 64, "every 64-byte string is an identifier"),
    }
}

fn check_identifier(id: &RecordIdentifier) {
    let rebuilt = RecordIdentifier::new(id.namespace(), id.author(), id.key());
    assert_eq!(&rebuilt, id, "an identifier splits into its parts and back");
    assert_eq!(id.key_bytes(), id.key());
    let _ = format!("{id:?}");
    // The flat byte order is the order of (namespace, author, key).
    let start = RecordIdentifier::namespace_start(id.namespace());
    assert!(&start <= id);
}

pub(super) fn record_identifier_seeds() -> Vec<Vec<u8>> {
    let ns = fixtures::ns_id(1);
    let author = fixtures::author_id(1);
    let mut seeds: Vec<Vec<u8>> = fixtures::KEYS
        .iter()
        .map(|key| RecordIdentifier::new(ns, author, key).to_vec())
        .collect();
    seeds.push(RecordIdentifier::zero().to_vec());
    seeds.push(RecordIdentifier::new(ns, author, [0xff; 70]).to_vec());
    seeds.push(RecordIdentifier::new(ns, author, b"k").as_bytes().to_vec());
    seeds
}

// ---------------------------------------------------------------------------------------------
// capability

/// Capabilities and keys from postcard, from storage form and from text.
pub fn capability(data: &[u8]) {
    let limits = DecodeLimits::default();
    if let Ok(cap) = Capability::from_slice(data, limits) {
        assert_eq!(cap.to_vec(), data, "capabilities decode canonically");
        let (kind, raw) = cap.to_raw();
        assert_eq!(Capability::from_raw(kind, &raw), Some(cap.clone()));
        let mut merged = cap.clone();
        assert_eq!(
            merged.merge(cap.clone()).ok(),
            Some(false),
            "merging itself changes nothing"
        );
    }
    if let Ok(author) = Author::from_slice(data, limits) {
        assert_eq!(author.to_vec(), data);
    }
    if let Ok(secret) = NamespaceSecret::from_slice(data, limits) {
        assert_eq!(secret.to_vec(), data);
    }
    if let Some(&kind) = data.first()
        && let Ok(raw) = <[u8; 32]>::try_from(data.get(1..33).unwrap_or_default())
    {
        if let Some(cap) = Capability::from_raw(kind, &raw) {
            assert_eq!(cap.to_raw(), (kind, raw));
        }
        // Any 32 bytes are an id; most are not a public key, and that is an error, not a panic.
        let _ = AuthorId::from_bytes(raw).public_key();
        let _ = NamespaceId::from_bytes(raw).public_key();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = NamespaceId::from_str(text) {
            assert_eq!(NamespaceId::from_str(&id.to_string()).ok(), Some(id));
        }
        if let Ok(id) = AuthorId::from_str(text) {
            assert_eq!(AuthorId::from_str(&id.to_string()).ok(), Some(id));
        }
        if let Ok(author) = Author::from_str(text) {
            assert_eq!(Author::from_str(&author.to_string()).ok(), Some(author));
        }
        if let Ok(secret) = NamespaceSecret::from_str(text) {
            assert_eq!(
                NamespaceSecret::from_str(&secret.to_string()).ok(),
                Some(secret)
            );
        }
    }
}

pub(super) fn capability_seeds() -> Vec<Vec<u8>> {
    let ns = fixtures::namespace(1);
    vec![
        Capability::Write(ns.clone()).to_vec(),
        Capability::Read(ns.id()).to_vec(),
        fixtures::author(1).to_vec(),
        ns.id().to_string().into_bytes(),
        fixtures::author(2).to_string().into_bytes(),
        {
            let (kind, raw) = Capability::Read(ns.id()).to_raw();
            let mut out = vec![kind];
            out.extend_from_slice(&raw);
            out
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// ticket

/// `DocTicket` from bytes and from text (the raw text, and the bytes wrapped as a ticket text).
pub fn ticket(data: &[u8]) {
    if let Ok(ticket) = docsync::DocTicket::from_bytes(data) {
        check_ticket(&ticket);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ticket) = docsync::DocTicket::from_str(text)
    {
        check_ticket(&ticket);
    }
    let mut text = "doc".to_string();
    data_encoding::BASE32_NOPAD.encode_append(data, &mut text);
    if let Ok(ticket) = docsync::DocTicket::from_str(&text.to_ascii_lowercase()) {
        check_ticket(&ticket);
    }
}

fn check_ticket(ticket: &docsync::DocTicket) {
    assert!(!ticket.nodes.is_empty(), "a parsed ticket names a peer");
    let bytes = ticket.to_bytes();
    assert_eq!(
        docsync::DocTicket::from_bytes(&bytes).as_ref(),
        Ok(ticket),
        "a ticket survives its byte form"
    );
    assert_eq!(
        docsync::DocTicket::from_str(&ticket.to_string()).as_ref(),
        Ok(ticket),
        "a ticket survives its text form"
    );
}

pub(super) fn ticket_seeds() -> Vec<Vec<u8>> {
    // A ticket needs a peer address, which only a real endpoint has; the tests build those
    // from a known ticket text. These seeds are the byte forms of tickets with a made-up
    // endpoint id: the capability part, then a one-element address list.
    let ns = fixtures::namespace(1);
    let mut seeds = Vec::new();
    for cap in [Capability::Write(ns.clone()), Capability::Read(ns.id())] {
        let mut bytes = vec![0u8];
        cap.encode(&mut bytes);
        // One EndpointAddr: a 32-byte id, then its transport addresses: none, then one IPv4
        // socket address (127.0.0.1:4433).
        let id = fixtures::author_id(1);
        let mut empty = bytes.clone();
        empty.push(1);
        empty.extend_from_slice(id.as_bytes());
        empty.push(0);
        seeds.push(empty);
        let mut one = bytes;
        one.push(1);
        one.extend_from_slice(id.as_bytes());
        one.extend_from_slice(&[1, 1, 0, 127, 0, 0, 1, 0xb1, 0x22]);
        seeds.push(one);
    }
    seeds
}
