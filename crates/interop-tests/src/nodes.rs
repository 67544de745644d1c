//! Two kinds of node in one process, for the network interop tests and the loopback benchmark:
//! [`RefNode`], a real iroh-docs 0.101 node (blobs, gossip and docs behind an iroh `Router`, in
//! memory), and [`OurNode`], our actor and `sync_net::SyncProtocol` behind a `Router`.
//!
//! Every endpoint is built with the offline recipe (`sync_net::offline_endpoint`: loopback only,
//! no relay, no discovery, no port mapping) and is dialed by direct address, so nothing here
//! leaves 127.0.0.1. Run users of this module inside the loopback-only namespace
//! (`/work/shared/tools/offline`, or `cargo xtask ci` / `cargo xtask bench`).
//!
//! Entry sets can be compared in full, signatures included: the reference's entries are read
//! from its store actor and converted through their postcard bytes into our [`SignedEntry`]
//! ([`RefNode::entries`], [`same_entries`]).
//!
//! Errors are `anyhow` errors: this is test and benchmark support, never a library API.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use iroh::endpoint::{
    AfterHandshakeOutcome, Connection, ConnectionStats, EndpointHooks, PortmapperConfig, Side,
    WeakConnectionHandle, presets,
};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, EndpointId, NetReportConfig, RelayMode, Watcher as _};
use iroh_docs::api::Doc;
use iroh_docs::engine::{DefaultAuthorStorage, Engine, LiveEvent, SyncEvent};
use iroh_docs::protocol::Docs;
use n0_future::StreamExt as _;
use sync_actor::{ActorConfig, OpenOptions, ReplicaGuard, SyncHandle};
use sync_core::encoding::{Decode as _, DecodeLimits, Encode as _};
use sync_core::{Author, Capability, MemStore, NamespaceId, NamespaceSecret, Query, SignedEntry};
use sync_net::{AcceptReport, SyncProtocol, dial_addr, offline_endpoint};
use tokio::task::JoinHandle;

/// The usual bound on a wait in the tests, so a broken implementation fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(60);

/// A real iroh-docs 0.101 node: blobs, gossip and docs behind a router, all in memory, on an
/// offline endpoint.
pub struct RefNode {
    /// The router serving blobs, gossip and docs; its endpoint is the node's endpoint.
    pub router: Router,
    /// The docs protocol and its client API.
    pub docs: Docs,
    /// The engine's store actor, to read entries with their signatures.
    pub store: iroh_docs::actor::SyncHandle,
    /// The node's direct loopback address.
    pub addr: EndpointAddr,
    /// The node's blob store: the content it serves and downloads.
    pub blobs: iroh_blobs::store::mem::MemStore,
}

impl RefNode {
    /// Starts a node with empty in-memory stores.
    pub async fn spawn() -> Result<Self> {
        Self::spawn_on(
            offline_endpoint(None).await?,
            iroh_docs::store::Store::memory(),
        )
        .await
    }

