//! [`Doc`]: one open document of a [`Node`].

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use iroh::EndpointAddr;
use sync_actor::{ReplicaGuard, Subscription};
use sync_core::{
    AuthorId, Capability, ContentHash, ContentStatus, DownloadPolicy, NamespaceId, Query,
    SignedEntry,
};
use sync_engine::{ContentError, ContentEvent, ContentStore, Imported};
use sync_net::SyncFinished;
use tokio::io::AsyncRead;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::node::Node;
use crate::ticket::DocTicket;

/// Which capability a ticket hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// Read access: the document id.
    Read,
    /// Read and write access: the namespace secret.
    Write,
}

/// An entry with its content, if this node has the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryContent {
    /// The entry.
    pub entry: SignedEntry,
    /// The content bytes, if complete here and at most [`INLINE_CONTENT_MAX`] bytes long
    /// (read larger values with [`Doc::reader`] or [`Doc::export`]).
    pub content: Option<Bytes>,
}

/// The largest content [`Doc::get`] reads into memory with its entry.
pub const INLINE_CONTENT_MAX: u64 = 16 * 1024 * 1024;

/// An open document. Closes its handle when dropped.
#[derive(Debug)]
pub struct Doc {
    node: Node,
    guard: ReplicaGuard,
}

impl Doc {
    pub(crate) fn new(node: Node, guard: ReplicaGuard) -> Self {
        Self { node, guard }
    }

    /// The document id.
    pub fn id(&self) -> NamespaceId {
        self.guard.namespace()
    }

    /// Writes `value` at `key` as `author`. Returns the content hash once the content and
    /// then the entry are durable (on a persistent node).
    pub async fn set(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<ContentHash, Error> {
        let imported = self.content().import_bytes(value.into()).await?;
        Ok(self
            .set_imported(author, key, imported)
            .await?
            .content_hash())
    }

    /// Writes the content of the file at `path` (streamed, never all in memory) at `key`.
    /// Returns the entry once the content and then the entry are durable.
    pub async fn set_file(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        path: impl AsRef<Path>,
    ) -> Result<SignedEntry, Error> {
        let imported = self.content().import_file(path.as_ref()).await?;
        self.set_imported(author, key, imported).await
    }

    /// Writes everything `reader` yields, to its end, at `key`. Returns the entry once the
    /// content and then the entry are durable.
    pub async fn set_reader(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        reader: impl AsyncRead + Send + Sync + Unpin + 'static,
    ) -> Result<SignedEntry, Error> {
        let imported = self.content().import_reader(reader).await?;
        self.set_imported(author, key, imported).await
    }

    /// The entry for content already durable here; `imported` keeps it from garbage
    /// collection until the entry is committed.
    async fn set_imported(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        imported: Imported,
    ) -> Result<SignedEntry, Error> {
        let entry = self
            .set_hash(author, key, imported.hash, imported.len)
            .await?;
        if self.node.data_dir().is_some() {
            self.node.inner.handle.flush().await?;
        }
        drop(imported);
        Ok(entry)
    }

    fn content(&self) -> &ContentStore {
        self.node.inner.engine.content()
    }

    /// Writes an entry for content this node may not have: its hash and length. The entry is
    /// acknowledged from the open batch (see [`Node::flush`]).
    pub async fn set_hash(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        hash: ContentHash,
        len: u64,
    ) -> Result<SignedEntry, Error> {
        Ok(self
            .node
            .inner
            .handle
            .insert_local(self.id(), author, key, hash, len)
            .await?)
    }

    /// The newest entry at `key` over all authors (deletions hide it), with its content.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<EntryContent>, Error> {
        match self.get_entry(key).await? {
            Some(entry) => Ok(Some(self.with_content(entry).await?)),
            None => Ok(None),
        }
    }

    /// The newest entry at `key` over all authors (deletions hide it), without its content.
    pub async fn get_entry(&self, key: impl Into<Bytes>) -> Result<Option<SignedEntry>, Error> {
        let query = Query::latest_per_key().with_key_exact(key);
        Ok(self.query(query).await?.into_iter().next())
    }

    /// The entry of `author` at `key`, with its content.
    pub async fn get_exact(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
    ) -> Result<Option<EntryContent>, Error> {
        let entry = self
            .node
            .inner
            .handle
            .get_exact(self.id(), author, key, false)
            .await?;
        match entry {
            Some(entry) => Ok(Some(self.with_content(entry).await?)),
            None => Ok(None),
        }
    }

    /// Every entry matching `query` (see [`Query`]); for large results use
    /// [`Doc::query_stream`].
    pub async fn query(&self, query: Query) -> Result<Vec<SignedEntry>, Error> {
        Ok(self
            .node
            .inner
            .handle
            .query(self.id(), query)
            .collect()
            .await?)
    }

    /// The entries matching `query`, chunk by chunk.
    pub fn query_stream(&self, query: Query) -> sync_actor::QueryStream {
        self.node.inner.handle.query(self.id(), query)
    }

    /// The whole content of an entry; [`ContentError::Missing`] if it is not complete here.
    pub async fn read_to_bytes(&self, entry: &SignedEntry) -> Result<Bytes, Error> {
        let bytes = self.content().read_to_bytes(entry.content_hash()).await?;
        Ok(bytes)
    }

    /// A reader (`AsyncRead` + `AsyncSeek`) over the content of an entry, for large values.
    pub async fn reader(&self, entry: &SignedEntry) -> Result<ContentReader, Error> {
        Ok(self.content().reader(entry.content_hash()).await?)
    }

