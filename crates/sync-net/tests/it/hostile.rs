//! Hostile raw peers speaking the ALPN by hand. After each, the node's store holds exactly what
//! it held (or exactly the one valid entry offered) and a normal session still works.

use std::time::Duration;

use ranger::{Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem};
use sync_core::encoding::DecodeLimits;
use sync_core::encoding::write_varint;
use sync_core::{
    Author, ContentHash, ContentStatus, NamespaceId, NamespaceSecret, Record, RecordIdentifier,
    SignedEntry, now_micros,
};
use sync_net::compact::{self, CompactError};
use sync_net::wire::{Codec, ProtocolMessage, WireError, WireMessage};
use sync_net::{AcceptError, ConnectError, Limits, SyncError, dial_addr};
use tokio::sync::broadcast::Receiver;

use crate::support::{Node, Raw, Read, Rng, entry, next_report, random_entries};

/// A node with three documents: A and B open for sync, C open without sync.
struct Fixture {
    node: Node,
    a: NamespaceSecret,
    b: NamespaceSecret,
    c: NamespaceSecret,
    before: Vec<(NamespaceId, Vec<SignedEntry>)>,
    reports: Receiver<sync_net::AcceptReport>,
}

impl Fixture {
    async fn new(limits: Limits) -> Self {
        let mut node = Node::spawn(limits).await;
        let mut rng = Rng::new(7);
        let authors = [Author::generate(), Author::generate()];
        let (a, b, c) = (
            NamespaceSecret::generate(),
            NamespaceSecret::generate(),
            NamespaceSecret::generate(),
        );
        for (ns, n) in [(&a, 20), (&b, 15), (&c, 10)] {
            node.join(ns, true).await;
            node.put(&random_entries(&mut rng, ns, &authors, 100, n))
                .await;
        }
        node.handle.set_sync(c.id(), false).await.unwrap();
        let mut before = Vec::new();
        for ns in [&a, &b, &c] {
            before.push((ns.id(), node.entries(ns.id()).await));
        }
        let reports = node.sync.subscribe();
        Self {
            node,
            a,
            b,
            c,
            before,
            reports,
        }
    }

    fn entries_before(&self, ns: NamespaceId) -> &[SignedEntry] {
        &self
            .before
            .iter()
            .find(|(id, _)| *id == ns)
            .expect("a fixture document")
            .1
    }

    /// The next accept report must be a failure with an error `check` accepts.
    async fn expect_failure(&mut self, check: impl Fn(&SyncError) -> bool) {
        let report = next_report(&mut self.reports).await;
        match report.as_ref() {
            Err(AcceptError::Sync { error, .. }) if check(error) => {}
            other => panic!("unexpected report {other:?}"),
        }
    }

    /// Every document holds what it held, and a fresh peer still syncs A to the same entries.
    async fn check_untouched_and_serving(&self) {
        for (ns, before) in &self.before {
            assert_eq!(&self.node.entries(*ns).await, before);
        }
        self.check_serving().await;
    }

    async fn check_serving(&self) {
        let mut peer = Node::spawn(Limits::default()).await;
        peer.join(&self.a, true).await;
        let finished = peer
            .sync
            .connect_and_sync(self.a.id(), self.node.addr.clone())
            .await
            .unwrap();
        let ours = self.node.entries(self.a.id()).await;
        assert_eq!(finished.outcome.entries_inserted as usize, ours.len());
        assert_eq!(peer.entries(self.a.id()).await, ours);
        peer.shutdown().await;
    }

    fn init(&self, message: ProtocolMessage) -> WireMessage {
        WireMessage::Init {
            namespace: self.a.id(),
            message,
        }
    }
}

fn fingerprint_part(x: RecordIdentifier, y: RecordIdentifier, fp: Fingerprint) -> ProtocolMessage {
    Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range: Range::new(x, y),
        fingerprint: fp,
    })])
}

fn id(ns: NamespaceId, key: &[u8]) -> RecordIdentifier {
    RecordIdentifier::new(ns, Author::from_bytes(&[0; 32]).id(), key)
}

