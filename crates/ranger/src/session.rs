//! One side of a reconciliation: turns each incoming message into the reply.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::convert::Infallible;
use std::ops::ControlFlow;

use crate::message::{
    FINGERPRINT_PART_OVERHEAD, fingerprint_part_len, item_part_len, parts_len, parts_values,
    varint_len,
};
use crate::{
    Config, Fingerprint, Interval, Message, MessagePart, Range, RangeEntry, RangeFingerprint,
    RangeItem, RangeKey, Store, Summary, Verdicts,
};

/// What the caller decides about the entries that pass through a session.
///
/// `M` is the per-value metadata that travels next to each entry in a [`RangeItem`] (iroh-docs
/// sends a content status).
pub trait Hooks<E: RangeEntry, M> {
    /// Why an incoming entry was refused.
    type Rejection;

    /// Checks an incoming entry before it is offered to the store. An `Err` drops the entry
    /// (counted in [`SessionOutcome::entries_rejected`]) and passes it to
    /// [`on_reject`](Hooks::on_reject).
    fn validate(&mut self, entry: &E, meta: &M) -> Result<(), Self::Rejection>;

    /// Checks the entries of one incoming message together, before any of them is offered to
    /// the store; result `i` is the verdict on `values[i]`, as [`validate`](Hooks::validate)
    /// would give it. Override it where checking many at once is cheaper (batch signature
    /// verification). By default calls [`validate`](Hooks::validate) for each, in order.
    fn validate_all(&mut self, values: &[(&E, &M)]) -> Vec<Result<(), Self::Rejection>> {
        values.iter().map(|&(e, m)| self.validate(e, m)).collect()
    }

    /// Starts checking the entries of one incoming message and returns their verdicts, which
    /// the session takes in order as it stores the values (see [`Verdicts`]). Override it to
    /// check on other threads while the session stores what is already checked. By default
    /// [`validate_all`](Hooks::validate_all), all at once.
    fn validate_stream(&mut self, values: &[(&E, &M)]) -> Verdicts<Self::Rejection> {
        Verdicts::ready(self.validate_all(values))
    }

    /// Called with every incoming entry that passed validation, before it is offered to the
    /// store (whether or not the store then keeps it). Does nothing by default.
    ///
    /// While the peer appears to share most entries, an incoming entry identical to a stored
    /// one (the same [`RangeEntry::fingerprint`]) is not validated nor offered to the store,
    /// which would keep its own copy: this is called with the *stored* entry instead
    /// (counted in [`SessionOutcome::entries_known`]).
    fn on_valid(&mut self, entry: &E, meta: &M) {
        let _ = (entry, meta);
    }

    /// Called with every entry [`validate`](Hooks::validate) refused. Does nothing by default.
    fn on_reject(&mut self, entry: E, meta: M, reason: Self::Rejection) {
        let _ = (entry, meta, reason);
    }

    /// Called with every incoming entry the store actually stored (not for entries it kept an
    /// older or equal copy of, or dropped for its own reasons).
    fn on_insert(&mut self, entry: E, meta: M);

    /// The metadata to send with an outgoing entry.
    fn meta(&mut self, entry: &E) -> M;
}

/// [`Hooks`] that accept every entry, ignore insertions and send `M::default()` as metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl<E: RangeEntry, M: Default> Hooks<E, M> for AcceptAll {
    type Rejection = Infallible;

    fn validate(&mut self, _entry: &E, _meta: &M) -> Result<(), Infallible> {
        Ok(())
    }

    fn on_insert(&mut self, _entry: E, _meta: M) {}

    fn meta(&mut self, _entry: &E) -> M {
        M::default()
    }
}

/// Counters of one side of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionOutcome {
    /// Values received in items, whether or not they were stored (iroh-docs `num_recv`).
    pub entries_received: u64,
    /// Values sent in items (iroh-docs `num_sent`).
    pub entries_sent: u64,
    /// Received values the store actually stored.
    pub entries_inserted: u64,
    /// Received values identical to an entry the store already held (the same
    /// [`RangeEntry::fingerprint`]), taken as they are without validation; only looked for
    /// while the peer appears to share most entries (see [`Hooks::on_valid`]).
    pub entries_known: u64,
    /// Received values [`Hooks::validate`] refused.
    pub entries_rejected: u64,
    /// Messages processed ([`Session::process_message`] calls).
    pub rounds: u64,
    /// Messages produced, including the initial one.
    pub messages_sent: u64,
    /// Sum of [`Message::encoded_len`] over the messages produced.
    pub bytes_sent: u64,
    /// The largest [`Message::encoded_len`] of a message produced.
    pub largest_message: usize,
}

/// Why a step of a session failed. Either way the session is over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError<S> {
    /// The store failed.
    #[error("store failed")]
    Store(#[source] S),
    /// The message budget cannot hold even one part that makes progress (an entry or a key
    /// larger than the budget allows, or a budget too small for the keys the peer sent).
    #[error("message budget of {budget} bytes cannot hold a part of {needed} bytes")]
    BudgetTooSmall {
        /// The bytes the smallest useful message would take.
        needed: usize,
        /// The configured budget.
        budget: usize,
    },
    /// [`Hooks::validate_stream`] (or [`Hooks::validate_all`]) gave a different number of
    /// verdicts than it got values.
    #[error("the hooks gave {verdicts} verdicts for {values} values")]
    Hooks {
        /// Values in the message.
        values: usize,
        /// Verdicts returned.
        verdicts: usize,
    },
}

/// One side of a reconciliation session.
///
/// Sans-IO: the caller moves messages between peers, ends the session when a step returns
/// `None` (or the peer does), and supplies the store and the hooks for every step. The session
/// holds only the configuration, the counters and the fingerprints its last message carried
/// (so that it never echoes an echo, see [`Config::with_echoes`]); everything that is left to do
/// travels in the messages themselves, so a peer that stops on `None` (as iroh-docs does) never
/// leaves work behind on our side.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    outcome: SessionOutcome,
    /// Our fingerprints in the fingerprint parts of the last message we sent: a range that
    /// comes back with one of them is a range we sent, echoed or not, and is never echoed; nor
    /// does it count as split by the peer (see `shares_bounds`).
    sent: HashSet<Fingerprint>,
    /// Whether most of the peer's ranges in its last message started at entries of ours (see
    /// `shares_bounds`).
    shared_before: bool,
}

