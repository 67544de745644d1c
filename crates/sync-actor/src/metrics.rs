//! Counters of the actor.

/// A snapshot of the actor's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests served.
    pub requests: u64,
    /// Requests that panicked inside the actor.
    pub requests_failed: u64,
    /// Store commits.
    pub commits: u64,
    /// Store commits that failed.
    pub commit_failures: u64,
    /// Entries written locally.
    pub entries_local: u64,
    /// Bytes of content described by local entries.
    pub entries_local_bytes: u64,
    /// Entries from peers that were stored.
    pub entries_remote: u64,
    /// Bytes of content described by stored remote entries.
    pub entries_remote_bytes: u64,
    /// Entries from peers that failed validation.
    pub entries_rejected: u64,
}
