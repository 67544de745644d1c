//! Two peers in one process: both write to one document, sync once, and compare.
//!
//! ```sh
//! cargo run -p docsync --example two_peers
//! ```
//!
//! Both nodes live in memory and bind 127.0.0.1 with relays and discovery off (the default of
//! `Node::memory()`), so nothing leaves the machine. Exits non-zero if the peers end different.

use anyhow::{Context, bail};
use std::time::Duration;

use docsync::{Node, Query, ShareMode};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = run(5).await?;
    println!(
        "both peers hold the same {} entries ({} received by bob, {} sent by bob)",
        report.entries, report.received_by_bob, report.sent_by_bob
    );
    Ok(())
}

/// What the run saw.
#[derive(Debug)]
pub struct Report {
    /// Entries on each side after the sync.
    pub entries: usize,
    /// Entries bob received and stored.
    pub received_by_bob: u64,
    /// Entries bob sent to alice.
    pub sent_by_bob: u64,
}

/// Each peer writes `per_peer` entries, then bob syncs with alice. Fails if they differ.
pub async fn run(per_peer: u32) -> anyhow::Result<Report> {
    // Two nodes: in memory, offline, on loopback.
    let alice = Node::memory().spawn().await?;
    let bob = Node::memory().spawn().await?;

    // Alice creates a document and hands bob a write ticket (the text would do as well:
    // `ticket.to_string()` and `.parse()`).
    let alice_doc = alice.create_doc().await?;
    let ticket = alice_doc.share(ShareMode::Write).await?;
    let bob_doc = bob.import_doc(ticket.capability.clone()).await?;

    // Both write, each as its node's default author.
    let (a, b) = (alice.default_author().await?, bob.default_author().await?);
    for i in 0..per_peer {
        alice_doc
            .set(a, format!("alice/{i}"), format!("from alice #{i}"))
            .await?;
        bob_doc
            .set(b, format!("bob/{i}"), format!("from bob #{i}"))
            .await?;
    }

    // One sync session, dialed by bob: afterwards both sides hold both sets.
    let finished = bob_doc
        .sync_with(alice.addr())
        .await
        .context("bob syncs with alice")?;

    // Print what each side holds: the content of the other side's entries is fetched from
    // it after the sync; wait for each value before reading it.
    let all = Query::all();
    let alice_has = alice_doc.query(all.clone()).await?;
    let bob_has = bob_doc.query(all).await?;
    for (name, doc, entries) in [
        ("alice", &alice_doc, &alice_has),
        ("bob", &bob_doc, &bob_has),
    ] {
        println!("{name} holds {} entries:", entries.len());
        for entry in entries {
            tokio::time::timeout(Duration::from_secs(30), doc.wait_content(entry))
                .await
                .context("the value did not arrive within 30 s")??;
            let value = String::from_utf8_lossy(&doc.read_to_bytes(entry).await?).into_owned();
            println!("  {}\t{value}", String::from_utf8_lossy(entry.key()));
        }
    }
    if alice_has != bob_has {
        bail!("the peers differ after syncing");
    }

    alice.shutdown().await?;
    bob.shutdown().await?;
    Ok(Report {
        entries: alice_has.len(),
        received_by_bob: finished.outcome.entries_inserted,
        sent_by_bob: finished.outcome.entries_sent,
    })
}
