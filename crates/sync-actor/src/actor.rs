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
    /// Commit after this many writes even if the delay has not passed. Default 10 000.
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
    /// verification, [`sync_core::SignedEntry::validate_batch`]). Default: the available
    /// parallelism of the machine.
    pub verify_threads: NonZeroUsize,
    /// The name of the actor thread.
    pub thread_name: String,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 1024,
            max_commit_delay: Duration::from_millis(500),
            max_batch_writes: 10_000,
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
    dirty_writes: usize,
    dirty_since: Option<Instant>,
}

pub(crate) type Action = Box<dyn FnOnce(&mut Actor) + Send>;

/// Why the loop did not get a request.
enum Stop {
    Timeout,
    Disconnected,
}

pub(crate) enum Request {
    Run(Action),
    Shutdown(oneshot::Sender<Box<dyn Any + Send>>),
}

impl Actor {
    pub(crate) fn new(
        store: Box<dyn OwnedStore>,
        config: ActorConfig,
        content_status: Option<ContentStatusFn>,
    ) -> Self {
        Self {
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
        loop {
            let next = runtime.block_on(async {
                match self.until_commit() {
                    None => requests.recv().await.ok_or(Stop::Disconnected),
                    Some(wait) => match tokio::time::timeout(wait, requests.recv()).await {
                        Ok(Some(request)) => Ok(request),
                        Ok(None) => Err(Stop::Disconnected),
                        Err(_) => Err(Stop::Timeout),
                    },
                }
            });
            match next {
                Ok(Request::Run(action)) => {
                    self.metrics.requests += 1;
                    // A panic fails that one request (its reply is dropped) and nothing else.
                    if std::panic::catch_unwind(AssertUnwindSafe(|| action(&mut self))).is_err() {
                        self.metrics.requests_failed += 1;
                    }
                }
                Ok(Request::Shutdown(reply)) => {
                    self.close_all();
                    let _ = self.commit();
                    let _ = reply.send(self.store.into_any());
                    return;
                }
                Err(Stop::Timeout) => {
                    let _ = self.commit();
                }
                Err(Stop::Disconnected) => {
                    // The last handle is gone: commit and let the store close.
                    self.close_all();
                    let _ = self.commit();
                    return;
                }
            }
        }
    }

    fn close_all(&mut self) {
        self.open.clear();
    }
}
