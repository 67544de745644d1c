//! The load scenario: one hub node serving many peers at once over loopback.
//!
//! A [`Cluster`] is a hub and `peers` peer nodes (in-memory stores, offline endpoints, one
//! process), sharing `docs` documents created on the hub. A round writes fresh random entries
//! on every node into every document ([`Cluster::write`]), then runs waves of sessions in
//! which every peer syncs every document with the hub at the same time (`peers × docs`
//! sessions in flight), until every document holds the same entries on every node
//! ([`Cluster::converge`]). Each dial's result is collected, and the hub's accept counters
//! must account for every session. The test runs one round under a timeout; the `soak`
//! binary runs rounds for minutes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use docsync::{Capability, Doc, Limits, NamespaceId, Node, Query, ShareMode, SignedEntry};

use crate::input::Rng;

/// The shape of a cluster and of its rounds.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Peer nodes (besides the hub).
    pub peers: usize,
    /// Documents, each shared by every node.
    pub docs: usize,
    /// Entries each node writes into each document per round.
    pub writes_per_round: usize,
    /// Keys per node and document: writes beyond it overwrite earlier ones.
    pub key_space: usize,
    /// Waves of sessions after which a round that has not converged fails.
    pub max_waves: usize,
    /// Seed of the random writes.
    pub seed: u64,
}

