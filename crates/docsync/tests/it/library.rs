//! Two nodes in process, through the library API.

use docsync::{Event, Node, Query, Received, ShareMode};

#[tokio::test]
async fn two_nodes_share_set_get_delete() {
    let alice = Node::memory().spawn().await.unwrap();
    let bob = Node::memory().spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let a = alice.default_author().await.unwrap();
    doc.set(a, "greeting", "hello bob").await.unwrap();
    doc.set(a, "tmp/1", "x").await.unwrap();
    doc.set(a, "tmp/2", "y").await.unwrap();
    // Alice reads her own content back.
    let got = doc.get("greeting").await.unwrap().unwrap();
    assert_eq!(got.content.as_deref(), Some(&b"hello bob"[..]));

    let ticket = doc.share(ShareMode::Write).await.unwrap();
    let text = ticket.to_string();
    assert!(text.starts_with("doc"));
    let parsed: docsync::DocTicket = text.parse().unwrap();
    assert_eq!(parsed, ticket);

    let (bdoc, syncs) = bob.join(&ticket).await.unwrap();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0].outcome.entries_inserted, 3);
    let got = bdoc.get("greeting").await.unwrap().unwrap();
    assert_eq!(got.entry.content_len(), 9);
    got.entry.verify().unwrap();
    // The content follows the sync from alice, who holds it.
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        bdoc.wait_content(&got.entry),
    )
    .await
    .expect("the content arrives")
    .unwrap();
    let value = bdoc.read_to_bytes(&got.entry).await.unwrap();
    assert_eq!(&value[..], b"hello bob");

    // Bob deletes tmp/ (his own entries only: none) and writes; alice deletes hers.
    let b = bob.default_author().await.unwrap();
    bdoc.set(b, "from-bob", "hi").await.unwrap();
    assert_eq!(doc.delete(a, "tmp/").await.unwrap(), 2);
    let mut events = bdoc.subscribe().await.unwrap();
    let finished = bdoc.sync_with(alice.addr()).await.unwrap();
    assert_eq!(finished.outcome.entries_inserted, 1, "the deletion marker");
    let live = Query::all();
    let (ea, eb) = (
        doc.query(live.clone()).await.unwrap(),
        bdoc.query(live).await.unwrap(),
    );
    assert_eq!(ea, eb);
    let keys: Vec<&[u8]> = ea.iter().map(|e| e.key()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&&b"greeting"[..]) && keys.contains(&&b"from-bob"[..]));
    match events.recv().await {
        Some(Received::Event(Event::RemoteInsert { entry, .. })) => {
            assert!(entry.record().is_empty());
            assert_eq!(entry.key(), b"tmp/");
        }
        other => panic!("expected the remote deletion marker, got {other:?}"),
    }
    alice.shutdown().await.unwrap();
    bob.shutdown().await.unwrap();
}

#[tokio::test]
async fn persistent_node_keeps_documents_identity_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let (id, author, doc_id) = {
        let node = Node::persistent(dir.path()).spawn().await.unwrap();
        let doc = node.create_doc().await.unwrap();
        let author = node.default_author().await.unwrap();
        doc.set(author, "k", "persisted").await.unwrap();
        node.shutdown().await.unwrap();
        (node.id(), author, doc.id())
    };
    let node = Node::persistent(dir.path()).spawn().await.unwrap();
    assert_eq!(node.id(), id, "the node key persists");
    assert_eq!(node.default_author().await.unwrap(), author);
    let doc = node.open_doc(doc_id).await.unwrap();
    let got = doc.get("k").await.unwrap().unwrap();
    assert_eq!(got.content.as_deref(), Some(&b"persisted"[..]));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_document_and_bad_tickets_are_clear_errors() {
    let node = Node::memory().spawn().await.unwrap();
    let unknown = docsync::NamespaceSecret::generate().id();
    let err = node.open_doc(unknown).await.unwrap_err();
    assert!(
        matches!(err, docsync::Error::UnknownDocument(id) if id == unknown),
        "{err}"
    );
    for bad in ["", "doc", "docxyz!", "blob123", "docaaaa"] {
        assert!(bad.parse::<docsync::DocTicket>().is_err(), "{bad:?} parsed");
    }
    node.shutdown().await.unwrap();
}
