//! The errors of dialed and accepted sessions.

use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::{
    ClosedStream, ConnectionError, ReadError, ReadToEndError, StoppedError, WriteError,
};
use sync_actor::ActorError;
use sync_core::NamespaceId;

use crate::wire::{AbortReason, WireError};

/// Which session count was exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    /// Sessions of this node ([`Limits::max_sessions`](crate::Limits::max_sessions)).
    Node,
    /// Sessions with one peer ([`Limits::max_sessions_per_peer`](crate::Limits::max_sessions_per_peer)).
    Peer,
}

/// Why a session ended early, on either side. Each ends that one session; the node, its
/// store and its other sessions go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The peer announced a frame larger than the limit (nothing was allocated for it), or
    /// our reply would not fit in one.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced or produced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame body could not be decoded (malformed, unknown tags, identifiers shorter than
    /// 64 bytes, oversized keys, trailing bytes).
    #[error("malformed message: {0}")]
    Malformed(#[source] WireError),
    /// The stream ended in the middle of a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// A range bound of the peer's message belongs to another document.
    #[error("a range bound belongs to another document")]
    ForeignRange,
    /// A message that is not allowed at this point (a second `Init`, `Sync` before `Init`, an
    /// `Abort` from the dialer, an `Init` from the acceptor, or no `Init` at all).
    #[error("unexpected message: {0}")]
    UnexpectedMessage(&'static str),
    /// The session deadline passed.
    #[error("the session did not finish within {0:?}")]
    Timeout(Duration),
    /// The peer sent nothing for the idle timeout.
    #[error("the peer was idle for {0:?}")]
    Idle(Duration),
    /// The peer kept the session going past the round limit.
    #[error("the session exceeded {0} rounds")]
    TooManyRounds(u64),
    /// Too many sessions are running; on the accepting side the peer was sent
    /// `Abort(InternalServerError)`.
    #[error("too many sessions ({scope:?} limit {limit})")]
    TooManySessions {
        /// Which count.
        scope: SessionScope,
        /// Its limit.
        limit: usize,
    },
    /// The limits give no usable reconciliation budget.
    #[error("the frame limit leaves no usable message budget: {0}")]
    Config(#[source] ranger::ConfigError),
    /// Our actor failed (on the accepting side the peer was sent `Abort(InternalServerError)`,
    /// or `Abort(NotFound)` if the document was closed meanwhile).
    #[error("the sync actor failed: {0}")]
    Actor(#[source] ActorError),
    /// Reading from the stream failed.
    #[error("reading failed: {0}")]
    Read(#[source] ReadError),
    /// Writing to the stream failed.
    #[error("writing failed: {0}")]
    Write(#[source] WriteError),
}

impl From<WireError> for SyncError {
    fn from(err: WireError) -> Self {
        match err {
            WireError::FrameTooLarge { len, max } => SyncError::FrameTooLarge { len, max },
            WireError::ForeignRange => SyncError::ForeignRange,
            other => SyncError::Malformed(other),
        }
    }
}

/// A dialed session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection could not be made.
    #[error("connecting failed: {0}")]
    Connect(#[source] Box<iroh::endpoint::ConnectError>),
    /// The stream could not be opened.
    #[error("opening the stream failed: {0}")]
    Open(#[source] ConnectionError),
    /// The peer refused the session.
    #[error("the peer aborted the session: {0:?}")]
    RemoteAbort(AbortReason),
    /// A session for this document with this peer is already running on this node (nothing
    /// was sent).
    #[error("a session for this document with this peer is already running")]
    AlreadySyncing,
    /// The session failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// An accepted session failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The peer's stream never came.
    #[error("accepting the stream from {peer} failed: {error}")]
    Open {
        /// The peer.
        peer: EndpointId,
        /// Why.
        #[source]
        error: ConnectionError,
    },
    /// We refused the session (policy or simultaneous dial) and sent `Abort(reason)`.
    #[error("refused {namespace} to {peer}: {reason:?}")]
    Abort {
        /// The peer.
        peer: EndpointId,
        /// The document it asked for.
        namespace: NamespaceId,
        /// What we sent.
        reason: AbortReason,
    },
    /// The session failed.
    #[error("session with {peer} failed: {error}")]
    Sync {
        /// The peer.
        peer: EndpointId,
        /// The document, if the peer got as far as naming it.
        namespace: Option<NamespaceId>,
        /// Why.
        #[source]
        error: SyncError,
    },
}

impl AcceptError {
    /// The peer.
    pub fn peer(&self) -> EndpointId {
        match self {
            AcceptError::Open { peer, .. }
            | AcceptError::Abort { peer, .. }
            | AcceptError::Sync { peer, .. } => *peer,
        }
    }

    /// The document, if known.
    pub fn namespace(&self) -> Option<NamespaceId> {
        match self {
            AcceptError::Open { .. } => None,
            AcceptError::Abort { namespace, .. } => Some(*namespace),
            AcceptError::Sync { namespace, .. } => *namespace,
        }
    }

    /// The session error, if the session failed (rather than being refused).
    pub fn sync_error(&self) -> Option<&SyncError> {
        match self {
            AcceptError::Sync { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The close sequence after a complete exchange failed. The exchange itself succeeded; this
/// is recorded on [`SyncFinished::close_warning`](crate::SyncFinished::close_warning), because
/// a real iroh-docs node often drops the connection before the dialer's close sequence is
/// done (protocol notes §11).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseWarning {
    /// Finishing our send stream failed.
    #[error("finish: {0}")]
    Finish(#[source] ClosedStream),
    /// Waiting for the peer to acknowledge our data failed.
    #[error("stopped: {0}")]
    Stopped(#[source] StoppedError),
    /// Waiting for the end of the peer's stream failed (or it sent more data).
    #[error("read to end: {0}")]
    ReadToEnd(#[source] ReadToEndError),
    /// The close sequence took longer than the grace period.
    #[error("the close sequence took longer than {0:?}")]
    Timeout(Duration),
}
