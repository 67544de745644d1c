//! One side of a reconciliation for each implementation, behind one interface that speaks
//! wire bytes, and the loop that runs a session between two of them in process.
//!
//! Every message is encoded by its sender and decoded by its receiver, as over a network, so
//! the time includes (de)serialisation and the byte counts are real wire sizes: our
//! `sync_net::wire` encoding for docsync, postcard for iroh-docs (the two are the same format),
//! negentropy's own bytes for negentropy. Frame headers are not counted.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ranger::{Config, Hooks, Session};
use sync_core::encoding::{DecodeLimits, Reader};
use sync_core::{
    ContentStatus, NamespaceId, RecordIdentifier, SignatureCheck, SignedEntry, ValidationConfig,
    ValidationError, now_micros,
};
use sync_net::wire::{decode_protocol_message, encode_protocol_message};

/// One side of a session: takes the peer's message, returns the reply (`None`: done).
pub(crate) trait Peer {
    fn initial(&mut self) -> Result<Vec<u8>>;
    fn process(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Entries (or, for negentropy, ids) this side sent or identified.
    fn moved(&self) -> u64;
}

/// What one session cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncStats {
    pub(crate) time: Duration,
    /// Messages in both directions (a round trip is two).
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) largest: u64,
    /// Entries sent by both sides together.
    pub(crate) moved: u64,
}

/// Runs a session to the end; `a` initiates.
pub(crate) fn run_session(a: &mut dyn Peer, b: &mut dyn Peer) -> Result<SyncStats> {
    let start = Instant::now();
    let mut stats = SyncStats::default();
    let mut message = a.initial()?;
    let mut to_b = true;
    loop {
        stats.messages += 1;
        stats.bytes += message.len() as u64;
        stats.largest = stats.largest.max(message.len() as u64);
        let reply = if to_b {
            b.process(&message)?
        } else {
            a.process(&message)?
        };
        match reply {
            Some(r) => message = r,
            None => break,
        }
        to_b = !to_b;
        if stats.messages > 1_000_000 {
            return Err(anyhow!("session does not terminate"));
        }
    }
    stats.time = start.elapsed();
    stats.moved = a.moved() + b.moved();
    Ok(stats)
}

/// Validation as a node does it: every check, both signatures (or none, for the
/// algorithm-only comparisons).
pub(crate) struct BenchHooks {
    namespace: NamespaceId,
    check: SignatureCheck,
    config: ValidationConfig,
    now: u64,
}

impl BenchHooks {
    pub(crate) fn new(namespace: NamespaceId, verify: bool) -> Self {
        Self {
            namespace,
            check: if verify {
                SignatureCheck::Verify
            } else {
                SignatureCheck::Skip
            },
            config: ValidationConfig::default(),
            now: now_micros(),
        }
    }
}

impl Hooks<SignedEntry, ContentStatus> for BenchHooks {
    type Rejection = ValidationError;

    fn validate(&mut self, e: &SignedEntry, _: &ContentStatus) -> Result<(), ValidationError> {
        if self.check == SignatureCheck::Skip {
            return Ok(());
        }
        e.validate(self.namespace, self.now, &self.config, self.check)
    }

    fn on_insert(&mut self, _: SignedEntry, _: ContentStatus) {}

    fn meta(&mut self, _: &SignedEntry) -> ContentStatus {
        ContentStatus::Missing
    }
}

/// docsync: our ranger session over any ranger store of signed entries (a document of a
/// `RedbStore` through `ReplicaStore`, or ranger's in-memory `MemStore`).
pub(crate) struct Ours<S> {
    store: S,
    session: Session,
    hooks: BenchHooks,
}

impl<S: ranger::Store<SignedEntry>> Ours<S> {
    pub(crate) fn new(store: S, namespace: NamespaceId, config: Config, verify: bool) -> Self {
        Self {
            store,
            session: Session::new(config),
            hooks: BenchHooks::new(namespace, verify),
        }
    }

    pub(crate) fn outcome(&self) -> &ranger::SessionOutcome {
        self.session.outcome()
    }
}

impl<S: ranger::Store<SignedEntry>> Peer for Ours<S> {
    fn initial(&mut self) -> Result<Vec<u8>> {
        let m = self
            .session
            .initial_message(&mut self.store, RecordIdentifier::zero())
            .map_err(|e| anyhow!("initial message: {e}"))?;
        let mut out = Vec::new();
        encode_protocol_message(&m, &mut out);
        Ok(out)
    }

    fn process(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut r = Reader::new(message, DecodeLimits::default());
        let m = decode_protocol_message(&mut r).context("decoding a message")?;
        r.finish()?;
        let reply = self
            .session
            .process_message(&mut self.store, &mut self.hooks, m)
            .map_err(|e| anyhow!("processing a message: {e}"))?;
        Ok(reply.map(|m| {
            let mut out = Vec::new();
            encode_protocol_message(&m, &mut out);
            out
        }))
    }

