//! Our network layer against a real iroh-docs 0.101 node running in this process: in-memory
//! stores on both sides, endpoints built with the offline recipe (loopback only, no relay, no
//! discovery, no port mapping), dialed by direct address. Run inside the loopback-only
//! namespace (`/work/shared/tools/offline`).
//!
//! Entry sets are compared in full, signatures included: the reference's entries are read from
//! its store (the `SyncHandle` of its engine) and converted through their postcard bytes into
//! our `SignedEntry`. A single differing byte or entry fails the comparison.

use interop_tests::nodes::{
    OurNode, RefNode, WAIT, next_report, same_entries, sync_finished_within, watch_sync_finished,
};
use iroh::EndpointAddr;
use iroh_docs::api::Doc;
use sync_core::{Author, NamespaceId, NamespaceSecret, SignedEntry};
use sync_net::wire::{AbortReason, Codec, WireMessage};
use sync_net::{AcceptError, ConnectError, offline_endpoint};

/// Both sides hold exactly the same entries, byte for byte, signatures included.
fn assert_same(ours: &[SignedEntry], theirs: &[SignedEntry]) {
    if let Err(e) = same_entries(ours, theirs) {
        panic!("{e:#}");
    }
}

/// The event a [`watch_sync_finished`] task found.
async fn their_sync_finished(
    watch: tokio::task::JoinHandle<anyhow::Result<iroh_docs::engine::SyncEvent>>,
) -> iroh_docs::engine::SyncEvent {
    sync_finished_within(watch, WAIT).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_dial_the_reference() {
    let (theirs, mut ours) = (
        RefNode::spawn().await.unwrap(),
        OurNode::spawn().await.unwrap(),
    );
    let secret = NamespaceSecret::generate();
    let doc = theirs.join(&secret, vec![]).await.unwrap();
    ours.join(&secret, true).await.unwrap();
    let ns = secret.id();
    let their_author = theirs.docs.author_default().await.unwrap();
    for i in 0..40 {
        doc.set_bytes(their_author, format!("theirs/{i:03}"), format!("value {i}"))
            .await
            .unwrap();
    }
    let author = ours.handle.create_author().await.unwrap();
    for i in 0..25 {
        ours.handle
            .hash_and_insert(ns, author, format!("ours/{i:03}"), format!("ours {i}"))
            .await
            .unwrap();
    }

    let events = watch_sync_finished(&doc).await.unwrap();
    let finished = ours
        .sync
        .connect_and_sync(ns, theirs.addr.clone())
        .await
        .unwrap();
    // The reference records its side as a success too (its close sequence completed).
    let event = their_sync_finished(events).await;
    assert_eq!(event.origin, iroh_docs::engine::Origin::Accept);
    let details = event.result.expect("the reference records success");
    assert_eq!((details.entries_received, details.entries_sent), (25, 40));
    // We offered the compact encoding first; the reference knows only its own.
    assert_eq!(finished.codec, Codec::Reference);
    let o = &finished.outcome;
    assert_eq!(o.entries_inserted, 40);
    assert_eq!(o.entries_sent, 25);
    assert_eq!(o.entries_rejected, 0);
    let their_author_here = sync_core::AuthorId::from_bytes(*their_author.as_bytes());
    assert_eq!(
        o.heads_received.get(&their_author_here),
        theirs
            .entries(&doc)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.author() == their_author_here)
            .map(|e| e.timestamp())
            .max()
    );
    assert_same(
        &ours.entries(ns).await.unwrap(),
        &theirs.entries(&doc).await.unwrap(),
    );
    assert_eq!(ours.entries(ns).await.unwrap().len(), 65);

    // A second session moves nothing.
    let again = ours
        .sync
        .connect_and_sync(ns, theirs.addr.clone())
        .await
        .unwrap();
    assert_eq!(again.outcome.entries_received, 0);
    assert_eq!(again.outcome.entries_sent, 0);
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_dials_us() {
    let (theirs, mut ours) = (
        RefNode::spawn().await.unwrap(),
        OurNode::spawn().await.unwrap(),
    );
    let secret = NamespaceSecret::generate();
    let ns = secret.id();
    ours.join(&secret, true).await.unwrap();
    let author = ours.handle.create_author().await.unwrap();
    for i in 0..30 {
        ours.handle
            .hash_and_insert(ns, author, format!("ours/{i:03}"), format!("ours {i}"))
            .await
            .unwrap();
    }
    let doc = theirs.import(&secret).await.unwrap();
    let their_author = theirs.docs.author_default().await.unwrap();
    for i in 0..20 {
        doc.set_bytes(their_author, format!("theirs/{i:03}"), format!("value {i}"))
            .await
            .unwrap();
    }
    let mut reports = ours.sync.subscribe();
    let events = watch_sync_finished(&doc).await.unwrap();
    doc.start_sync(vec![ours.addr.clone()]).await.unwrap();

    let report = next_report(&mut reports).await.unwrap();
    let accepted = match report.as_ref() {
        Ok(finished) => finished.clone(),
        Err(e) => panic!("the reference's session failed here: {e}"),
    };
    assert_eq!(accepted.namespace, ns);
    assert_eq!(accepted.codec, Codec::Reference);
    assert_eq!(accepted.outcome.entries_inserted, 20);
    assert_eq!(accepted.outcome.entries_sent, 30);
    // The reference records the session as a success: we kept the connection until its
    // close sequence was done (protocol notes §11).
    let event = their_sync_finished(events).await;
    let details = event.result.expect("the reference records success");
    assert_eq!(details.entries_received, 30);
    assert_eq!(details.entries_sent, 20);
    assert_same(
        &ours.entries(ns).await.unwrap(),
        &theirs.entries(&doc).await.unwrap(),
    );
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

/// Entries for one side: `n` keys under `prefix` by `author`.
async fn write_ours(
    node: &OurNode,
    ns: NamespaceId,
    author: &Author,
    prefix: &str,
    keys: &[usize],
) {
    for i in keys {
        node.handle
            .hash_and_insert(
                ns,
                author.id(),
                format!("{prefix}{i:05}"),
                format!("ours {prefix}{i}"),
            )
            .await
            .unwrap();
    }
}

async fn write_theirs(doc: &Doc, author: iroh_docs::AuthorId, prefix: &str, keys: &[usize]) {
    for i in keys {
        doc.set_bytes(
            author,
            format!("{prefix}{i:05}"),
            format!("theirs {prefix}{i}"),
        )
        .await
        .unwrap();
    }
}

/// A few thousand entries on each side with overlap (one shared author writing the same keys
/// on both sides, so one side's write overwrites the other's), and deletions on both sides.
///
/// Our insertion rule differs from iroh-docs' on tombstone edge cases (W8: the reference never
/// treats a deletion marker as covering entries below it that arrive later, nor an older entry
/// at the marker's own key). The scenario keeps to cases where both rules agree: every deletion
/// is written after every entry it covers, by an author whose entries under that prefix exist
/// on the deleting side only, so no entry older than a marker ever arrives below it. Keys of
/// live entries have one width, so no live key is a prefix of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_entries_end_identical_when_we_dial() {
    thousands_of_entries_with_overwrites_and_deletions(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_entries_end_identical_when_the_reference_dials() {
    thousands_of_entries_with_overwrites_and_deletions(false).await;
}

async fn thousands_of_entries_with_overwrites_and_deletions(we_dial: bool) {
    let (theirs, mut ours) = (
        RefNode::spawn().await.unwrap(),
        OurNode::spawn().await.unwrap(),
    );
    let secret = NamespaceSecret::generate();
    let ns = secret.id();
    ours.join(&secret, true).await.unwrap();
    let doc = theirs.join(&secret, vec![]).await.unwrap();

    let (mine, shared) = (Author::generate(), Author::generate());
    let theirs_only = Author::generate();
    for a in [&mine, &shared] {
        ours.handle.import_author(a.clone()).await.unwrap();
    }
    let shared_there = theirs.import_author(&shared).await.unwrap();
    let only_there = theirs.import_author(&theirs_only).await.unwrap();

    let range = |r: std::ops::Range<usize>| r.collect::<Vec<_>>();
    // Distinct data on each side.
    write_ours(&ours, ns, &mine, "a/", &range(0..1200)).await;
    write_theirs(&doc, only_there, "b/", &range(0..1200)).await;
    // The shared author: ours first, then theirs over half of the same keys (their writes are
    // newer there), then ours again over a quarter (ours newest there).
    write_ours(&ours, ns, &shared, "s/", &range(0..600)).await;
    write_theirs(&doc, shared_there, "s/", &range(300..900)).await;
    write_ours(&ours, ns, &shared, "s/", &range(450..600)).await;
    // Deletions: each side deletes part of what only it wrote (prefixes of 100 keys each),
    // after all those writes.
    let ours_deleted: Vec<String> = (0..12).step_by(3).map(|j| format!("a/{j:03}")).collect();
    let theirs_deleted: Vec<String> = (1..12).step_by(3).map(|j| format!("b/{j:03}")).collect();
    for p in &ours_deleted {
        let removed = ours
            .handle
            .delete_prefix(ns, mine.id(), p.clone())
            .await
            .unwrap();
        assert_eq!(removed, 100);
    }
    for p in &theirs_deleted {
        let removed = doc.del(only_there, p.clone()).await.unwrap();
        assert_eq!(removed, 100);
    }
    // And the shared author deletes, on our side, a prefix only our side wrote under.
    ours.handle
        .delete_prefix(ns, shared.id(), "s/000")
        .await
        .unwrap();
    let before_ours = ours.entries(ns).await.unwrap();
    let before_theirs = theirs.entries(&doc).await.unwrap();
    assert_eq!(before_ours.len(), 1200 - 400 + 4 + 600 - 100 + 1);
    assert_eq!(before_theirs.len(), 1200 - 400 + 4 + 600);

    let events = watch_sync_finished(&doc).await.unwrap();
    let finished = if we_dial {
        ours.sync
            .connect_and_sync(ns, theirs.addr.clone())
            .await
            .unwrap()
    } else {
        let mut reports = ours.sync.subscribe();
        doc.start_sync(vec![ours.addr.clone()]).await.unwrap();
        match next_report(&mut reports).await.unwrap().as_ref() {
            Ok(finished) => finished.clone(),
            Err(e) => panic!("the reference's session failed here: {e}"),
        }
    };
    let event = their_sync_finished(events).await;
    let details = event.result.expect("the reference records success");
    assert_eq!(
        details.entries_sent as u64,
        finished.outcome.entries_received
    );
    assert_eq!(
        details.entries_received as u64,
        finished.outcome.entries_sent
    );
    let after_ours = ours.entries(ns).await.unwrap();
    let after_theirs = theirs.entries(&doc).await.unwrap();
    assert_same(&after_ours, &after_theirs);
    // Everything that is here and was not before came in this session.
    let gained = after_ours
        .iter()
        .filter(|e| !before_ours.contains(e))
        .count() as u64;
    assert_eq!(finished.outcome.entries_inserted, gained);
    // Under each deleted prefix only its marker is left, on both sides (compared above).
    for p in ours_deleted.iter().chain(&theirs_deleted) {
        let under: Vec<_> = after_ours
            .iter()
            .filter(|e| e.key().starts_with(p.as_bytes()))
            .collect();
        assert_eq!(under.len(), 1, "{p}");
        assert_eq!(under[0].key(), p.as_bytes());
        assert_eq!(under[0].content_len(), 0);
    }
    let markers = after_ours.iter().filter(|e| e.content_len() == 0).count();
    assert_eq!(markers, 4 + 4 + 1);
    assert_eq!(
        after_ours.len(),
        1200 - 400 + 1200 - 400 + 900 - 100 + markers
    );
    // Last write wins on the shared keys: theirs in 300..450 and 600..900, ours elsewhere.
    let value_of = |key: String| {
        after_ours
            .iter()
            .find(|e| e.author() == shared.id() && e.key() == key.as_bytes())
            .map(|e| e.content_hash())
    };
    assert_eq!(
        value_of("s/00350".into()),
        Some(sync_core::ContentHash::of("theirs s/350"))
    );
    assert_eq!(
        value_of("s/00500".into()),
        Some(sync_core::ContentHash::of("ours s/500"))
    );
    assert_eq!(
        value_of("s/00800".into()),
        Some(sync_core::ContentHash::of("theirs s/800"))
    );

    // The other direction has nothing left to do.
    let again = ours
        .sync
        .connect_and_sync(ns, theirs.addr.clone())
        .await
        .unwrap();
    assert_eq!(again.outcome.entries_inserted, 0);
    assert_eq!(again.outcome.entries_sent, 0);
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

/// The raw reply of a node to one `Init` from a plain endpoint: every byte until the end.
async fn raw_reply(addr: &EndpointAddr, namespace: NamespaceId) -> Vec<u8> {
    let endpoint = offline_endpoint(None).await.unwrap();
    let conn = endpoint
        .connect(addr.clone(), sync_net::ALPN)
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let init = WireMessage::Init {
        namespace,
        message: ranger::Message::new(vec![ranger::MessagePart::RangeFingerprint(
            ranger::RangeFingerprint {
                range: ranger::Range::new(
                    sync_core::RecordIdentifier::zero(),
                    sync_core::RecordIdentifier::zero(),
                ),
                fingerprint: ranger::Fingerprint::EMPTY,
            },
        )]),
    };
    send.write_all(&init.to_frame(usize::MAX).unwrap())
        .await
        .unwrap();
    send.finish().unwrap();
    let reply = tokio::time::timeout(WAIT, recv.read_to_end(1 << 20))
        .await
        .unwrap()
        .unwrap();
    conn.close(0u32.into(), b"");
    endpoint.close().await;
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_behaves_the_same() {
    let (theirs, mut ours) = (
        RefNode::spawn().await.unwrap(),
        OurNode::spawn().await.unwrap(),
    );
    let unknown = NamespaceSecret::generate();
    let unsynced = NamespaceSecret::generate();
    // Known to both, but not synced: imported there without joining, opened here without sync.
    let _doc = theirs.import(&unsynced).await.unwrap();
    ours.join(&unsynced, false).await.unwrap();
    let abort = WireMessage::Abort {
        reason: AbortReason::NotFound,
    }
    .to_frame(16)
    .unwrap();
    assert_eq!(abort, [0, 0, 0, 2, 2, 0]);
    for ns in [unknown.id(), unsynced.id()] {
        assert_eq!(raw_reply(&theirs.addr, ns).await, abort);
        assert_eq!(raw_reply(&ours.addr, ns).await, abort);
    }

    // Our dial to the reference for a document it does not sync.
    let mut dialer = OurNode::spawn().await.unwrap();
    for s in [&unknown, &unsynced] {
        dialer.join(s, true).await.unwrap();
        let result = dialer
            .sync
            .connect_and_sync(s.id(), theirs.addr.clone())
            .await;
        assert!(
            matches!(
                result,
                Err(ConnectError::RemoteAbort(AbortReason::NotFound))
            ),
            "{result:?}"
        );
    }
    // The reference's dial to us for a document we do not sync.
    let mut reports = ours.sync.subscribe();
    let doc = theirs.import(&unsynced).await.unwrap();
    let events = watch_sync_finished(&doc).await.unwrap();
    doc.start_sync(vec![ours.addr.clone()]).await.unwrap();
    let report = next_report(&mut reports).await.unwrap();
    assert!(
        matches!(
            report.as_ref(),
            Err(AcceptError::Abort {
                reason: AbortReason::NotFound,
                ..
            })
        ),
        "{report:?}"
    );
    let event = their_sync_finished(events).await;
    let err = event.result.expect_err("the reference's dial is refused");
    assert!(err.contains("NotFound"), "{err}");
    dialer.shutdown().await.unwrap();
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}
