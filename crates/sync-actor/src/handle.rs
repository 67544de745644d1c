//! [`SyncHandle`]: the cloneable async front of the actor.

use std::any::Any;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use bytes::Bytes;
use ranger::{Hooks, Session, Verdicts};
use sync_core::{
    Author, AuthorHeads, AuthorId, Capability, CapabilityKind, ContentHash, ContentStatus,
    DownloadPolicy, ImportOutcome, InsertOutcome, NamespaceId, NamespaceSecret, Query, QueryCursor,
    Record, RecordIdentifier, RejectionCounts, ReplicaStore, SignatureCheck, SignedEntry, Store,
    ValidationError, now_micros,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::actor::{
    Action, Actor, ActorConfig, ContentStatusFn, LocalInsert, OpenReplica, Request,
};
use crate::error::ActorError;
use crate::events::{Event, Subscription};
use crate::metrics::Metrics;
use crate::signing::{Reply, SignJob};

/// A reconciliation message of this node: ranger's message over signed entries, with the
/// content status iroh-docs sends next to every value.
pub type ProtocolMessage = ranger::Message<SignedEntry, ContentStatus>;

/// How a document is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Whether the document takes part in sync (entries from peers are accepted only then).
    pub sync: bool,
}

impl OpenOptions {
    /// Open for sync.
    pub fn sync() -> Self {
        Self { sync: true }
    }
}

/// The state of an open document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenState {
    /// Whether it is open for sync.
    pub sync: bool,
    /// The number of open handles.
    pub handles: usize,
    /// The number of subscribers.
    pub subscribers: usize,
}

/// The state of one side of a reconciliation session, carried between its steps.
#[derive(Debug, Clone)]
pub struct SyncProgress {
    /// The algorithm's side of the session, with its counters.
    pub session: Session,
    /// The newest timestamp per author among the valid entries received.
    pub heads_received: AuthorHeads,
    /// The peer (its endpoint id).
    pub peer: [u8; 32],
    /// The received entries validation refused, by reason.
    pub rejections: RejectionCounts,
}

impl SyncProgress {
    /// A fresh session with `peer` under the node's reconciliation configuration.
    fn new(config: ranger::Config, peer: [u8; 32]) -> Self {
        Self {
            session: Session::new(config),
            heads_received: AuthorHeads::default(),
            peer,
            rejections: RejectionCounts::default(),
        }
    }
}

/// A cloneable handle to the actor that owns the store. Every method is a request served by
/// the actor thread in arrival order. When the last handle (and the last [`ReplicaGuard`]) is
/// dropped, the actor commits and stops.
#[derive(Clone)]
pub struct SyncHandle {
    tx: mpsc::Sender<Request>,
    query_chunk: usize,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("stopped", &self.tx.is_closed())
            .finish()
    }
}