    fn moved(&self) -> u64 {
        self.session.outcome().entries_sent
    }
}

/// iroh-docs 0.101: a replica of its store, stepped in process with the same calls its
/// network layer makes.
pub(crate) struct Theirs<'a> {
    replica: iroh_docs::sync::Replica<'a>,
    outcome: iroh_docs::sync::SyncOutcome,
    rt: &'a tokio::runtime::Runtime,
    peer: [u8; 32],
}

impl<'a> Theirs<'a> {
    pub(crate) fn new(
        replica: iroh_docs::sync::Replica<'a>,
        rt: &'a tokio::runtime::Runtime,
        peer: u8,
    ) -> Self {
        Self {
            replica,
            outcome: Default::default(),
            rt,
            peer: [peer; 32],
        }
    }
}

impl Peer for Theirs<'_> {
    fn initial(&mut self) -> Result<Vec<u8>> {
        let m = self.replica.sync_initial_message()?;
        Ok(postcard::to_stdvec(&m)?)
    }

    fn process(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>> {
        let m: iroh_docs::sync::ProtocolMessage = postcard::from_bytes(message)?;
        let reply = self.rt.block_on(self.replica.sync_process_message(
            m,
            self.peer,
            &mut self.outcome,
        ))?;
        reply
            .map(|r| postcard::to_stdvec(&r).map_err(Into::into))
            .transpose()
    }

    fn moved(&self) -> u64 {
        self.outcome.num_sent as u64
    }
}

/// The negentropy crate over a sealed vector of (timestamp, 32-byte id) items. It reconciles
/// ids only: the initiator learns which ids each side lacks; moving the entries would take
/// another exchange, not counted here.
pub(crate) enum Neg<'a> {
    Initiator {
        neg: negentropy::Negentropy<'a, negentropy::NegentropyStorageVector>,
        have: Vec<negentropy::Id>,
        need: Vec<negentropy::Id>,
    },
    Responder(negentropy::Negentropy<'a, negentropy::NegentropyStorageVector>),
}

impl<'a> Neg<'a> {
    pub(crate) fn initiator(
        storage: &'a negentropy::NegentropyStorageVector,
        frame_limit: u64,
    ) -> Result<Self> {
        Ok(Neg::Initiator {
            neg: negentropy::Negentropy::borrowed(storage, frame_limit)
                .map_err(|e| anyhow!("{e}"))?,
            have: Vec::new(),
            need: Vec::new(),
        })
    }

    pub(crate) fn responder(
        storage: &'a negentropy::NegentropyStorageVector,
        frame_limit: u64,
    ) -> Result<Self> {
        Ok(Neg::Responder(
            negentropy::Negentropy::borrowed(storage, frame_limit).map_err(|e| anyhow!("{e}"))?,
        ))
    }
}

impl Peer for Neg<'_> {
    fn initial(&mut self) -> Result<Vec<u8>> {
        match self {
            Neg::Initiator { neg, .. } => neg.initiate().map_err(|e| anyhow!("{e}")),
            Neg::Responder(_) => Err(anyhow!("the responder does not initiate")),
        }
    }

    fn process(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Neg::Initiator { neg, have, need } => neg
                .reconcile_with_ids(message, have, need)
                .map_err(|e| anyhow!("{e}")),
            Neg::Responder(neg) => neg.reconcile(message).map(Some).map_err(|e| anyhow!("{e}")),
        }
    }

    fn moved(&self) -> u64 {
        match self {
            Neg::Initiator { have, need, .. } => (have.len() + need.len()) as u64,
            Neg::Responder(_) => 0,
        }
    }
}

/// Negentropy's item for an entry: its timestamp and its 32-byte fingerprint hash.
pub(crate) fn neg_item(e: &SignedEntry) -> (u64, negentropy::Id) {
    (
        e.timestamp(),
        negentropy::Id::from_byte_array(*ranger::RangeEntry::fingerprint(e).as_bytes()),
    )
}

/// A sealed negentropy storage of these entries. Without `time_order`, every item's timestamp
/// is 0, so negentropy orders the items by their hashes alone: an order that, like docsync's by
/// key, owes nothing to time.
pub(crate) fn neg_storage<'e>(
    entries: impl Iterator<Item = &'e SignedEntry>,
    time_order: bool,
) -> Result<negentropy::NegentropyStorageVector> {
    let mut s = negentropy::NegentropyStorageVector::new();
    for e in entries {
        let (t, id) = neg_item(e);
        let t = if time_order { t } else { 0 };
        s.insert(t, id).map_err(|e| anyhow!("{e}"))?;
    }
    s.seal().map_err(|e| anyhow!("{e}"))?;
    Ok(s)
}
