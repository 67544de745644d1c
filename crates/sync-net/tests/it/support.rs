//! Nodes and raw peers over loopback for the networking tests. Every endpoint is built with the
//! offline recipe (`offline_endpoint`) and dialed by direct address.

use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, SecretKey};
use sync_actor::{ActorConfig, ActorError, OpenOptions, ReplicaGuard, SyncHandle};
use sync_core::encoding::DecodeLimits;
use sync_core::{
    Author, Capability, ContentHash, ContentStatus, MemStore, NamespaceId, NamespaceSecret, Query,
    Record, SignedEntry, now_micros,
};
use sync_net::wire::WireMessage;
use sync_net::{AcceptReport, Limits, SyncProtocol, dial_addr, offline_endpoint};

/// A bound on every wait in a test, so a broken implementation fails instead of hanging.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One of our nodes: an in-memory actor, an offline endpoint, a router serving the protocol.
pub(crate) struct Node {
    pub(crate) handle: SyncHandle,
    pub(crate) sync: SyncProtocol,
    pub(crate) router: Router,
    pub(crate) addr: EndpointAddr,
    guards: Vec<ReplicaGuard>,
}

impl Node {
    pub(crate) async fn spawn(limits: Limits) -> Self {
        Self::spawn_with_key(None, limits).await
    }

    pub(crate) async fn spawn_with_key(key: Option<SecretKey>, limits: Limits) -> Self {
        let handle = SyncHandle::spawn(MemStore::new(), ActorConfig::default());
        let endpoint = offline_endpoint(key).await.unwrap();
        let sync = SyncProtocol::builder(endpoint.clone(), handle.clone())
            .limits(limits)
            .build();
        let router = sync.register(Router::builder(endpoint.clone())).spawn();
        let addr = dial_addr(&endpoint);
        Self {
            handle,
            sync,
            router,
            addr,
            guards: Vec::new(),
        }
    }

    pub(crate) fn id(&self) -> iroh::EndpointId {
        self.addr.id
    }

    /// Imports the document and opens it (for sync, or not).
    pub(crate) async fn join(&mut self, secret: &NamespaceSecret, sync: bool) {
        self.handle
            .import_namespace(Capability::Write(secret.clone()))
            .await
            .unwrap();
        let options = if sync {
            OpenOptions::sync()
        } else {
            OpenOptions::default()
        };
        self.guards
            .push(self.handle.open(secret.id(), options).await.unwrap());
    }

    /// Stores signed entries as if received (the document must be open for sync).
    pub(crate) async fn put(&self, entries: &[SignedEntry]) {
        for e in entries {
            let result = self
                .handle
                .insert_remote(e.namespace(), e.clone(), [0; 32], ContentStatus::Missing)
                .await;
            // An equal or newer entry at the key is no failure here.
            if !matches!(result, Ok(_) | Err(ActorError::NewerEntryExists)) {
                panic!("put failed: {result:?}");
            }
        }
    }

    /// Every entry of the document, deletion markers included, in store order.
    pub(crate) async fn entries(&self, ns: NamespaceId) -> Vec<SignedEntry> {
        self.handle
            .query(ns, Query::all().with_include_empty(true))
            .collect()
            .await
            .unwrap()
    }

    pub(crate) async fn shutdown(self) {
        self.router.shutdown().await.unwrap();
    }
}

/// The next accept report of `rx`, bounded by [`WAIT`].
pub(crate) async fn next_report(
    rx: &mut tokio::sync::broadcast::Receiver<AcceptReport>,
) -> AcceptReport {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an accept report in time")
        .expect("the report channel is open")
}

/// A deterministic generator (xorshift), so failures reproduce.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A signed entry with content derived from key and timestamp.
pub(crate) fn entry(ns: &NamespaceSecret, author: &Author, key: &[u8], ts: u64) -> SignedEntry {
    let mut data = key.to_vec();
    data.extend_from_slice(&ts.to_be_bytes());
    SignedEntry::create(
        ns,
        author,
        key,
        Record::new(ContentHash::of(&data), data.len() as u64, ts),
    )
}

