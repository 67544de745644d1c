//! A node on a data directory: write, shut down, reopen, read back.
//!
//! ```sh
//! cargo run -p docsync --example persistent            # in a temporary directory
//! cargo run -p docsync --example persistent -- my-data # in ./my-data (kept)
//! ```
//!
//! The directory holds the redb store (`docs.redb`), the content (an iroh-blobs store) and the node's key, so
//! the documents, the default author, the content and the node id all survive a restart.

use std::path::Path;

use anyhow::{Context, bail};
use docsync::Node;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args_os().nth(1) {
        Some(dir) => run(Path::new(&dir)).await,
        None => {
            let tmp = tempfile::tempdir()?;
            run(tmp.path()).await
        }
    }
}

/// Writes to a new document in `dir`, closes the node, reopens it and reads the value back.
pub async fn run(dir: &Path) -> anyhow::Result<()> {
    // First run: create a document and write to it.
    let node = Node::persistent(dir).spawn().await?;
    let doc = node.create_doc().await?;
    let author = node.default_author().await?;
    doc.set(author, "greeting", "hello from the first run")
        .await?;
    let (node_id, doc_id) = (node.id(), doc.id());
    println!(
        "wrote document {doc_id} as node {node_id} in {}",
        dir.display()
    );
    // Shutting down commits everything and releases the store file.
    node.shutdown().await?;

    // Second run: the same directory gives back the same node, document and value.
    let node = Node::persistent(dir).spawn().await?;
    if node.id() != node_id {
        bail!("the node id changed across the restart");
    }
    let doc = node.open_doc(doc_id).await?;
    let entry = doc
        .get("greeting")
        .await?
        .context("the entry did not survive the restart")?;
    let value = entry.content.context("the content did not survive")?;
    println!("read back: {}", String::from_utf8_lossy(&value));
    if &value[..] != b"hello from the first run" || entry.entry.author() != author {
        bail!("read back something else than was written");
    }
    node.shutdown().await?;
    Ok(())
}
