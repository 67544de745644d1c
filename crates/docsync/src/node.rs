//! [`Node`]: the store, the actor, the content store and the network endpoint of one peer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use sync_actor::{ActorConfig, OpenOptions, SyncHandle};
use sync_core::{Author, AuthorId, Capability, CapabilityKind, NamespaceId};
use sync_engine::{ContentEngine, ContentStore, DownloadOptions, GcOptions};
use sync_net::{EndpointOptions, Limits, NetMetricsSnapshot, SyncProtocol};
use sync_store_redb::RedbStore;

use crate::doc::Doc;
use crate::error::Error;
use crate::metrics::{Metrics, MetricsServer};
use crate::ticket::DocTicket;

/// The file of the store inside a data directory.
pub const STORE_FILE: &str = "docs.redb";
/// The file holding the node's endpoint secret key (hex), so its id survives restarts.
pub const NODE_KEY_FILE: &str = "node-secret";
/// The directory of the content (an iroh-blobs file store).
pub const CONTENT_DIR: &str = sync_engine::BLOBS_DIR;
/// The addresses of known peers (postcard), so a restarted node reaches them without discovery.
pub const PEERS_FILE: &str = "peer-addresses";
/// Where earlier versions kept content, one file per hash; imported at start, then removed.
const LEGACY_CONTENT_DIR: &str = "content";

/// Builds a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    data_dir: Option<PathBuf>,
    bind_addr: SocketAddr,
    public_network: bool,
    limits: Limits,
    actor: ActorConfig,
    downloads: DownloadOptions,
    gc: GcOptions,
}

impl NodeBuilder {
    /// Binds the endpoint to this address (default `127.0.0.1:0`: loopback, any port).
    pub fn bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = addr;
        self
    }

    /// **Opt-in to the public network**: iroh's relays and discovery (the `N0` preset), so
    /// peers behind NATs can reach each other. Off by default; never used in tests.
    pub fn public_network(mut self, on: bool) -> Self {
        self.public_network = on;
        self
    }

    /// Limits of sync sessions.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Tuning of the actor (commit window, buffers).
    pub fn actor_config(mut self, config: ActorConfig) -> Self {
        self.actor = config;
        self
    }

    /// Limits and timing of content downloads.
    pub fn downloads(mut self, options: DownloadOptions) -> Self {
        self.downloads = options;
        self
    }

    /// Garbage collection of content no entry references (persistent nodes; default every
    /// [`sync_engine::DEFAULT_GC_INTERVAL`]).
    pub fn gc(mut self, options: GcOptions) -> Self {
        self.gc = options;
        self
    }

    /// Starts the node.
    pub async fn spawn(self) -> Result<Node, Error> {
        // The endpoint first: a port in use fails the start before any store is opened.
        let secret = match &self.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                load_or_create_key(&dir.join(NODE_KEY_FILE))?
            }
            None => SecretKey::generate(),
        };
        let options = if self.public_network {
            EndpointOptions::public_network().with_secret_key(secret)
        } else {
            EndpointOptions::offline()
                .with_secret_key(secret)
                .with_bind_addr(self.bind_addr)
        };
        let endpoint = sync_net::build_endpoint(options)
            .await
            .map_err(|e| Error::Endpoint(error_chain(&e)))?;
        let (handle, content) = match self.open_stores().await {
            Ok(opened) => opened,
            Err(e) => {
                endpoint.close().await;
                return Err(e);
            }
        };
        content.collect_garbage_of(handle.clone());
        let protocol = SyncProtocol::builder(endpoint.clone(), handle.clone())
            .limits(self.limits.clone())
            .build();
        let router = protocol
            .register(Router::builder(endpoint.clone()))
            .accept(
                sync_engine::BLOBS_ALPN,
                sync_engine::blobs_protocol(&content),
            )
            .spawn();
        let addresses = self.data_dir.as_ref().map(|dir| dir.join(PEERS_FILE));
        let engine = ContentEngine::spawn(content, &protocol, self.downloads.clone(), addresses);
        Ok(Node {
            inner: Arc::new(Inner {
                handle,
                engine,
                endpoint,
                protocol,
                router,
                data_dir: self.data_dir,
            }),
        })
    }
}

impl NodeBuilder {
    /// The entry store (behind its actor) and the content store, in memory or on disk.
    async fn open_stores(&self) -> Result<(SyncHandle, ContentStore), Error> {
        let Some(dir) = &self.data_dir else {
            let content = ContentStore::memory();
            return Ok((spawn_actor(RedbStore::memory()?, &content, self), content));
        };
        let store = RedbStore::persistent(dir.join(STORE_FILE))?;
        let content = ContentStore::persistent(dir.join(CONTENT_DIR), self.gc.clone()).await?;
        import_legacy_content(&content, &dir.join(LEGACY_CONTENT_DIR)).await?;
        Ok((spawn_actor(store, &content, self), content))
    }
}

