//! Providers that lie or stall: the transfer fails, nothing wrong is stored or advertised, and
//! an honest provider completes the content afterwards.

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use iroh::address_lookup::memory::MemoryLookup;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointId};
use sync_core::{ContentHash, ContentStatus, NamespaceId};
use sync_engine::{ContentEvent, ContentStore, DownloadOptions, Downloads};

const WAIT: Duration = Duration::from_secs(60);

/// What a hostile provider does with a request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Answers with bytes that are not the content (a size, then noise).
    WrongBytes,
    /// Reads the request and never answers.
    Stall,
}

#[derive(Debug, Clone)]
struct Hostile(Behaviour);

impl ProtocolHandler for Hostile {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let _ = recv.read_to_end(1 << 20).await;
            match self.0 {
                Behaviour::WrongBytes => {
                    let mut answer = (64 * 1024u64).to_le_bytes().to_vec();
                    answer.extend((0..70_000u32).map(|i| (i * 31 % 251) as u8));
                    let _ = send.write_all(&answer).await;
                    let _ = send.finish();
                }
                Behaviour::Stall => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

async fn endpoint() -> Result<Endpoint> {
    Ok(sync_net::offline_endpoint(None).await?)
}

/// A router serving `handler` on the blobs ALPN; the returned id is registered in `book`.
async fn provider(
    handler: impl ProtocolHandler,
    book: &MemoryLookup,
) -> Result<(Router, EndpointId)> {
    let ep = endpoint().await?;
    book.add_endpoint_info(sync_net::dial_addr(&ep));
    let id = ep.id();
    Ok((
        Router::builder(ep)
            .accept(sync_engine::BLOBS_ALPN, handler)
            .spawn(),
        id,
    ))
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<ContentEvent>) -> ContentEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the bound")
        .expect("the queue runs")
}

async fn lying_provider_is_refused_then_an_honest_one_completes(
    behaviour: Behaviour,
) -> Result<()> {
    let value = Bytes::from(
        (0..200_000u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let hash = ContentHash::of(&value);
    let book = MemoryLookup::new();
    let (_hostile, hostile_id) = provider(Hostile(behaviour), &book).await?;
    let honest_store = ContentStore::memory();
    honest_store.import_bytes(value.clone()).await?;
    let (_honest, honest_id) = provider(sync_engine::blobs_protocol(&honest_store), &book).await?;

    let ours = ContentStore::memory();
    let ep = endpoint().await?;
    ep.address_lookup()?.add(book);
    let options = DownloadOptions::default().with_stall_timeout(Duration::from_millis(500));
    let downloads = Downloads::spawn(ours.clone(), &ep, options);
    let mut events = downloads.subscribe();
    let doc = NamespaceId::from_bytes([7; 32]);
    downloads.want(doc, hash, value.len() as u64, vec![hostile_id]);
    match next_event(&mut events).await {
        ContentEvent::Failed { peer, hash: h, .. } => assert_eq!((peer, h), (hostile_id, hash)),
        other => panic!("expected the hostile transfer to fail, got {other:?}"),
    }
    assert!(!ours.is_complete(&hash));
    assert_ne!(ours.status(hash).await?, ContentStatus::Complete);
    assert!(
        ours.read_to_bytes(hash).await.is_err(),
        "nothing wrong is readable"
    );

    downloads.add_providers(doc, vec![honest_id]);
    loop {
        match next_event(&mut events).await {
            ContentEvent::Ready { hash: h, namespace } => {
                assert_eq!((h, namespace), (hash, doc));
                break;
            }
            // The hostile provider may be tried again meanwhile, after its backoff.
            ContentEvent::Failed { peer, .. } => assert_eq!(peer, hostile_id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ours.read_to_bytes(hash).await?, value);
    Ok(())
}

#[tokio::test]
async fn a_provider_sending_wrong_bytes_is_refused() -> Result<()> {
    lying_provider_is_refused_then_an_honest_one_completes(Behaviour::WrongBytes).await
}

#[tokio::test]
async fn a_stalling_provider_times_out() -> Result<()> {
    lying_provider_is_refused_then_an_honest_one_completes(Behaviour::Stall).await
}

#[tokio::test]
async fn a_provider_sending_more_than_the_entry_says_is_cut_off() -> Result<()> {
    let value = Bytes::from(vec![9u8; 1 << 20]);
    let hash = ContentHash::of(&value);
    let book = MemoryLookup::new();
    let honest_store = ContentStore::memory();
    honest_store.import_bytes(value.clone()).await?;
    let (_router, id) = provider(sync_engine::blobs_protocol(&honest_store), &book).await?;
    let ours = ContentStore::memory();
    let ep = endpoint().await?;
    ep.address_lookup()?.add(book);
    let downloads = Downloads::spawn(ours.clone(), &ep, DownloadOptions::default());
    let mut events = downloads.subscribe();
    // The entry claims 10 bytes; the content behind the hash is 1 MiB.
    downloads.want(NamespaceId::from_bytes([1; 32]), hash, 10, vec![id]);
    match next_event(&mut events).await {
        ContentEvent::Failed { reason, .. } => assert!(reason.contains("allows"), "{reason}"),
        other => panic!("expected the oversized transfer to be cut off, got {other:?}"),
    }
    assert!(!ours.is_complete(&hash));
    Ok(())
}
