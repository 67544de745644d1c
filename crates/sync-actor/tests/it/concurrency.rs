//! Many tasks at once, slow subscribers, fairness between documents.

use std::sync::{Arc, Mutex};

use sync_actor::{ActorConfig, OpenOptions, Received, SyncHandle};
use sync_core::{MemStore, Query};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_on_several_documents() {
    let handle = SyncHandle::spawn(MemStore::new(), ActorConfig::default());
    let author = handle.create_author().await.unwrap();
    let mut docs = Vec::new();
    let mut guards = Vec::new();
    for _ in 0..4 {
        let ns = handle.create_replica().await.unwrap().id();
        guards.push(handle.open(ns, OpenOptions::default()).await.unwrap());
        docs.push(ns);
    }
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let handle = handle.clone();
        let ns = docs[t % docs.len()];
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                handle
                    .hash_and_insert(ns, author, format!("t{t}/{i}"), format!("{t}-{i}"))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for ns in &docs {
        let all = handle.query(*ns, Query::all()).collect().await.unwrap();
        assert_eq!(
            all.len(),
            4 * 50,
            "every write of the 4 tasks on this document"
        );
    }
    handle.flush().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_block_writes() {
    let mut config = ActorConfig::default();
    config.event_capacity = 4;
    let handle = SyncHandle::spawn(MemStore::new(), config);
    let ns = handle.create_replica().await.unwrap().id();
    let author = handle.create_author().await.unwrap();
    let _g = handle.open(ns, OpenOptions::default()).await.unwrap();
    let mut stuck = handle.subscribe(ns).await.unwrap();
    for i in 0..100 {
        handle
            .hash_and_insert(ns, author, format!("k{i}"), [i as u8])
            .await
            .unwrap();
    }
    // It is told how many it missed, then gets the newest ones.
    assert_eq!(stuck.recv().await, Some(Received::Lagged(96)));
    let mut rest = 0;
    while let Some(Received::Event(_)) = stuck.try_recv() {
        rest += 1;
    }
    assert_eq!(rest, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_query_interleaves_with_other_documents() {
    let mut config = ActorConfig::default();
    config.query_chunk = 10;
    let handle = SyncHandle::spawn(MemStore::new(), config);
    let author = handle.create_author().await.unwrap();
    let big = handle.create_replica().await.unwrap().id();
    let small = handle.create_replica().await.unwrap().id();
    let _g1 = handle.open(big, OpenOptions::default()).await.unwrap();
    let _g2 = handle.open(small, OpenOptions::default()).await.unwrap();
    for i in 0..500 {
        handle
            .hash_and_insert(big, author, format!("k{i:04}"), [1])
            .await
            .unwrap();
    }
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let query = {
        let (handle, log) = (handle.clone(), log.clone());
        tokio::spawn(async move {
            let mut stream = handle.query(big, Query::all());
            let mut started = Some(started_tx);
            let mut chunks = 0;
            while let Some(chunk) = stream.next_chunk().await.unwrap() {
                assert!(chunk.len() <= 10);
                chunks += 1;
                log.lock().unwrap().push(format!("big {chunks}"));
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
            chunks
        })
    };
    started_rx.await.unwrap();
    handle
        .hash_and_insert(small, author, "x", b"y")
        .await
        .unwrap();
    log.lock().unwrap().push("small".into());
    assert_eq!(query.await.unwrap(), 50);
    let log = log.lock().unwrap();
    let small_at = log.iter().position(|l| l == "small").unwrap();
    // The small request waited for at most a couple of chunks, not for the whole query.
    assert!(
        small_at <= 4,
        "small request completed at position {small_at}: {log:?}"
    );
}

/// Local writes that wait together are signed together; each still gets its own verdict: a
/// write by an unknown author or to a document that is not open fails alone, the others are
/// stored with valid signatures and the entry that was returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_signed_together_fail_alone_and_verify() {
    let handle = SyncHandle::spawn(MemStore::new(), ActorConfig::default());
    let author = handle.create_author().await.unwrap();
    let unknown = sync_core::Author::from_bytes(&[99; 32]).id();
    let ns = handle.create_replica().await.unwrap().id();
    let closed = handle.create_replica().await.unwrap().id();
    let _guard = handle.open(ns, OpenOptions::default()).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..24usize {
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..20 {
                let (doc, who) = match (t + i) % 7 {
                    0 => (ns, unknown),
                    1 => (closed, author),
                    _ => (ns, author),
                };
                let key = format!("t{t:02}/{i:02}");
                let result = handle
                    .hash_and_insert(doc, who, key.clone(), key.clone())
                    .await;
                results.push(((t + i) % 7, key, result));
            }
            results
        }));
    }
    let mut stored = 0;
    for task in tasks {
        for (kind, key, result) in task.await.unwrap() {
            match kind {
                0 => assert!(
                    matches!(result, Err(sync_actor::ActorError::AuthorNotFound(a)) if a == unknown),
                    "{key}: {result:?}"
                ),
                1 => assert!(
                    matches!(result, Err(sync_actor::ActorError::NotOpen(d)) if d == closed),
                    "{key}: {result:?}"
                ),
                _ => {
                    assert_eq!(result.unwrap(), sync_core::ContentHash::of(key.as_bytes()));
                    stored += 1;
                }
            }
        }
    }
    let all = handle.query(ns, Query::all()).collect().await.unwrap();
    assert_eq!(all.len(), stored);
    for e in &all {
        e.verify().unwrap();
        assert_eq!(e.author(), author);
        assert_eq!(e.content_hash(), sync_core::ContentHash::of(e.key()));
    }
}
