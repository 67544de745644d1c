//! Content against a real iroh-docs 0.101 node (with iroh-blobs 0.103) running in this process:
//! values written on one side are fetched by the other over iroh-blobs' `/iroh-bytes/4`, in
//! both directions and with either side dialing, and compared byte for byte. A plain iroh-blobs
//! client asking our node for a hash it does not hold gets a clean failure, and the node keeps
//! serving. In-memory stores on both sides, offline endpoints, loopback only: run inside the
//! loopback-only namespace (`/work/shared/tools/offline`).
//!
//! Every wait is bounded by [`WAIT`]; nothing sleeps to synchronise. Waits on the reference's
//! side follow its event stream (which is read throughout, as its actor waits for slow
//! subscribers) and check its blob store after every event.

use std::collections::BTreeMap;
use std::future::Future;

use docsync::{ContentHash, ContentStatus, Node, Query, ShareMode, SignedEntry};
use interop_tests::nodes::{RefNode, WAIT};
use iroh_docs::api::protocol::{AddrInfoOptions, ShareMode as TheirShareMode};
use iroh_docs::engine::LiveEvent;
use n0_future::{Stream, StreamExt as _};
use tokio::io::AsyncReadExt as _;

/// The sizes every direction moves: one byte, either side of a 1 KiB chunk and of a 16 KiB
/// chunk group (where bao's verified ranges change shape), 100 KiB, and 1 MiB + 7.
const SIZES: &[usize] = &[1, 1024, 1025, 16 * 1024 + 1, 100 * 1024, 1024 * 1024 + 7];

/// `len` bytes that differ from key to key and from position to position (BLAKE3's output
/// stream seeded with the key), so a value read at the wrong key or offset does not match.
fn value(key: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"docsync content interop: ")
        .update(key.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The keys and values of one test, in key order.
fn values(side: &str) -> BTreeMap<String, Vec<u8>> {
    SIZES
        .iter()
        .map(|&len| {
            let key = format!("{side}/{len:08}");
            let v = value(&key, len);
            (key, v)
        })
        .collect()
}

/// `fut` within [`WAIT`], or a panic naming what did not happen.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not within {WAIT:?}"),
    }
}

fn their_hash(hash: ContentHash) -> iroh_blobs::Hash {
    iroh_blobs::Hash::from_bytes(*hash.as_bytes())
}

/// Whether the reference's blob store holds `hash` complete.
async fn their_complete(theirs: &RefNode, hash: iroh_blobs::Hash) -> bool {
    matches!(
        theirs.blobs.blobs().status(hash).await.unwrap(),
        iroh_blobs::api::blobs::BlobStatus::Complete { .. }
    )
}

/// Reads the reference's events of the document until it has announced every hash of `wanted`
/// as `ContentReady` (a finished download) and its blob store holds each complete, within
/// [`WAIT`]. On a timeout, panics with the hashes still missing and every event seen.
async fn their_content_arrives(
    theirs: &RefNode,
    events: impl Stream<Item = anyhow::Result<LiveEvent>>,
    wanted: &[iroh_blobs::Hash],
) {
    let mut events = std::pin::pin!(events);
    let mut seen: Vec<String> = Vec::new();
    let mut ready = Vec::new();
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            if wanted.iter().all(|h| ready.contains(h)) {
                let mut missing = 0;
                for hash in wanted {
                    if !their_complete(theirs, *hash).await {
                        missing += 1;
                    }
                }
                if missing == 0 {
                    return;
                }
            }
            match events.next().await {
                Some(Ok(event)) => {
                    if let LiveEvent::ContentReady { hash } = &event {
                        ready.push(*hash);
                    }
                    seen.push(format!("{event:?}"));
                }
                Some(Err(e)) => panic!("the reference's event stream failed: {e:#}"),
                None => panic!("the reference's event stream ended; events: {seen:#?}"),
            }
        }
    })
    .await;
    if waited.is_err() {
        let mut missing = Vec::new();
        for hash in wanted {
            if !their_complete(theirs, *hash).await {
                missing.push(hash.to_hex());
            }
        }
        let unannounced: Vec<String> = wanted
            .iter()
            .filter(|h| !ready.contains(h))
            .map(|h| h.to_hex())
            .collect();
        panic!(
            "the reference does not hold {} of {} values within {WAIT:?}: missing {missing:?}, \
             no ContentReady for {unannounced:?}; its events: {seen:#?}",
            missing.len(),
            wanted.len()
        );
    }
}