impl SyncHandle {
    /// Starts the actor thread with `store`.
    pub fn spawn<S: Store + Send + 'static>(store: S, config: ActorConfig) -> Self {
        Self::spawn_with_content_status(store, config, None)
    }

    /// Starts the actor thread; `content_status` reports for outgoing entries whether this
    /// node has their content (otherwise [`ContentStatus::Missing`] is sent).
    pub fn spawn_with_content_status<S: Store + Send + 'static>(
        store: S,
        config: ActorConfig,
        content_status: Option<ContentStatusFn>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let query_chunk = config.query_chunk.max(1);
        let name = config.thread_name.clone();
        let actor = Actor::new(Box::new(store), config, content_status);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || actor.run(rx));
        // If the thread cannot start, the receiver is gone and every call reports `Stopped`.
        drop(spawned);
        Self { tx, query_chunk }
    }

    /// Runs `f` on the actor thread and returns its result.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Actor) -> Result<R, ActorError> + Send + 'static,
    ) -> Result<R, ActorError> {
        self.request(|reply| {
            let action: Action = Box::new(move |actor| {
                let _ = reply.send(f(actor));
            });
            Request::Run(action)
        })
        .await
    }

    /// Sends the request built around a fresh reply channel and waits for the reply.
    async fn request<R>(
        &self,
        build: impl FnOnce(oneshot::Sender<Result<R, ActorError>>) -> Request,
    ) -> Result<R, ActorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(build(reply))
            .await
            .map_err(|_| ActorError::Stopped)?;
        match rx.await {
            Ok(result) => result,
            Err(_) if self.tx.is_closed() => Err(ActorError::Stopped),
            Err(_) => Err(ActorError::RequestFailed),
        }
    }

    /// Commits, closes every document and stops the actor, handing the store back. Fails with
    /// [`ActorError::Stopped`] if the actor is already gone and with
    /// [`ActorError::RequestFailed`] if the store is not an `S`.
    pub async fn shutdown<S: Store + Send + 'static>(self) -> Result<S, ActorError> {
        let (reply, rx) = oneshot::channel::<Box<dyn Any + Send>>();
        self.tx
            .send(Request::Shutdown(reply))
            .await
            .map_err(|_| ActorError::Stopped)?;
        let store = rx.await.map_err(|_| ActorError::Stopped)?;
        store
            .downcast::<S>()
            .map(|s| *s)
            .map_err(|_| ActorError::RequestFailed)
    }

    // --- documents ---

    /// Creates a new document with a fresh namespace secret.
    pub async fn create_replica(&self) -> Result<NamespaceSecret, ActorError> {
        let secret = NamespaceSecret::generate();
        self.import_namespace(Capability::Write(secret.clone()))
            .await?;
        Ok(secret)
    }

    /// Adds a document or merges a capability into a known one (also into its open state).
    pub async fn import_namespace(
        &self,
        capability: Capability,
    ) -> Result<ImportOutcome, ActorError> {
        self.call(move |actor| {
            let id = capability.id();
            let outcome = actor.store.import_namespace(capability.clone())?;
            actor.wrote(1);
            if outcome == ImportOutcome::Upgraded
                && let Some(open) = actor.open.get_mut(&id)
            {
                let _ = open.capability.merge(capability);
            }
            Ok(outcome)
        })
        .await
    }

    /// Every document in the store.
    pub async fn list_replicas(&self) -> Result<Vec<(NamespaceId, CapabilityKind)>, ActorError> {
        self.call(|actor| Ok(actor.store.list_namespaces()?)).await
    }

    /// The namespace secret of a document, if this node has write access.
    pub async fn export_secret(
        &self,
        namespace: NamespaceId,
    ) -> Result<Option<NamespaceSecret>, ActorError> {
        self.call(move |actor| {
            let cap = actor
                .store
                .capability(&namespace)?
                .ok_or(ActorError::UnknownNamespace(namespace))?;
            Ok(cap.secret().ok().cloned())
        })
        .await
    }

    /// Opens a document (reference-counted). The returned guard closes it when dropped or
    /// closed; the document is released when its last guard goes.
    pub async fn open(
        &self,
        namespace: NamespaceId,
        options: OpenOptions,
    ) -> Result<ReplicaGuard, ActorError> {
        self.call(move |actor| {
            if let Some(open) = actor.open.get_mut(&namespace) {
                open.handles += 1;
                open.sync |= options.sync;
                return Ok(());
            }
            let capability = actor
                .store
                .capability(&namespace)?
                .ok_or(ActorError::UnknownNamespace(namespace))?;
            let (events, _) = broadcast::channel(actor.config.event_capacity.max(1));
            actor.open.insert(
                namespace,
                OpenReplica {
                    capability,
                    sync: options.sync,
                    handles: 1,
                    events,
                },
            );
            Ok(())
        })
        .await?;
        Ok(ReplicaGuard {
            handle: self.clone(),
            namespace,
            closed: false,
        })
    }

    /// The state of an open document, `None` if it is not open.
    pub async fn state(&self, namespace: NamespaceId) -> Result<Option<OpenState>, ActorError> {
        self.call(move |actor| {
            Ok(actor.open.get(&namespace).map(|o| OpenState {
                sync: o.sync,
                handles: o.handles,
                subscribers: o.events.receiver_count(),
            }))
        })
        .await
    }

    /// Marks an open document for sync, or not.
    pub async fn set_sync(&self, namespace: NamespaceId, sync: bool) -> Result<(), ActorError> {
        self.call(move |actor| {
            open_mut(actor, namespace)?.sync = sync;
            Ok(())
        })
        .await
    }

    /// Subscribes to the events of an open document.
    pub async fn subscribe(&self, namespace: NamespaceId) -> Result<Subscription, ActorError> {
        self.call(move |actor| {
            let rx = open_mut(actor, namespace)?.events.subscribe();
            Ok(Subscription { rx })
        })
        .await
    }

    /// Closes a document (all its handles: subscriptions end) and removes it and everything
    /// of it from the store. Returns whether it existed.
    pub async fn drop_replica(&self, namespace: NamespaceId) -> Result<bool, ActorError> {
        self.call(move |actor| {
            actor.open.remove(&namespace);
            let existed = actor.store.remove_namespace(&namespace)?;
            actor.wrote(1);
            Ok(existed)
        })
        .await
    }

    // --- authors ---

    /// Creates and stores a new author.
    pub async fn create_author(&self) -> Result<AuthorId, ActorError> {
        self.import_author(Author::generate()).await
    }

    /// Stores an author key.
    pub async fn import_author(&self, author: Author) -> Result<AuthorId, ActorError> {
        self.call(move |actor| {
            let id = author.id();
            actor.store.import_author(author)?;
            actor.wrote(1);
            Ok(id)
        })
        .await
    }

    /// The key of a stored author.
    pub async fn export_author(&self, id: AuthorId) -> Result<Option<Author>, ActorError> {
        self.call(move |actor| Ok(actor.store.author(&id)?)).await
    }

    /// Every stored author.
    pub async fn list_authors(&self) -> Result<Vec<AuthorId>, ActorError> {
        self.call(|actor| Ok(actor.store.list_authors()?)).await
    }

    /// Deletes an author key. Returns whether it existed.
    pub async fn delete_author(&self, id: AuthorId) -> Result<bool, ActorError> {
        self.call(move |actor| {
            let existed = actor.store.delete_author(&id)?;
            actor.wrote(1);
            Ok(existed)
        })
        .await
    }

    /// The default author; created (and persisted) on first use.
    pub async fn default_author(&self) -> Result<AuthorId, ActorError> {
        self.call(|actor| {
            if let Some(id) = actor.store.default_author()? {
                return Ok(id);
            }
            let author = Author::generate();
            let id = author.id();
            actor.store.import_author(author)?;
            actor.store.set_default_author(&id)?;
            // Commit now: a default author that changes after a crash would be surprising.
            actor.commit()?;
            Ok(id)
        })
        .await
    }

    /// Makes a stored author the default. Returns whether the author is stored.
    pub async fn set_default_author(&self, id: AuthorId) -> Result<bool, ActorError> {
        self.call(move |actor| {
            let ok = actor.store.set_default_author(&id)?;
            actor.wrote(1);
            Ok(ok)
        })
        .await
    }

    // --- writes ---

    /// Writes an entry for `key` with content `hash` of `len` bytes, signed by `author` (whose
    /// key must be stored), timestamped now. The document must be open and writable.
    pub async fn insert_local(
        &self,
        namespace: NamespaceId,
        author: AuthorId,
        key: impl Into<Bytes>,
        hash: ContentHash,
        len: u64,
    ) -> Result<SignedEntry, ActorError> {
        if len == 0 || hash == ContentHash::EMPTY {
            return Err(ActorError::EntryIsEmpty);
        }
        let key = key.into();
        self.request(|reply| {
            Request::InsertLocal(LocalInsert {
                namespace,
                author,
                key,
                hash,
                len,
                reply,
            })
        })
        .await
    }

    /// Hashes `data` and writes an entry for it (the content itself is not stored here).
    pub async fn hash_and_insert(
        &self,
        namespace: NamespaceId,
        author: AuthorId,
        key: impl Into<Bytes>,
        data: impl AsRef<[u8]>,
    ) -> Result<ContentHash, ActorError> {
        let data = data.as_ref();
        let hash = ContentHash::of(data);
        self.insert_local(namespace, author, key, hash, data.len() as u64)
            .await?;
        Ok(hash)
    }

    /// Deletes every entry of `author` whose key starts with `prefix` by writing a deletion
    /// marker at `prefix`. Returns the number of entries removed.
    pub async fn delete_prefix(
        &self,
        namespace: NamespaceId,
        author: AuthorId,
        prefix: impl Into<Bytes>,
    ) -> Result<u64, ActorError> {
        let prefix = prefix.into();
        self.call(move |actor| {
            let (_entry, removed) = local_write(
                actor,
                namespace,
                author,
                &prefix,
                Record::empty(now_micros()),
            )?;
            Ok(removed)
        })
        .await
    }

    /// Stores an entry received from a peer outside a sync session (for example by gossip).
    /// The document must be open for sync. Fully validated; returns the number of older
    /// entries it removed.
    pub async fn insert_remote(
        &self,
        namespace: NamespaceId,
        entry: SignedEntry,
        from: [u8; 32],
        status: ContentStatus,
    ) -> Result<u64, ActorError> {
        self.call(move |actor| {
            let events = syncing(actor, namespace)?.events.clone();
            entry.validate(
                namespace,
                now_micros(),
                &actor.config.validation,
                SignatureCheck::Verify,
            )?;
            let InsertOutcome::Inserted { removed } = actor.store.insert(entry.clone())? else {
                return Err(ActorError::NewerEntryExists);
            };
            actor.wrote(1);
            actor.metrics.entries_remote += 1;
            actor.metrics.entries_remote_bytes += entry.content_len();
            let should_download = actor
                .store
                .download_policy(&namespace)?
                .matches(entry.entry());
            let _ = events.send(Event::RemoteInsert {
                namespace,
                entry,
                from,
                should_download,
                remote_content_status: status,
            });
            Ok(removed)
        })
        .await
    }

    // --- reads ---

    /// The entry at (author, key) of an open document.
    pub async fn get_exact(
        &self,
        namespace: NamespaceId,
        author: AuthorId,
        key: impl Into<Bytes>,
        include_empty: bool,
    ) -> Result<Option<SignedEntry>, ActorError> {
        let key = key.into();
        self.call(move |actor| {
            open_mut(actor, namespace)?;
            Ok(actor
                .store
                .get_exact(&namespace, &author, &key, include_empty)?)
        })
        .await
    }

    /// Streams the results of `query` over an open document in chunks; each chunk is one
    /// request, so a long query never holds up other requests for more than a chunk.
    pub fn query(&self, namespace: NamespaceId, query: Query) -> QueryStream {
        let cursor = QueryCursor::start(&query);
        QueryStream {
            handle: self.clone(),
            namespace,
            query: Arc::new(query),
            cursor,
        }
    }

    // --- sync ---

    /// The first message of a session with `peer` on a document open for sync.
    pub async fn sync_initial_message(
        &self,
        namespace: NamespaceId,
        peer: [u8; 32],
    ) -> Result<(ProtocolMessage, SyncProgress), ActorError> {
        self.call(move |actor| {
            syncing(actor, namespace)?;
            let mut progress = SyncProgress::new(actor.config.sync, peer);
            let mut store = ReplicaStore::new(&mut *actor.store, namespace);
            let message = progress
                .session
                .initial_message(&mut store, RecordIdentifier::zero())
                .map_err(|e| ActorError::Sync(e.to_string()))?;
            Ok((message, progress))
        })
        .await
    }

    /// Processes one message of a session; returns the reply (`None`: this side is done).
    pub async fn sync_process_message(
        &self,
        namespace: NamespaceId,
        message: ProtocolMessage,
        mut progress: SyncProgress,
    ) -> Result<(Option<ProtocolMessage>, SyncProgress), ActorError> {
        self.call(move |actor| {
            let events = syncing(actor, namespace)?.events.clone();
            let policy = actor.store.download_policy(&namespace)?;
            let Actor {
                store,
                config,
                metrics,
                content_status,
                ..
            } = &mut *actor;
            let mut hooks = SyncHooks {
                namespace,
                now: now_micros(),
                validation: &config.validation,
                verify_threads: config.verify_threads,
                rejections: &mut progress.rejections,
                events: &events,
                policy: &policy,
                from: progress.peer,
                heads: &mut progress.heads_received,
                metrics,
                content_status: content_status.as_ref(),
                inserted: 0,
            };
            let mut replica = ReplicaStore::new(&mut **store, namespace);
            let reply = progress
                .session
                .process_message(&mut replica, &mut hooks, message)
                .map_err(|e| ActorError::Sync(e.to_string()))?;
            let inserted = hooks.inserted;
            actor.wrote(inserted);
            Ok((reply, progress))
        })
        .await
    }

    // --- peers, heads, policy, store ---

    /// Remembers a peer as useful for a document.
    pub async fn register_useful_peer(
        &self,
        namespace: NamespaceId,
        peer: [u8; 32],
    ) -> Result<(), ActorError> {
        self.call(move |actor| {
            actor.store.register_useful_peer(&namespace, peer)?;
            actor.wrote(1);
            Ok(())
        })
        .await
    }

    /// The useful peers of a document, most recent first.
    pub async fn useful_peers(&self, namespace: NamespaceId) -> Result<Vec<[u8; 32]>, ActorError> {
        self.call(move |actor| Ok(actor.store.useful_peers(&namespace)?))
            .await
    }

    /// The newest timestamp per author of a document.
    pub async fn author_heads(&self, namespace: NamespaceId) -> Result<AuthorHeads, ActorError> {
        self.call(move |actor| Ok(actor.store.author_heads(&namespace)?))
            .await
    }

    /// Whether `theirs` shows news for us: the number of authors with newer entries there.
    pub async fn has_news_for_us(
        &self,
        namespace: NamespaceId,
        theirs: AuthorHeads,
    ) -> Result<Option<NonZeroU64>, ActorError> {
        self.call(move |actor| {
            let ours = actor.store.author_heads(&namespace)?;
            Ok(theirs.has_news_for(&ours))
        })
        .await
    }

    /// The download policy of a document.
    pub async fn download_policy(
        &self,
        namespace: NamespaceId,
    ) -> Result<DownloadPolicy, ActorError> {
        self.call(move |actor| Ok(actor.store.download_policy(&namespace)?))
            .await
    }

    /// Sets the download policy of a document.
    pub async fn set_download_policy(
        &self,
        namespace: NamespaceId,
        policy: DownloadPolicy,
    ) -> Result<(), ActorError> {
        self.call(move |actor| {
            actor.store.set_download_policy(&namespace, policy)?;
            actor.wrote(1);
            Ok(())
        })
        .await
    }

    /// Commits every acknowledged write; after it returns they survive a crash.
    pub async fn flush(&self) -> Result<(), ActorError> {
        self.call(|actor| Ok(actor.commit()?)).await
    }

    /// The actor's counters.
    pub async fn metrics(&self) -> Result<Metrics, ActorError> {
        self.call(|actor| Ok(actor.metrics.clone())).await
    }

    /// Closes one handle of a document.
    async fn close(&self, namespace: NamespaceId) -> Result<(), ActorError> {
        self.call(move |actor| {
            close_one(actor, namespace);
            Ok(())
        })
        .await
    }
}