/// Starts the actor; entries whose content is complete here go out as `Complete`.
fn spawn_actor(store: RedbStore, content: &ContentStore, builder: &NodeBuilder) -> SyncHandle {
    let mut config = builder.actor.clone();
    if let Ok(sync) = builder.limits.reconciliation() {
        config.sync = sync;
    }
    SyncHandle::spawn_with_content_status(store, config, Some(content.status_fn()))
}

/// Moves content an earlier version stored as one file per hash into the blob store. A file
/// whose bytes do not match its name is left where it is.
async fn import_legacy_content(content: &ContentStore, dir: &Path) -> Result<(), Error> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut kept = 0usize;
    for file in listing {
        let path = file.map_err(|e| Error::io(dir, e))?.path();
        let imported = content.import_file(&path).await?;
        if path.file_name().and_then(|n| n.to_str()) == Some(&imported.hash.to_string()) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        } else {
            kept += 1;
        }
    }
    if kept == 0 {
        std::fs::remove_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

fn load_or_create_key(path: &Path) -> Result<SecretKey, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
                Error::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not a 64-hex-digit key"),
                )
            })?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, hex::encode(key.to_bytes())).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
            Ok(key)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) handle: SyncHandle,
    pub(crate) engine: ContentEngine,
    pub(crate) endpoint: Endpoint,
    pub(crate) protocol: SyncProtocol,
    router: Router,
    data_dir: Option<PathBuf>,
}

