//! The error of the facade.

use std::path::{Path, PathBuf};

use sync_core::NamespaceId;

/// An operation of the facade failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The actor (and with it the store) failed or refused.
    #[error(transparent)]
    Actor(#[from] sync_actor::ActorError),
    /// Opening or creating the store failed.
    #[error("store: {0}")]
    Store(#[from] sync_core::StoreError),
    /// A file or directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The iroh endpoint could not be built.
    #[error("network endpoint: {0}")]
    Endpoint(String),
    /// A sync session failed.
    #[error("sync with {peer}: {message}")]
    Sync {
        /// The peer.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// The document is not known to this node.
    #[error("document {0} is not known to this node")]
    UnknownDocument(NamespaceId),
    /// Content could not be stored or read (or is not here).
    #[error(transparent)]
    Content(#[from] sync_engine::ContentError),
    /// A ticket could not be parsed.
    #[error(transparent)]
    Ticket(#[from] crate::ticket::TicketError),
    /// The metrics endpoint could not listen on its address.
    #[error("metrics endpoint on {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// An internal lock was poisoned by a panic.
    #[error("internal state poisoned by an earlier panic")]
    Poisoned,
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
