//! The limits every session runs under.

use std::time::Duration;

use ranger::{Config, ConfigError};

use crate::wire::{DEFAULT_MAX_FRAME, INIT_OVERHEAD};

/// Limits of sync sessions. Hitting one ends that session (and only it) with a typed error;
/// see `docs/protocol.md` for the reasoning behind each default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest frame body read or written. A length prefix above it ends the session
    /// before anything is allocated. Our own messages are built to fit: the reconciliation
    /// budget is this minus [`INIT_OVERHEAD`]. Default [`DEFAULT_MAX_FRAME`] (16 MiB); the
    /// reference allows 1 GiB but sends more than 16 MiB only when it ships a range of more
    /// than about 60 000 entries to an empty peer in one item.
    pub max_frame: usize,
    /// The whole session (connect, every round) must end within this. Default 10 minutes:
    /// generous for a bootstrap of a large document from a slow reference node, and still a
    /// bound on a peer that trickles bytes just fast enough to dodge the idle timeout.
    pub session_deadline: Duration,
    /// The longest wait for the next bytes of a frame from the peer (the time it spends
    /// computing its reply included). Default 60 seconds: a reference node scans a range for
    /// every fingerprint (its W1), which takes seconds on large documents.
    pub idle_timeout: Duration,
    /// The most messages our side processes in one session. Default 1024: a reference session
    /// needs about twice the depth of a binary split (about 40 for a million entries); our
    /// bounded messages add about one round per budget's worth of entries.
    pub max_rounds: u64,
    /// Sessions (dialed and accepted) running at once on one node. Default 64.
    pub max_sessions: usize,
    /// Sessions (dialed and accepted, over all documents) running at once with one peer.
    /// Default 8. At least 2 keeps the simultaneous-dial rule working: with 1, an accepted
    /// session while our own dial to that peer runs is refused as too many.
    pub max_sessions_per_peer: usize,
    /// How long the close sequence may take, and how long the accepting side keeps a finished
    /// connection open for the dialer to close it (so real iroh-docs dialers do not log a
    /// failed close). Default 3 seconds.
    pub close_grace: Duration,
    /// Whether our dials offer the compact encoding `/docsync/1` ([`crate::compact`]) before
    /// `/iroh-sync/1`. Default `true`: a peer that knows it (our nodes) speaks it, one that
    /// does not (iroh-docs) picks `/iroh-sync/1`. Accepting always takes whichever the dialer
    /// negotiated, provided the router routes both ALPNs to the protocol
    /// ([`SyncProtocol::ALPNS`](crate::SyncProtocol::ALPNS)).
    pub compact_codec: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            session_deadline: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(60),
            max_rounds: 1024,
            max_sessions: 64,
            max_sessions_per_peer: 8,
            close_grace: Duration::from_secs(3),
            compact_codec: true,
        }
    }
}

impl Limits {
    /// With this frame limit.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// With this session deadline.
    pub fn with_session_deadline(mut self, deadline: Duration) -> Self {
        self.session_deadline = deadline;
        self
    }

    /// With this idle timeout.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// With this round limit.
    pub fn with_max_rounds(mut self, rounds: u64) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// With these session counts (per node, per peer).
    pub fn with_max_sessions(mut self, per_node: usize, per_peer: usize) -> Self {
        self.max_sessions = per_node;
        self.max_sessions_per_peer = per_peer;
        self
    }

    /// With this close grace period.
    pub fn with_close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// With the compact encoding offered on dials or not.
    pub fn with_compact_codec(mut self, compact: bool) -> Self {
        self.compact_codec = compact;
        self
    }

    /// The reconciliation configuration of our side of a session: ranger's defaults with every
    /// message small enough for a frame under [`Limits::max_frame`].
    pub fn reconciliation(&self) -> Result<Config, ConfigError> {
        Config::bounded(self.max_frame.saturating_sub(INIT_OVERHEAD))
    }
}