fn close_one(actor: &mut Actor, namespace: NamespaceId) {
    if let Some(open) = actor.open.get_mut(&namespace) {
        open.handles = open.handles.saturating_sub(1);
        if open.handles == 0 {
            // Dropping the sender ends every subscription.
            actor.open.remove(&namespace);
        }
    }
}

fn open_mut(actor: &mut Actor, namespace: NamespaceId) -> Result<&mut OpenReplica, ActorError> {
    actor
        .open
        .get_mut(&namespace)
        .ok_or(ActorError::NotOpen(namespace))
}

fn syncing(actor: &mut Actor, namespace: NamespaceId) -> Result<&mut OpenReplica, ActorError> {
    let open = open_mut(actor, namespace)?;
    if !open.sync {
        return Err(ActorError::NotSyncing(namespace));
    }
    Ok(open)
}

/// The keys that sign a local write to `namespace` by `author`.
fn signing_keys(
    actor: &mut Actor,
    namespace: NamespaceId,
    author: AuthorId,
) -> Result<(NamespaceSecret, Author), ActorError> {
    let secret = open_mut(actor, namespace)?
        .capability
        .secret()
        .map_err(|_| ActorError::ReadOnly(namespace))?
        .clone();
    let author = actor
        .store
        .author(&author)?
        .ok_or(ActorError::AuthorNotFound(author))?;
    Ok((secret, author))
}

