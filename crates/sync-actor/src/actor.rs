//! The actor thread: owns the store, runs one request at a time, commits by policy.

use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_core::{Capability, ContentHash, ContentStatus, NamespaceId, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::events::Event;
use crate::metrics::Metrics;
use crate::signing::Signer;

/// A store the actor can own and hand back at shutdown.
pub(crate) trait OwnedStore: Store + Send {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<S: Store + Send + 'static> OwnedStore for S {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// Reports whether this node has the content of a hash, for the status sent next to entries.
pub type ContentStatusFn = Arc<dyn Fn(&ContentHash) -> ContentStatus + Send + Sync>;

/// Tuning of the actor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorConfig {
    /// Requests that may wait in the channel before callers wait to send. Default 1024.
    pub channel_capacity: usize,
    /// The longest time an acknowledged write waits for its commit. Default 500 ms, as the
    /// reference: a crash loses at most this window of acknowledged, unflushed writes.
    pub max_commit_delay: Duration,
    /// Commit after this many writes even if the delay has not passed. Default 65 536 (the
    /// store's own default batch: fewer commits make bulk writes faster).
    pub max_batch_writes: usize,
    /// Events buffered per document for subscribers; a subscriber further behind is told how
    /// many it missed. Default 1024.
    pub event_capacity: usize,
    /// Entries per chunk of a streamed query. Default 256.
    pub query_chunk: usize,
    /// How entries from peers are validated.
    pub validation: sync_core::ValidationConfig,
    /// The reconciliation configuration of sessions on this node.
    pub sync: ranger::Config,
    /// Threads that verify the signatures of one incoming sync message together (batch
    /// verification, [`sync_core::SignedEntry::validate_batch`]), and threads that sign local
    /// writes while the actor stores those signed before. Default: the available parallelism of
    /// the machine.
    pub verify_threads: NonZeroUsize,
    /// The name of the actor thread.
    pub thread_name: String,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 1024,
            max_commit_delay: Duration::from_millis(500),
            max_batch_writes: 65_536,
            event_capacity: 1024,
            query_chunk: 256,
            validation: sync_core::ValidationConfig::default(),
            sync: ranger::Config::reference(),
            verify_threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            thread_name: "sync-actor".to_string(),
        }
    }
}

/// The state of one open document.
pub(crate) struct OpenReplica {
    pub(crate) capability: Capability,
    pub(crate) sync: bool,
    pub(crate) handles: usize,
    pub(crate) events: broadcast::Sender<Event>,
}

/// What the actor thread owns.
pub(crate) struct Actor {
    pub(crate) store: Box<dyn OwnedStore>,
    pub(crate) open: HashMap<NamespaceId, OpenReplica>,
    pub(crate) config: ActorConfig,
    pub(crate) metrics: Metrics,
    pub(crate) content_status: Option<ContentStatusFn>,
    pub(crate) signer: Signer,
    dirty_writes: usize,
    dirty_since: Option<Instant>,
}

pub(crate) type Action = Box<dyn FnOnce(&mut Actor) + Send>;

pub(crate) enum Request {
    Run(Action),
    /// A local write, kept apart from [`Request::Run`] so that it is signed off the actor thread
    /// while the actor serves on ([`crate::signing`]).
    InsertLocal(LocalInsert),
    Shutdown(oneshot::Sender<Box<dyn Any + Send>>),
}

/// What [`crate::SyncHandle::insert_local`] asks for.
pub(crate) struct LocalInsert {
    pub(crate) namespace: NamespaceId,
    pub(crate) author: sync_core::AuthorId,
    pub(crate) key: bytes::Bytes,
    pub(crate) hash: ContentHash,
    pub(crate) len: u64,
    pub(crate) reply: crate::signing::Reply,
}

/// The most local writes taken from the channel at once: a bounded chunk of work, so that
/// other requests wait at most this many timestamps and key lookups.
const MAX_LOCAL_BATCH: usize = 64;

/// What the loop waits for next.
enum Next {
    Request(Request),
    /// The oldest local write being signed is signed (`None`: its signing thread is gone).
    Signed(Option<sync_core::SignedEntry>),
    Timeout,
    Disconnected,
}

impl Actor {
    pub(crate) fn new(
        store: Box<dyn OwnedStore>,
        config: ActorConfig,
        content_status: Option<ContentStatusFn>,
    ) -> Self {
        Self {
            signer: Signer::new(config.verify_threads.get()),
            store,
            open: HashMap::new(),
            config,
            metrics: Metrics::default(),
            content_status,
            dirty_writes: 0,
            dirty_since: None,
        }
    }

    /// Records that a write happened; commits if the batch is full.
    pub(crate) fn wrote(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.dirty_writes += n;
        self.dirty_since.get_or_insert_with(Instant::now);
        if self.dirty_writes >= self.config.max_batch_writes {
            // A failed commit is counted and retried at the next commit point.
            let _ = self.commit();
        }
    }

