//! A flood of connections against one node (sync-net's `SyncProtocol` behind an iroh router,
//! offline endpoints on 127.0.0.1) while an honest peer syncs a document.
//!
//! Attackers, each its own endpoint, open their connections all at once:
//! * two stallers, 64 connections each: a stream with half a length prefix, then nothing,
//!   held open until the test closes them;
//! * a mute one, 16 connections that never open a stream, held open likewise;
//! * a garbage sender, 64 connections of 3 streams each: random bytes, oversized length
//!   prefixes, bodies that do not decode, an `Init` followed by garbage;
//! * a closer, 96 connections closed right after the handshake (a third of them after
//!   sending a valid `Init`).
//!
//! Checked: the honest sync succeeds during the flood and both sides converge; each staller
//! gets exactly `max_sessions_per_peer` sessions admitted and every other connection refused
//! as too many; the node runs exactly the stalled sessions once the rest is over, and none
//! after the stallers close; every connection that reached the node ends with one report and
//! one count in `NetMetrics`, none of the attackers' as a success; the node serves a fresh
//! peer afterwards; the other document is untouched and the synced one holds exactly both
//! sides' entries; the peak resident set stays bounded.
//!
//! A second test checks that stalled sessions free their slots by themselves (idle timeout),
//! and that a refused connection cannot hold the node by trickling its `Init`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, EndpointId};
use ranger::{Fingerprint, MessagePart, Range, RangeFingerprint};
use reliability::input::Rng;
use reliability::load::{peak_rss_kib, rss_kib};
use sync_actor::{ActorConfig, OpenOptions, ReplicaGuard, SyncHandle};
use sync_core::{
    Author, AuthorId, Capability, MemStore, NamespaceId, NamespaceSecret, Query, RecordIdentifier,
    SignedEntry,
};
use sync_net::wire::{ProtocolMessage, WireMessage};
use sync_net::{
    AcceptError, AcceptReport, Limits, SessionScope, SyncError, SyncProtocol, dial_addr,
    offline_endpoint,
};

/// A bound on every wait, so that a broken node fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(60);

/// A generous bound on the peak resident set of the whole test binary (other tests run in
/// parallel threads).
const MAX_PEAK_RSS_MIB: u64 = 2048;

const STALLERS: usize = 2;
const STALLED_PER_PEER: usize = 64;
const MUTE: usize = 16;
const GARBAGE: usize = 64;
const STREAMS_PER_GARBAGE: usize = 3;
const CLOSERS: usize = 96;
const PER_PEER: usize = 8;
const PER_NODE: usize = 64;

/// A node: an in-memory actor, an offline endpoint and a router serving the protocol.
struct Node {
    handle: SyncHandle,
    sync: SyncProtocol,
    router: Router,
    addr: EndpointAddr,
    author: AuthorId,
    guards: Vec<ReplicaGuard>,
}

impl Node {
    async fn spawn(limits: Limits) -> Self {
        let handle = SyncHandle::spawn(MemStore::new(), ActorConfig::default());
        let endpoint = offline_endpoint(None).await.unwrap();
        let sync = SyncProtocol::builder(endpoint.clone(), handle.clone())
            .limits(limits)
            .build();
        let router = sync.register(Router::builder(endpoint.clone())).spawn();
        let addr = dial_addr(&endpoint);
        let author = handle.import_author(Author::generate()).await.unwrap();
        Self {
            handle,
            sync,
            router,
            addr,
            author,
            guards: Vec::new(),
        }
    }

    async fn join(&mut self, secret: &NamespaceSecret) {
        self.handle
            .import_namespace(Capability::Write(secret.clone()))
            .await
            .unwrap();
        let guard = self
            .handle
            .open(secret.id(), OpenOptions::sync())
            .await
            .unwrap();
        self.guards.push(guard);
    }

    async fn write(&self, ns: NamespaceId, prefix: &str, n: usize) {
        for i in 0..n {
            self.handle
                .hash_and_insert(
                    ns,
                    self.author,
                    format!("{prefix}/{i:04}").into_bytes(),
                    format!("value {i} of {prefix}"),
                )
                .await
                .unwrap();
        }
    }

