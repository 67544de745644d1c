//! Tickets used for real: a ticket shared by a real iroh-docs 0.101 node is joined by the
//! docsync facade, and a docsync ticket is imported by iroh-docs, each time through the ticket's
//! text only, over loopback (offline endpoints on both sides: the facade's `Node::memory()`
//! and the harness's `RefNode`). Both sides write before the sync; they must end with the same
//! entries, byte for byte, signatures included. Run inside the loopback-only namespace.

use docsync::{CapabilityKind, Node, Query, ShareMode, SignedEntry};
use interop_tests::nodes::{
    RefNode, WAIT, same_entries, sync_finished_within, watch_sync_finished,
};
use iroh::Watcher as _;
use iroh_docs::api::protocol::{AddrInfoOptions, ShareMode as TheirShareMode};
use iroh_docs::engine::{LiveEvent, Origin, SyncEvent};
use n0_future::StreamExt as _;

fn assert_same(ours: &[SignedEntry], theirs: &[SignedEntry]) {
    if let Err(e) = same_entries(ours, theirs) {
        panic!("{e:#}");
    }
}

/// Right after binding, an endpoint's published address may not list its socket yet; the
/// reference puts that address in its tickets, so wait until it does.
async fn direct_addr_known(endpoint: &iroh::Endpoint) {
    let mut watcher = endpoint.watch_addr();
    tokio::time::timeout(WAIT, async {
        while watcher.get().ip_addrs().next().is_none() {
            watcher.updated().await.expect("the endpoint is alive");
        }
    })
    .await
    .expect("the reference's endpoint learns its own address");
}

async fn all_entries(doc: &docsync::Doc) -> Vec<SignedEntry> {
    doc.query(Query::all().with_include_empty(true))
        .await
        .unwrap()
}

/// Writes `n` entries on the reference's document as its default author.
async fn write_theirs(theirs: &RefNode, doc: &iroh_docs::api::Doc, n: usize) {
    let author = theirs.docs.author_default().await.unwrap();
    for i in 0..n {
        doc.set_bytes(
            author,
            format!("theirs/{i:03}"),
            format!("from iroh-docs {i}"),
        )
        .await
        .unwrap();
    }
}

async fn write_ours(node: &Node, doc: &docsync::Doc, n: usize) {
    let author = node.default_author().await.unwrap();
    for i in 0..n {
        doc.set(author, format!("ours/{i:03}"), format!("from docsync {i}"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docsync_joins_a_ticket_shared_by_iroh_docs() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();
    direct_addr_known(theirs.router.endpoint()).await;

    let their_doc = theirs.docs.create().await.unwrap();
    write_theirs(&theirs, &their_doc, 30).await;
    // The reference's own share: a write ticket with its direct addresses.
    let text = their_doc
        .share(TheirShareMode::Write, AddrInfoOptions::Addresses)
        .await
        .unwrap()
        .to_string();

    let ticket: docsync::DocTicket = text.parse().unwrap();
    assert_eq!(ticket.nodes.len(), 1);
    assert_eq!(ticket.nodes[0].id, theirs.addr.id);
    assert!(
        ticket.nodes[0].ip_addrs().all(|a| a.ip().is_loopback()),
        "{:?}",
        ticket.nodes[0]
    );
    // We write first, so entries cross in both directions within the ticket's session.
    let doc = ours.import_doc(ticket.capability.clone()).await.unwrap();
    write_ours(&ours, &doc, 12).await;

    let events = watch_sync_finished(&their_doc).await.unwrap();
    let (joined, syncs) = ours.join(&ticket).await.unwrap();
    assert_eq!(joined.id(), doc.id());
    assert_eq!(syncs.len(), 1, "one session with the ticket's one peer");
    assert_eq!(syncs[0].outcome.entries_inserted, 30);
    assert_eq!(syncs[0].outcome.entries_sent, 12);
    assert_eq!(syncs[0].outcome.entries_rejected, 0);
    let event: SyncEvent = sync_finished_within(events, WAIT).await.unwrap();
    assert_eq!(event.origin, Origin::Accept);
    let details = event.result.expect("the reference records success");
    assert_eq!((details.entries_received, details.entries_sent), (12, 30));

    let mine = all_entries(&joined).await;
    assert_eq!(mine.len(), 42);
    assert_same(&mine, &theirs.entries(&their_doc).await.unwrap());
    assert_eq!(
        ours.list_docs().await.unwrap(),
        vec![(joined.id(), CapabilityKind::Write)]
    );
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docsync_joins_a_read_ticket_shared_by_iroh_docs() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();
    direct_addr_known(theirs.router.endpoint()).await;
    let their_doc = theirs.docs.create().await.unwrap();
    write_theirs(&theirs, &their_doc, 8).await;
    let text = their_doc
        .share(TheirShareMode::Read, AddrInfoOptions::Addresses)
        .await
        .unwrap()
        .to_string();

    let ticket: docsync::DocTicket = text.parse().unwrap();
    let (doc, syncs) = ours.join(&ticket).await.unwrap();
    assert_eq!(syncs[0].outcome.entries_inserted, 8);
    assert_same(
        &all_entries(&doc).await,
        &theirs.entries(&their_doc).await.unwrap(),
    );
    // A read ticket gives read access only.
    assert_eq!(
        ours.list_docs().await.unwrap(),
        vec![(doc.id(), CapabilityKind::Read)]
    );
    assert!(doc.share(ShareMode::Write).await.is_err());
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iroh_docs_imports_a_ticket_shared_by_docsync() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();
    let doc = ours.create_doc().await.unwrap();
    write_ours(&ours, &doc, 25).await;
    let text = doc.share(ShareMode::Write).await.unwrap().to_string();

    // The reference parses our text.
    let ticket: iroh_docs::DocTicket = text.parse().unwrap();
    assert_eq!(ticket.nodes.len(), 1);
    assert_eq!(ticket.nodes[0].id, ours.id());
    assert_eq!(ticket.capability.id().as_bytes(), doc.id().as_bytes());
    // It writes first (importing the ticket's capability alone starts no sync), so entries
    // cross in both directions within the ticket's session.
    let their_doc = theirs
        .docs
        .import_namespace(ticket.capability.clone())
        .await
        .unwrap();
    write_theirs(&theirs, &their_doc, 9).await;
    // Importing the ticket dials its node: us.
    let (_, mut events) = theirs.docs.import_and_subscribe(ticket).await.unwrap();
    // Read every event (the reference's actor waits for slow subscribers) until its session
    // with us ends.
    let event = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let LiveEvent::SyncFinished(e) = event.unwrap() {
                return e;
            }
        }
        panic!("the reference's event stream ended");
    })
    .await
    .expect("the reference reports its session in time");
    assert_eq!(
        event.origin,
        Origin::Connect(iroh_docs::engine::SyncReason::DirectJoin)
    );
    assert_eq!(event.peer, ours.id());
    let details = event.result.expect("the reference's session succeeds");
    assert_eq!((details.entries_received, details.entries_sent), (25, 9));

    let mine = all_entries(&doc).await;
    assert_eq!(mine.len(), 34);
    assert_same(&mine, &theirs.entries(&their_doc).await.unwrap());
    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}
