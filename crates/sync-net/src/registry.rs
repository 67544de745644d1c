//! The sessions running on a node: the counts behind the session limits, and per document and
//! peer the running sessions with their side, for the reference's simultaneous-dial rule.
//!
//! Every session holds a [`Slot`]; dropping it (however the session ends: success, error,
//! abort, cancellation) forgets the session. So a dial refused with `AlreadySyncing` does not
//! leave a stale "running" state behind (the reference's W19).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use iroh::EndpointId;
use sync_core::NamespaceId;

use crate::accept::AcceptOutcome;
use crate::error::SessionScope;
use crate::metrics::Side;
use crate::wire::AbortReason;

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    total: usize,
    per_peer: HashMap<EndpointId, usize>,
    running: HashMap<(NamespaceId, EndpointId), Vec<(u64, Side)>>,
}

/// The running sessions of one node.
#[derive(Debug)]
pub(crate) struct Registry {
    me: EndpointId,
    max_sessions: usize,
    max_per_peer: usize,
    state: Mutex<State>,
}

impl Registry {
    pub(crate) fn new(me: EndpointId, max_sessions: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            me,
            max_sessions,
            max_per_peer,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a session with `peer` if the node and the peer are below their limits.
    pub(crate) fn admit(self: &Arc<Self>, peer: EndpointId) -> Result<Slot, (SessionScope, usize)> {
        let mut state = self.lock();
        if state.total >= self.max_sessions {
            return Err((SessionScope::Node, self.max_sessions));
        }
        let count = state.per_peer.entry(peer).or_insert(0);
        if *count >= self.max_per_peer {
            return Err((SessionScope::Peer, self.max_per_peer));
        }
        *count += 1;
        state.total += 1;
        state.next_id += 1;
        let id = state.next_id;
        Ok(Slot {
            registry: self.clone(),
            peer,
            id,
            running: None,
        })
    }

    /// The number of admitted sessions (for tests and diagnostics).
    pub(crate) fn running(&self) -> usize {
        self.lock().total
    }
}

/// One admitted session. Dropping it forgets the session.
#[derive(Debug)]
pub(crate) struct Slot {
    registry: Arc<Registry>,
    peer: EndpointId,
    id: u64,
    running: Option<NamespaceId>,
}

impl Slot {
    /// Marks this session as our dial for `namespace`. Refused while any session for that
    /// document with that peer runs (the reference's `start_connect`).
    pub(crate) fn start_connect(&mut self, namespace: NamespaceId) -> bool {
        let mut state = self.registry.lock();
        let list = state.running.entry((namespace, self.peer)).or_default();
        if !list.is_empty() {
            return false;
        }
        list.push((self.id, Side::Connect));
        drop(state);
        self.running = Some(namespace);
        true
    }

    /// Decides an incoming session for `namespace` (the reference's `accept_request`, after
    /// the policy allowed it) and marks it as running if allowed:
    /// * another accepted session for the document with the peer runs: `AlreadySyncing`;
    /// * our own dial for it runs (both sides dialed at once): the side with the larger
    ///   endpoint id (raw bytes) accepts, and the other refuses with `AlreadySyncing`, so
    ///   exactly one of the two sessions goes ahead;
    /// * otherwise allow.
    pub(crate) fn accept(&mut self, namespace: NamespaceId) -> AcceptOutcome {
        let me = self.registry.me;
        let mut state = self.registry.lock();
        let list = state.running.entry((namespace, self.peer)).or_default();
        let decision = decide(
            me.as_bytes(),
            self.peer.as_bytes(),
            list.iter().map(|(_, side)| *side),
        );
        if decision == AcceptOutcome::Allow {
            list.push((self.id, Side::Accept));
            drop(state);
            self.running = Some(namespace);
        } else if list.is_empty() {
            state.running.remove(&(namespace, self.peer));
        }
        decision
    }
}

/// The simultaneous-dial rule over the sides of the sessions running for one document with
/// one peer.
fn decide(me: &[u8; 32], peer: &[u8; 32], running: impl Iterator<Item = Side>) -> AcceptOutcome {
    let mut dialing = false;
    for side in running {
        match side {
            Side::Accept => return AcceptOutcome::Reject(AbortReason::AlreadySyncing),
            Side::Connect => dialing = true,
        }
    }
    if dialing && me <= peer {
        AcceptOutcome::Reject(AbortReason::AlreadySyncing)
    } else {
        AcceptOutcome::Allow
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_peer.remove(&self.peer);
            }
        }
        if let Some(namespace) = self.running {
            let key = (namespace, self.peer);
            if let Some(list) = state.running.get_mut(&key) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    state.running.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    fn id(seed: u8) -> EndpointId {
        SecretKey::from_bytes(&[seed; 32]).public()
    }

    #[test]
    fn tie_break_follows_the_reference() {
        let (lo, hi) = (&[1u8; 32], &[2u8; 32]);
        let none = std::iter::empty;
        assert_eq!(decide(lo, hi, none()), AcceptOutcome::Allow);
        // Our dial runs: the larger id accepts theirs.
        assert_eq!(
            decide(hi, lo, [Side::Connect].into_iter()),
            AcceptOutcome::Allow
        );
        assert_eq!(
            decide(lo, hi, [Side::Connect].into_iter()),
            AcceptOutcome::Reject(AbortReason::AlreadySyncing)
        );
        // An accepted session runs: always refused.
        assert_eq!(
            decide(hi, lo, [Side::Accept].into_iter()),
            AcceptOutcome::Reject(AbortReason::AlreadySyncing)
        );
        assert_eq!(
            decide(hi, lo, [Side::Connect, Side::Accept].into_iter()),
            AcceptOutcome::Reject(AbortReason::AlreadySyncing)
        );
    }

    #[test]
    fn slots_count_and_forget() {
        let (me, a, b) = (id(1), id(2), id(3));
        let ns = sync_core::NamespaceSecret::from_bytes(&[9; 32]).id();
        let reg = Registry::new(me, 3, 2);
        let mut s1 = reg.admit(a).unwrap();
        let s2 = reg.admit(a).unwrap();
        assert_eq!(reg.admit(a).unwrap_err(), (SessionScope::Peer, 2));
        let s3 = reg.admit(b).unwrap();
        assert_eq!(reg.admit(b).unwrap_err(), (SessionScope::Node, 3));
        assert!(s1.start_connect(ns));
        drop(s2);
        let mut s4 = reg.admit(a).unwrap();
        // A second dial of the same document to the same peer is refused; a failed dial
        // (dropped slot) frees it again (W19).
        assert!(!s4.start_connect(ns));
        drop(s1);
        assert!(s4.start_connect(ns));
        drop((s3, s4));
        assert_eq!(reg.running(), 0);
        assert!(reg.lock().running.is_empty());
        assert!(reg.lock().per_peer.is_empty());
    }
}
