//! Content between nodes: values written on one node are readable, byte for byte, on another.

use std::time::Duration;

use bytes::Bytes;
use docsync::{ContentStatus, Doc, DownloadPolicy, FilterKind, Node, ShareMode, SignedEntry};

/// The usual bound on a wait, so a broken implementation fails instead of hanging.
const WAIT: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {WAIT:?}"))
}

async fn read_when_ready(doc: &Doc, entry: &SignedEntry) -> Bytes {
    within("content download", doc.wait_content(entry))
        .await
        .unwrap();
    doc.read_to_bytes(entry).await.unwrap()
}

#[tokio::test]
async fn concurrent_writers_on_a_persistent_node_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::persistent(dir.path()).spawn().await.unwrap();
    let doc = node.create_doc().await.unwrap();
    let author = node.default_author().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8u32 {
        let doc = node.open_doc(doc.id()).await.unwrap();
        tasks.spawn(async move {
            for i in 0..100u32 {
                doc.set(author, format!("{writer}/{i}"), format!("v{i}"))
                    .await
                    .unwrap();
            }
        });
    }
    within("8 writers", async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    })
    .await;
    let got = doc.get("3/42").await.unwrap().unwrap();
    assert_eq!(got.content.as_deref(), Some(&b"v42"[..]));
    node.shutdown().await.unwrap();
}

