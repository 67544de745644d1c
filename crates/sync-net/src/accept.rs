//! The accepting side: [`SyncProtocol`], the iroh protocol handler of a node, with its
//! acceptance policy, session limits and the simultaneous-dial rule; it also dials for the node
//! so that both sides share one view of the running sessions.

use std::sync::Arc;
use std::time::Instant;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::protocol::{ProtocolHandler, RouterBuilder};
use iroh::{Endpoint, EndpointAddr, EndpointId};
use sync_actor::{ActorError, OpenState, SyncHandle};
use sync_core::NamespaceId;
use tokio::sync::broadcast;
use tokio::time::{timeout, timeout_at};

use crate::dial::node_dial;
use crate::error::{AcceptError, ConnectError, SyncError};
use crate::limits::Limits;
use crate::metrics::{NetMetrics, SessionResult, Side};
use crate::registry::{Registry, Slot};
use crate::session::{
    CloseOrder, Exchange, FrameIo, Next, SyncFinished, SyncOutcome, Timings, close_code,
    close_code_for, close_sequence, close_with,
};
use crate::wire::{ALPN, AbortReason, COMPACT_ALPN, Codec, WireMessage};

/// Whether an incoming session may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Go ahead.
    Allow,
    /// Refuse with this reason (sent to the peer as `Abort`).
    Reject(AbortReason),
}

/// The application's say over incoming sessions: called with the requested document, the
/// peer, and the document's state in the actor (`None` if it is not open, which includes
/// unknown documents). The simultaneous-dial rule and the session limits apply after an
/// `Allow`; `Reject` sends `Abort(reason)`.
///
/// Closures `Fn(NamespaceId, EndpointId, Option<OpenState>) -> AcceptOutcome` are policies.
pub trait AcceptPolicy: Send + Sync + 'static {
    /// Decides one incoming session.
    fn decide(
        &self,
        namespace: NamespaceId,
        peer: EndpointId,
        state: Option<OpenState>,
    ) -> AcceptOutcome;
}

impl<F> AcceptPolicy for F
where
    F: Fn(NamespaceId, EndpointId, Option<OpenState>) -> AcceptOutcome + Send + Sync + 'static,
{
    fn decide(
        &self,
        namespace: NamespaceId,
        peer: EndpointId,
        state: Option<OpenState>,
    ) -> AcceptOutcome {
        self(namespace, peer, state)
    }
}

/// The default policy, iroh-docs' rule: documents open for sync are served to every peer;
/// documents that are unknown, closed or open without sync get `Abort(NotFound)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncingDocuments;

impl AcceptPolicy for SyncingDocuments {
    fn decide(&self, _: NamespaceId, _: EndpointId, state: Option<OpenState>) -> AcceptOutcome {
        match state {
            Some(state) if state.sync => AcceptOutcome::Allow,
            _ => AcceptOutcome::Reject(AbortReason::NotFound),
        }
    }
}

/// What [`SyncProtocol::subscribe`] delivers: the result of every accepted connection.
pub type AcceptReport = Arc<Result<SyncFinished, AcceptError>>;

/// Everything a node's sessions share.
pub(crate) struct Node {
    pub(crate) endpoint: Endpoint,
    pub(crate) handle: SyncHandle,
    pub(crate) limits: Limits,
    pub(crate) policy: Box<dyn AcceptPolicy>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<NetMetrics>,
    pub(crate) reports: broadcast::Sender<AcceptReport>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.endpoint.id())
            .field("limits", &self.limits)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The sync protocol of a node: the handler of both its ALPNs on a `Router`
/// ([`SyncProtocol::register`]) and the dialer of the node's own sessions.
///
/// ```no_run
/// # async fn demo(endpoint: iroh::Endpoint, handle: sync_actor::SyncHandle,
/// #     ns: sync_core::NamespaceId, peer: iroh::EndpointAddr) -> anyhow::Result<()> {
/// let sync = sync_net::SyncProtocol::new(endpoint.clone(), handle);
/// let router = sync.register(iroh::protocol::Router::builder(endpoint)).spawn();
/// let finished = sync.connect_and_sync(ns, peer).await?;
/// println!("{} entries in", finished.outcome.entries_inserted);
/// router.shutdown().await?;
/// # Ok(()) }
/// ```
///
/// Incoming sessions run the acceptance policy, then the simultaneous-dial rule, then the
/// exchange; each ends with a report on [`SyncProtocol::subscribe`] and counts in
/// [`SyncProtocol::metrics`]. The handler always returns `Ok` to the router: failures are in
/// the report.
#[derive(Debug, Clone)]
pub struct SyncProtocol {
    node: Arc<Node>,
}