    async fn entries(&self, ns: NamespaceId) -> Vec<SignedEntry> {
        self.handle
            .query(ns, Query::all().with_include_empty(true))
            .collect()
            .await
            .unwrap()
    }

    async fn shutdown(self) {
        drop(self.guards);
        self.router.shutdown().await.unwrap();
    }
}

/// Every accept report of a node, collected by a task from the start.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<AcceptReport>>>);

impl Reports {
    fn collect(sync: &SyncProtocol) -> Self {
        let reports = Self::default();
        let mut rx = sync.subscribe();
        let sink = reports.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(report) => sink.0.lock().unwrap().push(report),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the report collector fell behind by {n} reports")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        reports
    }

    fn of(&self, peer: EndpointId) -> Vec<AcceptReport> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| report_peer(r) == peer)
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn report_peer(report: &AcceptReport) -> EndpointId {
    match report.as_ref() {
        Ok(finished) => finished.peer,
        Err(e) => e.peer(),
    }
}

fn too_many(report: &AcceptReport, scope: SessionScope) -> bool {
    matches!(
        report.as_ref(),
        Err(AcceptError::Sync { error: SyncError::TooManySessions { scope: s, limit }, .. })
            if *s == scope && *limit == match scope {
                SessionScope::Node => PER_NODE,
                SessionScope::Peer => PER_PEER,
            }
    )
}

/// Waits (at most [`WAIT`]) until `done` holds, checking every few milliseconds.
async fn wait_until(what: &str, done: impl FnMut() -> bool) {
    assert!(waited(done).await, "timed out waiting until {what}");
}

/// Whether `done` came to hold within [`WAIT`].
async fn waited(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Dials `addr` with the sync ALPN.
async fn dial(endpoint: &Endpoint, addr: &EndpointAddr) -> Connection {
    tokio::time::timeout(WAIT, endpoint.connect(addr.clone(), sync_net::ALPN))
        .await
        .expect("connected in time")
        .expect("connected")
}

/// A held connection (kept open until dropped or closed).
struct Held {
    conn: Connection,
    _streams: Option<(SendStream, RecvStream)>,
}

/// `n` connections at once from `endpoint`, each with a stream carrying half a length
/// prefix (if `stream`), held open.
async fn stall(endpoint: &Endpoint, addr: &EndpointAddr, n: usize, stream: bool) -> Vec<Held> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (endpoint, addr) = (endpoint.clone(), addr.clone());
        tasks.spawn(async move {
            let conn = dial(&endpoint, &addr).await;
            let streams = if stream {
                let (mut send, recv) = conn.open_bi().await.unwrap();
                send.write_all(&[0, 0]).await.unwrap();
                Some((send, recv))
            } else {
                None
            };
            Held {
                conn,
                _streams: streams,
            }
        });
    }
    tasks.join_all().await
}

/// Garbage on `STREAMS_PER_GARBAGE` streams of each of `n` connections; waits until the node
/// has closed each connection.
async fn garbage(endpoint: Endpoint, addr: EndpointAddr, n: usize, ns: NamespaceId) {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let (endpoint, addr) = (endpoint.clone(), addr.clone());
        tasks.spawn(async move {
            let mut rng = Rng::new(c as u64 + 1);
            let conn = dial(&endpoint, &addr).await;
            for s in 0..STREAMS_PER_GARBAGE {
                let Ok((mut send, _recv)) = conn.open_bi().await else {
                    break;
                };
                let bytes = match (c + s) % 4 {
                    // Random bytes: mostly an absurd length prefix.
                    0 => rng.bytes(64),
                    // A length prefix far above the frame limit.
                    1 => vec![0xff; 8],
                    // A small frame whose body does not decode.
                    2 => {
                        let mut frame = vec![0, 0, 0, 32];
                        frame.extend(rng.bytes(32));
                        frame
                    }
                    // A valid `Init`, then a frame of garbage.
                    _ => {
                        let mut frame = init(ns);
                        frame.extend([0, 0, 0, 16]);
                        frame.extend(rng.bytes(16));
                        frame
                    }
                };
                // The node may already have closed the connection: fine.
                if send.write_all(&bytes).await.is_err() {
                    break;
                }
                let _ = send.finish();
            }
            let _ = tokio::time::timeout(WAIT, conn.closed()).await;
        });
    }
    tasks.join_all().await;
}

