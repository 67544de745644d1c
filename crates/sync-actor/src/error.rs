//! The error of every handle method.

use sync_core::{AuthorId, NamespaceId, StoreError, ValidationError};

/// A request to the actor failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// The actor thread is gone (shut down, or died); no request can be served any more.
    #[error("the sync actor has stopped")]
    Stopped,
    /// The request failed inside the actor in an unexpected way (a bug: it panicked). The actor
    /// goes on serving other requests.
    #[error("the request failed inside the sync actor")]
    RequestFailed,
    /// The document is not open.
    #[error("document {0} is not open")]
    NotOpen(NamespaceId),
    /// The document is open but not marked for sync.
    #[error("document {0} is not open for sync")]
    NotSyncing(NamespaceId),
    /// The document is not in the store.
    #[error("document {0} is not in the store")]
    UnknownNamespace(NamespaceId),
    /// Writing needs the namespace secret, and only the id is known.
    #[error("document {0} is read-only here")]
    ReadOnly(NamespaceId),
    /// The author's key is not in the store.
    #[error("author {0} is not in the store")]
    AuthorNotFound(AuthorId),
    /// A local insert needs content: use `delete_prefix` to delete.
    #[error("an entry needs content: length 0 or the empty hash is a deletion")]
    EntryIsEmpty,
    /// The store holds an equal or newer entry at this key or a prefix of it.
    #[error("a newer entry exists at this key or a prefix of it")]
    NewerEntryExists,
    /// The entry failed validation.
    #[error("invalid entry: {0}")]
    Validation(#[from] ValidationError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// A reconciliation step failed (the session is over).
    #[error("sync step failed: {0}")]
    Sync(String),
}

impl From<StoreError> for ActorError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UnknownNamespace(ns) => Self::UnknownNamespace(ns),
            other => Self::Store(other),
        }
    }
}