/// Builds a [`SyncProtocol`].
pub struct SyncProtocolBuilder {
    endpoint: Endpoint,
    handle: SyncHandle,
    limits: Limits,
    policy: Box<dyn AcceptPolicy>,
    metrics: Arc<NetMetrics>,
}

impl std::fmt::Debug for SyncProtocolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncProtocolBuilder")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SyncProtocolBuilder {
    /// With these limits (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// With this acceptance policy (default [`SyncingDocuments`]).
    pub fn policy(mut self, policy: impl AcceptPolicy) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// Counting into these metrics (default: fresh ones).
    pub fn metrics(mut self, metrics: Arc<NetMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The protocol.
    pub fn build(self) -> SyncProtocol {
        let registry = Registry::new(
            self.endpoint.id(),
            self.limits.max_sessions,
            self.limits.max_sessions_per_peer,
        );
        let (reports, _) = broadcast::channel(256);
        SyncProtocol {
            node: Arc::new(Node {
                endpoint: self.endpoint,
                handle: self.handle,
                limits: self.limits,
                policy: self.policy,
                registry,
                metrics: self.metrics,
                reports,
            }),
        }
    }
}

impl SyncProtocol {
    /// The protocol with the default limits and policy.
    pub fn new(endpoint: Endpoint, handle: SyncHandle) -> Self {
        Self::builder(endpoint, handle).build()
    }

    /// A builder for limits, policy and metrics.
    pub fn builder(endpoint: Endpoint, handle: SyncHandle) -> SyncProtocolBuilder {
        SyncProtocolBuilder {
            endpoint,
            handle,
            limits: Limits::default(),
            policy: Box::new(SyncingDocuments),
            metrics: Arc::new(NetMetrics::new()),
        }
    }

    /// Syncs `namespace` with `peer` as the dialing side, under the node's limits: refused
    /// locally ([`ConnectError::AlreadySyncing`]) while a session for the document with that
    /// peer runs, and subject to the session counts. See [`crate::connect_and_sync`].
    pub async fn connect_and_sync(
        &self,
        namespace: NamespaceId,
        peer: EndpointAddr,
    ) -> Result<SyncFinished, ConnectError> {
        node_dial(&self.node, namespace, peer).await
    }

    /// Reports of every accepted connection from now on. A receiver that falls behind by more
    /// than 256 reports loses the oldest (and is told so by `recv`).
    pub fn subscribe(&self) -> broadcast::Receiver<AcceptReport> {
        self.node.reports.subscribe()
    }

    /// The node's counters.
    pub fn metrics(&self) -> &Arc<NetMetrics> {
        &self.node.metrics
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.node.limits
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.node.endpoint
    }

    /// The actor handle.
    pub fn handle(&self) -> &SyncHandle {
        &self.node.handle
    }

    /// The ALPNs this protocol serves, preferred first: the compact encoding of our own nodes
    /// ([`COMPACT_ALPN`]), then iroh-docs' ([`ALPN`]). A router negotiates the first one the
    /// dialer offers, in the order they were registered.
    pub const ALPNS: [&'static [u8]; 2] = [COMPACT_ALPN, ALPN];

    /// Routes both [`SyncProtocol::ALPNS`] to this protocol, in their order of preference.
    pub fn register(&self, router: RouterBuilder) -> RouterBuilder {
        Self::ALPNS
            .iter()
            .fold(router, |router, alpn| router.accept(alpn, self.clone()))
    }

    /// Sessions running now (dialed and accepted).
    pub fn running_sessions(&self) -> usize {
        self.node.registry.running()
    }
}

impl ProtocolHandler for SyncProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), iroh::protocol::AcceptError> {
        let start = Instant::now();
        let mut io = FrameIo::new(Codec::from_alpn(connection.alpn()).unwrap_or_default());
        let (result, linger) = self.node.serve(&connection, start, &mut io).await;
        let kind = match &result {
            Ok(finished) => {
                self.node.metrics.entries(&finished.outcome);
                SessionResult::Ok
            }
            Err(AcceptError::Abort { .. }) => SessionResult::Aborted,
            Err(AcceptError::Sync {
                error: SyncError::TooManySessions { .. },
                ..
            }) => SessionResult::Aborted,
            Err(_) => SessionResult::Failed,
        };
        self.node.metrics.bytes(io.bytes_received, io.bytes_sent);
        self.node
            .metrics
            .session(Side::Accept, kind, start.elapsed());
        // Nobody listening is fine.
        let _ = self.node.reports.send(Arc::new(result));
        if linger {
            // Keep the connection until the dialer closes it (or the grace period passes): a
            // dialer still runs its close sequence, and a real iroh-docs node records the
            // session as failed if we close the connection first (protocol notes §11).
            let _ = timeout(self.node.limits.close_grace, connection.closed()).await;
        }
        Ok(())
    }
}