/// The frame of an `Init` for `ns` whose fingerprint of the whole document never matches, so
/// that the node answers and waits for more.
fn init(ns: NamespaceId) -> Vec<u8> {
    let whole = Range::new(RecordIdentifier::zero(), RecordIdentifier::zero());
    let message = ProtocolMessage::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range: whole,
        fingerprint: Fingerprint([1; 32]),
    })]);
    WireMessage::Init {
        namespace: ns,
        message,
    }
    .to_frame(usize::MAX)
    .unwrap()
}

/// `n` connections closed right after the handshake, every third after a valid `Init`.
async fn close_early(endpoint: Endpoint, addr: EndpointAddr, n: usize, ns: NamespaceId) {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let (endpoint, addr) = (endpoint.clone(), addr.clone());
        tasks.spawn(async move {
            let conn = dial(&endpoint, &addr).await;
            if c % 3 == 0
                && let Ok((mut send, _recv)) = conn.open_bi().await
            {
                let _ = send.write_all(&init(ns)).await;
            }
            conn.close(0u32.into(), b"bye");
        });
    }
    tasks.join_all().await;
}

fn limits() -> Limits {
    // The default idle timeout (60 s) outlasts the flood: the stallers hold their slots until
    // the test closes them.
    Limits::default()
        .with_max_sessions(PER_NODE, PER_PEER)
        .with_close_grace(Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_does_not_stop_an_honest_sync() {
    let rss_before = rss_kib();
    let (a, b) = (NamespaceSecret::generate(), NamespaceSecret::generate());
    let mut node = Node::spawn(limits()).await;
    node.join(&a).await;
    node.join(&b).await;
    node.write(a.id(), "node", 100).await;
    node.write(b.id(), "other", 50).await;
    let b_before = node.entries(b.id()).await;
    let mut honest = Node::spawn(Limits::default()).await;
    honest.join(&a).await;
    honest.write(a.id(), "honest", 100).await;
    let mut expected_a: BTreeMap<Vec<u8>, SignedEntry> = BTreeMap::new();
    for e in node
        .entries(a.id())
        .await
        .into_iter()
        .chain(honest.entries(a.id()).await)
    {
        expected_a.insert(e.id().as_bytes().to_vec(), e);
    }
    let reports = Reports::collect(&node.sync);

    let mut stallers = Vec::new();
    for _ in 0..STALLERS {
        stallers.push(offline_endpoint(None).await.unwrap());
    }
    let mute = offline_endpoint(None).await.unwrap();
    let garbler = offline_endpoint(None).await.unwrap();
    let closer = offline_endpoint(None).await.unwrap();
    let started = Instant::now();

    // Everything at once: the held connections, the garbage, the early closes; the honest
    // sync starts once the held connections are up.
    let garbage_task = tokio::spawn(garbage(garbler.clone(), node.addr.clone(), GARBAGE, a.id()));
    let closer_task = tokio::spawn(close_early(
        closer.clone(),
        node.addr.clone(),
        CLOSERS,
        a.id(),
    ));
    let mut held = Vec::new();
    for staller in &stallers {
        held.push(stall(staller, &node.addr, STALLED_PER_PEER, true).await);
    }
    held.push(stall(&mute, &node.addr, MUTE, false).await);
    let finished = tokio::time::timeout(
        WAIT,
        honest.sync.connect_and_sync(a.id(), node.addr.clone()),
    )
    .await
    .expect("the honest sync ends in time")
    .expect("the honest sync succeeds during the flood");
    tokio::time::timeout(WAIT, garbage_task)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(WAIT, closer_task)
        .await
        .unwrap()
        .unwrap();
    let flood_time = started.elapsed();

    // Converged: both sides hold exactly the union.
    let expected: Vec<SignedEntry> = expected_a.into_values().collect();
    assert_eq!(node.entries(a.id()).await, expected);
    assert_eq!(honest.entries(a.id()).await, expected);
    assert_eq!(finished.outcome.entries_inserted, 100);

    // Every garbage connection reported, and the honest session: then only the held
    // connections' admitted sessions still run.
    let garbage_id = garbler.id();
    wait_until("every garbage connection is reported", || {
        reports.of(garbage_id).len() == GARBAGE
    })
    .await;
    let honest_id = honest.addr.id;
    wait_until("the honest session is reported", || {
        reports.of(honest_id).len() == 1
    })
    .await;
    // The held connections: exactly the per-peer limit of each holder admitted.
    let holding = (STALLERS + 1) * PER_PEER;
    wait_until("the held connections hold their slots", || {
        node.sync.running_sessions() == holding
    })
    .await;
    let running_during = node.sync.running_sessions();
    assert_eq!(running_during, holding, "admitted while held");
    let closer_reports_before_release = reports.of(closer.id());

    // Release the held connections.
    for conns in &held {
        for h in conns {
            h.conn.close(0u32.into(), b"done");
        }
    }
    let held_total = STALLERS * STALLED_PER_PEER + MUTE;
    wait_until("every held connection is reported", || {
        stallers
            .iter()
            .map(|s| reports.of(s.id()).len())
            .sum::<usize>()
            + reports.of(mute.id()).len()
            == held_total
    })
    .await;
    wait_until("no session runs", || node.sync.running_sessions() == 0).await;
    drop(held);

    // The node keeps serving: a fresh peer gets the whole synced document.
    let mut fresh = Node::spawn(Limits::default()).await;
    fresh.join(&a).await;
    tokio::time::timeout(WAIT, fresh.sync.connect_and_sync(a.id(), node.addr.clone()))
        .await
        .expect("the fresh sync ends in time")
        .expect("the node serves after the flood");
    assert_eq!(fresh.entries(a.id()).await, expected);
    wait_until("the fresh session is reported", || {
        reports.of(fresh.addr.id).len() == 1
    })
    .await;

    // Nothing else changed in the store.
    assert_eq!(node.entries(b.id()).await, b_before);
    assert_eq!(node.entries(a.id()).await, expected);

    // The stallers: exactly the per-peer limit admitted (`running_during` above), every other
    // connection refused. On a loaded machine the node may not have seen the stream of a
    // connection yet when the test lets go of it; that one ends as a failed open, before the
    // node could admit or refuse it by its stream.
    for staller in &stallers {
        let of = reports.of(staller.id());
        assert_eq!(of.len(), STALLED_PER_PEER);
        let refused = of
            .iter()
            .filter(|r| too_many(r, SessionScope::Peer))
            .count();
        let unopened = of
            .iter()
            .filter(|r| matches!(r.as_ref(), Err(AcceptError::Open { .. })))
            .count();
        assert!(
            refused <= STALLED_PER_PEER - PER_PEER
                && refused + unopened >= STALLED_PER_PEER - PER_PEER,
            "per-peer limit: {refused} refused, {unopened} not opened: {of:#?}"
        );
        assert!(of.iter().all(|r| r.is_err()));
    }
    assert!(reports.of(mute.id()).iter().all(|r| r.is_err()));
    let garbage_reports = reports.of(garbage_id);
    assert!(garbage_reports.iter().all(|r| r.is_err()));
    let closer_reports = reports.of(closer.id());
    assert!(closer_reports.iter().all(|r| r.is_err()));
    assert!(closer_reports.len() <= CLOSERS);
    assert!(
        reports
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|r| !too_many(r, SessionScope::Node)),
        "the node-wide limit is never reached"
    );
    assert!(reports.of(honest_id)[0].is_ok());

    // Every report counted once; only the two honest sessions succeeded.
    let metrics = node.sync.metrics().snapshot();
    let counted = metrics.accept_ok + metrics.accept_aborted + metrics.accept_failed;
    assert_eq!(counted, reports.len() as u64, "{metrics:?}");
    assert_eq!(metrics.accept_ok, 2, "{metrics:?}");
    let refused_total = reports
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|r| too_many(r, SessionScope::Peer))
        .count() as u64;
    assert!(metrics.accept_aborted >= refused_total, "{metrics:?}");

    let peak = peak_rss_kib();
    eprintln!(
        "flood: {} connections ({} streams) from {} attackers in {:.1}s; honest sync inserted \
         {} entries; running sessions while held {running_during} (limit {PER_PEER} per peer, \
         {PER_NODE} per node); reports {} (stallers: {} refused per peer of {STALLED_PER_PEER}; \
         garbage: {} refused as too many; closers: {} reached the node, {} before release); \
         node metrics ok {} aborted {} failed {}; rss {:?} -> {:?} KiB, peak {:?} KiB",
        held_total + GARBAGE + CLOSERS,
        STALLERS * STALLED_PER_PEER + GARBAGE * STREAMS_PER_GARBAGE + CLOSERS / 3,
        STALLERS + 3,
        flood_time.as_secs_f64(),
        finished.outcome.entries_inserted,
        reports.len(),
        STALLED_PER_PEER - PER_PEER,
        garbage_reports
            .iter()
            .filter(|r| too_many(r, SessionScope::Peer))
            .count(),
        closer_reports.len(),
        closer_reports_before_release.len(),
        metrics.accept_ok,
        metrics.accept_aborted,
        metrics.accept_failed,
        rss_before,
        rss_kib(),
        peak,
    );
    if let Some(peak) = peak {
        assert!(
            peak / 1024 < MAX_PEAK_RSS_MIB,
            "peak resident set {} MiB",
            peak / 1024
        );
    }

    for endpoint in stallers.into_iter().chain([mute, garbler, closer]) {
        endpoint.close().await;
    }
    fresh.shutdown().await;
    honest.shutdown().await;
    node.shutdown().await;
}

