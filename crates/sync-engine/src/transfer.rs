//! One transfer: values fetched from one provider in one request, verified as they arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointId};
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::protocol::{ChunkRanges, GetManyRequest};
use n0_future::StreamExt as _;
use sync_core::ContentHash;

use crate::content::{ContentStore, to_blobs};
use crate::error::DownloadError;

/// The open connections to providers, shared by the transfers to each.
pub(crate) type Connections = Arc<Mutex<HashMap<EndpointId, Connection>>>;

/// One attempt to fetch values (their hashes and the lengths their entries give) from one
/// peer.
pub(crate) struct Transfer {
    pub(crate) endpoint: Endpoint,
    pub(crate) connections: Connections,
    pub(crate) content: ContentStore,
    pub(crate) batch: Vec<(ContentHash, u64)>,
    pub(crate) peer: EndpointId,
    pub(crate) stall: Duration,
}

impl Transfer {
    /// The outcome for each value: complete here, or why not.
    pub(crate) async fn run(self) -> Vec<(ContentHash, Result<(), DownloadError>)> {
        let transfer = self.fetch().await;
        if transfer.is_err()
            && let Ok(mut open) = self.connections.lock()
        {
            open.remove(&self.peer);
        }
        // A request for many values may fail after some arrived whole: those count.
        let mut results = Vec::with_capacity(self.batch.len());
        for (hash, _) in &self.batch {
            let result = match self.content.status(*hash).await {
                Ok(sync_core::ContentStatus::Complete) => Ok(()),
                Ok(_) => Err(match &transfer {
                    Err(e) => e.clone(),
                    Ok(()) => DownloadError::Transfer("incomplete after transfer".into()),
                }),
                Err(e) => Err(DownloadError::Transfer(e.to_string())),
            };
            results.push((*hash, result));
        }
        results
    }

    /// A connection to the peer: the open one if there is one, else a new one.
    async fn connect(&self) -> Result<Connection, DownloadError> {
        let open = self
            .connections
            .lock()
            .ok()
            .and_then(|c| c.get(&self.peer).cloned());
        if let Some(conn) = open.filter(|c| c.close_reason().is_none()) {
            return Ok(conn);
        }
        let dial = self.endpoint.connect(self.peer, iroh_blobs::ALPN);
        let conn = tokio::time::timeout(self.stall, dial)
            .await
            .map_err(|_| DownloadError::Stalled(self.stall))?
            .map_err(|e| DownloadError::Transfer(format!("connecting: {e}")))?;
        if let Ok(mut open) = self.connections.lock() {
            open.insert(self.peer, conn.clone());
        }
        Ok(conn)
    }

    async fn fetch(&self) -> Result<(), DownloadError> {
        let conn = self.connect().await?;
        let remote = self.content.blobs().remote();
        let request = match self.batch.as_slice() {
            [(hash, _)] => remote.fetch(conn, to_blobs(*hash)),
            batch => {
                let many = batch
                    .iter()
                    .fold(GetManyRequest::builder(), |b, (hash, _)| {
                        b.hash(to_blobs(*hash), ChunkRanges::all())
                    });
                remote.execute_get_many(conn, many.build())
            }
        };
        let mut items = std::pin::pin!(request.stream());
        // Bao groups are 16 KiB: a provider may send up to one group per value past the
        // entries' lengths before the verified sizes tell the truth.
        let limit: u64 = self
            .batch
            .iter()
            .map(|(_, len)| len.saturating_add(16 * 1024))
            .sum();
        loop {
            let item = tokio::time::timeout(self.stall, items.next())
                .await
                .map_err(|_| DownloadError::Stalled(self.stall))?;
            match item {
                Some(GetProgressItem::Progress(bytes)) if bytes > limit => {
                    return Err(DownloadError::TooLong { limit });
                }
                Some(GetProgressItem::Progress(_)) => {}
                Some(GetProgressItem::Done(_)) => break,
                Some(GetProgressItem::Error(e)) => {
                    return Err(DownloadError::Transfer(e.to_string()));
                }
                None => return Err(DownloadError::Transfer("the transfer ended early".into())),
            }
        }
        Ok(())
    }
}
