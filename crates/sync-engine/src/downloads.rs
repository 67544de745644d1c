//! [`Downloads`]: the content this node wants, who may have it, and the transfers under way.
//!
//! One task owns the queue. Each wanted hash keeps its providers, each with its own backoff
//! (exponential with jitter after every failure), and is tried against one provider at a time
//! with iroh-blobs' verified get (every byte checked against the hash), over one connection per
//! peer shared by its transfers. Transfers are bounded globally and per peer. iroh-blobs'
//! `Downloader` is not used: its connection pool never lets go of the endpoint. The queue lives in memory: what is wanted follows from the
//! stored entries, so the engine rebuilds it after a restart (see `docs/protocol.md`, content).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use iroh::{Endpoint, EndpointId};
use sync_core::{ContentHash, NamespaceId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::content::ContentStore;
use crate::error::DownloadError;
use crate::transfer::{Connections, Transfer};

/// Limits and timing of downloads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Transfers at once, over all peers. Default 32.
    pub max_concurrent: usize,
    /// Transfers at once from one peer. Default 8.
    pub max_per_peer: usize,
    /// A transfer that makes no progress for this long fails. Default 15 s.
    pub stall_timeout: Duration,
    /// The wait after a provider's first failure, doubled after each further one. Default 250 ms.
    pub backoff_base: Duration,
    /// The longest wait before a provider is tried again. Default 60 s.
    pub backoff_max: Duration,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            max_concurrent: 32,
            max_per_peer: 8,
            stall_timeout: Duration::from_secs(15),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
        }
    }
}

impl DownloadOptions {
    /// Bounds transfers at once: over all peers, and from one peer.
    pub fn with_concurrency(mut self, total: usize, per_peer: usize) -> Self {
        self.max_concurrent = total.max(1);
        self.max_per_peer = per_peer.max(1);
        self
    }

    /// Fails a transfer (or a dial) that makes no progress for `timeout`.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Waits `base` after a provider's first failure, doubling up to `max`.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }
}

/// Something that happened to wanted content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentEvent {
    /// The content of `hash`, wanted by `namespace`, is now complete here.
    Ready {
        /// The document that wanted it.
        namespace: NamespaceId,
        /// The content.
        hash: ContentHash,
    },
    /// A transfer of `hash` from `peer` failed; it is tried again later.
    Failed {
        /// The content.
        hash: ContentHash,
        /// The provider that failed.
        peer: EndpointId,
        /// Why.
        reason: String,
    },
}

/// How much content is wanted and moving, for status displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadStatus {
    /// Hashes wanted and not complete yet.
    pub wanted: usize,
    /// Transfers running.
    pub running: usize,
    /// Wanted hashes with no provider known.
    pub without_provider: usize,
    /// Wanted hashes running, or with a provider not tried yet.
    pub untried: usize,
    /// Transfers completed since start.
    pub completed: u64,
    /// Transfer attempts that failed since start.
    pub failed: u64,
}

enum Command {
    Want {
        namespace: NamespaceId,
        hash: ContentHash,
        len: u64,
        providers: Vec<EndpointId>,
    },
    Providers {
        namespace: NamespaceId,
        peers: Vec<EndpointId>,
    },
    Forget {
        namespace: NamespaceId,
    },
    Status(oneshot::Sender<DownloadStatus>),
    Stop(oneshot::Sender<()>),
}

/// The handle of the download queue. Cheap to clone; the queue stops with its last handle.
#[derive(Debug, Clone)]
pub struct Downloads {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<ContentEvent>,
}