/// Every entry in the items of a message.
fn values(message: &ProtocolMessage) -> Vec<SignedEntry> {
    message
        .parts
        .iter()
        .filter_map(|p| match p {
            MessagePart::RangeItem(item) => Some(item.values.iter().map(|(e, _)| e.clone())),
            MessagePart::RangeFingerprint(_) => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_length_prefix_ends_the_session_before_allocating() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    let max = Limits::default().max_frame;
    for announced in [max as u32 + 1, u32::MAX] {
        let mut s = raw.dial(&f.node.addr).await;
        s.write_raw(&announced.to_be_bytes()).await;
        assert_eq!(s.close_code().await, Some(2));
        f.expect_failure(|e| {
            matches!(e, SyncError::FrameTooLarge { len, max: m } if *len == announced as usize && *m == max)
        })
        .await;
    }
    // A smaller configured limit holds as well, for a frame that is otherwise valid.
    let mut small = Fixture::new(Limits::default().with_max_frame(4096)).await;
    let mut s = raw.dial(&small.node.addr).await;
    let big = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: random_entries(&mut Rng::new(8), &small.a, &[Author::generate()], 100, 40)
            .into_iter()
            .map(|e| (e, ContentStatus::Missing))
            .collect(),
        have_local: false,
    })]);
    s.write(&small.init(big)).await;
    assert_eq!(s.close_code().await, Some(2));
    small
        .expect_failure(|e| matches!(e, SyncError::FrameTooLarge { max: 4096, .. }))
        .await;
    f.check_untouched_and_serving().await;
    small.check_untouched_and_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_are_malformed() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    // Unknown message tag.
    let mut s = raw.dial(&f.node.addr).await;
    s.write_raw(&[0, 0, 0, 5, 9, 1, 2, 3, 4]).await;
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| matches!(e, SyncError::Malformed(WireError::Decode(_))))
        .await;
    // Random bytes.
    let mut rng = Rng::new(9);
    let junk: Vec<u8> = (0..300).map(|_| rng.next() as u8).collect();
    let mut s = raw.dial(&f.node.addr).await;
    s.write_raw(&(junk.len() as u32).to_be_bytes()).await;
    s.write_raw(&junk).await;
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| matches!(e, SyncError::Malformed(_)))
        .await;
    // A valid Init with trailing bytes inside the frame.
    let mut body = f
        .init(fingerprint_part(
            RecordIdentifier::zero(),
            RecordIdentifier::zero(),
            Fingerprint::EMPTY,
        ))
        .encode();
    body.push(0);
    let mut s = raw.dial(&f.node.addr).await;
    s.write_raw(&(body.len() as u32).to_be_bytes()).await;
    s.write_raw(&body).await;
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| matches!(e, SyncError::Malformed(_)))
        .await;
    // The stream ends inside a frame.
    let mut s = raw.dial(&f.node.addr).await;
    s.write_raw(&[0, 0, 1, 0, 0, 1, 2]).await;
    s.send.finish().unwrap();
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| matches!(e, SyncError::Truncated))
        .await;
    // Sync before Init, and an Abort from the dialer.
    for m in [
        WireMessage::Sync(Message::new(vec![])),
        WireMessage::Abort {
            reason: sync_net::AbortReason::NotFound,
        },
    ] {
        let mut s = raw.dial(&f.node.addr).await;
        s.write(&m).await;
        assert_eq!(s.close_code().await, Some(1));
        f.expect_failure(|e| matches!(e, SyncError::UnexpectedMessage(_)))
            .await;
    }
    f.check_untouched_and_serving().await;
}

/// The compact encoding of `/docsync/1`: broken bodies end the session as malformed, and an
/// honest compact peer gets compact answers about its document only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_sessions_refuse_broken_bodies_and_answer_honest_ones() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    let ns = f.a.id();
    let frame = |body: &[u8]| [&(body.len() as u32).to_be_bytes()[..], body].concat();
    // Init with one fingerprint part whose bound names author 5 of an empty table.
    let mut body = vec![0];
    body.extend_from_slice(ns.as_bytes());
    body.extend_from_slice(&[0, 1, 0, 0, 6, 0, 0]);
    body.extend_from_slice(&[0; 32]);
    let mut s = raw.dial_alpn(&f.node.addr, sync_net::COMPACT_ALPN).await;
    s.write_raw(&frame(&body)).await;
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| {
        matches!(
            e,
            SyncError::Malformed(WireError::Compact(CompactError::AuthorIndex {
                index: 5,
                ..
            }))
        )
    })
    .await;
    // A Sync first: the session's namespace is unknown, so it cannot even be decoded.
    let mut s = raw.dial_alpn(&f.node.addr, sync_net::COMPACT_ALPN).await;
    s.write_raw(&frame(&[1, 0, 0])).await;
    assert_eq!(s.close_code().await, Some(1));
    f.expect_failure(|e| {
        matches!(
            e,
            SyncError::Malformed(WireError::Compact(CompactError::NoNamespace))
        )
    })
    .await;
    // An honest Init from an empty replica: the answer is compact and holds A's entries.
    let init = f.init(fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint::EMPTY,
    ));
    let mut s = raw.dial_alpn(&f.node.addr, sync_net::COMPACT_ALPN).await;
    s.write_raw(&Codec::Compact.to_frame(&init, None, usize::MAX).unwrap())
        .await;
    let body = s.read_body().await.expect("a reply");
    let reply = compact::decode(&body, Some(ns), DecodeLimits::default()).unwrap();
    let WireMessage::Sync(reply) = reply else {
        panic!("{reply:?}")
    };
    let mut got = values(&reply);
    got.sort_by(|a, b| a.id().cmp(b.id()));
    assert_eq!(got, f.entries_before(ns));
    // The reference encoding of the same bytes would not decode: this was compact.
    assert!(WireMessage::decode(&body, DecodeLimits::default()).is_err());
    drop(s);
    f.check_untouched_and_serving().await;
}