/// How an accepted exchange ended early.
enum Ended {
    /// We refused with `Abort(reason)`.
    Refused(AbortReason),
    /// It failed.
    Failed(SyncError),
}

impl From<SyncError> for Ended {
    fn from(err: SyncError) -> Self {
        Ended::Failed(err)
    }
}

/// The `Abort` we send when the session fails for `err` on our side, if any: the peer is not
/// to blame, so it learns why.
fn abort_for(err: &SyncError) -> Option<AbortReason> {
    match err {
        SyncError::Actor(
            ActorError::NotOpen(_) | ActorError::NotSyncing(_) | ActorError::UnknownNamespace(_),
        ) => Some(AbortReason::NotFound),
        SyncError::Actor(_) | SyncError::Config(_) | SyncError::TooManySessions { .. } => {
            Some(AbortReason::InternalServerError)
        }
        _ => None,
    }
}

impl Node {
    /// Serves one incoming connection up to the end of its close sequence; `true` with the
    /// result if the connection closed normally (the caller then waits for the dialer to
    /// close it).
    async fn serve(
        &self,
        conn: &Connection,
        start: Instant,
        io: &mut FrameIo,
    ) -> (Result<SyncFinished, AcceptError>, bool) {
        let result = self.serve_inner(conn, start, io).await;
        let linger = conn.close_reason().is_none();
        (result, linger)
    }