impl Downloads {
    /// Starts the queue, downloading into `content` over `endpoint`.
    pub fn spawn(
        content: ContentStore,
        endpoint: &iroh::Endpoint,
        options: DownloadOptions,
    ) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        let queue = Queue::new(content, endpoint.clone(), options, events.clone());
        tokio::spawn(queue.run(rx));
        Self { commands, events }
    }

    /// Wants the content `hash` (of length `len`) for `namespace`, from `providers` first.
    pub fn want(
        &self,
        namespace: NamespaceId,
        hash: ContentHash,
        len: u64,
        providers: Vec<EndpointId>,
    ) {
        let _ = self.commands.send(Command::Want {
            namespace,
            hash,
            len,
            providers,
        });
    }

    /// Adds `peers` as possible providers of everything `namespace` wants.
    pub fn add_providers(&self, namespace: NamespaceId, peers: Vec<EndpointId>) {
        let _ = self.commands.send(Command::Providers { namespace, peers });
    }

    /// Stops wanting content for `namespace` (its policy changed or it was dropped); content
    /// other documents want stays wanted.
    pub fn forget(&self, namespace: NamespaceId) {
        let _ = self.commands.send(Command::Forget { namespace });
    }

    /// Waits until every wanted hash is complete or has failed with each of its providers at
    /// least once; returns the status then. Wants still on their way (events of a session that
    /// just ended) are not waited for: [`crate::ContentEngine::settled`] waits for those too.
    pub async fn settled(&self) -> DownloadStatus {
        let mut events = self.subscribe();
        loop {
            let status = self.status().await;
            tracing::trace!(?status, "waiting for downloads to settle");
            if status.untried == 0 || self.commands.is_closed() {
                return status;
            }
            // Any event may settle the queue; the tick covers events missed between the two.
            let _ = tokio::time::timeout(Duration::from_millis(100), events.recv()).await;
        }
    }

    /// Stops every transfer and the queue; returns once they are gone, so the content store
    /// can be closed with nothing writing to it.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Events of wanted content.
    pub fn subscribe(&self) -> broadcast::Receiver<ContentEvent> {
        self.events.subscribe()
    }

    /// How much is wanted and moving now.
    pub async fn status(&self) -> DownloadStatus {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Status(tx));
        rx.await.unwrap_or_default()
    }
}

/// One provider of one wanted hash.
struct Provider {
    peer: EndpointId,
    failures: u32,
    next_try: Instant,
}

struct Wanted {
    namespaces: HashSet<NamespaceId>,
    len: u64,
    providers: Vec<Provider>,
    running: bool,
}

/// The outcome of one transfer: its provider, and each value it asked for.
type Attempt = (EndpointId, Vec<(ContentHash, Result<(), DownloadError>)>);

/// Values at most this long go to one provider many at a time, in one request.
const BATCH_MAX_LEN: u64 = 64 * 1024;
/// The most values in one request.
const BATCH_SIZE: usize = 64;
/// How far down the ready queue a request looks for more values of its provider.
const BATCH_SCAN: usize = 256;

struct Queue {
    content: ContentStore,
    endpoint: Endpoint,
    connections: Connections,
    options: DownloadOptions,
    events: broadcast::Sender<ContentEvent>,
    wanted: HashMap<ContentHash, Wanted>,
    /// Hashes that may start now.
    ready: VecDeque<ContentHash>,
    /// Hashes whose providers are all backing off, by the time the first may be tried.
    delayed: BinaryHeap<Reverse<(Instant, ContentHash)>>,
    /// Hashes waiting for a transfer slot of a busy peer.
    blocked: HashMap<EndpointId, VecDeque<ContentHash>>,
    per_peer: HashMap<EndpointId, usize>,
    running: JoinSet<Attempt>,
    status: DownloadStatus,
}