    /// Starts a node on `endpoint` (which must be an offline one, such as
    /// [`counted_endpoint`]'s) with `store` as its document store (for example a copy of a
    /// prepared `Store::persistent` file) and an empty in-memory blob store.
    pub async fn spawn_on(
        endpoint: iroh::Endpoint,
        store: iroh_docs::store::Store,
    ) -> Result<Self> {
        let blobs = iroh_blobs::store::mem::MemStore::new();
        let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
        // What `Docs::memory().spawn(..)` does, keeping a handle to the store actor.
        let engine = Engine::spawn(
            endpoint.clone(),
            gossip.clone(),
            store,
            (*blobs).clone(),
            blobs.downloader(&endpoint),
            DefaultAuthorStorage::Mem,
            None,
        )
        .await?;
        let store = engine.sync.clone();
        let docs = Docs::new(engine);
        let router = Router::builder(endpoint.clone())
            .accept(
                iroh_blobs::ALPN,
                iroh_blobs::BlobsProtocol::new(&blobs, None),
            )
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_docs::ALPN, docs.clone())
            .spawn();
        let addr = dial_addr(&endpoint);
        // The published address, once known, is the same loopback socket.
        if let Some(ip) = endpoint.watch_addr().get().ip_addrs().next()
            && !ip.ip().is_loopback()
        {
            bail!("the reference node published a non-loopback address {ip}");
        }
        Ok(Self {
            router,
            docs,
            store,
            addr,
            blobs,
        })
    }

    /// Imports the document (write capability from the secret bytes) and puts it in the sync
    /// set with `peers`, which the reference needs to accept sessions for it.
    pub async fn join(&self, secret: &NamespaceSecret, peers: Vec<EndpointAddr>) -> Result<Doc> {
        let doc = self.import(secret).await?;
        doc.start_sync(peers).await?;
        Ok(doc)
    }

    /// Imports the document without syncing it.
    pub async fn import(&self, secret: &NamespaceSecret) -> Result<Doc> {
        let theirs = iroh_docs::NamespaceSecret::from_bytes(&secret.to_bytes());
        self.docs
            .import_namespace(iroh_docs::Capability::Write(theirs))
            .await
    }

    /// Imports `author` and returns its id in the reference's type.
    pub async fn import_author(&self, author: &Author) -> Result<iroh_docs::AuthorId> {
        let theirs = iroh_docs::Author::from_bytes(&author.to_bytes());
        let id = theirs.id();
        self.docs.author_import(theirs).await?;
        Ok(id)
    }

    /// Every entry of the document, deletion markers included, with signatures, as ours.
    pub async fn entries(&self, doc: &Doc) -> Result<Vec<SignedEntry>> {
        let query = iroh_docs::store::Query::all().include_empty().build();
        let mut listed = Vec::new();
        let mut stream = std::pin::pin!(doc.get_many(query).await?);
        while let Some(e) = stream.next().await {
            listed.push(e?);
        }
        let mut out = Vec::with_capacity(listed.len());
        for e in listed {
            let signed = self
                .store
                .get_exact(doc.id(), e.author(), e.key().to_vec().into(), true)
                .await?
                .ok_or_else(|| anyhow!("a listed entry is not in the reference's store"))?;
            out.push(to_ours(&signed)?);
        }
        Ok(out)
    }

    /// Stops the router, the endpoint and the engine.
    pub async fn shutdown(self) -> Result<()> {
        self.router.shutdown().await?;
        Ok(())
    }
}

/// The reference's signed entry as ours, through its postcard bytes (the two are the same
/// format, so this fails if a single byte layout differs).
pub fn to_ours(entry: &iroh_docs::SignedEntry) -> Result<SignedEntry> {
    let bytes = postcard::to_stdvec(entry)?;
    Ok(SignedEntry::from_slice(&bytes, DecodeLimits::default())?)
}

/// One of our nodes: an actor and the sync protocol behind a router, on an offline endpoint.
pub struct OurNode {
    /// The actor of the node's store.
    pub handle: SyncHandle,
    /// The sync protocol: dials with `connect_and_sync`, reports accepted sessions.
    pub sync: SyncProtocol,
    /// The router serving the sync protocol.
    pub router: Router,
    /// The node's direct loopback address.
    pub addr: EndpointAddr,
    guards: Vec<ReplicaGuard>,
}

impl OurNode {
    /// Starts a node over an empty in-memory store with the default actor configuration.
    pub async fn spawn() -> Result<Self> {
        Self::with_handle(SyncHandle::spawn(MemStore::new(), ActorConfig::default())).await
    }

    /// Starts a node over an actor already running (any store).
    pub async fn with_handle(handle: SyncHandle) -> Result<Self> {
        let endpoint = offline_endpoint(None).await?;
        let sync = SyncProtocol::new(endpoint.clone(), handle.clone());
        Ok(Self::with_protocol(sync))
    }

    /// Serves an already built sync protocol (custom limits, policy or metrics).
    pub fn with_protocol(sync: SyncProtocol) -> Self {
        let endpoint = sync.endpoint().clone();
        let router = sync.register(Router::builder(endpoint.clone())).spawn();
        Self {
            handle: sync.handle().clone(),
            sync,
            router,
            addr: dial_addr(&endpoint),
            guards: Vec::new(),
        }
    }

    /// Imports the document with write capability and opens it, marked for sync or not; it
    /// stays open as long as the node lives.
    pub async fn join(&mut self, secret: &NamespaceSecret, sync: bool) -> Result<()> {
        self.handle
            .import_namespace(Capability::Write(secret.clone()))
            .await?;
        let options = if sync {
            OpenOptions::sync()
        } else {
            OpenOptions::default()
        };
        self.guards
            .push(self.handle.open(secret.id(), options).await?);
        Ok(())
    }