    /// Writes the content of an entry to the file `target`; returns its length.
    pub async fn export(
        &self,
        entry: &SignedEntry,
        target: impl AsRef<Path>,
    ) -> Result<u64, Error> {
        Ok(self
            .content()
            .export(entry.content_hash(), target.as_ref())
            .await?)
    }

    /// Whether the content of an entry is here: complete, partly downloaded, or missing.
    pub async fn content_status(&self, entry: &SignedEntry) -> Result<ContentStatus, Error> {
        Ok(self.content().status(entry.content_hash()).await?)
    }

    /// Waits until the content of `entry` is complete here (it may be downloading).
    pub async fn wait_content(&self, entry: &SignedEntry) -> Result<(), Error> {
        let hash = entry.content_hash();
        let mut events = self.node.inner.engine.downloads().subscribe();
        loop {
            if self.content().status(hash).await? == ContentStatus::Complete {
                return Ok(());
            }
            match events.recv().await {
                Ok(ContentEvent::Ready { hash: ready, .. }) if ready == hash => return Ok(()),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(ContentError::Missing(hash).into());
                }
            }
        }
    }

    /// Events of this document's wanted content (ready, failed attempts).
    pub fn content_events(&self) -> ContentEvents {
        ContentEvents {
            namespace: self.id(),
            rx: self.node.inner.engine.downloads().subscribe(),
        }
    }

    /// Which content of this document is downloaded.
    pub async fn download_policy(&self) -> Result<DownloadPolicy, Error> {
        Ok(self.node.inner.handle.download_policy(self.id()).await?)
    }

    /// Sets which content of this document is downloaded; what the new policy selects and is
    /// missing is wanted at once.
    pub async fn set_download_policy(&self, policy: DownloadPolicy) -> Result<(), Error> {
        let handle = &self.node.inner.handle;
        handle.set_download_policy(self.id(), policy).await?;
        Ok(self.node.inner.engine.policy_changed(self.id()).await?)
    }

    async fn with_content(&self, entry: SignedEntry) -> Result<EntryContent, Error> {
        let hash = entry.content_hash();
        let inline = entry.content_len() <= INLINE_CONTENT_MAX;
        let content = if inline && self.content().is_complete(&hash) {
            Some(self.content().read_to_bytes(hash).await?)
        } else {
            None
        };
        Ok(EntryContent { entry, content })
    }

    /// Deletes every entry of `author` whose key starts with `prefix`. Returns how many.
    pub async fn delete(&self, author: AuthorId, prefix: impl Into<Bytes>) -> Result<u64, Error> {
        Ok(self
            .node
            .inner
            .handle
            .delete_prefix(self.id(), author, prefix)
            .await?)
    }

    /// Events of this document: local and remote inserts.
    pub async fn subscribe(&self) -> Result<Subscription, Error> {
        Ok(self.node.inner.handle.subscribe(self.id()).await?)
    }

    /// A ticket for this document with this node's address.
    pub async fn share(&self, mode: ShareMode) -> Result<DocTicket, Error> {
        let capability = match mode {
            ShareMode::Read => Capability::Read(self.id()),
            ShareMode::Write => match self.node.inner.handle.export_secret(self.id()).await? {
                Some(secret) => Capability::Write(secret),
                None => {
                    return Err(Error::Actor(sync_actor::ActorError::ReadOnly(self.id())));
                }
            },
        };
        Ok(DocTicket::new(capability, vec![self.node.addr()]))
    }

    /// Syncs this document with `peer` now, as the dialing side; the content the peer holds
    /// and the download policy wants is fetched afterwards.
    pub async fn sync_with(&self, peer: EndpointAddr) -> Result<SyncFinished, Error> {
        self.node.sync_once(self.id(), peer).await
    }

    /// Keeps syncing with `peers`: every `period`, and soon after each local write. Stops
    /// when the returned task is aborted or the document's node stops.
    pub async fn start_sync(
        &self,
        peers: Vec<EndpointAddr>,
        period: Duration,
    ) -> Result<JoinHandle<()>, Error> {
        let mut events = self.subscribe().await?;
        let node = self.node.clone();
        let id = self.id();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    event = events.recv() => match event {
                        None => return,
                        Some(sync_actor::Received::Event(sync_actor::Event::LocalInsert { .. }))
                        | Some(sync_actor::Received::Lagged(_)) => {}
                        Some(_) => continue,
                    },
                }
                for peer in &peers {
                    // A failed round is retried at the next tick.
                    let _ = node.sync_once(id, peer.clone()).await;
                }
            }
        }))
    }

    /// Closes this handle of the document.
    pub async fn close(self) -> Result<(), Error> {
        Ok(self.guard.close().await?)
    }
}

/// A reader over the content of an entry (`AsyncRead` and `AsyncSeek`).
pub type ContentReader = sync_engine::BlobReader;

/// The content events of one document.
#[derive(Debug)]
pub struct ContentEvents {
    namespace: NamespaceId,
    rx: broadcast::Receiver<ContentEvent>,
}

impl ContentEvents {
    /// The next event of this document: content that became ready, or an attempt that
    /// failed. `Err(n)` says `n` events were missed; `None` once the node stopped.
    pub async fn recv(&mut self) -> Option<Result<ContentEvent, u64>> {
        loop {
            match self.rx.recv().await {
                Ok(ContentEvent::Ready { namespace, .. }) if namespace != self.namespace => {}
                Ok(event) => return Some(Ok(event)),
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Err(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