impl Queue {
    fn new(
        content: ContentStore,
        endpoint: Endpoint,
        options: DownloadOptions,
        events: broadcast::Sender<ContentEvent>,
    ) -> Self {
        Self {
            content,
            endpoint,
            connections: Arc::default(),
            options,
            events,
            wanted: HashMap::new(),
            ready: VecDeque::new(),
            delayed: BinaryHeap::new(),
            blocked: HashMap::new(),
            per_peer: HashMap::new(),
            running: JoinSet::new(),
            status: DownloadStatus::default(),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.start_ready();
            self.close_idle_connections();
            let wake = self.delayed.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Stop(done)) => {
                        self.running.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.command(command),
                    None => return,
                },
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    if let Ok(attempt) = done {
                        self.finished(attempt);
                    }
                }
                _ = sleep_until(wake), if wake.is_some() => self.wake_delayed(),
            }
        }
    }

    /// Drops the connections to peers no transfer uses now.
    fn close_idle_connections(&mut self) {
        let busy = &self.per_peer;
        if let Ok(mut open) = self.connections.lock() {
            open.retain(|peer, _| busy.get(peer).is_some_and(|n| *n > 0));
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Want {
                namespace,
                hash,
                len,
                providers,
            } => self.want(namespace, hash, len, providers),
            Command::Providers { namespace, peers } => {
                let hashes: Vec<ContentHash> = self
                    .wanted
                    .iter()
                    .filter(|(_, w)| w.namespaces.contains(&namespace))
                    .map(|(h, _)| *h)
                    .collect();
                for hash in hashes {
                    self.add_providers(hash, &peers);
                }
            }
            Command::Forget { namespace } => self.wanted.retain(|_, w| {
                w.namespaces.remove(&namespace);
                !w.namespaces.is_empty() || w.running
            }),
            Command::Stop(_) => {}
            Command::Status(reply) => {
                let mut status = self.status.clone();
                status.wanted = self.wanted.len();
                status.running = self.running.len();
                status.without_provider = self
                    .wanted
                    .values()
                    .filter(|w| w.providers.is_empty())
                    .count();
                status.untried = self
                    .wanted
                    .values()
                    .filter(|w| w.running || w.providers.iter().any(|p| p.failures == 0))
                    .count();
                let _ = reply.send(status);
            }
        }
    }

    fn want(
        &mut self,
        namespace: NamespaceId,
        hash: ContentHash,
        len: u64,
        peers: Vec<EndpointId>,
    ) {
        if self.content.is_complete(&hash) {
            let _ = self.events.send(ContentEvent::Ready { namespace, hash });
            return;
        }
        let wanted = self.wanted.entry(hash).or_insert_with(|| Wanted {
            namespaces: HashSet::new(),
            len,
            providers: Vec::new(),
            running: false,
        });
        wanted.namespaces.insert(namespace);
        wanted.len = wanted.len.max(len);
        self.add_providers(hash, &peers);
    }

    /// Adds providers to a wanted hash; one that is new makes the hash ready to try.
    fn add_providers(&mut self, hash: ContentHash, peers: &[EndpointId]) {
        let Some(wanted) = self.wanted.get_mut(&hash) else {
            return;
        };
        let mut added = false;
        for peer in peers {
            if !wanted.providers.iter().any(|p| p.peer == *peer) {
                wanted.providers.push(Provider {
                    peer: *peer,
                    failures: 0,
                    next_try: Instant::now(),
                });
                added = true;
            }
        }
        if added && !wanted.running {
            self.ready.push_back(hash);
        }
    }

    fn start_ready(&mut self) {
        while self.running.len() < self.options.max_concurrent {
            let Some(hash) = self.ready.pop_front() else {
                return;
            };
            self.try_start(hash);
        }
    }

    /// Starts a transfer of `hash` from its best provider that may be tried now, or files the
    /// hash where it waits for one.
    fn try_start(&mut self, hash: ContentHash) {
        let now = Instant::now();
        let Some(wanted) = self.wanted.get_mut(&hash) else {
            return;
        };
        if wanted.running || wanted.providers.is_empty() {
            return;
        }
        let per_peer = &self.per_peer;
        let max = self.options.max_per_peer;
        let free = |p: &&&Provider| per_peer.get(&p.peer).copied().unwrap_or(0) < max;
        let due: Vec<&Provider> = wanted
            .providers
            .iter()
            .filter(|p| p.next_try <= now)
            .collect();
        let Some(provider) = due.iter().filter(free).min_by_key(|p| p.failures) else {
            match due.first() {
                // Every provider that may be tried is busy: wait for its next free slot.
                Some(busy) => self.blocked.entry(busy.peer).or_default().push_back(hash),
                None => {
                    let at = wanted
                        .providers
                        .iter()
                        .map(|p| p.next_try)
                        .min()
                        .unwrap_or(now);
                    self.delayed.push(Reverse((at, hash)));
                }
            }
            return;
        };
        let peer = provider.peer;
        wanted.running = true;
        let len = wanted.len;
        let batch = self.batch_with(peer, (hash, len), now);
        tracing::trace!(%hash, %peer, values = batch.len(), "content download starts");
        *self.per_peer.entry(peer).or_default() += 1;
        let transfer = Transfer {
            endpoint: self.endpoint.clone(),
            connections: self.connections.clone(),
            content: self.content.clone(),
            batch,
            peer,
            stall: self.options.stall_timeout,
        };
        self.running
            .spawn(async move { (peer, transfer.run().await) });
    }

    /// `first` and, if it is small, more small values that `peer` may be asked for now, taken
    /// from the front of the ready queue: small values go many to a request.
    fn batch_with(
        &mut self,
        peer: EndpointId,
        first: (ContentHash, u64),
        now: Instant,
    ) -> Vec<(ContentHash, u64)> {
        let mut batch = vec![first];
        if first.1 > BATCH_MAX_LEN {
            return batch;
        }
        let mut passed = Vec::new();
        for _ in 0..BATCH_SCAN {
            if batch.len() >= BATCH_SIZE {
                break;
            }
            let Some(next) = self.ready.pop_front() else {
                break;
            };
            let Some(wanted) = self.wanted.get_mut(&next) else {
                continue;
            };
            let due = |p: &Provider| p.peer == peer && p.next_try <= now;
            if wanted.running {
                continue;
            } else if wanted.len <= BATCH_MAX_LEN && wanted.providers.iter().any(due) {
                wanted.running = true;
                batch.push((next, wanted.len));
            } else {
                passed.push(next);
            }
        }
        for hash in passed.into_iter().rev() {
            self.ready.push_front(hash);
        }
        batch
    }

    fn finished(&mut self, (peer, results): Attempt) {
        if let Some(count) = self.per_peer.get_mut(&peer) {
            *count = count.saturating_sub(1);
        }
        // The slot goes to the next hash still waiting (entries may have started or been
        // forgotten meanwhile; skipping them keeps the slot from being lost).
        while let Some(next) = self.blocked.get_mut(&peer).and_then(VecDeque::pop_front) {
            if self.wanted.get(&next).is_some_and(|w| !w.running) {
                self.ready.push_back(next);
                break;
            }
        }
        for (hash, result) in results {
            self.settle(hash, peer, result);
        }
    }

    fn settle(&mut self, hash: ContentHash, peer: EndpointId, result: Result<(), DownloadError>) {
        match result {
            Ok(()) => {
                self.status.completed += 1;
                self.content.mark_complete(hash);
                if let Some(wanted) = self.wanted.remove(&hash) {
                    for namespace in wanted.namespaces {
                        let _ = self.events.send(ContentEvent::Ready { namespace, hash });
                    }
                }
            }
            Err(error) => {
                self.status.failed += 1;
                tracing::debug!(%hash, %peer, %error, "content download failed");
                let _ = self.events.send(ContentEvent::Failed {
                    hash,
                    peer,
                    reason: error.to_string(),
                });
                self.back_off(hash, peer);
            }
        }
    }

    fn back_off(&mut self, hash: ContentHash, peer: EndpointId) {
        let Some(wanted) = self.wanted.get_mut(&hash) else {
            return;
        };
        wanted.running = false;
        if wanted.namespaces.is_empty() {
            self.wanted.remove(&hash);
            return;
        }
        if let Some(p) = wanted.providers.iter_mut().find(|p| p.peer == peer) {
            p.failures = p.failures.saturating_add(1);
            p.next_try = Instant::now() + backoff(&self.options, p.failures);
        }
        self.ready.push_back(hash);
    }

    fn wake_delayed(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, hash))) = self.delayed.peek().copied() {
            if at > now {
                break;
            }
            self.delayed.pop();
            self.ready.push_back(hash);
        }
    }
}

/// The wait after `failures` failures: doubling from the base, capped, with up to 50% jitter
/// so that many nodes retrying one provider spread out.
fn backoff(options: &DownloadOptions, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let wait = options
        .backoff_base
        .saturating_mul(1 << doublings)
        .min(options.backoff_max);
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let jitter = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX) * 0.5;
    wait.mul_f64(1.0 + jitter)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