/// W7: identifiers shorter than 64 bytes panicked the reference's actor; here they are a
/// decode error of that one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_identifiers_are_refused() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    for short in [0usize, 10, 63] {
        let mut body = vec![0u8];
        body.extend_from_slice(f.a.id().as_bytes());
        write_varint(&mut body, 1);
        body.push(0);
        for _ in 0..2 {
            write_varint(&mut body, short as u64);
            body.extend(std::iter::repeat_n(0u8, short));
        }
        body.extend_from_slice(Fingerprint::EMPTY.as_bytes());
        // Enough bytes after it that the part count is plausible and decoding reaches the
        // identifiers.
        body.extend([0u8; 200]);
        let mut s = raw.dial(&f.node.addr).await;
        s.write_raw(&(body.len() as u32).to_be_bytes()).await;
        s.write_raw(&body).await;
        assert_eq!(s.close_code().await, Some(1));
        f.expect_failure(|e| {
            matches!(
                e,
                SyncError::Malformed(WireError::Decode(sync_core::DecodeError::ShortIdentifier(n))) if *n == short
            )
        })
        .await;
    }
    f.check_untouched_and_serving().await;
}

/// W6: a session of A never answers about another document, whatever the ranges say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_of_other_documents_get_nothing() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    let (a, b, c) = (f.a.id(), f.b.id(), f.c.id());
    let foreign = [
        // All of B, with the empty fingerprint ("send me everything").
        (id(b, b""), id(b, &[0xff; 40])),
        // From A into C.
        (id(a, b""), id(c, b"")),
        // From C back to A (wrapping).
        (id(c, b"z"), id(a, b"")),
        // From zero to the top of the key space.
        (
            RecordIdentifier::zero(),
            id(NamespaceId::from_bytes([0xff; 32]), b""),
        ),
    ];
    for (x, y) in foreign {
        let mut s = raw.dial(&f.node.addr).await;
        s.write(&f.init(fingerprint_part(x, y, Fingerprint::EMPTY)))
            .await;
        match s.read().await {
            Read::Frame(m) => panic!("the node answered a foreign range: {m:?}"),
            Read::End | Read::Failed(_) => {}
        }
        assert_eq!(s.close_code().await, Some(1));
        f.expect_failure(|e| matches!(e, SyncError::ForeignRange))
            .await;
    }
    // The whole key space ([zero, zero)) with the empty fingerprint: exactly A's entries.
    let mut s = raw.dial(&f.node.addr).await;
    s.write(&f.init(fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint::EMPTY,
    )))
    .await;
    let Read::Frame(WireMessage::Sync(reply)) = s.read().await else {
        panic!("expected a Sync reply");
    };
    let mut got = values(&reply);
    got.sort_by(|x, y| x.id().cmp(y.id()));
    let mut want = f.entries_before(a).to_vec();
    want.sort_by(|x, y| x.id().cmp(y.id()));
    assert_eq!(got, want);
    for part in &reply.parts {
        let r = part.range();
        for bound in [&r.x, &r.y] {
            assert!(bound.namespace() == a || *bound == RecordIdentifier::zero());
        }
    }
    s.send.finish().unwrap();
    assert!(matches!(s.read().await, Read::End));
    s.conn.close(0u32.into(), b"");
    let report = next_report(&mut f.reports).await;
    assert_eq!(
        report.as_ref().as_ref().unwrap().outcome.entries_sent as usize,
        f.entries_before(a).len()
    );
    // A fingerprint that differs over the whole space: the split stays inside A.
    let mut s = raw.dial(&f.node.addr).await;
    s.write(&f.init(fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint([7; 32]),
    )))
    .await;
    let Read::Frame(WireMessage::Sync(reply)) = s.read().await else {
        panic!("expected a Sync reply");
    };
    assert!(!reply.parts.is_empty());
    for part in &reply.parts {
        let r = part.range();
        for bound in [&r.x, &r.y] {
            assert!(bound.namespace() == a || *bound == RecordIdentifier::zero());
        }
    }
    assert!(values(&reply).iter().all(|e| e.namespace() == a));
    drop(s);
    let _ = next_report(&mut f.reports).await;
    f.check_untouched_and_serving().await;
}

