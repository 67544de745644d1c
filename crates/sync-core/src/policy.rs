//! Download policy: which entries' content a node fetches after a sync.

use bytes::Bytes;

use crate::entry::Entry;

/// A key filter of a download policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    /// Keys starting with these bytes.
    Prefix(Bytes),
    /// Exactly this key.
    Exact(Bytes),
}

impl FilterKind {
    /// Whether `key` matches.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            Self::Prefix(p) => key.starts_with(p),
            Self::Exact(k) => k.as_ref() == key,
        }
    }
}

/// Which entries' content to download, per document. The default downloads everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadPolicy {
    /// Download nothing except entries matching one of the filters.
    NothingExcept(Vec<FilterKind>),
    /// Download everything except entries matching one of the filters.
    EverythingExcept(Vec<FilterKind>),
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self::EverythingExcept(Vec::new())
    }
}

impl DownloadPolicy {
    /// Whether the content of `entry` should be downloaded. Only the key is looked at.
    pub fn matches(&self, entry: &Entry) -> bool {
        let key = entry.key();
        match self {
            Self::NothingExcept(filters) => filters.iter().any(|f| f.matches(key)),
            Self::EverythingExcept(filters) => !filters.iter().any(|f| f.matches(key)),
        }
    }
}
