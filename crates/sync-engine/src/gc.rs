//! Garbage collection of content no entry references any longer.
//!
//! iroh-blobs' collector deletes every blob that is not tagged; before each run it asks us for
//! the hashes to keep. We answer with the hash of every stored entry of every document (a
//! deleted or overwritten value is collected at the next run) and, before answering, forget
//! the other hashes as complete, so that nothing about to be deleted is still advertised.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use iroh_blobs::Hash;
use iroh_blobs::store::{ProtectCb, ProtectOutcome};
use sync_actor::SyncHandle;
use sync_core::Query;

use crate::content::{ContentStore, to_blobs};

/// The default interval between two garbage collection runs of a persistent node.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(300);

/// How a persistent content store collects garbage.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GcOptions {
    /// Time between runs; `None` turns collection off.
    pub interval: Option<Duration>,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            interval: Some(DEFAULT_GC_INTERVAL),
        }
    }
}

impl GcOptions {
    /// Runs every `interval`.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval: Some(interval),
        }
    }

    /// Never collects.
    pub fn off() -> Self {
        Self { interval: None }
    }
}

type Installed = Arc<OnceLock<(ContentStore, SyncHandle)>>;

/// Answers the collector once [`ProtectHandler::install`] gave it the documents to scan;
/// until then every run is skipped.
pub(crate) struct ProtectHandler(Installed);

impl ProtectHandler {
    /// Connects the collector to the content store and the actor holding the entries.
    pub(crate) fn install(&self, content: ContentStore, handle: SyncHandle) {
        let _ = self.0.set((content, handle));
    }
}

/// The handler and the callback for iroh-blobs' `GcConfig`.
pub(crate) fn protect_handler() -> (ProtectHandler, ProtectCb) {
    let installed: Installed = Arc::default();
    let handler = ProtectHandler(installed.clone());
    let callback: ProtectCb = Arc::new(move |live: &mut HashSet<Hash>| {
        let installed = installed.clone();
        Box::pin(async move {
            let Some((content, handle)) = installed.get().cloned() else {
                return ProtectOutcome::Abort;
            };
            let scan = tokio::spawn(async move { referenced(&handle).await });
            match scan.await {
                Ok(Ok(hashes)) => {
                    content.retain_complete(&hashes);
                    live.extend(hashes);
                    ProtectOutcome::Continue
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "content gc skipped: the entries could not be read");
                    ProtectOutcome::Abort
                }
                Err(_) => ProtectOutcome::Abort,
            }
        })
    });
    (handler, callback)
}

/// The content hash of every stored entry of every document.
pub(crate) async fn referenced(
    handle: &SyncHandle,
) -> Result<HashSet<Hash>, sync_actor::ActorError> {
    let mut hashes = HashSet::new();
    for (namespace, _) in handle.list_replicas().await? {
        let mut entries = handle.query(namespace, Query::all());
        while let Some(chunk) = entries.next_chunk().await? {
            hashes.extend(chunk.iter().map(|e| to_blobs(e.content_hash())));
        }
    }
    Ok(hashes)
}