/// One docsync peer: a store of documents, an identity on the network, and the protocol that
/// serves sync sessions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl Node {
    /// A node whose store, content and identity live in memory; gone when it stops.
    pub fn memory() -> NodeBuilder {
        NodeBuilder {
            data_dir: None,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_network: false,
            limits: Limits::default(),
            actor: ActorConfig::default(),
            downloads: DownloadOptions::default(),
            gc: GcOptions::default(),
        }
    }

    /// A node whose store (`docs.redb`), content and identity live in `dir`.
    pub fn persistent(dir: impl Into<PathBuf>) -> NodeBuilder {
        NodeBuilder {
            data_dir: Some(dir.into()),
            ..Self::memory()
        }
    }

    /// The node's id on the network.
    pub fn id(&self) -> iroh::EndpointId {
        self.inner.endpoint.id()
    }

    /// An address peers can dial (the id and the bound socket addresses).
    pub fn addr(&self) -> EndpointAddr {
        sync_net::dial_addr(&self.inner.endpoint)
    }

    /// The data directory, for a persistent node.
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.data_dir.as_deref()
    }

    /// The content engine: the blob store and the download queue.
    pub fn content(&self) -> &ContentEngine {
        &self.inner.engine
    }

    /// The actor handle, for the lower-level API.
    pub fn handle(&self) -> &SyncHandle {
        &self.inner.handle
    }

    // --- documents ---

    /// Creates a new document (this node holds its write capability) and opens it for sync.
    pub async fn create_doc(&self) -> Result<Doc, Error> {
        let secret = self.inner.handle.create_replica().await?;
        self.open_doc(secret.id()).await
    }

    /// Imports a document from a capability (a write capability upgrades a read one) and opens
    /// it for sync.
    pub async fn import_doc(&self, capability: Capability) -> Result<Doc, Error> {
        let id = capability.id();
        self.inner.handle.import_namespace(capability).await?;
        self.open_doc(id).await
    }

    /// Imports the document of a ticket, opens it, and syncs once with the ticket's peers
    /// (failures with single peers are ignored as long as one succeeds).
    pub async fn join(
        &self,
        ticket: &DocTicket,
    ) -> Result<(Doc, Vec<sync_net::SyncFinished>), Error> {
        let doc = self.import_doc(ticket.capability.clone()).await?;
        let mut finished = Vec::new();
        let mut last_error = None;
        for peer in &ticket.nodes {
            match doc.sync_with(peer.clone()).await {
                Ok(f) => finished.push(f),
                Err(e) => last_error = Some(e),
            }
        }
        match (finished.is_empty(), last_error) {
            (true, Some(e)) => Err(e),
            _ => Ok((doc, finished)),
        }
    }

    /// One session for `namespace` with `peer`, dialed by us; the engine learns the peer's
    /// address and, afterwards, that the peer may provide the document's content.
    pub(crate) async fn sync_once(
        &self,
        namespace: NamespaceId,
        peer: EndpointAddr,
    ) -> Result<sync_net::SyncFinished, Error> {
        let peer_id = peer.id;
        self.inner.engine.add_address(peer.clone());
        let finished = self
            .inner
            .protocol
            .connect_and_sync(namespace, peer)
            .await
            .map_err(|e| Error::Sync {
                peer: peer_id.to_string(),
                message: e.to_string(),
            })?;
        self.inner.engine.synced(&finished);
        Ok(finished)
    }

    /// Opens a known document for sync.
    pub async fn open_doc(&self, namespace: NamespaceId) -> Result<Doc, Error> {
        let guard = self
            .inner
            .handle
            .open(namespace, OpenOptions::sync())
            .await
            .map_err(|e| match e {
                sync_actor::ActorError::UnknownNamespace(ns) => Error::UnknownDocument(ns),
                other => Error::Actor(other),
            })?;
        self.inner.engine.watch(namespace).await?;
        Ok(Doc::new(self.clone(), guard))
    }

    /// Every document of this node and the kind of access held.
    pub async fn list_docs(&self) -> Result<Vec<(NamespaceId, CapabilityKind)>, Error> {
        Ok(self.inner.handle.list_replicas().await?)
    }

    /// Removes a document and everything of it from this node.
    pub async fn drop_doc(&self, namespace: NamespaceId) -> Result<bool, Error> {
        Ok(self.inner.handle.drop_replica(namespace).await?)
    }

    // --- authors ---

    /// Creates and stores a new author.
    pub async fn create_author(&self) -> Result<AuthorId, Error> {
        Ok(self.inner.handle.create_author().await?)
    }

    /// Stores an author key.
    pub async fn import_author(&self, author: Author) -> Result<AuthorId, Error> {
        Ok(self.inner.handle.import_author(author).await?)
    }

    /// The key of a stored author.
    pub async fn export_author(&self, id: AuthorId) -> Result<Option<Author>, Error> {
        Ok(self.inner.handle.export_author(id).await?)
    }

    /// Every stored author.
    pub async fn list_authors(&self) -> Result<Vec<AuthorId>, Error> {
        Ok(self.inner.handle.list_authors().await?)
    }

    /// The default author, created and persisted on first use.
    pub async fn default_author(&self) -> Result<AuthorId, Error> {
        Ok(self.inner.handle.default_author().await?)
    }

    /// Makes a stored author the default.
    pub async fn set_default_author(&self, id: AuthorId) -> Result<bool, Error> {
        Ok(self.inner.handle.set_default_author(id).await?)
    }

    // --- status ---

    /// Counters of the network layer.
    pub fn net_metrics(&self) -> NetMetricsSnapshot {
        self.inner.protocol.metrics().snapshot()
    }

    /// Counters of the actor.
    pub async fn actor_metrics(&self) -> Result<sync_actor::Metrics, Error> {
        Ok(self.inner.handle.metrics().await?)
    }

    /// The counters of every layer now (see [`Metrics::to_prometheus`] for the text form).
    pub async fn metrics(&self) -> Result<Metrics, Error> {
        Ok(Metrics {
            net: self.net_metrics(),
            sessions_running: self.inner.protocol.running_sessions() as u64,
            actor: self.actor_metrics().await?,
        })
    }

    /// Serves [`Node::metrics`] as Prometheus text at `http://{addr}/metrics` until the
    /// returned server is dropped. Bind a loopback address unless the metrics are meant to be
    /// read from other machines; port 0 picks a free port ([`MetricsServer::local_addr`]).
    pub async fn serve_metrics(&self, addr: SocketAddr) -> Result<MetricsServer, Error> {
        MetricsServer::bind(self, addr).await
    }

    /// Commits every acknowledged write to disk: content first, then the entries.
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.engine.content().flush().await?;
        Ok(self.inner.handle.flush().await?)
    }

    /// Stops serving, commits and closes the store (its file is released when this returns).
    /// Every clone of the node and its documents fail with a "stopped" error afterwards.
    pub async fn shutdown(&self) -> Result<(), Error> {
        // Transfers stop before the blob store closes; content is flushed before the entries,
        // so an entry never outlives its content on disk.
        self.inner.engine.stop().await;
        self.inner.engine.content().flush().await?;
        let closed = self
            .inner
            .router
            .shutdown()
            .await
            .map_err(|e| Error::Endpoint(e.to_string()));
        // Closing waits until the sockets are released, so the port can be bound again.
        self.inner.endpoint.close().await;
        match self.inner.handle.clone().shutdown::<RedbStore>().await {
            // Dropping the store here, not on the actor thread, closes the file before we return.
            Ok(store) => drop(store),
            // Already shut down by another clone.
            Err(sync_actor::ActorError::Stopped) => {}
            Err(e) => return Err(e.into()),
        }
        closed
    }
}

/// `error: cause: cause`, for errors kept as text.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}