    async fn serve_inner(
        &self,
        conn: &Connection,
        start: Instant,
        io: &mut FrameIo,
    ) -> Result<SyncFinished, AcceptError> {
        let peer = conn.remote_id();
        let limits = &self.limits;
        let admitted = self.registry.admit(peer);
        let (mut send, mut recv) = match timeout(limits.idle_timeout, conn.accept_bi()).await {
            Err(_) => {
                let error = SyncError::Idle(limits.idle_timeout);
                close_with(conn, close_code::LIMIT, &error);
                return Err(AcceptError::Sync {
                    peer,
                    namespace: None,
                    error,
                });
            }
            Ok(Err(error)) => return Err(AcceptError::Open { peer, error }),
            Ok(Ok(streams)) => streams,
        };
        let connected = start.elapsed();

        let mut namespace = None;
        let result = match admitted {
            Err((scope, limit)) => {
                // Read the peer's `Init` (as the reference does before refusing), so that it
                // gets its answer and both ends close cleanly. The whole frame within one idle
                // period: a refused connection holds no slot, so nothing else would stop a
                // peer that trickles its `Init` byte by byte from keeping it forever.
                if let Ok(Ok(Some(WireMessage::Init { namespace: ns, .. }))) =
                    timeout(limits.idle_timeout, io.read(&mut recv, limits)).await
                {
                    namespace = Some(ns);
                }
                Err(Ended::Failed(SyncError::TooManySessions { scope, limit }))
            }
            Ok(mut slot) => {
                let deadline = tokio::time::Instant::from_std(start) + limits.session_deadline;
                let exchange =
                    self.exchange(&mut send, &mut recv, &mut slot, peer, &mut namespace, io);
                let result = timeout_at(deadline, exchange).await;
                // The session is over: free its slot before closing.
                drop(slot);
                result.unwrap_or(Err(Ended::Failed(SyncError::Timeout(
                    limits.session_deadline,
                ))))
            }
        };
        if let Err(Ended::Failed(err)) = &result
            && let Some(reason) = abort_for(err)
        {
            let _ = io
                .write(&mut send, &WireMessage::Abort { reason }, limits)
                .await;
        }

        let graceful = match &result {
            Ok(_) | Err(Ended::Refused(_)) => true,
            Err(Ended::Failed(err)) => close_code_for(err).is_none(),
        };
        let close_warning = if graceful {
            // After a complete exchange the peer is waiting for our end of stream (or has
            // ended its own); after an `Abort` it ends its stream first.
            let order = match &result {
                Ok(_) => CloseOrder::UsFirst,
                Err(_) => CloseOrder::PeerFirst,
            };
            close_sequence(&mut send, &mut recv, io, limits.close_grace, order).await
        } else {
            if let Err(Ended::Failed(err)) = &result {
                close_with(
                    conn,
                    close_code_for(err).unwrap_or(close_code::INTERNAL),
                    err,
                );
            }
            None
        };

        match (result, namespace) {
            (Ok(outcome), Some(namespace)) => {
                // Remembering the peer is a courtesy; a failure here does not undo the exchange.
                let _ = self
                    .handle
                    .register_useful_peer(namespace, *peer.as_bytes())
                    .await;
                Ok(SyncFinished {
                    namespace,
                    peer,
                    side: Side::Accept,
                    outcome,
                    codec: io.codec,
                    timings: Timings {
                        connect: connected,
                        process: start.elapsed().saturating_sub(connected),
                    },
                    close_warning,
                })
            }
            (Err(Ended::Refused(reason)), Some(namespace)) => Err(AcceptError::Abort {
                peer,
                namespace,
                reason,
            }),
            (Err(Ended::Failed(error)), namespace) => Err(AcceptError::Sync {
                peer,
                namespace,
                error,
            }),
            // An exchange names its document before it can succeed or refuse.
            (_, None) => Err(AcceptError::Sync {
                peer,
                namespace: None,
                error: SyncError::UnexpectedMessage("no Init"),
            }),
        }
    }

    /// The acceptor's exchange: `Init`, the decision, then one reply per message until a side
    /// is done.
    async fn exchange(
        &self,
        send: &mut SendStream,
        recv: &mut RecvStream,
        slot: &mut Slot,
        peer: EndpointId,
        namespace_out: &mut Option<NamespaceId>,
        io: &mut FrameIo,
    ) -> Result<SyncOutcome, Ended> {
        let limits = &self.limits;
        let (namespace, mut message) = match io.read(recv, limits).await? {
            Some(WireMessage::Init { namespace, message }) => (namespace, message),
            Some(WireMessage::Sync(_)) => {
                return Err(SyncError::UnexpectedMessage("Sync before Init").into());
            }
            Some(WireMessage::Abort { .. }) => {
                return Err(SyncError::UnexpectedMessage("Abort from the dialing side").into());
            }
            None => {
                return Err(SyncError::UnexpectedMessage("the stream ended before Init").into());
            }
        };
        *namespace_out = Some(namespace);
        let state = self
            .handle
            .state(namespace)
            .await
            .map_err(SyncError::Actor)?;
        let decision = match self.policy.decide(namespace, peer, state) {
            AcceptOutcome::Allow => slot.accept(namespace),
            reject => reject,
        };
        if let AcceptOutcome::Reject(reason) = decision {
            io.write(send, &WireMessage::Abort { reason }, limits)
                .await?;
            return Err(Ended::Refused(reason));
        }
        let mut ex = Exchange::new(&self.handle, namespace, limits, None, peer)?;
        loop {
            match ex.answer(message).await? {
                Next::Send(reply) => io.write(send, &WireMessage::Sync(reply), limits).await?,
                Next::End => break,
            }
            message = match io.read(recv, limits).await? {
                // The dialer is done and closed its side.
                None => break,
                Some(WireMessage::Sync(message)) => message,
                Some(WireMessage::Init { .. }) => {
                    return Err(SyncError::UnexpectedMessage("a second Init").into());
                }
                Some(WireMessage::Abort { .. }) => {
                    return Err(SyncError::UnexpectedMessage("Abort from the dialing side").into());
                }
            };
        }
        Ok(ex.into_outcome(io))
    }
}