impl Session {
    /// A new session side with this configuration.
    pub fn new(config: Config) -> Self {
        Session {
            config,
            outcome: SessionOutcome::default(),
            sent: HashSet::new(),
            shared_before: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters so far.
    pub fn outcome(&self) -> &SessionOutcome {
        &self.outcome
    }

    /// The counters, consuming the session.
    pub fn into_outcome(self) -> SessionOutcome {
        self.outcome
    }

    /// The message that opens a session: `[RangeFingerprint { (x, x), fingerprint of all }]` with
    /// `x` the first key of the store, or `empty_key` if the store is empty (iroh-docs uses the
    /// default record identifier: 64 zero bytes and an empty key). `x` only anchors the peer's
    /// first split.
    pub fn initial_message<E, M, S>(
        &mut self,
        store: &mut S,
        empty_key: E::Key,
    ) -> Result<Message<E, M>, ProcessError<S::Error>>
    where
        E: RangeEntry,
        S: Store<E>,
    {
        let x = store
            .key_at(Interval::all(), 0)
            .map_err(ProcessError::Store)?
            .unwrap_or(empty_key);
        let fingerprint = store
            .fingerprint(Interval::all())
            .map_err(ProcessError::Store)?;
        let part = RangeFingerprint {
            range: Range::new(x.clone(), x),
            fingerprint,
        };
        let message = Message::new(vec![MessagePart::RangeFingerprint(part)]);
        if let Some(budget) = self.config.max_message_bytes() {
            let needed = message.encoded_len();
            if needed > budget {
                return Err(ProcessError::BudgetTooSmall { needed, budget });
            }
        }
        self.record_sent(&message);
        Ok(message)
    }

    /// Processes one incoming message and returns the reply, or `None` if there is nothing left
    /// to say (then the session is over for this side).
    ///
    /// With [`Config::reference`] this is exactly the iroh-docs 0.101 step: all items first, then
    /// all fingerprints, in the order received, and the reply parts in that order.
    ///
    /// * An item with `have_local == false`: our entries in its range minus those some incoming
    ///   value with the same key and a value `>=` ours covers (computed before storing anything),
    ///   then each incoming value is validated and offered to the store, then the difference is
    ///   sent back as an item over the same range with `have_local == true` unless it is empty.
    ///   An item with `have_local == true` is stored and never answered.
    /// * A fingerprint: nothing if ours is equal; our entries as an item (`have_local == false`)
    ///   if we have at most `leaf_size` entries there or the peer's fingerprint is
    ///   [`Fingerprint::EMPTY`]; otherwise the range is split at `split_factor - 1` pivots (the
    ///   entries of rank `floor(n * i / split_factor)` in circular order; for the whole set the
    ///   entry of rank 0 as well) and each non-empty sub-range goes out as a fingerprint if it
    ///   holds more than `leaf_size` entries, as an item otherwise (unless leaves are lazy and
    ///   the message is not dense, see [`Config::with_eager_leaves`]). In a message of at
    ///   least 64 fingerprints that all differ the leaf size is [`Config::dense_leaf_size`].
    ///
    /// With a message budget, parts are handled in key order instead, and whatever does not fit
    /// is deferred *inside the reply*: the tail of an item is replaced by the fingerprint of the
    /// rest of its range, and once the message is full every remaining range with work left is
    /// sent back as our fingerprint of it (adjacent ones merged into one covering range if even
    /// those do not fit). A peer that follows the reference rules answers those like any other
    /// fingerprint, so the session continues until everything is reconciled.
    pub fn process_message<E, M, S, H>(
        &mut self,
        store: &mut S,
        hooks: &mut H,
        message: Message<E, M>,
    ) -> Result<Option<Message<E, M>>, ProcessError<S::Error>>
    where
        E: RangeEntry,
        S: Store<E>,
        H: Hooks<E, M>,
    {
        self.outcome.rounds += 1;
        let budget = self.config.max_message_bytes();
        let mut parts = message.parts;
        if budget.is_some() {
            // Key order: non-wrapping ranges by start, then the wrapping one (and whole-set
            // ones). Disjoint ranges sorted like this leave every unprocessed range after the
            // last processed one, so one covering range [frontier, last end) holds the rest.
            parts.sort_by(|a, b| {
                let (a, b) = (a.range(), b.range());
                (a.x >= a.y).cmp(&(b.x >= b.y)).then_with(|| a.x.cmp(&b.x))
            });
        } else {
            // Reference order: items first, then fingerprints, each in the order received.
            let (items, fingerprints): (Vec<_>, Vec<_>) = parts
                .into_iter()
                .partition(|p| matches!(p, MessagePart::RangeItem(_)));
            parts = items;
            parts.extend(fingerprints);
        }

        // tails[i]: the longest key among the parts after part i.
        let mut tails = vec![0usize; parts.len()];
        let mut longest = 0;
        if budget.is_some() {
            for (i, part) in parts.iter().enumerate().rev() {
                tails[i] = longest;
                let range = part.range();
                longest = longest
                    .max(range.x.encoded_len())
                    .max(range.y.encoded_len());
            }
        }

        // Our summaries of the fingerprint parts, computed up front where they decide how
        // leaves go out: if most of the peer's fingerprints differ from ours, differences are
        // dense (a peer that lacks most of the range), and a leaf sent as a fingerprint would
        // only come back as a request for it, so leaves go out as entries at once.
        let mut summaries: Vec<Option<Summary>> = Vec::new();
        let mut eager = self.config.eager_leaves();
        let mut leaf = self.config.leaf_size() as u64;
        let mut differing = 0usize;
        let mut covered = 0u64;
        if !eager {
            let ranges: Vec<&Range<E::Key>> = parts
                .iter()
                .filter_map(|part| match part {
                    MessagePart::RangeFingerprint(fp) => Some(&fp.range),
                    MessagePart::RangeItem(_) => None,
                })
                .collect();
            let fingerprints = ranges.len();
            let mut ours = store
                .range_summaries(&ranges)
                .map_err(ProcessError::Store)?
                .into_iter();
            for part in &parts {
                summaries.push(match part {
                    MessagePart::RangeFingerprint(fp) => {
                        let ours = ours.next();
                        covered += ours.map_or(0, |o| o.count);
                        if ours.is_some_and(|o| o.fingerprint != fp.fingerprint) {
                            differing += 1;
                        }
                        ours
                    }
                    MessagePart::RangeItem(_) => None,
                });
            }
            eager =
                differing * DENSE_DENOMINATOR >= fingerprints * DENSE_NUMERATOR && fingerprints > 0;
            let mut shared = false;
            if eager {
                // The peer's own ranges: not ones we sent and it sends back unsplit (deferred
                // for want of room, or echoed), which start wherever ours did.
                let split_by_peer: Vec<&Range<E::Key>> = parts
                    .iter()
                    .zip(&summaries)
                    .filter_map(|(part, ours)| match (part, ours) {
                        (MessagePart::RangeFingerprint(fp), Some(o))
                            if !self.sent.contains(&o.fingerprint) =>
                        {
                            Some(&fp.range)
                        }
                        _ => None,
                    })
                    .collect();
                let looks_shared =
                    shares_bounds(store, &split_by_peer, self.config.split_factor())?;
                // Ranges of ours that the peer sends back merged (carriers, when its reply was
                // short of room) start at keys of ours too. A message well under our budget
                // was not short of room; in one that may have been, only the second such
                // message in a row counts.
                let roomy = budget.is_none_or(|b| parts_len(&parts) < b / 4 * 3);
                shared = looks_shared && (roomy || self.shared_before);
                self.shared_before = looks_shared;
            }
            eager &= !shared;
            // Larger leaves only where every range differs, in a message of many (two
            // documents with little in common): with scattered or clustered differences a
            // message can still be dense, its ranges holding a couple of differences each, and
            // whole leaves would move entries the peer has.
            if differing == fingerprints && fingerprints >= VERY_DENSE_MIN_PARTS && !shared {
                leaf = self.config.dense_leaf_size() as u64;
            }
        }

        // Every incoming value of the message is handed to the hooks in one call (one batch
        // of signature checks); each item takes its verdicts when it stores its values.
        // Values identical to entries we hold need no checks: a peer that shares most of our
        // entries (see `shares_bounds`) may still send many of them, if it sends leaves as
        // entries (as iroh-docs always does).
        let held = if self.shared_before {
            held_values(store, &parts)?
        } else {
            Vec::new()
        };
        let (verdicts, values) = validate_items(hooks, &parts, &held)?;

        // If the answers to the differing ranges cannot all fit, part of the budget is kept
        // for the carriers of those that do not (see `Step::carriers`), so that each goes back
        // as a fingerprint of a few of them, not all of them as one range that the peer would
        // have to split from the top again.
        let full_budget = budget.unwrap_or(usize::MAX);
        let carrier = FINGERPRINT_PART_OVERHEAD + 2 * longest;
        let wanted = differing
            .saturating_mul(self.config.split_factor())
            .saturating_mul(carrier);
        let reserve = if budget.is_some() && wanted > full_budget {
            differing
                .saturating_mul(carrier)
                .min(full_budget / CARRIER_SHARE)
        } else {
            0
        };
        let mut step = Step {
            config: self.config,
            eager,
            leaf,
            budget: full_budget - reserve,
            full_budget,
            store,
            hooks,
            outcome: &mut self.outcome,
            sent: &self.sent,
            // Echoes only where the reply is short of room: they save bytes at the price of a
            // round trip where they miss, which only pays where bytes decide the rounds.
            echoes: (self.config.echoes() && budget.is_some() && wanted > full_budget).then_some(
                Density {
                    differing: differing as u64,
                    covered,
                },
            ),
            out: Vec::new(),
            size: crate::message::MESSAGE_OVERHEAD,
            pending: None,
            lone_item: None,
            verdicts,
            values,
            taken: 0,
            held,
            seen: 0,
        };
        let count = parts.len();
        summaries.resize(parts.len(), None);
        for (i, ((part, tail), summary)) in parts.into_iter().zip(tails).zip(summaries).enumerate()
        {
            let ctx = Ctx {
                tail,
                after_part: if i + 1 < count {
                    FINGERPRINT_PART_OVERHEAD + 2 * tail
                } else {
                    0
                },
            };
            match part {
                MessagePart::RangeItem(item) => step.item(item, ctx)?,
                MessagePart::RangeFingerprint(fp) => step.fingerprint(fp, summary, ctx)?,
            }
        }
        step.budget = full_budget;
        if let Some(pending) = step.pending.take() {
            step.carriers(pending)?;
        }
        if step.verdicts.next().is_some() {
            return Err(ProcessError::Hooks {
                values: step.values,
                verdicts: step.taken + 1 + step.verdicts.count(),
            });
        }
        let out = std::mem::take(&mut step.out);
        drop(step);
        if out.is_empty() {
            return Ok(None);
        }
        let message = Message::new(out);
        self.record_sent(&message);
        Ok(Some(message))
    }

    fn record_sent<E: RangeEntry, M>(&mut self, message: &Message<E, M>) {
        self.sent.clear();
        if self.config.echoes() || !self.config.eager_leaves() {
            for part in &message.parts {
                if let MessagePart::RangeFingerprint(fp) = part {
                    self.sent.insert(fp.fingerprint);
                }
            }
        }
        let len = message.encoded_len();
        self.outcome.messages_sent += 1;
        self.outcome.bytes_sent += len as u64;
        self.outcome.largest_message = self.outcome.largest_message.max(len);
        self.outcome.entries_sent += message.value_count() as u64;
    }
}

/// For each value of the items of `parts` that asked for ours (`have_local == false`, where a
/// peer sends what it holds rather than what we lack), the stored entry with its fingerprint;
/// `None` for the other values.
fn held_values<E, M, S>(
    store: &mut S,
    parts: &[MessagePart<E, M>],
) -> Result<Vec<Option<E>>, ProcessError<S::Error>>
where
    E: RangeEntry,
    S: Store<E>,
{
    let mut held = Vec::new();
    for part in parts {
        let MessagePart::RangeItem(item) = part else {
            continue;
        };
        for (entry, _) in &item.values {
            held.push(if item.have_local {
                None
            } else {
                let fingerprint = entry.fingerprint();
                store
                    .entry_by_fingerprint(&fingerprint)
                    .map_err(ProcessError::Store)?
                    .filter(|stored| stored.fingerprint() == fingerprint)
            });
        }
    }
    Ok(held)
}

/// Runs [`Hooks::validate_stream`] once over the values of every item of `parts` that `held`
/// has no stored entry for, in order. Returns the verdicts and the number of values checked.
fn validate_items<E, M, H, SE>(
    hooks: &mut H,
    parts: &[MessagePart<E, M>],
    held: &[Option<E>],
) -> Result<(Verdicts<H::Rejection>, usize), ProcessError<SE>>
where
    E: RangeEntry,
    H: Hooks<E, M>,
{
    let all: Vec<(&E, &M)> = parts_values(parts)
        .enumerate()
        .filter(|(i, _)| held.get(*i).is_none_or(Option::is_none))
        .map(|(_, (e, m))| (e, m))
        .collect();
    let verdicts = if all.is_empty() {
        Verdicts::ready(Vec::new())
    } else {
        hooks.validate_stream(&all)
    };
    if let Some(known) = verdicts.known_len()
        && known != all.len()
    {
        return Err(ProcessError::Hooks {
            values: all.len(),
            verdicts: known,
        });
    }
    Ok((verdicts, all.len()))
}

/// A message is dense when at least `DENSE_NUMERATOR / DENSE_DENOMINATOR` of its fingerprint
/// parts differ from ours (see [`Session::process_message`]).
const DENSE_NUMERATOR: usize = 3;
const DENSE_DENOMINATOR: usize = 4;

/// A message whose fingerprint parts all differ from ours uses [`Config::dense_leaf_size`] if
/// it has at least this many: a message of a few parts that all differ says little (late rounds
/// of scattered differences look like that).
const VERY_DENSE_MIN_PARTS: usize = 64;

/// How many of a message's range starts [`shares_bounds`] looks up, at most.
const BOUND_SAMPLES: usize = 16;

/// Whether we hold the entries at more than half of the starts of `ranges` (the ranges the peer
/// split, not ones of ours it sends back whole), looking up at most [`BOUND_SAMPLES`] of them
/// spread over the message.
///
/// A peer splits a range at keys of its own entries, so of the ranges it sends back for one
/// of ours, all but the first start at an entry it holds (the first starts where ours did).
/// Where most ranges of a message differ, this tells two documents with little in common
/// (only some of the inherited starts are ours, at most one in `split_factor`) from two that
/// share most entries but differ in many places (most starts are ours): in the latter,
/// leaves sent as entries would mostly move entries the peer already has.
///
/// The samples are taken at a stride prime to `split_factor`, so that they do not fall on the
/// inherited starts alone.
fn shares_bounds<E, S>(
    store: &mut S,
    ranges: &[&Range<E::Key>],
    split_factor: usize,
) -> Result<bool, ProcessError<S::Error>>
where
    E: RangeEntry,
    S: Store<E>,
{
    let mut stride = (ranges.len() / BOUND_SAMPLES).max(1);
    while stride > 1 && gcd(stride, split_factor) != 1 {
        stride += 1;
    }
    let mut sampled = 0usize;
    let mut held = 0usize;
    for range in ranges.iter().step_by(stride).take(BOUND_SAMPLES) {
        sampled += 1;
        if let Some(from) = Interval::new(Some(&range.x), None)
            && store.key_at(from, 0).map_err(ProcessError::Store)?.as_ref() == Some(&range.x)
        {
            held += 1;
        }
    }
    Ok(2 * held > sampled)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How many differences the peer's fingerprint parts of one message hold per entry of ours,
/// at least: each differing part holds one or more, and they lie in the entries the parts cover.
#[derive(Clone, Copy)]
struct Density {
    /// Fingerprint parts that differ from ours.
    differing: u64,
    /// Our entries in all the fingerprint parts.
    covered: u64,
}

impl Density {
    /// Whether a range of `count` of our entries is expected to hold at most half a
    /// difference: `count * differing / covered <= 1/2`.
    fn sparse(self, count: u64) -> bool {
        u128::from(count) * u128::from(self.differing) * 2 <= u128::from(self.covered)
    }
}

/// At most `1 / CARRIER_SHARE` of a message's budget is kept for carriers.
const CARRIER_SHARE: usize = 4;

/// Budget facts about the part being processed.
#[derive(Clone, Copy)]
struct Ctx {
    /// The longest key among the parts after this one.
    tail: usize,
    /// Bytes to keep free once this part is fully answered: room for one fingerprint covering
    /// the parts after it (0 for the last part).
    after_part: usize,
}

/// A prefix of a range's entries selected for an item.
struct Chunk<E: RangeEntry> {
    /// In circular order.
    values: Vec<E>,
    end: ChunkEnd<E::Key>,
}

enum ChunkEnd<K> {
    /// The values are all there is (of interest) in the range.
    Whole,
    /// The values are those of `[x, key)`; the rest did not fit.
    At(K),
    /// Not even one value fits; the smallest useful item would need this many bytes (with the
    /// reserve after it).
    Nothing(usize),
}

/// The values of an incoming item, ordered for merging against our range.
struct Incoming<'v, E, M> {
    values: &'v [(E, M)],
    /// Indices into `values`, sorted by the circular order of the item's range.
    order: Vec<usize>,
}

impl<E: RangeEntry, M> Incoming<'_, E, M> {
    /// Whether an incoming value has `ours`' key and a value `>= ours`. `pos` is a cursor into
    /// `order`; calls must come in circular order of `ours`.
    fn covers(&self, range: &Range<E::Key>, ours: &E, pos: &mut usize) -> bool {
        let key_at = |i: usize| self.order.get(i).and_then(|&j| self.values.get(j));
        while let Some((theirs, _)) = key_at(*pos) {
            if range.circular_cmp(theirs.key(), ours.key()) == Ordering::Less {
                *pos += 1;
            } else {
                break;
            }
        }
        let mut i = *pos;
        while let Some((theirs, _)) = key_at(i) {
            if theirs.key() != ours.key() {
                return false;
            }
            if theirs.value() >= ours.value() {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// The state of one `process_message` call.
struct Step<'a, E: RangeEntry, M, S, H: Hooks<E, M>> {
    config: Config,
    /// Leaves go out as entries (the configuration's eager leaves, or a dense message).
    eager: bool,
    /// Ranges with at most this many of our entries are leaves (the configuration's leaf size,
    /// or its dense leaf size in a message of at least `VERY_DENSE_MIN_PARTS` fingerprints
    /// that all differ).
    leaf: u64,
    /// `usize::MAX` when unbounded; less than `full_budget` while part of it is kept for
    /// carriers.
    budget: usize,
    /// The message budget, `usize::MAX` when unbounded.
    full_budget: usize,
    store: &'a mut S,
    hooks: &'a mut H,
    outcome: &'a mut SessionOutcome,
    /// [`Session::sent`].
    sent: &'a HashSet<Fingerprint>,
    /// The incoming message's [`Density`] where differing ranges may be echoed (see
    /// [`Step::echo_back`]), `None` where they may not.
    echoes: Option<Density>,
    out: Vec<MessagePart<E, M>>,
    /// Estimated size of `out` as a message.
    size: usize,
    /// Once the message is full: the ranges still to be reconciled, in key order.
    pending: Option<Vec<Range<E::Key>>>,
    /// Where in `out` the item of lone entries is, once there is one.
    lone_item: Option<usize>,
    /// The verdicts on the incoming values, in the order of the items.
    verdicts: Verdicts<H::Rejection>,
    /// The number of incoming values.
    values: usize,
    /// Verdicts taken so far.
    taken: usize,
    /// For each incoming value in the order of the items, the stored entry identical to it, if
    /// one was looked for and found (empty if none was looked for); such values have no
    /// verdict.
    held: Vec<Option<E>>,
    /// Incoming values stored (or skipped) so far.
    seen: usize,
}

impl<E, M, S, H> Step<'_, E, M, S, H>
where
    E: RangeEntry,
    S: Store<E>,
    H: Hooks<E, M>,
{
    /// The bytes left; the first part of a message may always use the whole budget (the part
    /// kept for carriers never stops a message from making progress).
    fn remaining(&self) -> usize {
        let budget = if self.out.is_empty() {
            self.full_budget
        } else {
            self.budget
        };
        budget.saturating_sub(self.size)
    }

    fn fits(&self, bytes: usize) -> bool {
        bytes <= self.remaining()
    }

    /// Bytes to keep free when the frontier is at `key` inside a part ending at a key of
    /// `end_len` bytes: one fingerprint from `key` to the furthest end still to come.
    fn reserve_at(key: &E::Key, end_len: usize, ctx: Ctx) -> usize {
        FINGERPRINT_PART_OVERHEAD + key.encoded_len() + end_len.max(ctx.tail)
    }

    fn push(&mut self, part: MessagePart<E, M>) {
        self.size += part.encoded_len();
        self.out.push(part);
    }

    /// The message is full: `rest` and everything after it is deferred.
    fn overflow(
        &mut self,
        rest: Range<E::Key>,
        needed: usize,
    ) -> Result<(), ProcessError<S::Error>> {
        if self.out.is_empty() {
            return Err(ProcessError::BudgetTooSmall {
                needed: needed.saturating_add(self.size),
                budget: self.full_budget,
            });
        }
        self.pending = Some(vec![rest]);
        Ok(())
    }

    /// Answers a fingerprint part; `ours` is our summary of its range if already known.
    fn fingerprint(
        &mut self,
        part: RangeFingerprint<E::Key>,
        ours: Option<Summary>,
        ctx: Ctx,
    ) -> Result<(), ProcessError<S::Error>> {
        let RangeFingerprint {
            range,
            fingerprint: theirs,
        } = part;
        let ours = match ours {
            Some(ours) => ours,
            None => self
                .store
                .range_summary(&range)
                .map_err(ProcessError::Store)?,
        };
        if ours.fingerprint == theirs {
            return Ok(());
        }
        if let Some(pending) = &mut self.pending {
            pending.push(range);
            return Ok(());
        }
        if self.config.lone_differences()
            && ours.count > 0
            && theirs != Fingerprint::EMPTY
            && self.lone(&range, ours.fingerprint ^ theirs, ctx)?
        {
            return Ok(());
        }
        if ours.count > self.leaf
            && theirs != Fingerprint::EMPTY
            && self.echoes.is_some_and(|d| d.sparse(ours.count))
            && !self.sent.contains(&ours.fingerprint)
            && self.echo_back(&range, ours, ctx)
        {
            return Ok(());
        }
        if ours.count <= self.leaf || theirs == Fingerprint::EMPTY {
            if !self.eager
                && ours.count > 0
                && theirs != Fingerprint::EMPTY
                && self.around(&range, ctx)?
            {
                return Ok(());
            }
            let end = range.y.clone();
            let chunk = self.collect(&range, &end, ctx.after_part, None, true, ctx)?;
            self.emit(range, &end, chunk, false)
        } else {
            self.split(range, ours, ctx)
        }
    }

    /// Answers a differing range, where we hold none of the difference alone, with our own
    /// fingerprint of it instead of splitting it (see [`Config::with_echoes`]): if the peer
    /// holds it alone, the peer sends it at once. Returns `false`, having sent nothing, where the
    /// part does not fit.
    fn echo_back(&mut self, range: &Range<E::Key>, ours: Summary, ctx: Ctx) -> bool {
        let size = fingerprint_part_len(&range.x, &range.y);
        if !self.fits(size + ctx.after_part) {
            return false;
        }
        self.push(MessagePart::RangeFingerprint(RangeFingerprint {
            range: range.clone(),
            fingerprint: ours.fingerprint,
        }));
        true
    }

    /// Sends our entry whose fingerprint is `difference` (the XOR of the entries in which the
    /// two sides' `range` differs) if we hold one in `range`: then it is all the peer lacks
    /// there (see [`Config::with_lone_differences`]). Returns `false`, having sent nothing,
    /// where there is no such entry or the item does not fit.
    fn lone(
        &mut self,
        range: &Range<E::Key>,
        difference: Fingerprint,
        ctx: Ctx,
    ) -> Result<bool, ProcessError<S::Error>> {
        let Some(entry) = self
            .store
            .entry_by_fingerprint(&difference)
            .map_err(ProcessError::Store)?
        else {
            return Ok(false);
        };
        if !range.contains(entry.key()) || entry.fingerprint() != difference {
            return Ok(false);
        }
        // Every lone entry of the message travels in one item with `have_local == true`, over
        // the whole set (anchored at the first entry's key): a peer only stores the values of
        // such an item and never looks at its range (iroh-docs neither), so one item saves two
        // bounds per further entry.
        let remaining = self.remaining();
        if let Some(MessagePart::RangeItem(item)) = self.lone_item.and_then(|i| self.out.get_mut(i))
        {
            let n = item.values.len() as u64;
            let added = entry.encoded_len() + varint_len(n + 1) - varint_len(n);
            if added + ctx.after_part > remaining {
                return Ok(false);
            }
            let meta = self.hooks.meta(&entry);
            item.values.push((entry, meta));
            self.size += added;
            return Ok(true);
        }
        let key = entry.key().clone();
        let size = item_part_len(2 * key.encoded_len(), 1, entry.encoded_len());
        if !self.fits(size + ctx.after_part) {
            return Ok(false);
        }
        let meta = self.hooks.meta(&entry);
        self.lone_item = Some(self.out.len());
        self.push(MessagePart::RangeItem(RangeItem {
            range: Range::new(key.clone(), key),
            values: vec![(entry, meta)],
            have_local: true,
        }));
        Ok(true)
    }

    /// With lazy leaves, a differing range where we hold at most `leaf_size` entries (and the
    /// peer some) is cut at our entries instead of being answered with them: the peer may hold
    /// them already, and sending them would move entries for nothing (the reference's W3). The
    /// part before our first entry goes out as a request (an empty item), and each of our
    /// entries as the fingerprint of the sub-range it starts; the peer answers each with what
    /// actually differs, at the price of one more round trip. If our only entry starts the
    /// range, the cut is right after it ([`RangeKey::successor`]): its fingerprint, then a
    /// request for the rest. Returns `false`, having sent nothing, where the range cannot be
    /// cut (no successor) or the parts do not fit; then the entries go out as usual.
    fn around(&mut self, range: &Range<E::Key>, ctx: Ctx) -> Result<bool, ProcessError<S::Error>> {
        let mut ours: Vec<E> = Vec::new();
        self.store
            .range_for_each(range, |e| {
                ours.push(e);
                if ours.len() > self.config.leaf_size() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(ProcessError::Store)?;
        let Some(first) = ours.first() else {
            return Ok(false);
        };
        if ours.len() > self.config.leaf_size() {
            return Ok(false);
        }
        let mut parts: Vec<MessagePart<E, M>> = Vec::with_capacity(ours.len() + 1);
        let request = |x: &E::Key, y: &E::Key| {
            MessagePart::RangeItem(RangeItem {
                range: Range::new(x.clone(), y.clone()),
                values: Vec::new(),
                have_local: false,
            })
        };
        let fingerprint = |x: &E::Key, y: &E::Key, e: &E| {
            MessagePart::RangeFingerprint(RangeFingerprint {
                range: Range::new(x.clone(), y.clone()),
                fingerprint: Fingerprint::EMPTY ^ e.fingerprint(),
            })
        };
        if first.key() == &range.x && ours.len() == 1 {
            // Our only entry starts the range: cut right after it, where the key type allows.
            let Some(next) = first.key().successor().filter(|next| *next != range.y) else {
                return Ok(false);
            };
            parts.push(fingerprint(&range.x, &next, first));
            parts.push(request(&next, &range.y));
        } else {
            if first.key() != &range.x {
                parts.push(request(&range.x, first.key()));
            }
            for (i, e) in ours.iter().enumerate() {
                let y = ours.get(i + 1).map_or(&range.y, |next| next.key());
                parts.push(fingerprint(e.key(), y, e));
            }
        }
        let size: usize = parts.iter().map(MessagePart::encoded_len).sum();
        if !self.fits(size + ctx.after_part) {
            return Ok(false);
        }
        for part in parts {
            self.push(part);
        }
        Ok(true)
    }

    /// Splits `range`, of which we hold `whole`, into sub-ranges of about equal counts.
    fn split(
        &mut self,
        range: Range<E::Key>,
        whole: Summary,
        ctx: Ctx,
    ) -> Result<(), ProcessError<S::Error>> {
        let n = whole.count;
        let k = self.config.split_factor() as u64;
        let all = range.is_all();
        let mut ranks = Vec::new();
        if all {
            ranks.push(0);
        }
        for i in 1..k {
            // floor(n * i / k) without overflow
            let r = u64::try_from(u128::from(n) * u128::from(i) / u128::from(k)).unwrap_or(n);
            if r > 0 && r < n && ranks.last() != Some(&r) {
                ranks.push(r);
            }
        }
        // Each pivot with the summary of what lies before it in the range's circular order. The
        // count said every rank exists; a store that disagrees only loses pivots.
        let pivots = self
            .store
            .range_pivots(&range, &ranks)
            .map_err(ProcessError::Store)?;

        // Sub-ranges with their summaries, in the order they are sent.
        let mut subs: Vec<(Range<E::Key>, Summary)> = Vec::with_capacity(pivots.len() + 1);
        let end = if all {
            if pivots.len() < 2 {
                // Cannot happen with a consistent store (n >= 2 gives ranks 0 and >= 1).
                // Answer with our fingerprint of the whole range; the peer splits it.
                let size = fingerprint_part_len(&range.x, &range.y);
                if !self.fits(size + ctx.after_part) {
                    return self.overflow(range, size + ctx.after_part);
                }
                self.push(MessagePart::RangeFingerprint(RangeFingerprint {
                    range,
                    fingerprint: whole.fingerprint,
                }));
                return Ok(());
            }
            // Starting at the second pivot and wrapping around, as iroh-docs orders them.
            let m = pivots.len();
            for t in 0..m {
                let i = (t + 1) % m;
                let next = (i + 1) % m;
                let (ki, below_i) = &pivots[i];
                let (kn, below_n) = &pivots[next];
                let summary = if next == 0 {
                    // From pivot i to the end of the circle, then up to the first pivot.
                    whole.minus(*below_i).union(*below_n)
                } else {
                    below_n.minus(*below_i)
                };
                subs.push((Range::new(ki.clone(), kn.clone()), summary));
            }
            pivots[1].0.clone()
        } else {
            let mut start = (range.x.clone(), Summary::EMPTY);
            for (key, below) in pivots {
                let (k0, below0) = std::mem::replace(&mut start, (key.clone(), below));
                subs.push((Range::new(k0, key), below.minus(below0)));
            }
            let (k0, below0) = start;
            subs.push((Range::new(k0, range.y.clone()), whole.minus(below0)));
            range.y.clone()
        };

        let end_len = end.encoded_len();
        let last = subs.len() - 1;
        for (idx, (sub, summary)) in subs.into_iter().enumerate() {
            let after = if idx == last {
                ctx.after_part
            } else {
                Self::reserve_at(&sub.y, end_len, ctx)
            };
            if summary.count > self.leaf || !self.eager {
                let size = fingerprint_part_len(&sub.x, &sub.y);
                if !self.fits(size + after) {
                    // Defer the rest of this range as one; if nothing of it went out yet,
                    // defer it as received (its keys are the ones the reserve was sized for).
                    let rest = if idx == 0 {
                        range
                    } else {
                        Range::new(sub.x, end)
                    };
                    return self.overflow(rest, size + after);
                }
                self.push(MessagePart::RangeFingerprint(RangeFingerprint {
                    range: sub,
                    fingerprint: summary.fingerprint,
                }));
            } else {
                let chunk = self.collect(&sub, &end, after, None, true, ctx)?;
                if let (ChunkEnd::Nothing(needed), 0) = (&chunk.end, idx) {
                    let needed = *needed;
                    return self.overflow(range, needed);
                }
                self.emit(sub, &end, chunk, false)?;
                if self.pending.is_some() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Answers an item; its values are stored as their verdicts come.
    fn item(&mut self, item: RangeItem<E, M>, ctx: Ctx) -> Result<(), ProcessError<S::Error>> {
        let RangeItem {
            range,
            values,
            have_local,
        } = item;
        self.outcome.entries_received += values.len() as u64;

        let mut reply = None;
        let mut theirs = None;
        if !have_local {
            if self.pending.is_none() {
                let mut order: Vec<usize> = (0..values.len()).collect();
                order.sort_by(|&a, &b| match (values.get(a), values.get(b)) {
                    (Some((a, _)), Some((b, _))) => range.circular_cmp(a.key(), b.key()),
                    _ => Ordering::Equal,
                });
                let incoming = Incoming {
                    values: &values,
                    order,
                };
                let end = range.y.clone();
                reply = Some(self.collect(
                    &range,
                    &end,
                    ctx.after_part,
                    Some(&incoming),
                    false,
                    ctx,
                )?);
            } else {
                // Deferred: we will only tell whether the range still differs, by comparing our
                // fingerprint with theirs (which is that of exactly these values).
                let mut fp = Fingerprint::EMPTY;
                for (e, _) in &values {
                    fp ^= e.fingerprint();
                }
                theirs = Some(fp);
            }
        }

        self.store_values(values)?;

        if let Some(chunk) = reply {
            if chunk.values.is_empty() && matches!(chunk.end, ChunkEnd::Whole) {
                return Ok(());
            }
            let end = range.y.clone();
            self.emit(range, &end, chunk, true)?;
        } else if let Some(theirs) = theirs {
            let ours = self
                .store
                .range_fingerprint(&range)
                .map_err(ProcessError::Store)?;
            if ours != theirs
                && let Some(pending) = &mut self.pending
            {
                pending.push(range);
            }
        }
        Ok(())
    }

    /// Stores the values of one item, each once its verdict is known.
    fn store_values(&mut self, values: Vec<(E, M)>) -> Result<(), ProcessError<S::Error>> {
        for (entry, meta) in values {
            let slot = self.seen;
            self.seen += 1;
            if let Some(stored) = self.held.get_mut(slot).and_then(Option::take) {
                self.outcome.entries_known += 1;
                self.hooks.on_valid(&stored, &meta);
                continue;
            }
            let Some(verdict) = self.verdicts.next() else {
                return Err(ProcessError::Hooks {
                    values: self.values,
                    verdicts: self.taken,
                });
            };
            self.taken += 1;
            match verdict {
                Err(reason) => {
                    self.outcome.entries_rejected += 1;
                    self.hooks.on_reject(entry, meta, reason);
                }
                Ok(()) => {
                    self.hooks.on_valid(&entry, &meta);
                    if self.store.insert(&entry).map_err(ProcessError::Store)? {
                        self.outcome.entries_inserted += 1;
                        self.hooks.on_insert(entry, meta);
                    }
                }
            }
        }
        Ok(())
    }

    /// Selects the entries of `range` (all of them, or those `incoming` does not cover) that fit
    /// in the message, in circular order.
    ///
    /// `end` is where the part being answered ends (for the reserve), `after` the bytes to keep
    /// free if the whole range goes out. `empty_item`: whether an item without values is worth
    /// sending (a request for the peer's entries) or not (an empty answer).
    fn collect(
        &mut self,
        range: &Range<E::Key>,
        end: &E::Key,
        after: usize,
        incoming: Option<&Incoming<'_, E, M>>,
        empty_item: bool,
        ctx: Ctx,
    ) -> Result<Chunk<E>, ProcessError<S::Error>> {
        let remaining = self.remaining();
        let end_len = end.encoded_len();
        let x_len = range.x.encoded_len();
        let mut values: Vec<E> = Vec::new();
        let mut bytes = 0usize;
        // Number of values at the last point where the chunk could end (before values[ok]).
        let mut ok: Option<usize> = None;
        let mut full = false;
        let mut needed = 0usize;
        let mut pos = 0usize;
        self.store
            .range_for_each(range, |e| {
                if let Some(incoming) = incoming
                    && incoming.covers(range, &e, &mut pos)
                {
                    return ControlFlow::Continue(());
                }
                let stop_here = item_part_len(x_len + e.key().encoded_len(), values.len(), bytes)
                    + Self::reserve_at(e.key(), end_len, ctx);
                if stop_here > remaining {
                    full = true;
                    needed = stop_here;
                    return ControlFlow::Break(());
                }
                ok = Some(values.len());
                bytes += e.encoded_len();
                values.push(e);
                ControlFlow::Continue(())
            })
            .map_err(ProcessError::Store)?;

        if !full {
            if values.is_empty() && !empty_item {
                return Ok(Chunk {
                    values,
                    end: ChunkEnd::Whole,
                });
            }
            let whole = item_part_len(x_len + range.y.encoded_len(), values.len(), bytes) + after;
            if whole <= remaining {
                return Ok(Chunk {
                    values,
                    end: ChunkEnd::Whole,
                });
            }
            needed = whole;
        }
        match ok {
            Some(n) if n > 0 => {
                let key = values.get(n).map(|e| e.key().clone());
                values.truncate(n);
                Ok(Chunk {
                    values,
                    end: key.map_or(ChunkEnd::Nothing(needed), ChunkEnd::At),
                })
            }
            _ => Ok(Chunk {
                values: Vec::new(),
                end: ChunkEnd::Nothing(needed),
            }),
        }
    }

    /// Sends `chunk` as an item over `range` (or its prefix), deferring what did not fit up to
    /// `end`, the end of the part being answered.
    fn emit(
        &mut self,
        range: Range<E::Key>,
        end: &E::Key,
        chunk: Chunk<E>,
        have_local: bool,
    ) -> Result<(), ProcessError<S::Error>> {
        let Chunk {
            mut values,
            end: chunk_end,
        } = chunk;
        let (item_range, rest) = match chunk_end {
            ChunkEnd::Whole => (range, None),
            ChunkEnd::At(m) => {
                let rest = Range::new(m.clone(), end.clone());
                (Range::new(range.x, m), Some(rest))
            }
            ChunkEnd::Nothing(needed) => {
                return self.overflow(Range::new(range.x, end.clone()), needed);
            }
        };
        // Circular order to ascending order, which is what iroh-docs sends: the values at or
        // above x come first in circular order; rotate them behind the ones below x.
        let x = &item_range.x;
        let at_or_above = values.partition_point(|e| e.key() >= x);
        values.rotate_left(at_or_above);
        let values = values
            .into_iter()
            .map(|e| {
                let meta = self.hooks.meta(&e);
                (e, meta)
            })
            .collect();
        self.push(MessagePart::RangeItem(RangeItem {
            range: item_range,
            values,
            have_local,
        }));
        if let Some(rest) = rest {
            self.pending = Some(vec![rest]);
        }
        Ok(())
    }

    /// Sends the deferred ranges (in key order) back as our fingerprints of them: each alone if
    /// there is room for all, else in runs of consecutive ones of equal length, each run as
    /// one fingerprint of the range from its first start to its last end, as many runs as fit.
    fn carriers(&mut self, pending: Vec<Range<E::Key>>) -> Result<(), ProcessError<S::Error>> {
        let longest = pending
            .iter()
            .map(|r| r.x.encoded_len().max(r.y.encoded_len()))
            .max()
            .unwrap_or(0);
        let room = (self.remaining() / (FINGERPRINT_PART_OVERHEAD + 2 * longest)).max(1);
        let run = pending.len().div_ceil(room);
        let mut iter = pending.into_iter();
        while let Some(first) = iter.next() {
            let mut y = first.y;
            for next in iter.by_ref().take(run - 1) {
                y = next.y;
            }
            let range = Range::new(first.x, y);
            let size = fingerprint_part_len(&range.x, &range.y);
            if !self.fits(size) {
                return Err(ProcessError::BudgetTooSmall {
                    needed: self.size + size,
                    budget: self.full_budget,
                });
            }
            let fingerprint = self
                .store
                .range_fingerprint(&range)
                .map_err(ProcessError::Store)?;
            self.push(MessagePart::RangeFingerprint(RangeFingerprint {
                range,
                fingerprint,
            }));
        }
        Ok(())
    }
}