/// Signs and stores a local entry; emits the event. Returns the entry and the removed count.
fn local_write(
    actor: &mut Actor,
    namespace: NamespaceId,
    author: AuthorId,
    key: &[u8],
    record: Record,
) -> Result<(SignedEntry, u64), ActorError> {
    let (secret, author) = signing_keys(actor, namespace, author)?;
    store_local(actor, SignedEntry::create(&secret, &author, key, record))
}

/// Takes local writes from the channel, in arrival order: their keys are looked up and their
/// timestamps taken in that order, then they go to the signing threads (see
/// [`crate::signing`]). A write that cannot be signed is answered now.
pub(crate) fn submit_local(actor: &mut Actor, jobs: Vec<LocalInsert>) {
    let mut work = Vec::with_capacity(jobs.len());
    for job in jobs {
        match signing_keys(actor, job.namespace, job.author) {
            Ok((secret, author)) => {
                let record = Record::new(job.hash, job.len, now_micros());
                let sign = SignJob {
                    secret,
                    author,
                    key: job.key,
                    record,
                };
                work.push((sign, job.reply));
            }
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    actor.signer.submit(work);
}

/// Stores a signed local write and answers it (`None`: it was lost unsigned).
pub(crate) fn store_signed(actor: &mut Actor, reply: Reply, entry: Option<SignedEntry>) {
    let result = match entry {
        Some(entry) => store_local(actor, entry).map(|(entry, _)| entry),
        None => Err(ActorError::RequestFailed),
    };
    let _ = reply.send(result);
}

/// Stores a local entry signed for an open document; emits the event. Returns the entry and
/// the removed count.
fn store_local(actor: &mut Actor, entry: SignedEntry) -> Result<(SignedEntry, u64), ActorError> {
    let namespace = entry.namespace();
    let record = *entry.record();
    let events = open_mut(actor, namespace)?.events.clone();
    entry.validate(
        namespace,
        record.timestamp(),
        &actor.config.validation,
        SignatureCheck::Skip,
    )?;
    let InsertOutcome::Inserted { removed } = actor.store.insert(entry.clone())? else {
        return Err(ActorError::NewerEntryExists);
    };
    actor.wrote(1);
    actor.metrics.entries_local += 1;
    actor.metrics.entries_local_bytes += entry.content_len();
    let _ = events.send(Event::LocalInsert {
        namespace,
        entry: entry.clone(),
    });
    Ok((entry, removed))
}

/// The caller side of a reconciliation step: validation, events, counters.
struct SyncHooks<'a> {
    namespace: NamespaceId,
    now: u64,
    validation: &'a sync_core::ValidationConfig,
    verify_threads: NonZeroUsize,
    rejections: &'a mut RejectionCounts,
    events: &'a broadcast::Sender<Event>,
    policy: &'a DownloadPolicy,
    from: [u8; 32],
    heads: &'a mut AuthorHeads,
    metrics: &'a mut Metrics,
    content_status: Option<&'a ContentStatusFn>,
    inserted: usize,
}

impl Hooks<SignedEntry, ContentStatus> for SyncHooks<'_> {
    type Rejection = ValidationError;

    fn validate(&mut self, entry: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        entry.validate(
            self.namespace,
            self.now,
            self.validation,
            SignatureCheck::Verify,
        )
    }

    fn validate_all(
        &mut self,
        values: &[(&SignedEntry, &ContentStatus)],
    ) -> Vec<Result<(), ValidationError>> {
        let entries: Vec<&SignedEntry> = values.iter().map(|&(e, _)| e).collect();
        SignedEntry::validate_batch(
            &entries,
            self.namespace,
            self.now,
            self.validation,
            self.verify_threads,
        )
    }

    /// The signatures of a message are checked on the verification threads while this
    /// thread stores the entries already checked.
    fn validate_stream(
        &mut self,
        values: &[(&SignedEntry, &ContentStatus)],
    ) -> Verdicts<ValidationError> {
        let entries: Vec<&SignedEntry> = values.iter().map(|&(e, _)| e).collect();
        SignedEntry::validate_streamed(
            &entries,
            self.namespace,
            self.now,
            *self.validation,
            self.verify_threads,
        )
    }

    /// Heads count every valid entry received, stored or not.
    fn on_valid(&mut self, entry: &SignedEntry, _: &ContentStatus) {
        self.heads.insert(entry.author(), entry.timestamp());
    }

    fn on_reject(&mut self, _: SignedEntry, _: ContentStatus, reason: ValidationError) {
        self.metrics.entries_rejected += 1;
        self.rejections.record(&reason);
    }

    fn on_insert(&mut self, entry: SignedEntry, status: ContentStatus) {
        self.inserted += 1;
        self.metrics.entries_remote += 1;
        self.metrics.entries_remote_bytes += entry.content_len();
        let should_download = self.policy.matches(entry.entry());
        let _ = self.events.send(Event::RemoteInsert {
            namespace: self.namespace,
            entry,
            from: self.from,
            should_download,
            remote_content_status: status,
        });
    }

    fn meta(&mut self, entry: &SignedEntry) -> ContentStatus {
        match self.content_status {
            Some(f) => f(&entry.content_hash()),
            None => ContentStatus::Missing,
        }
    }
}