impl Default for LoadConfig {
    /// 8 peers and 8 documents: 64 sessions in flight per wave.
    fn default() -> Self {
        Self {
            peers: 8,
            docs: 8,
            writes_per_round: 12,
            key_space: 48,
            max_waves: 4,
            seed: 1,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    /// Entries written (acknowledged) in this round, over all nodes and documents.
    pub written: usize,
    /// Waves of sessions until convergence.
    pub waves: usize,
    /// Sessions dialed.
    pub sessions: usize,
    /// Sessions that ended with an error (each one typed; a converging round has none).
    pub failed: usize,
    /// The most sessions in flight at once (counted at the dialers).
    pub peak_in_flight: usize,
    /// Entries per document after the round (the same on every node).
    pub entries_per_doc: Vec<usize>,
    /// Entries some node had written that some node lacked at the end: must be zero.
    pub lost: usize,
    /// Wall time of the sync waves.
    pub sync_time: Duration,
}

/// The hub, the peers and their open documents.
pub struct Cluster {
    config: LoadConfig,
    hub: Node,
    peers: Vec<Node>,
    /// `docs[d][0]` is the hub's handle of document `d`, `docs[d][1 + p]` peer `p`'s.
    docs: Vec<Vec<Arc<Doc>>>,
    authors: Vec<docsync::AuthorId>,
    rng: Rng,
    round: u64,
    /// Every entry each node has written, by document and writer, as the writer's own store
    /// holds it after the round's writes: (author, key) -> entry.
    written: Vec<BTreeMap<(docsync::AuthorId, Vec<u8>), SignedEntry>>,
    sessions_dialed: usize,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

/// The hub's limits: room for every peer's sessions of one wave, plus those of the previous
/// wave that are still closing.
fn hub_limits(config: &LoadConfig) -> Limits {
    let wave = config.peers * config.docs;
    Limits::default().with_max_sessions(2 * wave.max(64), 2 * config.docs.max(8))
}

impl Cluster {
    /// Starts the hub and the peers and shares every document with every peer.
    pub async fn start(config: LoadConfig) -> Result<Self> {
        let hub = Node::memory()
            .limits(hub_limits(&config))
            .spawn()
            .await
            .context("starting the hub")?;
        let mut peers = Vec::with_capacity(config.peers);
        for p in 0..config.peers {
            let peer = Node::memory()
                .limits(Limits::default().with_max_sessions(64, config.docs.max(8)))
                .spawn()
                .await
                .with_context(|| format!("starting peer {p}"))?;
            peers.push(peer);
        }
        let mut docs = Vec::with_capacity(config.docs);
        for d in 0..config.docs {
            let doc = hub.create_doc().await.context("creating a document")?;
            let ticket = doc.share(ShareMode::Write).await?;
            let capability: Capability = ticket.capability.clone();
            let mut handles = vec![Arc::new(doc)];
            for (p, peer) in peers.iter().enumerate() {
                let doc = peer
                    .import_doc(capability.clone())
                    .await
                    .with_context(|| format!("peer {p} importing document {d}"))?;
                handles.push(Arc::new(doc));
            }
            docs.push(handles);
        }
        let mut authors = Vec::new();
        for node in std::iter::once(&hub).chain(&peers) {
            authors.push(node.default_author().await?);
        }
        let rng = Rng::new(config.seed);
        let written = vec![BTreeMap::new(); config.docs];
        Ok(Self {
            config,
            hub,
            peers,
            docs,
            authors,
            rng,
            round: 0,
            written,
            sessions_dialed: 0,
        })
    }

    /// Sessions dialed since the start.
    pub fn sessions_dialed(&self) -> usize {
        self.sessions_dialed
    }

    /// The hub's network counters.
    pub fn hub_metrics(&self) -> sync_net::NetMetricsSnapshot {
        self.hub.net_metrics()
    }

    /// Every node writes `writes_per_round` random entries into every document (new keys and
    /// overwrites, random value sizes). Returns how many writes were acknowledged.
    pub async fn write(&mut self) -> Result<usize> {
        self.round += 1;
        let mut count = 0;
        for d in 0..self.config.docs {
            for (n, doc) in self.docs[d].iter().enumerate() {
                let author = self.authors[n];
                for _ in 0..self.config.writes_per_round {
                    let key = format!("n{n:02}/k{:05}", self.rng.below(self.config.key_space));
                    let len = 1 + self.rng.below(200);
                    let mut value = self.rng.bytes(len);
                    value.extend_from_slice(format!("@{}", self.round).as_bytes());
                    doc.set(author, key.clone().into_bytes(), value)
                        .await
                        .with_context(|| format!("node {n} writing {key} into document {d}"))?;
                    count += 1;
                }
                // What the writer's own store holds is the truth every node must reach.
                let own = doc.query(Query::author(author)).await?;
                let written = &mut self.written[d];
                written.retain(|(a, _), _| *a != author);
                for entry in own {
                    written.insert((author, entry.key().to_vec()), entry);
                }
            }
        }
        Ok(count)
    }

    /// Runs waves of sessions (every peer syncing every document with the hub at once)
    /// until every node holds every document's written entries, or fails after
    /// `max_waves` waves.
    pub async fn converge(&mut self) -> Result<RoundReport> {
        let mut report = RoundReport::default();
        let started = Instant::now();
        let hub_addr = self.hub.addr();
        for wave in 1..=self.config.max_waves {
            let in_flight = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            // Every session of the wave starts together: all of them are in flight at once.
            let start = Arc::new(tokio::sync::Barrier::new(
                self.config.docs * self.config.peers,
            ));
            let mut tasks = Vec::new();
            for d in 0..self.config.docs {
                for p in 0..self.config.peers {
                    let doc = self.docs[d][1 + p].clone();
                    let addr = hub_addr.clone();
                    let (in_flight, peak, start) = (in_flight.clone(), peak.clone(), start.clone());
                    tasks.push(tokio::spawn(async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        start.wait().await;
                        let result = doc.sync_with(addr).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        result.map(|_| ()).map_err(|e| e.to_string())
                    }));
                }
            }
            report.sessions += tasks.len();
            self.sessions_dialed += tasks.len();
            let mut errors = Vec::new();
            for task in tasks {
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(e) => bail!("a session task panicked or was cancelled: {e}"),
                }
            }
            report.failed += errors.len();
            report.peak_in_flight = report.peak_in_flight.max(peak.load(Ordering::SeqCst));
            report.waves = wave;
            if let Some(first) = errors.first() {
                eprintln!(
                    "load: wave {wave}: {} of {} sessions failed, first: {first}",
                    errors.len(),
                    self.config.docs * self.config.peers
                );
            }
            let (lost, per_doc) = self.missing().await?;
            if lost == 0 {
                report.lost = 0;
                report.entries_per_doc = per_doc;
                report.sync_time = started.elapsed();
                return Ok(report);
            }
            report.lost = lost;
        }
        bail!(
            "not converged after {} waves: {} entries missing somewhere",
            report.waves,
            report.lost
        )
    }

    /// How many (node, written entry) pairs are missing or differ, and the entries per
    /// document. Fails if a node holds an entry nobody wrote.
    async fn missing(&self) -> Result<(usize, Vec<usize>)> {
        let mut missing = 0;
        let mut per_doc = Vec::new();
        for (d, handles) in self.docs.iter().enumerate() {
            let want = &self.written[d];
            for (n, doc) in handles.iter().enumerate() {
                let have = doc.query(Query::all().with_include_empty(true)).await?;
                let mut have: BTreeMap<(docsync::AuthorId, Vec<u8>), SignedEntry> = have
                    .into_iter()
                    .map(|e| ((e.author(), e.key().to_vec()), e))
                    .collect();
                for (key, entry) in want {
                    if have.remove(key).as_ref() != Some(entry) {
                        missing += 1;
                    }
                }
                // What is left is at keys nobody wrote.
                ensure!(
                    have.is_empty(),
                    "node {n} holds {} entries of document {d} that nobody wrote, e.g. {:?}",
                    have.len(),
                    have.values().next()
                );
            }
            per_doc.push(want.len());
        }
        Ok((missing, per_doc))
    }

    /// Waits (at most `limit`) until the hub's accept counters account for every session
    /// dialed: an accepting task may finish a moment after its dialer. Returns the number the
    /// hub accounts for (ok, aborted and failed sessions).
    pub async fn settle(&self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let m = self.hub.net_metrics();
            let accounted = m.accept_ok + m.accept_aborted + m.accept_failed;
            if accounted >= self.sessions_dialed as u64 || Instant::now() >= deadline {
                return accounted;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ids of the documents.
    pub fn documents(&self) -> Vec<NamespaceId> {
        self.docs.iter().map(|d| d[0].id()).collect()
    }

    /// Stops every node.
    pub async fn shutdown(self) -> Result<()> {
        drop(self.docs);
        for peer in &self.peers {
            peer.shutdown().await?;
        }
        self.hub.shutdown().await?;
        Ok(())
    }
}

/// The peak resident set of this process in KiB (`VmHWM`), if the platform reports it.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// The resident set of this process in KiB (`VmRSS`), if the platform reports it.
pub fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}