    /// Every entry of the document, deletion markers included.
    pub async fn entries(&self, ns: NamespaceId) -> Result<Vec<SignedEntry>> {
        Ok(self
            .handle
            .query(ns, Query::all().with_include_empty(true))
            .collect()
            .await?)
    }

    /// Stops the router and the endpoint (the actor stops with its last handle).
    pub async fn shutdown(self) -> Result<()> {
        self.router.shutdown().await?;
        Ok(())
    }
}

/// The encoded bytes of each entry, as a set.
pub fn byte_set(entries: &[SignedEntry]) -> BTreeSet<Vec<u8>> {
    entries.iter().map(|e| e.to_vec()).collect()
}

/// Checks that both sides hold exactly the same entries, byte for byte, signatures included,
/// and that every signature is valid.
pub fn same_entries(ours: &[SignedEntry], theirs: &[SignedEntry]) -> Result<()> {
    let (a, b) = (byte_set(ours), byte_set(theirs));
    let only_ours = a.difference(&b).count();
    let only_theirs = b.difference(&a).count();
    if only_ours != 0 || only_theirs != 0 {
        bail!(
            "{only_ours} entries only here, {only_theirs} only on the other node (of {} / {})",
            a.len(),
            b.len()
        );
    }
    if ours.len() != theirs.len() {
        bail!(
            "duplicate entries: {} here, {} on the other node",
            ours.len(),
            theirs.len()
        );
    }
    for e in ours {
        e.verify()
            .context("an entry carries an invalid signature")?;
    }
    Ok(())
}

/// The next report of an accepted session, within [`WAIT`].
pub async fn next_report(
    rx: &mut tokio::sync::broadcast::Receiver<AcceptReport>,
) -> Result<AcceptReport> {
    Ok(tokio::time::timeout(WAIT, rx.recv())
        .await
        .context("no accept report in time")??)
}

/// Watches the reference's events of `doc` until its next `SyncFinished`, consuming every
/// event meanwhile: the reference's actor waits for slow subscribers (its W15), so an unread
/// subscription would stall its side of a large sync.
pub async fn watch_sync_finished(doc: &Doc) -> Result<JoinHandle<Result<SyncEvent>>> {
    let mut events = doc.subscribe().await?;
    Ok(tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let LiveEvent::SyncFinished(e) = event? {
                return Ok(e);
            }
        }
        Err(anyhow!("the reference's event stream ended"))
    }))
}

/// The event a [`watch_sync_finished`] task found, within `wait`.
pub async fn sync_finished_within(
    watch: JoinHandle<Result<SyncEvent>>,
    wait: Duration,
) -> Result<SyncEvent> {
    tokio::time::timeout(wait, watch)
        .await
        .context("the reference does not report the sync in time")??
}

/// An offline endpoint that records every connection it makes or accepts in a
/// [`ConnectionLog`], so that the bytes a session put on the wire can be read afterwards.
///
/// The recipe is `sync_net::offline_endpoint`'s (iroh's `Minimal` preset, no relay, no address
/// lookup, no port mapping, minimal net report, one UDP socket on `127.0.0.1:0`) plus the
/// logging hook, which `sync_net` has no option for.
pub async fn counted_endpoint() -> Result<(Endpoint, ConnectionLog)> {
    let log = ConnectionLog::default();
    let endpoint = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .clear_ip_transports()
        .bind_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?
        .hooks(LogHook(log.clone()))
        .alpns(vec![sync_net::ALPN.to_vec()])
        .bind()
        .await?;
    Ok((endpoint, log))
}

/// The UDP bytes of QUIC connections as their endpoint counted them (QUIC headers,
/// handshake, acknowledgements and retransmissions included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireBytes {
    /// Bytes this endpoint sent.
    pub sent: u64,
    /// Bytes this endpoint received.
    pub received: u64,
    /// Connections counted.
    pub connections: u64,
}

impl WireBytes {
    fn add(&mut self, stats: &ConnectionStats) {
        self.sent += stats.udp_tx.bytes;
        self.received += stats.udp_rx.bytes;
        self.connections += 1;
    }
}