/// Entries of another document, with bad signatures or from too far in the future are
/// dropped and counted; the valid one next to them is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_entries_are_dropped_and_counted() {
    let mut f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    let author = Author::generate();
    let now = now_micros();
    let other_doc = entry(&f.b, &author, b"from-b", now);
    let forged = {
        let good = entry(&f.a, &author, b"forged", now);
        let other = entry(&f.a, &author, b"forged", now - 1);
        SignedEntry::from_parts(other.signature().clone(), good.entry().clone())
    };
    let future = SignedEntry::create(
        &f.a,
        &author,
        b"future",
        Record::new(ContentHash::of(b"x"), 1, now + 3_600_000_000),
    );
    let valid = entry(&f.a, &author, b"valid", now);
    // Enough valid entries next to them that the signatures are verified as a batch.
    let bulk: Vec<SignedEntry> = (0..60)
        .map(|i| entry(&f.a, &author, format!("bulk/{i:03}").as_bytes(), now))
        .collect();
    let item = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: [&other_doc, &forged, &future, &valid]
            .into_iter()
            .chain(&bulk)
            .map(|e| (e.clone(), ContentStatus::Complete))
            .collect(),
        have_local: false,
    })]);
    let mut s = raw.dial(&f.node.addr).await;
    s.write(&f.init(item)).await;
    let Read::Frame(WireMessage::Sync(reply)) = s.read().await else {
        panic!("expected a Sync reply");
    };
    // The reply holds A's entries that the item did not: all of them, nothing else.
    let got = values(&reply);
    assert_eq!(got.len(), f.entries_before(f.a.id()).len());
    assert!(got.iter().all(|e| e.namespace() == f.a.id()));
    s.send.finish().unwrap();
    assert!(matches!(s.read().await, Read::End));
    s.conn.close(0u32.into(), b"");
    let report = next_report(&mut f.reports).await;
    let outcome = &report.as_ref().as_ref().unwrap().outcome;
    assert_eq!(outcome.entries_received, 64);
    assert_eq!(outcome.entries_rejected, 3);
    assert_eq!(outcome.entries_inserted, 61);
    let reasons = outcome.rejections;
    assert_eq!(reasons.invalid_namespace, 1);
    assert_eq!(reasons.bad_signature, 1);
    assert_eq!(reasons.too_far_in_the_future, 1);
    assert_eq!(reasons.total(), 3);
    assert_eq!(f.node.sync.metrics().snapshot().entries_rejected, 3);

    let mut want = f.entries_before(f.a.id()).to_vec();
    want.push(valid);
    want.extend(bulk);
    want.sort_by(|x, y| x.id().cmp(y.id()));
    let mut got = f.node.entries(f.a.id()).await;
    got.sort_by(|x, y| x.id().cmp(y.id()));
    assert_eq!(got, want);
    for ns in [f.b.id(), f.c.id()] {
        assert_eq!(f.node.entries(ns).await, f.entries_before(ns));
    }
    f.check_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peers_hit_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let mut f = Fixture::new(Limits::default().with_idle_timeout(idle)).await;
    let raw = Raw::new(None).await;
    let is_idle = |e: &SyncError| matches!(e, SyncError::Idle(d) if *d == idle);
    // Connects and never opens the stream.
    let s = raw.dial(&f.node.addr).await;
    assert_eq!(s.close_code().await, Some(2));
    f.expect_failure(is_idle).await;
    // Sends half a frame and stops.
    let mut s = raw.dial(&f.node.addr).await;
    s.write_raw(&[0, 0, 0, 200, 0, 1]).await;
    assert_eq!(s.close_code().await, Some(2));
    f.expect_failure(is_idle).await;
    // Starts a session and never answers.
    let mut s = raw.dial(&f.node.addr).await;
    s.write(&f.init(fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint([1; 32]),
    )))
    .await;
    assert!(matches!(s.read().await, Read::Frame(WireMessage::Sync(_))));
    assert_eq!(s.close_code().await, Some(2));
    f.expect_failure(is_idle).await;
    assert_eq!(f.node.sync.running_sessions(), 0);
    f.check_untouched_and_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sessions_hit_the_deadline() {
    let deadline = Duration::from_millis(400);
    let mut f = Fixture::new(
        Limits::default()
            .with_session_deadline(deadline)
            .with_idle_timeout(Duration::from_secs(30)),
    )
    .await;
    let raw = Raw::new(None).await;
    let mut s = raw.dial(&f.node.addr).await;
    s.write(&f.init(fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint([1; 32]),
    )))
    .await;
    assert!(matches!(s.read().await, Read::Frame(WireMessage::Sync(_))));
    assert_eq!(s.close_code().await, Some(2));
    f.expect_failure(|e| matches!(e, SyncError::Timeout(d) if *d == deadline))
        .await;
    // The deadline allows normal sessions.
    f.check_untouched_and_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_sessions_hit_the_round_limit() {
    let mut f = Fixture::new(Limits::default().with_max_rounds(3)).await;
    let raw = Raw::new(None).await;
    let mut s = raw.dial(&f.node.addr).await;
    // A fingerprint that never matches: every round the node splits and answers.
    let nagging = fingerprint_part(
        RecordIdentifier::zero(),
        RecordIdentifier::zero(),
        Fingerprint([3; 32]),
    );
    s.write(&f.init(nagging.clone())).await;
    for _ in 0..2 {
        assert!(matches!(s.read().await, Read::Frame(WireMessage::Sync(_))));
        s.write(&WireMessage::Sync(nagging.clone())).await;
    }
    assert!(matches!(s.read().await, Read::Frame(WireMessage::Sync(_))));
    s.write(&WireMessage::Sync(nagging)).await;
    assert!(matches!(s.read().await, Read::Failed(_)));
    assert_eq!(s.close_code().await, Some(2));
    f.expect_failure(|e| matches!(e, SyncError::TooManyRounds(3)))
        .await;
    f.check_untouched_and_serving().await;
}