/// Writes `count` values on `doc` as 8 concurrent writers; returns them by key.
async fn write_values(node: &Node, doc: &Doc, count: u32, size: usize) -> Vec<(String, Bytes)> {
    let author = node.default_author().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8u32 {
        let doc = node.open_doc(doc.id()).await.unwrap();
        tasks.spawn(async move {
            let mut written = Vec::new();
            for i in (writer..count).step_by(8) {
                let key = format!("k/{i:06}");
                let mut value = format!("value {i} ").into_bytes();
                value.resize(size.max(value.len()), b'.');
                let value = Bytes::from(value);
                doc.set(author, key.clone(), value.clone()).await.unwrap();
                written.push((key, value));
            }
            written
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

#[tokio::test]
async fn thousands_of_small_values_arrive_after_one_sync() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = Node::persistent(a.path()).spawn().await.unwrap();
    let bob = Node::persistent(b.path()).spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let values = write_values(&alice, &doc, 2000, 100).await;
    let ticket = doc.share(ShareMode::Read).await.unwrap();
    let (bdoc, _) = within("join", bob.join(&ticket)).await.unwrap();
    for (key, value) in &values {
        let entry = bdoc.get_entry(key.clone()).await.unwrap().unwrap();
        assert_eq!(&read_when_ready(&bdoc, &entry).await, value, "{key}");
        assert_eq!(
            bdoc.content_status(&entry).await.unwrap(),
            ContentStatus::Complete
        );
    }
    let status = bob.content().downloads().status().await;
    assert_eq!((status.wanted, status.completed), (0, 2000));
}

/// A value of `len` bytes that differs at every offset from its neighbours' (not all zeros).
fn pattern(len: usize, seed: u8) -> Bytes {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn values_of_every_size_arrive_byte_identical() {
    let alice = Node::memory().spawn().await.unwrap();
    let bob = Node::memory().spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let author = alice.default_author().await.unwrap();
    // An empty value is what marks a deletion (empty hash and length 0), so it is refused as a
    // value, as iroh-docs refuses it.
    let empty = doc.set(author, "empty", Bytes::new()).await.unwrap_err();
    assert!(empty.to_string().contains("empty"), "{empty}");
    let sizes = [1usize, 2, 16 * 1024, 16 * 1024 + 3, 1 << 20, (1 << 20) + 1];
    for (i, size) in sizes.iter().enumerate() {
        doc.set(author, format!("v/{i}"), pattern(*size, i as u8))
            .await
            .unwrap();
    }
    let bdoc = bob
        .import_doc(doc.share(ShareMode::Read).await.unwrap().capability)
        .await
        .unwrap();
    within("sync", bdoc.sync_with(alice.addr())).await.unwrap();
    for (i, size) in sizes.iter().enumerate() {
        let entry = bdoc.get_entry(format!("v/{i}")).await.unwrap().unwrap();
        assert_eq!(
            read_when_ready(&bdoc, &entry).await,
            pattern(*size, i as u8),
            "size {size}"
        );
    }
}

/// The 256 MiB case: streamed in and out of files on both sides, never held in memory whole.
#[tokio::test]
async fn a_256_mib_value_arrives_byte_identical_through_files() {
    let (a, b, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let source = files.path().join("big.bin");
    {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        for chunk in 0..256u32 {
            out.write_all(&pattern(1 << 20, chunk as u8)).unwrap();
        }
    }
    let alice = Node::persistent(a.path()).spawn().await.unwrap();
    let bob = Node::persistent(b.path()).spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let author = alice.default_author().await.unwrap();
    let written = within("import", doc.set_file(author, "big", &source))
        .await
        .unwrap();
    assert_eq!(written.content_len(), 256 << 20);
    let bdoc = bob
        .import_doc(doc.share(ShareMode::Read).await.unwrap().capability)
        .await
        .unwrap();
    within("sync", bdoc.sync_with(alice.addr())).await.unwrap();
    let entry = bdoc.get_entry("big").await.unwrap().unwrap();
    within("download", bdoc.wait_content(&entry)).await.unwrap();
    let target = files.path().join("copy.bin");
    assert_eq!(bdoc.export(&entry, &target).await.unwrap(), 256 << 20);
    assert!(
        files_equal(&source, &target),
        "the exported copy differs from the source"
    );
}

fn files_equal(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::io::Read as _;
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        let mut m = 0;
        while m < n {
            let r = fb.read(&mut bb[m..n]).unwrap();
            if r == 0 {
                return false;
            }
            m += r;
        }
        if n == 0 {
            return fb.read(&mut bb).unwrap() == 0;
        }
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

#[tokio::test]
async fn a_provider_that_goes_away_is_replaced_by_another() {
    let alice = Node::memory().spawn().await.unwrap();
    let carol = Node::memory().spawn().await.unwrap();
    let bob = Node::memory().spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let author = alice.default_author().await.unwrap();
    let value = pattern(32 << 20, 7);
    doc.set(author, "big", value.clone()).await.unwrap();
    let capability = doc.share(ShareMode::Read).await.unwrap().capability;
    // Carol holds the content too.
    let cdoc = carol.import_doc(capability.clone()).await.unwrap();
    within("carol syncs", cdoc.sync_with(alice.addr()))
        .await
        .unwrap();
    let centry = cdoc.get_entry("big").await.unwrap().unwrap();
    within("carol downloads", cdoc.wait_content(&centry))
        .await
        .unwrap();

    // Bob learns the entry from alice, who stops right away: her transfer to bob (if it
    // started) breaks off, and the only provider bob knows is gone.
    let bdoc = bob.import_doc(capability).await.unwrap();
    within("bob syncs with alice", bdoc.sync_with(alice.addr()))
        .await
        .unwrap();
    alice.shutdown().await.unwrap();
    let entry = bdoc.get_entry("big").await.unwrap().unwrap();
    // A sync with carol makes her a provider; she completes the value.
    within("bob syncs with carol", bdoc.sync_with(carol.addr()))
        .await
        .unwrap();
    assert_eq!(read_when_ready(&bdoc, &entry).await, value);
}

#[tokio::test]
async fn a_policy_change_brings_in_what_was_skipped() {
    let alice = Node::memory().spawn().await.unwrap();
    let bob = Node::memory().spawn().await.unwrap();
    let doc = alice.create_doc().await.unwrap();
    let author = alice.default_author().await.unwrap();
    doc.set(author, "keep/a", "wanted").await.unwrap();
    doc.set(author, "skip/b", "not yet").await.unwrap();
    let bdoc = bob
        .import_doc(doc.share(ShareMode::Read).await.unwrap().capability)
        .await
        .unwrap();
    let only_keep = DownloadPolicy::NothingExcept(vec![FilterKind::Prefix("keep/".into())]);
    bdoc.set_download_policy(only_keep).await.unwrap();
    within("sync", bdoc.sync_with(alice.addr())).await.unwrap();
    let kept = bdoc.get_entry("keep/a").await.unwrap().unwrap();
    assert_eq!(&read_when_ready(&bdoc, &kept).await[..], b"wanted");
    bob.content().settled(bdoc.id()).await.unwrap();
    let skipped = bdoc.get_entry("skip/b").await.unwrap().unwrap();
    assert_eq!(
        bdoc.content_status(&skipped).await.unwrap(),
        ContentStatus::Missing
    );
    assert_eq!(
        bob.content().downloads().status().await.wanted,
        0,
        "nothing else is wanted"
    );

    bdoc.set_download_policy(DownloadPolicy::default())
        .await
        .unwrap();
    assert_eq!(&read_when_ready(&bdoc, &skipped).await[..], b"not yet");
}

#[tokio::test]
async fn pending_downloads_resume_after_a_restart() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = Node::persistent(a.path()).spawn().await.unwrap();
    let port = alice.addr().ip_addrs().next().unwrap().port();
    let doc = alice.create_doc().await.unwrap();
    let author = alice.default_author().await.unwrap();
    doc.set(author, "later", "fetched after the restart")
        .await
        .unwrap();
    let capability = doc.share(ShareMode::Read).await.unwrap().capability;

    // A dial to the stopped alice fails by its stall timeout: keep that short.
    let quick = docsync::DownloadOptions::default().with_stall_timeout(Duration::from_secs(2));
    let bob = Node::persistent(b.path())
        .downloads(quick)
        .spawn()
        .await
        .unwrap();
    let bdoc = bob.import_doc(capability).await.unwrap();
    bdoc.set_download_policy(DownloadPolicy::NothingExcept(vec![]))
        .await
        .unwrap();
    within("sync", bdoc.sync_with(alice.addr())).await.unwrap();
    // Alice goes away before bob wants the content: his download is pending when he stops.
    drop(doc);
    alice.shutdown().await.unwrap();
    drop(alice);
    bdoc.set_download_policy(DownloadPolicy::default())
        .await
        .unwrap();
    let entry = bdoc.get_entry("later").await.unwrap().unwrap();
    bob.content().settled(bdoc.id()).await.unwrap();
    assert_eq!(
        bdoc.content_status(&entry).await.unwrap(),
        ContentStatus::Missing
    );
    let id = bdoc.id();
    drop(bdoc);
    bob.shutdown().await.unwrap();
    drop(bob);

    // Both come back; bob finds alice through his stored addresses, with no sync call.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let alice = spawn_bound(a.path(), addr).await;
    let _adoc = alice.open_doc(id).await.unwrap();
    let bob = Node::persistent(b.path()).spawn().await.unwrap();
    let bdoc = bob.open_doc(id).await.unwrap();
    assert_eq!(
        &read_when_ready(&bdoc, &entry).await[..],
        b"fetched after the restart"
    );
    bob.shutdown().await.unwrap();
    alice.shutdown().await.unwrap();
}

/// A persistent node on `addr`: the socket of the node that had it before is released when
/// the last task holding its endpoint ends, shortly after its shutdown, so binding is retried.
async fn spawn_bound(dir: &std::path::Path, addr: std::net::SocketAddr) -> Node {
    within("rebinding the port", async {
        loop {
            match Node::persistent(dir).bind_addr(addr).spawn().await {
                Ok(node) => return node,
                Err(e) if e.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn garbage_collection_takes_only_what_no_entry_references() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::persistent(dir.path())
        .gc(docsync::GcOptions::every(Duration::from_millis(100)))
        .spawn()
        .await
        .unwrap();
    let doc = node.create_doc().await.unwrap();
    let author = node.default_author().await.unwrap();
    let gone = doc.set(author, "old", pattern(40_000, 1)).await.unwrap();
    let kept = doc.set(author, "keep", pattern(40_000, 2)).await.unwrap();
    let overwritten = doc.set(author, "keep2", pattern(20_000, 3)).await.unwrap();
    doc.set(author, "keep2", pattern(20_000, 4)).await.unwrap();
    assert_eq!(doc.delete(author, "old").await.unwrap(), 1);
    node.flush().await.unwrap();
    let content = node.content().content();
    within("collection of unreferenced content", async {
        while content.status(gone).await.unwrap() != ContentStatus::Missing
            || content.status(overwritten).await.unwrap() != ContentStatus::Missing
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        !content.is_complete(&gone),
        "collected content is not advertised"
    );
    assert_eq!(content.status(kept).await.unwrap(), ContentStatus::Complete);
    let entry = doc.get_entry("keep").await.unwrap().unwrap();
    assert_eq!(doc.read_to_bytes(&entry).await.unwrap(), pattern(40_000, 2));
    node.shutdown().await.unwrap();
}
