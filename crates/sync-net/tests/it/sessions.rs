//! Two (or more) of our nodes over loopback: convergence, simultaneous dials, refusals,
//! session limits, metrics.

use std::collections::BTreeSet;

use iroh::SecretKey;
use sync_core::{Author, NamespaceSecret};
use sync_net::wire::{AbortReason, WireMessage};
use sync_net::{AcceptError, Codec, ConnectError, Limits, Side, SyncError, connect_and_sync};

use crate::support::{Node, Raw, Read, Rng, next_report, random_entries};

/// Byte sets of the entries, for comparisons that show what differs.
fn bytes_of(entries: &[sync_core::SignedEntry]) -> BTreeSet<Vec<u8>> {
    use sync_core::encoding::Encode;
    entries.iter().map(|e| e.to_vec()).collect()
}

/// The newest entry per (author, key) of both sets, by timestamp and then content hash.
fn newest_per_key(
    a: &[sync_core::SignedEntry],
    b: &[sync_core::SignedEntry],
) -> Vec<sync_core::SignedEntry> {
    let mut newest = std::collections::BTreeMap::new();
    for e in a.iter().chain(b) {
        let slot = newest
            .entry((e.author(), e.key().to_vec()))
            .or_insert_with(|| e.clone());
        if (e.timestamp(), e.content_hash()) > (slot.timestamp(), slot.content_hash()) {
            *slot = e.clone();
        }
    }
    newest.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_documents_converge() {
    let mut rng = Rng::new(1);
    for round in 0..3u64 {
        let (mut a, mut b) = (
            Node::spawn(Limits::default()).await,
            Node::spawn(Limits::default()).await,
        );
        let ns = NamespaceSecret::generate();
        let authors: Vec<Author> = (0..3).map(|_| Author::generate()).collect();
        a.join(&ns, true).await;
        b.join(&ns, true).await;
        // Overlapping key spaces: shared keys become overwrites in one direction or the other.
        let on_a = random_entries(&mut rng, &ns, &authors, 300, 200 + 100 * round as usize);
        let on_b = random_entries(&mut rng, &ns, &authors, 300, 150);
        a.put(&on_a).await;
        b.put(&on_b).await;
        let shared = random_entries(&mut rng, &ns, &authors, 1000, 50);
        a.put(&shared).await;
        b.put(&shared).await;
        let (before_a, before_b) = (a.entries(ns.id()).await, b.entries(ns.id()).await);
        assert_ne!(before_a, before_b);

        let mut reports = b.sync.subscribe();
        let finished = a
            .sync
            .connect_and_sync(ns.id(), b.addr.clone())
            .await
            .unwrap();
        let after_a = a.entries(ns.id()).await;
        let after_b = b.entries(ns.id()).await;
        assert_eq!(bytes_of(&after_a), bytes_of(&after_b));
        // Exactly the newest entry per (author, key) of the union (no key is a prefix of
        // another here, so last-write-wins per key is the whole rule).
        assert_eq!(
            bytes_of(&after_a),
            bytes_of(&newest_per_key(&before_a, &before_b))
        );

        assert_eq!(finished.side, Side::Connect);
        assert_eq!(finished.peer, b.id());
        assert_eq!(finished.namespace, ns.id());
        let o = &finished.outcome;
        assert!(o.entries_received >= o.entries_inserted);
        assert_eq!(o.entries_rejected, 0);
        assert!(o.rounds >= 1);
        assert!(o.bytes_sent > 0 && o.bytes_received > 0);
        let gained_a = after_a.iter().filter(|e| !before_a.contains(e)).count() as u64;
        assert_eq!(o.entries_inserted, gained_a);

        let report = next_report(&mut reports).await;
        let accepted = report.as_ref().as_ref().unwrap();
        assert_eq!(accepted.side, Side::Accept);
        assert_eq!(accepted.peer, a.id());
        let gained_b = after_b.iter().filter(|e| !before_b.contains(e)).count() as u64;
        assert_eq!(accepted.outcome.entries_inserted, gained_b);
        // Both sides agree on what crossed the wire.
        assert_eq!(accepted.outcome.bytes_received, o.bytes_sent);
        assert_eq!(accepted.outcome.bytes_sent, o.bytes_received);
        assert_eq!(accepted.outcome.entries_received, o.entries_sent);
        assert!(
            accepted.close_warning.is_none(),
            "{:?}",
            accepted.close_warning
        );
        assert!(
            finished.close_warning.is_none(),
            "{:?}",
            finished.close_warning
        );

        // The heads received lie between the newest entry gained and the newest B had, per
        // author (B sends only what A may lack).
        for author in &authors {
            let newest = |set: &mut dyn Iterator<Item = &sync_core::SignedEntry>| {
                set.filter(|e| e.author() == author.id())
                    .map(|e| e.timestamp())
                    .max()
            };
            let gained = newest(&mut after_a.iter().filter(|e| !before_a.contains(e)));
            let head = o.heads_received.get(&author.id());
            assert!(head >= gained, "{head:?} {gained:?}");
            assert!(head <= newest(&mut before_b.iter()));
        }
        // Each side remembers the other as useful.
        assert_eq!(
            a.handle.useful_peers(ns.id()).await.unwrap(),
            vec![*b.id().as_bytes()]
        );
        assert_eq!(
            b.handle.useful_peers(ns.id()).await.unwrap(),
            vec![*a.id().as_bytes()]
        );

        // Metrics on both sides.
        let (ma, mb) = (a.sync.metrics().snapshot(), b.sync.metrics().snapshot());
        assert_eq!((ma.connect_ok, ma.accept_ok), (1, 0));
        assert_eq!((mb.connect_ok, mb.accept_ok), (0, 1));
        assert_eq!(ma.bytes_sent, o.bytes_sent);
        assert_eq!(mb.bytes_received, o.bytes_sent);
        assert_eq!(ma.entries_inserted, o.entries_inserted);
        assert_eq!(ma.duration_count, 1);
        assert_eq!(ma.duration_buckets.iter().sum::<u64>(), 1);
        assert_eq!(a.sync.running_sessions(), 0);
        assert_eq!(b.sync.running_sessions(), 0);

        // A second session finds nothing to do.
        let again = a
            .sync
            .connect_and_sync(ns.id(), b.addr.clone())
            .await
            .unwrap();
        assert_eq!(again.outcome.entries_inserted, 0);
        assert_eq!(again.outcome.entries_sent, 0);
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_dial_converges() {
    let mut rng = Rng::new(2);
    let (mut a, mut b) = (
        Node::spawn(Limits::default()).await,
        Node::spawn(Limits::default()).await,
    );
    let ns = NamespaceSecret::generate();
    let authors = [Author::generate()];
    a.join(&ns, true).await;
    b.join(&ns, true).await;
    b.put(&random_entries(&mut rng, &ns, &authors, 500, 300))
        .await;
    let finished = connect_and_sync(
        a.sync.endpoint(),
        &a.handle,
        ns.id(),
        b.addr.clone(),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        bytes_of(&a.entries(ns.id()).await),
        bytes_of(&b.entries(ns.id()).await)
    );
    assert_eq!(
        finished.outcome.entries_inserted as usize,
        b.entries(ns.id()).await.len()
    );
    // The standalone dial is not counted in the node's metrics.
    assert_eq!(a.sync.metrics().snapshot().connect_ok, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_converge() {
    let mut rng = Rng::new(3);
    for _ in 0..4 {
        let (mut a, mut b) = (
            Node::spawn(Limits::default()).await,
            Node::spawn(Limits::default()).await,
        );
        let ns = NamespaceSecret::generate();
        let authors = [Author::generate(), Author::generate()];
        a.join(&ns, true).await;
        b.join(&ns, true).await;
        a.put(&random_entries(&mut rng, &ns, &authors, 400, 200))
            .await;
        b.put(&random_entries(&mut rng, &ns, &authors, 400, 200))
            .await;

        let (ra, rb) = tokio::join!(
            a.sync.connect_and_sync(ns.id(), b.addr.clone()),
            b.sync.connect_and_sync(ns.id(), a.addr.clone()),
        );
        let acceptable = |r: &Result<_, ConnectError>| {
            matches!(
                r,
                Ok(_)
                    | Err(ConnectError::RemoteAbort(AbortReason::AlreadySyncing))
                    | Err(ConnectError::AlreadySyncing)
            )
        };
        assert!(acceptable(&ra), "{ra:?}");
        assert!(acceptable(&rb), "{rb:?}");
        assert!(ra.is_ok() || rb.is_ok(), "{ra:?} {rb:?}");
        // The reference's rule: only the dial of the node with the larger id can be refused
        // by the peer.
        let smaller_dialer = if a.id().as_bytes() > b.id().as_bytes() {
            &rb
        } else {
            &ra
        };
        assert!(
            !matches!(smaller_dialer, Err(ConnectError::RemoteAbort(_))),
            "{smaller_dialer:?}"
        );
        assert_eq!(
            bytes_of(&a.entries(ns.id()).await),
            bytes_of(&b.entries(ns.id()).await)
        );
        assert_eq!(a.sync.running_sessions(), 0);
        a.shutdown().await;
        b.shutdown().await;
    }
}

/// The simultaneous-dial rule, made deterministic with a raw peer that holds our node's dial
/// open while it dials the node for the same document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_during_own_dial_follows_the_id_order() {
    let keys: Vec<SecretKey> = (1..=3u8).map(|i| SecretKey::from_bytes(&[i; 32])).collect();
    let mut node = Node::spawn_with_key(Some(keys[0].clone()), Limits::default()).await;
    let ns = NamespaceSecret::generate();
    node.join(&ns, true).await;
    node.put(&random_entries(
        &mut Rng::new(4),
        &ns,
        &[Author::generate()],
        10,
        5,
    ))
    .await;
    let mut reports = node.sync.subscribe();
    for key in &keys[1..] {
        let raw = Raw::new(Some(key.clone())).await;
        let raw_addr = sync_net::dial_addr(&raw.endpoint);
        let dial = {
            let sync = node.sync.clone();
            let addr = raw_addr.clone();
            let ns = ns.id();
            tokio::spawn(async move { sync.connect_and_sync(ns, addr).await })
        };
        // The node's dial arrives; hold it (read its Init, answer nothing yet).
        let mut held = raw.accept().await;
        let Read::Frame(WireMessage::Init { namespace, .. }) = held.read().await else {
            panic!("expected Init");
        };
        assert_eq!(namespace, ns.id());
        // Now dial the node for the same document.
        let mut ours = raw.dial(&node.addr).await;
        // A fingerprint over everything that matches nothing: an accepted session answers.
        let init = WireMessage::Init {
            namespace: ns.id(),
            message: ranger::Message::new(vec![ranger::MessagePart::RangeFingerprint(
                ranger::RangeFingerprint {
                    range: ranger::Range::new(
                        sync_core::RecordIdentifier::zero(),
                        sync_core::RecordIdentifier::zero(),
                    ),
                    fingerprint: ranger::Fingerprint([1; 32]),
                },
            )]),
        };
        ours.write(&init).await;
        let reply = ours.read().await;
        if node.id().as_bytes() > raw_addr.id.as_bytes() {
            // We accept theirs; they will refuse ours.
            assert!(
                matches!(reply, Read::Frame(WireMessage::Sync(_))),
                "{reply:?}"
            );
            ours.send.finish().unwrap();
            assert!(matches!(ours.read().await, Read::End));
            ours.conn.close(0u32.into(), b"");
            let report = next_report(&mut reports).await;
            assert!(report.as_ref().is_ok(), "{report:?}");
        } else {
            assert!(
                matches!(
                    reply,
                    Read::Frame(WireMessage::Abort {
                        reason: AbortReason::AlreadySyncing
                    })
                ),
                "{reply:?}"
            );
            let report = next_report(&mut reports).await;
            assert!(matches!(
                report.as_ref(),
                Err(AcceptError::Abort {
                    reason: AbortReason::AlreadySyncing,
                    ..
                })
            ));
        }
        // The raw peer refuses the node's dial, as the peer with the smaller id would.
        held.write(&WireMessage::Abort {
            reason: AbortReason::AlreadySyncing,
        })
        .await;
        held.send.finish().unwrap();
        let result = dial.await.unwrap();
        assert!(
            matches!(
                result,
                Err(ConnectError::RemoteAbort(AbortReason::AlreadySyncing))
            ),
            "{result:?}"
        );
        drop((ours, held));
        // W19: the refused dial left no state behind; the next dial goes out again (and is
        // refused by the raw peer with NotFound this time).
        let dial = {
            let sync = node.sync.clone();
            let ns = ns.id();
            tokio::spawn(async move { sync.connect_and_sync(ns, raw_addr).await })
        };
        let mut held = raw.accept().await;
        assert!(matches!(
            held.read().await,
            Read::Frame(WireMessage::Init { .. })
        ));
        held.write(&WireMessage::Abort {
            reason: AbortReason::NotFound,
        })
        .await;
        held.send.finish().unwrap();
        assert!(matches!(
            dial.await.unwrap(),
            Err(ConnectError::RemoteAbort(AbortReason::NotFound))
        ));
        raw.endpoint.close().await;
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_for_unknown_and_unsynced_documents() {
    let (mut a, mut b) = (
        Node::spawn(Limits::default()).await,
        Node::spawn(Limits::default()).await,
    );
    let unknown = NamespaceSecret::generate();
    let closed = NamespaceSecret::generate();
    let unsynced = NamespaceSecret::generate();
    for ns in [&unknown, &closed, &unsynced] {
        a.join(ns, true).await;
    }
    // B knows `closed` but has not opened it, and opened `unsynced` without sync.
    b.handle
        .import_namespace(sync_core::Capability::Write(closed.clone()))
        .await
        .unwrap();
    b.join(&unsynced, false).await;
    let mut reports = b.sync.subscribe();
    for ns in [&unknown, &closed, &unsynced] {
        let result = a.sync.connect_and_sync(ns.id(), b.addr.clone()).await;
        assert!(
            matches!(
                result,
                Err(ConnectError::RemoteAbort(AbortReason::NotFound))
            ),
            "{result:?}"
        );
        let report = next_report(&mut reports).await;
        match report.as_ref() {
            Err(AcceptError::Abort {
                namespace, reason, ..
            }) => {
                assert_eq!(*namespace, ns.id());
                assert_eq!(*reason, AbortReason::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }
    let (ma, mb) = (a.sync.metrics().snapshot(), b.sync.metrics().snapshot());
    assert_eq!((ma.connect_aborted, ma.connect_ok), (3, 0));
    assert_eq!((mb.accept_aborted, mb.accept_ok), (3, 0));
    // Dialing a document we do not sync ourselves fails locally, in the actor.
    let nowhere = NamespaceSecret::generate();
    let result = a.sync.connect_and_sync(nowhere.id(), b.addr.clone()).await;
    assert!(
        matches!(result, Err(ConnectError::Sync(SyncError::Actor(_)))),
        "{result:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_counts_refuse_extra_sessions() {
    let mut node = Node::spawn(Limits::default().with_max_sessions(1, 1)).await;
    let mut other = Node::spawn(Limits::default()).await;
    let ns = NamespaceSecret::generate();
    node.join(&ns, true).await;
    other.join(&ns, true).await;
    node.put(&random_entries(
        &mut Rng::new(5),
        &ns,
        &[Author::generate()],
        50,
        20,
    ))
    .await;
    let mut reports = node.sync.subscribe();

    // A raw peer holds the node's only session open.
    let raw = Raw::new(None).await;
    let mut held = raw.dial(&node.addr).await;
    let init = WireMessage::Init {
        namespace: ns.id(),
        message: other
            .handle
            .sync_initial_message(ns.id(), [0; 32])
            .await
            .unwrap()
            .0,
    };
    held.write(&init).await;
    assert!(matches!(
        held.read().await,
        Read::Frame(WireMessage::Sync(_))
    ));
    assert_eq!(node.sync.running_sessions(), 1);

    let result = other
        .sync
        .connect_and_sync(ns.id(), node.addr.clone())
        .await;
    assert!(
        matches!(
            result,
            Err(ConnectError::RemoteAbort(AbortReason::InternalServerError))
        ),
        "{result:?}"
    );
    let report = next_report(&mut reports).await;
    assert!(
        matches!(
            report.as_ref(),
            Err(AcceptError::Sync {
                error: SyncError::TooManySessions { .. },
                ..
            })
        ),
        "{report:?}"
    );
    // The node's own dial is refused locally as well.
    let result = node
        .sync
        .connect_and_sync(ns.id(), other.addr.clone())
        .await;
    assert!(
        matches!(
            result,
            Err(ConnectError::Sync(SyncError::TooManySessions { .. }))
        ),
        "{result:?}"
    );

    // The held session ends; the slot is free again.
    held.send.finish().unwrap();
    assert!(matches!(held.read().await, Read::End));
    held.conn.close(0u32.into(), b"");
    let report = next_report(&mut reports).await;
    assert!(report.as_ref().is_ok(), "{report:?}");
    drop(held);
    let finished = other
        .sync
        .connect_and_sync(ns.id(), node.addr.clone())
        .await
        .unwrap();
    assert_eq!(
        finished.outcome.entries_inserted as usize,
        node.entries(ns.id()).await.len()
    );
    node.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodes_speak_the_compact_encoding_unless_told_not_to() {
    for compact in [true, false] {
        let mut rng = Rng::new(7);
        let limits = Limits::default().with_compact_codec(compact);
        let (mut a, mut b) = (
            Node::spawn(limits.clone()).await,
            Node::spawn(limits.clone()).await,
        );
        let ns = NamespaceSecret::generate();
        let authors = [Author::generate(), Author::generate(), Author::generate()];
        a.join(&ns, true).await;
        b.join(&ns, true).await;
        a.put(&random_entries(&mut rng, &ns, &authors, 400, 300))
            .await;
        b.put(&random_entries(&mut rng, &ns, &authors, 400, 300))
            .await;
        let mut reports = b.sync.subscribe();
        let finished = a
            .sync
            .connect_and_sync(ns.id(), b.addr.clone())
            .await
            .unwrap();
        let want = if compact {
            Codec::Compact
        } else {
            Codec::Reference
        };
        assert_eq!(finished.codec, want);
        let report = next_report(&mut reports).await;
        assert_eq!(report.as_ref().as_ref().unwrap().codec, want);
        assert_eq!(
            bytes_of(&a.entries(ns.id()).await),
            bytes_of(&b.entries(ns.id()).await)
        );
        assert!(finished.outcome.entries_received > 0 && finished.outcome.entries_sent > 0);
        a.shutdown().await;
        b.shutdown().await;
    }
}