/// The dialing side against hostile acceptors: oversized frames, garbage, foreign ranges,
/// an `Init` answer; each a typed error, and the node's document untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_acceptors_end_our_dial() {
    let f = Fixture::new(Limits::default()).await;
    let raw = Raw::new(None).await;
    let raw_addr = dial_addr(&raw.endpoint);
    let b = f.b.id();
    type Check = fn(&SyncError) -> bool;
    let answers: Vec<(Vec<u8>, Check)> = vec![
        ((u32::MAX).to_be_bytes().to_vec(), |e| {
            matches!(e, SyncError::FrameTooLarge { .. })
        }),
        (vec![0, 0, 0, 3, 7, 7, 7], |e| {
            matches!(e, SyncError::Malformed(_))
        }),
        (
            WireMessage::Sync(fingerprint_part(
                id(b, b""),
                id(b, b"z"),
                Fingerprint::EMPTY,
            ))
            .to_frame(usize::MAX)
            .unwrap(),
            |e| matches!(e, SyncError::ForeignRange),
        ),
        (
            WireMessage::Init {
                namespace: f.a.id(),
                message: Message::new(vec![]),
            }
            .to_frame(usize::MAX)
            .unwrap(),
            |e| matches!(e, SyncError::UnexpectedMessage(_)),
        ),
    ];
    for (answer, check) in answers {
        let dial = {
            let sync = f.node.sync.clone();
            let (ns, addr) = (f.a.id(), raw_addr.clone());
            tokio::spawn(async move { sync.connect_and_sync(ns, addr).await })
        };
        let mut s = raw.accept().await;
        assert!(matches!(
            s.read().await,
            Read::Frame(WireMessage::Init { .. })
        ));
        s.write_raw(&answer).await;
        match dial.await.unwrap() {
            Err(ConnectError::Sync(e)) if check(&e) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    let m = f.node.sync.metrics().snapshot();
    assert_eq!(m.connect_failed, 4);
    f.check_untouched_and_serving().await;
}
