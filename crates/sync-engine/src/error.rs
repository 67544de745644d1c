//! The errors of the engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sync_core::ContentHash;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Storing or reading content failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The content is not complete on this node (not downloaded yet, or not wanted).
    #[error("content {0} is not on this node")]
    Missing(ContentHash),
    /// An import ended without complete content.
    #[error("content {0} is incomplete after its import")]
    Incomplete(ContentHash),
    /// The blob store could not be opened.
    #[error("opening the blob store in {path}")]
    Open {
        /// The store's directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// A file could not be imported.
    #[error("importing {path}")]
    Import {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// Content could not be written to a file.
    #[error("exporting to {path}")]
    Export {
        /// The target file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// A file or directory could not be used.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The blob store failed a request.
    #[error("blob store")]
    Blobs(#[source] BoxError),
    /// A background task of the store died.
    #[error("a content task failed")]
    TaskFailed,
}

impl ContentError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn blobs(source: impl Into<BoxError>) -> Self {
        Self::Blobs(source.into())
    }
}

/// One attempt to download content from one provider failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The provider sent nothing for this long.
    #[error("no progress for {0:?}")]
    Stalled(Duration),
    /// The provider sent more than any entry wanting the content says it holds.
    #[error("the provider sent more than the {limit} bytes the entry allows")]
    TooLong {
        /// The most bytes accepted.
        limit: u64,
    },
    /// The connection or the verified transfer failed (wrong bytes end a transfer here).
    #[error("transfer failed: {0}")]
    Transfer(String),
}