/// Our entry at `key` (any author), which must exist.
async fn our_entry(doc: &docsync::Doc, key: &str) -> SignedEntry {
    doc.get_entry(key.to_string())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no entry at {key} here"))
}

/// Writes `values` in our document as our default author; returns the hash of each key.
async fn write_ours(
    node: &Node,
    doc: &docsync::Doc,
    values: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, ContentHash> {
    let author = node.default_author().await.unwrap();
    // An empty value would be a deletion marker: neither side writes one as a value.
    assert!(
        doc.set(author, "empty", Vec::<u8>::new()).await.is_err(),
        "an empty value is refused, as iroh-docs refuses it"
    );
    let mut hashes = BTreeMap::new();
    for (key, v) in values {
        let hash = doc.set(author, key.clone(), v.clone()).await.unwrap();
        assert_eq!(hash, ContentHash::of(v));
        hashes.insert(key.clone(), hash);
    }
    hashes
}

/// Checks, on the reference, the entry of every key (hash and length of the value written)
/// and its content in the blob store, byte for byte.
async fn check_theirs(
    theirs: &RefNode,
    doc: &iroh_docs::api::Doc,
    author: docsync::AuthorId,
    values: &BTreeMap<String, Vec<u8>>,
) {
    let author = iroh_docs::AuthorId::from(author.as_bytes());
    for (key, v) in values {
        let entry = doc
            .get_exact(author, key.clone(), false)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the reference has no entry at {key}"));
        assert_eq!(entry.content_len(), v.len() as u64, "length at {key}");
        assert_eq!(
            entry.content_hash().as_bytes(),
            blake3::hash(v).as_bytes(),
            "hash at {key}"
        );
        let bytes = theirs
            .blobs
            .blobs()
            .get_bytes(entry.content_hash())
            .await
            .unwrap_or_else(|e| panic!("the reference cannot read {key}: {e:#}"));
        assert_eq!(bytes.len(), v.len(), "length of the content at {key}");
        assert!(
            bytes.as_ref() == v.as_slice(),
            "the reference holds other bytes at {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_writes_we_fetch_exact_bytes() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();

    let their_doc = theirs.docs.create().await.unwrap();
    let author = theirs.docs.author_default().await.unwrap();
    // iroh-docs refuses an empty value (it would be a deletion marker) ...
    assert!(
        their_doc
            .set_bytes(author, "empty", Vec::<u8>::new())
            .await
            .is_err()
    );
    let written = values("theirs");
    for (key, v) in &written {
        let hash = their_doc
            .set_bytes(author, key.clone(), v.clone())
            .await
            .unwrap();
        assert_eq!(hash.as_bytes(), blake3::hash(v).as_bytes());
    }
    // ... so zero bytes of content travel as a deletion marker: an empty entry at "gone".
    their_doc
        .set_bytes(author, "gone", "soon gone")
        .await
        .unwrap();
    their_doc.del(author, "gone").await.unwrap();
    // Sharing puts the document in the reference's sync set, so it accepts our session.
    let text = their_doc
        .share(TheirShareMode::Write, AddrInfoOptions::Id)
        .await
        .unwrap()
        .to_string();
    let ticket: docsync::DocTicket = text.parse().unwrap();

    let doc = ours.import_doc(ticket.capability.clone()).await.unwrap();
    let finished = within("our sync", doc.sync_with(theirs.addr.clone()))
        .await
        .unwrap();
    // The values, the marker ("gone" replaced the entry it deleted).
    assert_eq!(finished.outcome.entries_inserted, written.len() as u64 + 1);

    for (key, v) in &written {
        let entry = our_entry(&doc, key).await;
        assert_eq!(entry.content_len(), v.len() as u64, "length at {key}");
        assert_eq!(entry.content_hash(), ContentHash::of(v), "hash at {key}");
        within(&format!("the content at {key}"), doc.wait_content(&entry))
            .await
            .unwrap();
        assert_eq!(
            doc.content_status(&entry).await.unwrap(),
            ContentStatus::Complete
        );
        let bytes = doc.read_to_bytes(&entry).await.unwrap();
        assert_eq!(bytes.len(), v.len(), "length of the content at {key}");
        assert!(bytes.as_ref() == v.as_slice(), "other bytes at {key}");
    }

    // The largest value through the reader and the export too.
    let (big_key, big) = written.iter().next_back().unwrap();
    let entry = our_entry(&doc, big_key).await;
    let mut reader = doc.reader(&entry).await.unwrap();
    let mut read = Vec::new();
    reader.read_to_end(&mut read).await.unwrap();
    assert!(read == *big, "the reader yields other bytes");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big");
    assert_eq!(doc.export(&entry, &target).await.unwrap(), big.len() as u64);
    assert!(
        std::fs::read(&target).unwrap() == *big,
        "the export differs"
    );

    // The marker is hidden from reads by key, and its content is the empty content.
    assert!(doc.get_entry("gone").await.unwrap().is_none());
    let all = doc
        .query(Query::all().with_include_empty(true))
        .await
        .unwrap();
    let marker = all
        .iter()
        .find(|e| e.key() == b"gone")
        .expect("the deletion marker arrived");
    assert_eq!(marker.content_hash(), ContentHash::EMPTY);
    assert_eq!(marker.content_len(), 0);
    within("the empty content", doc.wait_content(marker))
        .await
        .unwrap();
    assert!(doc.read_to_bytes(marker).await.unwrap().is_empty());

    // Each value was fetched once, and nothing is left wanted.
    let status = ours.content().downloads().status().await;
    eprintln!("our downloads: {status:?}");
    assert_eq!(status.wanted, 0, "{status:?}");
    assert_eq!(status.completed, written.len() as u64, "{status:?}");

    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_write_reference_fetches_exact_bytes_we_dial() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();
    let doc = ours.create_doc().await.unwrap();
    let written = values("ours");
    let hashes = write_ours(&ours, &doc, &written).await;
    let author = ours.default_author().await.unwrap();

    // The reference imports our document and puts it in its sync set with no peers: it
    // accepts our session and dials no one.
    let docsync::Capability::Write(secret) = doc.share(ShareMode::Write).await.unwrap().capability
    else {
        panic!("a write ticket carries the secret");
    };
    let their_doc = theirs.join(&secret, vec![]).await.unwrap();
    let events = their_doc.subscribe().await.unwrap();

    let finished = within("our sync", doc.sync_with(theirs.addr.clone()))
        .await
        .unwrap();
    assert_eq!(finished.outcome.entries_sent, written.len() as u64);

    let wanted: Vec<iroh_blobs::Hash> = hashes.values().map(|h| their_hash(*h)).collect();
    // It downloads each value (from us: no one else holds it).
    their_content_arrives(&theirs, events, &wanted).await;
    check_theirs(&theirs, &their_doc, author, &written).await;

    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_write_reference_dials_us_and_fetches() {
    let theirs = RefNode::spawn().await.unwrap();
    let ours = Node::memory().spawn().await.unwrap();
    let doc = ours.create_doc().await.unwrap();
    let written = values("ours");
    let hashes = write_ours(&ours, &doc, &written).await;
    let author = ours.default_author().await.unwrap();

    // Our ticket, with our address, in its text form: the reference parses it as its own and
    // importing it dials us.
    let text = doc.share(ShareMode::Write).await.unwrap().to_string();
    let ticket: iroh_docs::DocTicket = text.parse().unwrap();
    assert_eq!(ticket.nodes.len(), 1);
    assert_eq!(ticket.nodes[0].id, ours.id());
    let (their_doc, events) = within(
        "the reference's import",
        theirs.docs.import_and_subscribe(ticket),
    )
    .await
    .unwrap();
    assert_eq!(their_doc.id().as_bytes(), doc.id().as_bytes());

    let wanted: Vec<iroh_blobs::Hash> = hashes.values().map(|h| their_hash(*h)).collect();
    their_content_arrives(&theirs, events, &wanted).await;
    check_theirs(&theirs, &their_doc, author, &written).await;

    ours.shutdown().await.unwrap();
    theirs.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_blobs_client_asking_for_a_hash_we_do_not_hold_gets_a_clean_failure() {
    let ours = Node::memory().spawn().await.unwrap();
    let doc = ours.create_doc().await.unwrap();
    let author = ours.default_author().await.unwrap();
    let held = value("held", 1024 * 1024 + 7);
    let held_hash = their_hash(doc.set(author, "held", held.clone()).await.unwrap());
    // A hash no one holds: 32 random bytes.
    let absent = iroh_blobs::Hash::from_bytes(*iroh::SecretKey::generate().public().as_bytes());

    // A plain iroh-blobs client: a store of its own on an offline endpoint.
    let endpoint = sync_net::offline_endpoint(None).await.unwrap();
    let client = iroh_blobs::store::mem::MemStore::new();
    let conn = within(
        "the connection",
        endpoint.connect(ours.addr(), iroh_blobs::ALPN),
    )
    .await
    .unwrap();

    let failed = within(
        "the fetch of an absent hash",
        client.remote().fetch(conn.clone(), absent).complete(),
    )
    .await;
    match &failed {
        Ok(stats) => panic!("fetching an absent hash succeeded: {stats:?}"),
        Err(e) => eprintln!("fetching an absent hash fails: {e}"),
    }
    let status = client.blobs().status(absent).await.unwrap();
    eprintln!("the client's status of the absent hash: {status:?}");
    assert!(
        !matches!(status, iroh_blobs::api::blobs::BlobStatus::Complete { .. }),
        "{status:?}"
    );

    // The node keeps serving: on the same connection, and on a new one.
    let half = within(
        "the fetch of a held hash on the same connection",
        client.remote().fetch(conn.clone(), held_hash).complete(),
    )
    .await
    .unwrap_or_else(|e| panic!("the same connection no longer serves: {e:#}"));
    assert_eq!(half.payload_bytes_read, held.len() as u64);
    let bytes = client.blobs().get_bytes(held_hash).await.unwrap();
    assert!(bytes.as_ref() == held.as_slice(), "other bytes served");

    let again = iroh_blobs::store::mem::MemStore::new();
    let conn2 = within(
        "a second connection",
        endpoint.connect(ours.addr(), iroh_blobs::ALPN),
    )
    .await
    .unwrap();
    assert!(
        within(
            "a second fetch of an absent hash",
            again.remote().fetch(conn2.clone(), absent).complete(),
        )
        .await
        .is_err()
    );
    within(
        "the fetch of a held hash on a new connection",
        again.remote().fetch(conn2, held_hash).complete(),
    )
    .await
    .unwrap_or_else(|e| panic!("a new connection is not served: {e:#}"));
    let bytes = again.blobs().get_bytes(held_hash).await.unwrap();
    assert!(bytes.as_ref() == held.as_slice(), "other bytes served");

    conn.close(0u32.into(), b"done");
    endpoint.close().await;
    ours.shutdown().await.unwrap();
}