/// An open document. Dropping it closes it (without waiting); [`ReplicaGuard::close`] does
/// the same and waits for the actor.
#[derive(Debug)]
pub struct ReplicaGuard {
    handle: SyncHandle,
    namespace: NamespaceId,
    closed: bool,
}

impl ReplicaGuard {
    /// The document.
    pub fn namespace(&self) -> NamespaceId {
        self.namespace
    }

    /// The handle this guard belongs to.
    pub fn handle(&self) -> &SyncHandle {
        &self.handle
    }

    /// Closes this handle of the document and waits until the actor has done it.
    pub async fn close(mut self) -> Result<(), ActorError> {
        self.closed = true;
        self.handle.close(self.namespace).await
    }
}

impl Drop for ReplicaGuard {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let namespace = self.namespace;
        let action: Action = Box::new(move |actor| close_one(actor, namespace));
        match self.handle.tx.try_send(Request::Run(action)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(request)) => {
                // Never block the dropping thread (it may be an async runtime's): hand the
                // close to a short-lived thread that waits for room.
                let tx = self.handle.tx.clone();
                let _ = std::thread::Builder::new()
                    .name("sync-actor-close".into())
                    .spawn(move || {
                        let _ = tx.blocking_send(request);
                    });
            }
        }
    }
}

/// The results of a query, fetched chunk by chunk.
#[derive(Debug)]
pub struct QueryStream {
    handle: SyncHandle,
    namespace: NamespaceId,
    query: Arc<Query>,
    cursor: QueryCursor,
}

impl QueryStream {
    /// The next chunk of results, `None` when the query is exhausted.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<SignedEntry>>, ActorError> {
        if self.cursor.done {
            return Ok(None);
        }
        let (namespace, query, cursor) = (self.namespace, self.query.clone(), self.cursor.clone());
        let max = self.handle.query_chunk;
        let page = self
            .handle
            .call(move |actor| {
                open_mut(actor, namespace)?;
                Ok(actor.store.query(&namespace, &query, &cursor, max)?)
            })
            .await?;
        self.cursor = page.cursor;
        if page.entries.is_empty() && self.cursor.done {
            return Ok(None);
        }
        Ok(Some(page.entries))
    }

    /// Every remaining result (for small queries and tests).
    pub async fn collect(mut self) -> Result<Vec<SignedEntry>, ActorError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            out.extend(chunk);
        }
        Ok(out)
    }
}
