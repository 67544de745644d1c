//! [`Doc`]: one open document of a [`Node`].

use std::time::Duration;

use bytes::Bytes;
use iroh::EndpointAddr;
use sync_actor::{ReplicaGuard, Subscription};
use sync_core::{AuthorId, Capability, ContentHash, NamespaceId, Query, SignedEntry};
use sync_net::SyncFinished;
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
    /// The content bytes, if stored locally (entries synced from peers carry only the hash
    /// and length until content transfer exists).
    pub content: Option<Bytes>,
}

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

    /// Writes `value` at `key` as `author`: stores the bytes locally and the signed entry in
    /// the replica. Returns the content hash.
    pub async fn set(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<ContentHash, Error> {
        let value = value.into();
        let len = value.len() as u64;
        let hash = self.node.inner.content.put(value)?;
        self.set_hash(author, key, hash, len).await?;
        Ok(hash)
    }

    /// Writes an entry for content this node may not have: its hash and length.
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
        let query = Query::latest_per_key().with_key_exact(key);
        let found = self.query(query).await?;
        match found.into_iter().next() {
            Some(entry) => Ok(Some(self.with_content(entry)?)),
            None => Ok(None),
        }
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
        entry.map(|e| self.with_content(e)).transpose()
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

    /// The content of an entry, if this node has it.
    pub fn content(&self, entry: &SignedEntry) -> Result<Option<Bytes>, Error> {
        self.node.inner.content.get(&entry.content_hash())
    }

    fn with_content(&self, entry: SignedEntry) -> Result<EntryContent, Error> {
        let content = self.content(&entry)?;
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

    /// Syncs this document with `peer` now, as the dialing side.
    pub async fn sync_with(&self, peer: EndpointAddr) -> Result<SyncFinished, Error> {
        let peer_id = peer.id;
        self.node
            .inner
            .protocol
            .connect_and_sync(self.id(), peer)
            .await
            .map_err(|e| Error::Sync {
                peer: peer_id.to_string(),
                message: e.to_string(),
            })
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
                    let _ = node.inner.protocol.connect_and_sync(id, peer.clone()).await;
                }
            }
        }))
    }

    /// Closes this handle of the document.
    pub async fn close(self) -> Result<(), Error> {
        Ok(self.guard.close().await?)
    }
}
