//! Counters of the network layer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::session::SyncOutcome;

/// Upper bounds of the session-duration buckets; a last bucket takes everything longer.
pub const DURATION_BUCKETS: [Duration; 5] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

/// Which side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We dialed.
    Connect,
    /// The peer dialed.
    Accept,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionResult {
    /// Reconciled to the end.
    Ok,
    /// Refused with an `Abort` frame (sent or received) or refused locally before dialing.
    Aborted,
    /// Failed (network, limits, hostile input, actor).
    Failed,
}

/// Counters of the network layer, shared by every session of a node. Lock-free; read them with
/// [`NetMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct NetMetrics {
    sessions: [AtomicU64; 6],
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    entries_received: AtomicU64,
    entries_sent: AtomicU64,
    entries_inserted: AtomicU64,
    entries_rejected: AtomicU64,
    duration_micros_sum: AtomicU64,
    duration_count: AtomicU64,
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
}

/// A copy of [`NetMetrics`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetMetricsSnapshot {
    /// Dialed sessions that reconciled to the end.
    pub connect_ok: u64,
    /// Dialed sessions refused (by the peer's `Abort`, or locally).
    pub connect_aborted: u64,
    /// Dialed sessions that failed.
    pub connect_failed: u64,
    /// Accepted sessions that reconciled to the end.
    pub accept_ok: u64,
    /// Accepted sessions we refused with an `Abort`.
    pub accept_aborted: u64,
    /// Accepted sessions that failed.
    pub accept_failed: u64,
    /// Frame bytes received (length prefixes included).
    pub bytes_received: u64,
    /// Frame bytes sent (length prefixes included).
    pub bytes_sent: u64,
    /// Entries received in items, stored or not.
    pub entries_received: u64,
    /// Entries sent in items.
    pub entries_sent: u64,
    /// Received entries that were stored.
    pub entries_inserted: u64,
    /// Received entries that failed validation and were dropped.
    pub entries_rejected: u64,
    /// Sum of the durations of finished sessions.
    pub duration_sum: Duration,
    /// Number of finished sessions measured.
    pub duration_count: u64,
    /// Finished sessions per duration bucket: `buckets[i]` counts those up to
    /// [`DURATION_BUCKETS`]`[i]`, the last one those longer than all.
    pub duration_buckets: [u64; DURATION_BUCKETS.len() + 1],
}

impl NetMetrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn session_index(side: Side, result: SessionResult) -> usize {
        let side = match side {
            Side::Connect => 0,
            Side::Accept => 3,
        };
        side + match result {
            SessionResult::Ok => 0,
            SessionResult::Aborted => 1,
            SessionResult::Failed => 2,
        }
    }

    /// Counts a finished session.
    pub(crate) fn session(&self, side: Side, result: SessionResult, duration: Duration) {
        if let Some(c) = self.sessions.get(Self::session_index(side, result)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros_sum
            .fetch_add(micros, Ordering::Relaxed);
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|b| duration <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        if let Some(c) = self.duration_buckets.get(bucket) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn bytes(&self, received: u64, sent: u64) {
        self.bytes_received.fetch_add(received, Ordering::Relaxed);
        self.bytes_sent.fetch_add(sent, Ordering::Relaxed);
    }

    pub(crate) fn entries(&self, outcome: &SyncOutcome) {
        self.entries_received
            .fetch_add(outcome.entries_received, Ordering::Relaxed);
        self.entries_sent
            .fetch_add(outcome.entries_sent, Ordering::Relaxed);
        self.entries_inserted
            .fetch_add(outcome.entries_inserted, Ordering::Relaxed);
        self.entries_rejected
            .fetch_add(outcome.entries_rejected, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> NetMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let [
            connect_ok,
            connect_aborted,
            connect_failed,
            accept_ok,
            accept_aborted,
            accept_failed,
        ] = self.sessions.each_ref().map(get);
        NetMetricsSnapshot {
            connect_ok,
            connect_aborted,
            connect_failed,
            accept_ok,
            accept_aborted,
            accept_failed,
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
            entries_received: get(&self.entries_received),
            entries_sent: get(&self.entries_sent),
            entries_inserted: get(&self.entries_inserted),
            entries_rejected: get(&self.entries_rejected),
            duration_sum: Duration::from_micros(get(&self.duration_micros_sum)),
            duration_count: get(&self.duration_count),
            duration_buckets: self.duration_buckets.each_ref().map(get),
        }
    }
}