/// One connection of a [`ConnectionLog`].
struct Logged {
    alpn: Vec<u8>,
    dialed: bool,
    remote: EndpointId,
    opened: Instant,
    weak: WeakConnectionHandle,
    /// The statistics at close, once the connection has closed.
    closed: Arc<Mutex<Option<ConnectionStats>>>,
}

/// The connections of one endpoint built by [`counted_endpoint`], with their byte counts.
#[derive(Clone, Default)]
pub struct ConnectionLog {
    connections: Arc<Mutex<Vec<Logged>>>,
}

impl std::fmt::Debug for ConnectionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.connections.lock().map_or(0, |c| c.len());
        f.debug_struct("ConnectionLog")
            .field("connections", &n)
            .finish()
    }
}

impl ConnectionLog {
    fn record(&self, conn: &Connection) {
        let weak = conn.weak_handle();
        let closed = Arc::new(Mutex::new(None));
        let fut = weak.closed();
        let slot = closed.clone();
        tokio::spawn(async move {
            if let Some(c) = fut.await
                && let Ok(mut slot) = slot.lock()
            {
                *slot = Some(c.stats);
            }
        });
        if let Ok(mut all) = self.connections.lock() {
            all.push(Logged {
                alpn: conn.alpn().to_vec(),
                dialed: conn.side() == Side::Client,
                remote: conn.remote_id(),
                opened: Instant::now(),
                weak,
                closed,
            });
        }
    }

    /// The bytes of the connections with protocol `alpn` (every protocol if `None`) opened
    /// within `opened` (start inclusive, end exclusive). A connection that is still open is
    /// first given up to `grace` to close (so that its close sequence is counted); one that is
    /// still open then counts with its statistics so far.
    pub async fn wire_bytes(
        &self,
        alpn: Option<&[u8]>,
        opened: std::ops::Range<Instant>,
        grace: Duration,
    ) -> WireBytes {
        let deadline = Instant::now() + grace;
        loop {
            let (mut total, open, pending) = self.collect(alpn, &opened);
            if (open.is_empty() && pending == 0) || Instant::now() >= deadline {
                for conn in open {
                    total.add(&conn.stats());
                }
                // Dropped connections whose close statistics never arrived count without
                // bytes (not seen in practice: the close event follows the drop at once).
                total.connections += pending;
                return total;
            }
            drop(open);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closed connections summed, open ones returned, and how many are neither (dropped,
    /// their close statistics not stored yet).
    fn collect(
        &self,
        alpn: Option<&[u8]>,
        opened: &std::ops::Range<Instant>,
    ) -> (WireBytes, Vec<Connection>, u64) {
        let mut total = WireBytes::default();
        let mut open = Vec::new();
        let mut pending = 0;
        let Ok(all) = self.connections.lock() else {
            return (total, open, pending);
        };
        for c in all.iter() {
            if !opened.contains(&c.opened) || alpn.is_some_and(|a| a != c.alpn.as_slice()) {
                continue;
            }
            let closed = c.closed.lock().ok().and_then(|s| s.clone());
            match (closed, c.weak.upgrade()) {
                (Some(stats), _) => total.add(&stats),
                (None, Some(conn)) => open.push(conn),
                (None, None) => pending += 1,
            }
        }
        (total, open, pending)
    }

    /// Connections with protocol `alpn` opened since `since`: whether this endpoint dialed
    /// it, and the remote.
    pub fn connections(&self, alpn: &[u8], since: Instant) -> Vec<(bool, EndpointId)> {
        self.connections.lock().map_or_else(
            |_| Vec::new(),
            |all| {
                all.iter()
                    .filter(|c| c.opened >= since && c.alpn == alpn)
                    .map(|c| (c.dialed, c.remote))
                    .collect()
            },
        )
    }
}

/// The hook that fills a [`ConnectionLog`] (it holds no endpoint, as iroh requires).
#[derive(Debug)]
struct LogHook(ConnectionLog);

impl EndpointHooks for LogHook {
    fn after_handshake<'a>(
        &'a self,
        conn: &'a Connection,
    ) -> impl Future<Output = AfterHandshakeOutcome> + Send + 'a {
        self.0.record(conn);
        async { AfterHandshakeOutcome::accept() }
    }
}