/// Stalled sessions free their slots by themselves (idle timeout), and a connection refused
/// as too many cannot hold the node by trickling its `Init` one byte at a time: the node
/// gives it one idle period for the whole frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_trickling_connections_let_go() {
    // Long enough for the test to open the third connection while the first two still hold
    // their slots, even on a loaded machine.
    let idle = Duration::from_secs(2);
    let mut node = Node::spawn(
        Limits::default()
            .with_max_sessions(PER_NODE, 2)
            .with_idle_timeout(idle)
            .with_session_deadline(Duration::from_secs(30))
            .with_close_grace(Duration::from_millis(200)),
    )
    .await;
    let a = NamespaceSecret::generate();
    node.join(&a).await;
    let reports = Reports::collect(&node.sync);
    let attacker = offline_endpoint(None).await.unwrap();
    // Two stalled sessions take the peer's slots; the test never closes them.
    let held = stall(&attacker, &node.addr, 2, true).await;
    wait_until("both stalled sessions hold a slot", || {
        node.sync.running_sessions() == 2
    })
    .await;
    // A third connection is refused as too many; it trickles a large frame, one byte per
    // fifth of the idle timeout (each byte in time for the per-read timeout).
    let conn = dial(&attacker, &node.addr).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0x10, 0]).await.unwrap();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(idle / 5).await;
            if send.write_all(&[0]).await.is_err() {
                break;
            }
        }
    });
    let ended = waited(|| reports.len() == 3).await;
    let of = reports.of(attacker.id());
    assert!(
        ended,
        "all three sessions end; reported: {of:#?}, running: {}",
        node.sync.running_sessions()
    );
    assert_eq!(
        of.iter().filter(|r| too_many_of(r, 2)).count(),
        1,
        "{of:#?}"
    );
    assert_eq!(
        of.iter()
            .filter(|r| matches!(
                r.as_ref(),
                Err(AcceptError::Sync { error: SyncError::Idle(d), .. }) if *d == idle
            ))
            .count(),
        2,
        "{of:#?}"
    );
    assert_eq!(node.sync.running_sessions(), 0);
    trickle.abort();
    drop(held);
    attacker.close().await;
    node.shutdown().await;
}

fn too_many_of(report: &AcceptReport, limit: usize) -> bool {
    matches!(
        report.as_ref(),
        Err(AcceptError::Sync { error: SyncError::TooManySessions { scope: SessionScope::Peer, limit: l }, .. })
            if *l == limit
    )
}