/// `n` random entries of `ns` by `authors`, keys from a space of `keys`, timestamps in the
/// past hour. Keys have one width, so none is a prefix of another (no prefix deletions).
pub(crate) fn random_entries(
    rng: &mut Rng,
    ns: &NamespaceSecret,
    authors: &[Author],
    keys: u64,
    n: usize,
) -> Vec<SignedEntry> {
    let now = now_micros();
    (0..n)
        .map(|_| {
            let a = &authors[rng.below(authors.len() as u64) as usize];
            let key = format!("k/{:08}", rng.below(keys));
            let ts = now - 1 - rng.below(3_600_000_000);
            entry(ns, a, key.as_bytes(), ts)
        })
        .collect()
}

/// A raw peer: an offline endpoint that speaks the ALPN by hand.
pub(crate) struct Raw {
    pub(crate) endpoint: Endpoint,
}

/// One raw session: the connection and its stream.
pub(crate) struct RawSession {
    pub(crate) conn: Connection,
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
}

impl Raw {
    pub(crate) async fn new(key: Option<SecretKey>) -> Self {
        let endpoint = offline_endpoint(key).await.unwrap();
        // A raw peer speaks only the reference encoding, as an iroh-docs node does.
        endpoint.set_alpns(vec![sync_net::ALPN.to_vec()]);
        Self { endpoint }
    }

    pub(crate) async fn dial(&self, addr: &EndpointAddr) -> RawSession {
        self.dial_alpn(addr, sync_net::ALPN).await
    }

    pub(crate) async fn dial_alpn(&self, addr: &EndpointAddr, alpn: &[u8]) -> RawSession {
        let conn = self.endpoint.connect(addr.clone(), alpn).await.unwrap();
        let (send, recv) = conn.open_bi().await.unwrap();
        RawSession { conn, send, recv }
    }

    /// Accepts one incoming connection and its stream.
    pub(crate) async fn accept(&self) -> RawSession {
        let incoming = tokio::time::timeout(WAIT, self.endpoint.accept())
            .await
            .unwrap()
            .unwrap();
        let conn = incoming.await.unwrap();
        let (send, recv) = conn.accept_bi().await.unwrap();
        RawSession { conn, send, recv }
    }
}

/// What a raw peer read.
#[derive(Debug)]
pub(crate) enum Read {
    Frame(WireMessage),
    /// The stream ended cleanly.
    End,
    /// The stream or connection failed (closed by the node with a code, reset).
    Failed(#[allow(dead_code, reason = "shown by Debug in assertion messages")] String),
}

impl RawSession {
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) {
        self.send.write_all(bytes).await.unwrap();
    }

    pub(crate) async fn write(&mut self, message: &WireMessage) {
        let frame = message.to_frame(usize::MAX).unwrap();
        self.write_raw(&frame).await;
    }

    /// Reads one frame body as bytes (`None` at the end of the stream or on failure).
    pub(crate) async fn read_body(&mut self) -> Option<Vec<u8>> {
        let mut prefix = [0u8; 4];
        tokio::time::timeout(WAIT, self.recv.read_exact(&mut prefix))
            .await
            .expect("the node answers in time")
            .ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        self.recv.read_exact(&mut body).await.ok()?;
        Some(body)
    }

    pub(crate) async fn read(&mut self) -> Read {
        let mut prefix = [0u8; 4];
        let r = tokio::time::timeout(WAIT, self.recv.read_exact(&mut prefix))
            .await
            .expect("the node answers in time");
        match r {
            Ok(()) => {}
            Err(iroh::endpoint::ReadExactError::FinishedEarly(0)) => return Read::End,
            Err(e) => return Read::Failed(e.to_string()),
        }
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        match self.recv.read_exact(&mut body).await {
            Ok(()) => Read::Frame(WireMessage::decode(&body, DecodeLimits::default()).unwrap()),
            Err(e) => Read::Failed(e.to_string()),
        }
    }

    /// The application close code the node closed the connection with, bounded by [`WAIT`].
    pub(crate) async fn close_code(&self) -> Option<u64> {
        let err = tokio::time::timeout(WAIT, self.conn.closed())
            .await
            .expect("the node closes the connection in time");
        match err {
            iroh::endpoint::ConnectionError::ApplicationClosed(close) => {
                Some(close.error_code.into_inner())
            }
            _ => None,
        }
    }
}