    /// Commits now; a failure is counted and retried at the next commit point.
    pub(crate) fn commit(&mut self) -> Result<(), sync_core::StoreError> {
        let result = self.store.flush();
        match &result {
            Ok(()) => {
                self.dirty_writes = 0;
                self.dirty_since = None;
                self.metrics.commits += 1;
            }
            Err(_) => self.metrics.commit_failures += 1,
        }
        result
    }

    /// How long the loop may wait for the next request before it must commit.
    fn until_commit(&self) -> Option<Duration> {
        self.dirty_since
            .map(|since| self.config.max_commit_delay.saturating_sub(since.elapsed()))
    }

    /// The loop of the actor thread.
    ///
    /// The channel is tokio's: when the loop returns and drops the receiver, the channel is
    /// closed first and the requests still queued are dropped after, so no caller can be left
    /// waiting on a request that will never run (their replies fail with `Stopped`).
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            // Without a runtime nothing can be served; dropping the receiver tells every caller.
            Err(_) => return,
        };
        // A request taken from the channel while gathering local writes, served next.
        let mut held: Option<Request> = None;
        loop {
            let next = match held.take() {
                Some(request) => Next::Request(request),
                None => {
                    // With no request waiting (or no room for more writes), sign a write no
                    // signing thread has taken yet rather than wait for one to.
                    if requests.is_empty() || self.signer.is_full() {
                        self.signer.help();
                    }
                    let wait = self.until_commit();
                    runtime.block_on(next_event(&mut requests, &mut self.signer, wait))
                }
            };
            match next {
                Next::Request(Request::InsertLocal(first)) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_LOCAL_BATCH {
                        match requests.try_recv() {
                            Ok(Request::InsertLocal(job)) => batch.push(job),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.metrics.requests += batch.len() as u64;
                    // A panic fails the writes of this batch (their replies are dropped).
                    let run = AssertUnwindSafe(|| crate::handle::submit_local(&mut self, batch));
                    if std::panic::catch_unwind(run).is_err() {
                        self.metrics.requests_failed += 1;
                    }
                }
                Next::Signed(entry) => self.store_oldest(entry),
                Next::Request(Request::Run(action)) => {
                    // Every write asked for before this request is stored first.
                    self.drain(&runtime);
                    self.metrics.requests += 1;
                    // A panic fails that one request (its reply is dropped) and nothing else.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| action(&mut self))).is_err() {
                        self.metrics.requests_failed += 1;
                    }
                }
                Next::Request(Request::Shutdown(reply)) => {
                    self.drain(&runtime);
                    self.close_all();
                    let _ = self.commit();
                    let _ = reply.send(self.store.into_any());
                    return;
                }
                Next::Timeout => {
                    let _ = self.commit();
                }
                Next::Disconnected => {
                    // The last handle is gone: store what is signed, commit, let the store close.
                    self.drain(&runtime);
                    self.close_all();
                    let _ = self.commit();
                    return;
                }
            }
        }
    }

    /// Stores the oldest local write being signed, now signed, and answers it.
    fn store_oldest(&mut self, entry: Option<sync_core::SignedEntry>) {
        let Some(reply) = self.signer.finish_oldest() else {
            return;
        };
        // A panic fails this write (its reply is dropped).
        let run = AssertUnwindSafe(|| crate::handle::store_signed(self, reply, entry));
        if std::panic::catch_unwind(run).is_err() {
            self.metrics.requests_failed += 1;
        }
    }

    /// Waits for every local write being signed and stores it.
    fn drain(&mut self, runtime: &tokio::runtime::Runtime) {
        while self.signer.help() {}
        while let Some(oldest) = self.signer.oldest() {
            let entry = runtime.block_on(&mut oldest.signed).ok();
            self.store_oldest(entry);
        }
    }

    fn close_all(&mut self) {
        self.open.clear();
    }
}

/// The next thing the loop must do: store the oldest local write being signed once it is signed
/// (first, so that writes are answered soon), serve a request (unless as many writes as the pool
/// may hold wait to be stored) or commit (when `until_commit` has passed).
async fn next_event(
    requests: &mut mpsc::Receiver<Request>,
    signer: &mut Signer,
    until_commit: Option<Duration>,
) -> Next {
    let commit = async {
        match until_commit {
            Some(wait) => tokio::time::sleep(wait).await,
            None => std::future::pending().await,
        }
    };
    let full = signer.is_full();
    let signed = async {
        match signer.oldest() {
            Some(oldest) => (&mut oldest.signed).await.ok(),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        entry = signed => Next::Signed(entry),
        request = requests.recv(), if !full => {
            request.map_or(Next::Disconnected, Next::Request)
        }
        () = commit => Next::Timeout,
    }
}
