//! [`ContentEngine`]: what turns synced entries into downloads.
//!
//! For every document it watches, the engine wants the content of each entry that the
//! document's download policy selects and that is not complete here: at once for entries
//! already stored (after a start, a restart, a policy change or a lagged subscription), and for
//! each entry that arrives. Providers are the peer an entry came from, and every peer a session
//! of the document finished with (such a peer may hold content it did not announce).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use iroh::{EndpointAddr, EndpointId};
use sync_actor::{Event, Received, SyncHandle};
use sync_core::{NamespaceId, Query, SignedEntry};
use sync_net::{SyncFinished, SyncProtocol};
use tokio::task::JoinHandle;

use crate::addresses::AddressBook;
use crate::content::ContentStore;
use crate::downloads::{DownloadOptions, Downloads};

struct Inner {
    content: ContentStore,
    downloads: Downloads,
    handle: SyncHandle,
    addresses: AddressBook,
    watched: Mutex<HashMap<NamespaceId, JoinHandle<()>>>,
    reports: JoinHandle<()>,
}

impl Inner {
    /// Ends the tasks that feed the queue.
    fn abort_tasks(&self) {
        self.reports.abort();
        if let Ok(watched) = self.watched.lock() {
            watched.values().for_each(JoinHandle::abort);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

/// Content for the documents of one node: the store, the download queue, and the watchers that
/// feed it. Cheap to clone.
#[derive(Clone)]
pub struct ContentEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContentEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentEngine")
            .field("content", &self.inner.content)
            .finish_non_exhaustive()
    }
}

impl ContentEngine {
    /// Starts the engine for the node whose sessions `protocol` runs. Adds an address book to
    /// the endpoint, so providers are dialed by id at the addresses given to
    /// [`ContentEngine::add_address`] or seen on their sessions; with `address_file` the book
    /// is kept there across restarts.
    pub fn spawn(
        content: ContentStore,
        protocol: &SyncProtocol,
        options: DownloadOptions,
        address_file: Option<std::path::PathBuf>,
    ) -> Self {
        let endpoint = protocol.endpoint();
        let addresses = AddressBook::open(endpoint, address_file);
        let downloads = Downloads::spawn(content.clone(), endpoint, options);
        let reports = tokio::spawn(accepted_sessions(
            protocol.clone(),
            downloads.clone(),
            addresses.clone(),
        ));
        Self {
            inner: Arc::new(Inner {
                content,
                downloads,
                handle: protocol.handle().clone(),
                addresses,
                watched: Mutex::new(HashMap::new()),
                reports,
            }),
        }
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.inner.content
    }

    /// The download queue.
    pub fn downloads(&self) -> &Downloads {
        &self.inner.downloads
    }

    /// Remembers where a peer can be reached, for downloads from it.
    pub fn add_address(&self, addr: EndpointAddr) {
        self.inner.addresses.add(addr);
    }

    /// Wants the content of `namespace`'s entries from now on (idempotent): what is missing
    /// now, and what arrives. The document must be open for as long as it is watched.
    pub async fn watch(&self, namespace: NamespaceId) -> Result<(), sync_actor::ActorError> {
        {
            let watched = self.inner.watched.lock().map_err(|_| poisoned())?;
            if watched
                .get(&namespace)
                .is_some_and(|task| !task.is_finished())
            {
                return Ok(());
            }
        }
        let events = self.inner.handle.subscribe(namespace).await?;
        let this = self.clone();
        let task = tokio::spawn(async move { this.follow(namespace, events).await });
        self.inner
            .watched
            .lock()
            .map_err(|_| poisoned())?
            .insert(namespace, task);
        self.rescan(namespace).await
    }

    /// Wants, under the current download policy, the content of every stored entry of
    /// `namespace` that is not complete here, from the document's useful peers. What is
    /// wanted already keeps its providers and their backoff.
    pub async fn rescan(&self, namespace: NamespaceId) -> Result<(), sync_actor::ActorError> {
        let handle = &self.inner.handle;
        let policy = handle.download_policy(namespace).await?;
        let peers: Vec<EndpointId> = handle
            .useful_peers(namespace)
            .await?
            .iter()
            .filter_map(|id| EndpointId::from_bytes(id).ok())
            .collect();
        let mut entries = handle.query(namespace, Query::all());
        while let Some(chunk) = entries.next_chunk().await? {
            for entry in chunk.iter().filter(|e| policy.matches(e.entry())) {
                self.want(namespace, entry, peers.clone());
            }
        }
        Ok(())
    }

    fn want(&self, namespace: NamespaceId, entry: &SignedEntry, providers: Vec<EndpointId>) {
        let hash = entry.content_hash();
        if !self.inner.content.is_complete(&hash) {
            let len = entry.content_len();
            self.inner.downloads.want(namespace, hash, len, providers);
        }
    }

    /// Waits until the content `namespace` wants has arrived or has failed with every known
    /// provider once. Rescans the document first: entries a session just stored may still be
    /// on their way to the queue as events.
    pub async fn settled(
        &self,
        namespace: NamespaceId,
    ) -> Result<crate::DownloadStatus, sync_actor::ActorError> {
        self.rescan(namespace).await?;
        Ok(self.inner.downloads.settled().await)
    }

    /// Stops watching documents and downloading; returns once no transfer writes to the
    /// content store any more.
    pub async fn stop(&self) {
        self.inner.abort_tasks();
        self.inner.downloads.stop().await;
    }

    /// Applies a changed download policy of `namespace`: what it no longer selects stops being
    /// wanted (unless another document wants it), what it selects now is wanted.
    pub async fn policy_changed(
        &self,
        namespace: NamespaceId,
    ) -> Result<(), sync_actor::ActorError> {
        self.inner.downloads.forget(namespace);
        self.rescan(namespace).await
    }

    /// Tells the engine that a session it did not see (one this node dialed) finished.
    pub fn synced(&self, finished: &SyncFinished) {
        self.inner
            .downloads
            .add_providers(finished.namespace, vec![finished.peer]);
    }

    async fn follow(self, namespace: NamespaceId, mut events: sync_actor::Subscription) {
        while let Some(received) = events.recv().await {
            match received {
                // The sender is a provider even when it said it lacks the content: it may fetch
                // it later, and a failed try only backs that peer off.
                Received::Event(Event::RemoteInsert {
                    entry,
                    from,
                    should_download: true,
                    ..
                }) => {
                    let Ok(from) = EndpointId::from_bytes(&from) else {
                        continue;
                    };
                    self.want(namespace, &entry, vec![from]);
                }
                Received::Lagged(_) => {
                    if let Err(error) = self.rescan(namespace).await {
                        tracing::warn!(%namespace, %error, "content rescan failed");
                    }
                }
                Received::Event(_) => {}
            }
        }
    }
}

fn poisoned() -> sync_actor::ActorError {
    sync_actor::ActorError::Stopped
}

/// Every peer a session accepted by this node finished with may provide its document's
/// content. The endpoint dials by id only what an address book knows, so the addresses the
/// peer came from go into ours.
async fn accepted_sessions(protocol: SyncProtocol, downloads: Downloads, addresses: AddressBook) {
    let mut reports = protocol.subscribe();
    loop {
        match reports.recv().await {
            Ok(report) => {
                if let Ok(finished) = report.as_ref() {
                    let peer = finished.peer;
                    if let Some(info) = protocol.endpoint().remote_info(peer).await {
                        let addrs = info.into_addrs().map(|a| a.into_addr());
                        addresses.add(EndpointAddr::from_parts(peer, addrs));
                    }
                    downloads.add_providers(finished.namespace, vec![peer]);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
