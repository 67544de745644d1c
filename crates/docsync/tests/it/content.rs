//! Content between nodes: values written on one node are readable, byte for byte, on another.

use std::time::Duration;

use bytes::Bytes;
use docsync::{ContentStatus, Doc, Node, ShareMode, SignedEntry};

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
