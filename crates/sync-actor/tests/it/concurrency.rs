//! Many tasks at once, slow subscribers, fairness between documents.

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

/// A query is fetched one chunk per request, so a query that is half read holds nothing in the
/// actor: while its reader waits after the first chunk, a write to another document completes,
/// and the query then goes on from where it stopped and yields every entry once.
///
/// (The reader is held on purpose: when both run freely, how many chunks are served before the
/// write's reply is scheduled depends on the machine, since the actor serves on while a local
/// write is being signed.)
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
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (resume_tx, resume_rx) = tokio::sync::oneshot::channel::<()>();
    let query = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut stream = handle.query(big, Query::all());
            let first = stream.next_chunk().await.unwrap().unwrap();
            let mut keys: Vec<Vec<u8>> = first.iter().map(|e| e.key().to_vec()).collect();
            let mut chunks = 1;
            started_tx.send(()).unwrap();
            resume_rx.await.unwrap();
            while let Some(chunk) = stream.next_chunk().await.unwrap() {
                assert!(chunk.len() <= 10, "a chunk of {} entries", chunk.len());
                keys.extend(chunk.iter().map(|e| e.key().to_vec()));
                chunks += 1;
            }
            (chunks, keys)
        })
    };
    started_rx.await.unwrap();
    // The timeout only turns a hang (a query that held the actor) into a failure.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        handle.hash_and_insert(small, author, "x", b"y"),
    )
    .await
    .expect("a write to another document waits for a query that is half read")
    .unwrap();
    let got = handle.query(small, Query::all()).collect().await.unwrap();
    assert_eq!(got.len(), 1, "the write is stored while the query is open");
    resume_tx.send(()).unwrap();
    let (chunks, keys) = query.await.unwrap();
    assert_eq!(chunks, 50);
    let want: Vec<Vec<u8>> = (0..500).map(|i| format!("k{i:04}").into_bytes()).collect();
    assert_eq!(
        keys, want,
        "the query resumes where it stopped, each entry once"
    );
}

/// Local writes that wait together are signed together; each still gets its own verdict: a
/// write by an unknown author or to a document that is not open fails alone, the others are
/// stored with valid signatures and the entry that was returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_signed_together_fail_alone_and_verify() {
    let handle = crate::mem_actor();
    let (author, ns, _guard) = crate::open_doc(&handle).await;
    let unknown = sync_core::Author::from_bytes(&[99; 32]).id();
    let closed = handle.create_replica().await.unwrap().id();
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

/// Local writes are signed off the actor thread while it serves other requests, but every
/// request still sees the writes asked for before it: a read right behind a write finds it,
/// and a prefix deletion right behind writes under the prefix removes them (had it run first,
/// its newer marker would have refused them). Many writers keep the signing threads busy
/// meanwhile, and shutting down right after stores every write that was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_see_the_local_writes_asked_for_before_them() {
    let handle = crate::mem_actor();
    let (author, ns, guard) = crate::open_doc(&handle).await;
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("busy/{t}/{i:02}");
                handle
                    .hash_and_insert(ns, author, key.clone(), key)
                    .await
                    .unwrap();
            }
        }));
    }
    for i in 0..40 {
        let key = format!("read/{i:02}");
        // `join!` polls in order: the write is queued before the read.
        let (written, read) = tokio::join!(
            handle.hash_and_insert(ns, author, key.clone(), key.clone()),
            handle.get_exact(ns, author, key.clone(), false),
        );
        let hash = written.unwrap();
        let found = read
            .unwrap()
            .unwrap_or_else(|| panic!("{key} written before the read"));
        assert_eq!(found.content_hash(), hash);

        let prefix = format!("gone/{i:02}/");
        let (a, b, removed) = tokio::join!(
            handle.hash_and_insert(ns, author, format!("{prefix}a"), "a"),
            handle.hash_and_insert(ns, author, format!("{prefix}b"), "b"),
            handle.delete_prefix(ns, author, prefix.clone()),
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(
            removed.unwrap(),
            2,
            "{prefix}: both writes were stored first"
        );
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = handle.query(ns, Query::all()).collect().await.unwrap();
    let count = |p: &str| {
        all.iter()
            .filter(|e| e.key().starts_with(p.as_bytes()))
            .count()
    };
    assert_eq!(count("busy/"), 8 * 25);
    assert_eq!(count("read/"), 40);
    // Nothing is left under "gone/" (the query skips the deletion markers).
    assert_eq!(count("gone/"), 0);

    // Writes still being signed when the shutdown arrives are stored before the store is
    // handed back: every acknowledged write is in it.
    let writes: Vec<_> = (0..64u8)
        .map(|i| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let key = format!("last/{i:02}");
                (
                    key.clone(),
                    handle.hash_and_insert(ns, author, key, [i]).await,
                )
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let mut store: MemStore = handle.shutdown().await.unwrap();
    let mut acknowledged = 0;
    for write in writes {
        let (key, result) = write.await.unwrap();
        match result {
            Ok(hash) => {
                acknowledged += 1;
                let entry =
                    sync_core::Store::get_exact(&mut store, &ns, &author, key.as_bytes(), false)
                        .unwrap()
                        .unwrap_or_else(|| panic!("{key} was acknowledged but is not stored"));
                assert_eq!(entry.content_hash(), hash);
            }
            Err(e) => assert!(matches!(e, sync_actor::ActorError::Stopped), "{key}: {e:?}"),
        }
    }
    eprintln!("{acknowledged} of 64 writes were acknowledged before the shutdown");
    drop(guard);
}
