//! Request/reply, open/close counting, events, shutdown, failures.

use sync_actor::{ActorError, Event, OpenOptions, Received};
use sync_core::{Capability, ContentHash, KeyInterval, MemStore, NamespaceSecret, Query, Store};

use crate::mem_actor;

#[tokio::test]
async fn request_reply_and_shutdown_returns_the_store() {
    let handle = mem_actor();
    let secret = handle.create_replica().await.unwrap();
    let ns = secret.id();
    let author = handle.default_author().await.unwrap();
    assert_eq!(
        handle.default_author().await.unwrap(),
        author,
        "default persists"
    );
    let guard = handle.open(ns, OpenOptions::default()).await.unwrap();
    let hash = handle
        .hash_and_insert(ns, author, "hello", b"world")
        .await
        .unwrap();
    assert_eq!(hash, ContentHash::of(b"world"));
    let got = handle
        .get_exact(ns, author, "hello", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.content_hash(), hash);
    assert_eq!(got.content_len(), 5);
    got.verify().unwrap();
    assert_eq!(
        handle.export_secret(ns).await.unwrap(),
        Some(secret.clone())
    );
    let all = handle.query(ns, Query::all()).collect().await.unwrap();
    assert_eq!(all, vec![got.clone()]);
    guard.close().await.unwrap();

    let mut store: MemStore = handle.shutdown().await.unwrap();
    assert_eq!(store.count(&ns, &KeyInterval::all()).unwrap(), 1);
    assert_eq!(store.default_author().unwrap(), Some(author));
}

#[tokio::test]
async fn open_close_is_counted_and_gates_operations() {
    let handle = mem_actor();
    let ns = handle.create_replica().await.unwrap().id();
    let author = handle.create_author().await.unwrap();
    // Not open yet.
    assert!(matches!(
        handle.hash_and_insert(ns, author, "k", b"v").await,
        Err(ActorError::NotOpen(id)) if id == ns
    ));
    assert_eq!(handle.state(ns).await.unwrap(), None);
    let g1 = handle.open(ns, OpenOptions::default()).await.unwrap();
    let g2 = handle.open(ns, OpenOptions::sync()).await.unwrap();
    let state = handle.state(ns).await.unwrap().unwrap();
    assert_eq!((state.handles, state.sync), (2, true));
    let mut events = handle.subscribe(ns).await.unwrap();
    g1.close().await.unwrap();
    assert_eq!(handle.state(ns).await.unwrap().unwrap().handles, 1);
    // Dropping the guard closes too (asynchronously): the next request sees it closed.
    drop(g2);
    assert_eq!(handle.state(ns).await.unwrap(), None);
    // Subscriptions of a released document end.
    assert_eq!(events.recv().await, None);
    // Unknown documents.
    let unknown = NamespaceSecret::generate().id();
    assert!(matches!(
        handle.open(unknown, OpenOptions::default()).await,
        Err(ActorError::UnknownNamespace(id)) if id == unknown
    ));
}

#[tokio::test]
async fn sync_gating_and_read_only() {
    let handle = mem_actor();
    let secret = NamespaceSecret::generate();
    let ns = secret.id();
    handle.import_namespace(Capability::Read(ns)).await.unwrap();
    let author = handle.create_author().await.unwrap();
    let _guard = handle.open(ns, OpenOptions::default()).await.unwrap();
    assert!(matches!(
        handle.hash_and_insert(ns, author, "k", b"v").await,
        Err(ActorError::ReadOnly(_))
    ));
    assert!(matches!(
        handle.sync_initial_message(ns, [0; 32]).await,
        Err(ActorError::NotSyncing(_))
    ));
    // Upgrading to write while open takes effect at once.
    handle
        .import_namespace(Capability::Write(secret.clone()))
        .await
        .unwrap();
    handle.hash_and_insert(ns, author, "k", b"v").await.unwrap();
    handle.set_sync(ns, true).await.unwrap();
    handle.sync_initial_message(ns, [0; 32]).await.unwrap();
}

#[tokio::test]
async fn events_for_stored_entries_only_and_deletes() {
    let handle = mem_actor();
    let ns = handle.create_replica().await.unwrap().id();
    let author = handle.create_author().await.unwrap();
    let _g = handle.open(ns, OpenOptions::sync()).await.unwrap();
    let mut events = handle.subscribe(ns).await.unwrap();
    let entry = handle
        .insert_local(ns, author, "a/1", ContentHash::of(b"x"), 1)
        .await
        .unwrap();
    handle
        .hash_and_insert(ns, author, "a/2", b"y")
        .await
        .unwrap();
    match events.recv().await {
        Some(Received::Event(Event::LocalInsert {
            namespace,
            entry: e,
        })) => {
            assert_eq!(namespace, ns);
            assert_eq!(e, entry);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        events.recv().await,
        Some(Received::Event(Event::LocalInsert { .. }))
    ));
    // Re-offering the same entry from a peer stores nothing and emits nothing.
    assert!(matches!(
        handle
            .insert_remote(ns, entry.clone(), [9; 32], Default::default())
            .await,
        Err(ActorError::NewerEntryExists)
    ));
    assert_eq!(handle.delete_prefix(ns, author, "a/").await.unwrap(), 2);
    match events.recv().await {
        Some(Received::Event(Event::LocalInsert { entry: e, .. })) => {
            assert!(e.record().is_empty(), "the deletion marker");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(events.try_recv(), None, "nothing else was emitted");
    assert!(
        handle
            .query(ns, Query::all())
            .collect()
            .await
            .unwrap()
            .is_empty()
    );
    // Empty content is refused: deletion goes through delete_prefix.
    assert!(matches!(
        handle
            .insert_local(ns, author, "z", ContentHash::EMPTY, 0)
            .await,
        Err(ActorError::EntryIsEmpty)
    ));
    // Remote entries with a bad signature are refused with a typed error.
    let other_author = sync_core::Author::generate();
    let secret = handle.export_secret(ns).await.unwrap().unwrap();
    let mut forged = sync_core::SignedEntry::create(
        &secret,
        &other_author,
        "f",
        sync_core::Record::new(ContentHash::of(b"f"), 1, 1),
    )
    .into_parts();
    forged.0 = sync_core::EntrySignature::from_parts([0; 64], *forged.0.namespace());
    let forged = sync_core::SignedEntry::from_parts(forged.0, forged.1);
    assert!(matches!(
        handle
            .insert_remote(ns, forged, [9; 32], Default::default())
            .await,
        Err(ActorError::Validation(_))
    ));
}

#[tokio::test]
async fn stopped_actor_gives_typed_errors() {
    let handle = mem_actor();
    let other = handle.clone();
    let _store: MemStore = handle.shutdown().await.unwrap();
    assert!(matches!(
        other.list_authors().await,
        Err(ActorError::Stopped)
    ));
    assert!(matches!(other.flush().await, Err(ActorError::Stopped)));
    assert!(matches!(
        other.clone().shutdown::<MemStore>().await,
        Err(ActorError::Stopped)
    ));
}
