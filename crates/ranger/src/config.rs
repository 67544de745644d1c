//! Tuning of a reconciliation session.

use crate::message::{FINGERPRINT_PART_OVERHEAD, MESSAGE_OVERHEAD};

/// How a [`Session`](crate::Session) splits ranges and how large its messages may get.
///
/// Built by [`Config::reference`] (exactly iroh-docs 0.101) or [`Config::bounded`] (our defaults
/// with a message budget), optionally adjusted with [`Config::custom`]. The fields are private so
/// that every `Config` in existence satisfies the invariants checked there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    split_factor: usize,
    leaf_size: usize,
    dense_leaf_size: usize,
    max_message_bytes: Option<usize>,
    eager_leaves: bool,
    lone_differences: bool,
    echoes: bool,
}

/// Why [`Config::custom`] refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A range must be split into at least two parts, or recursion would not make progress.
    #[error("split factor must be at least 2, got {0}")]
    SplitFactor(usize),
    /// A range of one entry cannot be split, so the leaf size must be at least 1.
    #[error("leaf size must be at least 1, got {0}")]
    LeafSize(usize),
    /// The budget must at least hold a message with a couple of fingerprint parts.
    #[error("message budget must be at least {min} bytes, got {got}")]
    Budget {
        /// The smallest accepted budget, [`Config::MIN_MESSAGE_BYTES`].
        min: usize,
        /// The budget that was asked for.
        got: usize,
    },
}

impl Config {
    /// The smallest message budget [`Config::custom`] accepts. A real budget must also hold the
    /// largest entry plus two fingerprint parts; a message that cannot make progress within the
    /// budget ends the session with [`ProcessError::BudgetTooSmall`](crate::ProcessError).
    pub const MIN_MESSAGE_BYTES: usize = MESSAGE_OVERHEAD + 3 * FINGERPRINT_PART_OVERHEAD;

    /// Split factor of [`Config::bounded`], chosen by measurement: see the table "Choosing
    /// ranger's split factor and leaf size" in docs/BENCHMARKS.md (`cargo xtask bench`), where
    /// split factor 4 with leaf size 1 and lazy leaves had the lowest modelled cost over
    /// d = 10, d = 1000 and a bootstrap at N = 100k: it needs about half the round trips of
    /// split factor 2, and larger factors send more fingerprints per round than they save.
    /// With echoes, split factor 8 can model a little cheaper (a few messages fewer for many
    /// differences), but it spends nearly twice the bytes on a few differences, more than the
    /// bound on them allows (a third of iroh-docs' bytes for d = 10); 4 stays the default.
    pub const DEFAULT_SPLIT_FACTOR: usize = 4;

    /// Leaf size of [`Config::bounded`], chosen by measurement (docs/BENCHMARKS.md, same
    /// table): larger leaves save a round or two but ship entries the peer already has, and
    /// every received entry costs two signature checks.
    pub const DEFAULT_LEAF_SIZE: usize = 1;

    /// Whether [`Config::bounded`] sends small sub-ranges as entries at once (see
    /// [`Config::with_eager_leaves`]); chosen by measurement (docs/BENCHMARKS.md, same table):
    /// at d = 1000 lazy leaves moved exactly the 1000 entries needed, where eager ones moved 2.7
    /// to 10.8 times as many (3.7 at split factor 4) and needed more messages.
    pub const DEFAULT_EAGER_LEAVES: bool = false;

    /// Leaf size of [`Config::bounded`] in dense messages (see [`Config::with_dense_leaf_size`]).
    /// Between two disjoint documents of 100 000 signed entries each over `/iroh-sync/1` it
    /// cut the wire bytes from 1.04 to 0.71 times the reference's (about 1.6 down to 1.1 times
    /// the entries' own size; `cargo xtask bench --only loopback`), each entry still sent once;
    /// in the in-memory test of disjoint sets it needs half the rounds of leaves of one entry.
    /// Other differences do not trigger it: at d = 1000 in N = 100k, triggering where 3 in 4
    /// (or 15 in 16) fingerprints differed moved 1.47 (1.35) times the entries needed; where
    /// all of at least 64 differ it stays at 1.00 (`cargo xtask bench --only memory`). Larger
    /// leaves could save little: at 16, ranges and fingerprints add
    /// about a tenth to the entries' bytes.
    pub const DEFAULT_DENSE_LEAF_SIZE: usize = 16;

    /// Exactly the behaviour of iroh-docs 0.101 (`SyncConfig::default()`): split factor 2, leaf
    /// size 1 and no message budget. Messages, parts and value order are the same as the
    /// reference produces, byte for byte once encoded.
    pub fn reference() -> Self {
        Config {
            split_factor: 2,
            leaf_size: 1,
            dense_leaf_size: 1,
            max_message_bytes: None,
            eager_leaves: true,
            lone_differences: false,
            echoes: false,
        }
    }

    /// Our defaults ([`Config::DEFAULT_SPLIT_FACTOR`], [`Config::DEFAULT_LEAF_SIZE`],
    /// [`Config::DEFAULT_EAGER_LEAVES`], lone differences found at once, see
    /// [`Config::with_lone_differences`]) with no message larger than `max_message_bytes` (as
    /// estimated by [`Message::encoded_len`](crate::Message::encoded_len)).
    pub fn bounded(max_message_bytes: usize) -> Result<Self, ConfigError> {
        Ok(Self::custom(
            Self::DEFAULT_SPLIT_FACTOR,
            Self::DEFAULT_LEAF_SIZE,
            Some(max_message_bytes),
        )?
        .with_eager_leaves(Self::DEFAULT_EAGER_LEAVES)
        .with_dense_leaf_size(Self::DEFAULT_DENSE_LEAF_SIZE)
        .with_lone_differences(true)
        .with_echoes(true))
    }

    /// Every knob:
    /// * `split_factor` (iroh-docs: `split_factor`, 2): into how many parts a range whose
    ///   fingerprints differ is split; at least 2;
    /// * `leaf_size` (iroh-docs: `max_set_size`, 1): a range with at most this many local entries
    ///   is sent as its entries rather than as a fingerprint; at least 1;
    /// * `max_message_bytes`: the message budget, `None` for unbounded (iroh-docs); at least
    ///   [`Config::MIN_MESSAGE_BYTES`].
    pub fn custom(
        split_factor: usize,
        leaf_size: usize,
        max_message_bytes: Option<usize>,
    ) -> Result<Self, ConfigError> {
        if split_factor < 2 {
            return Err(ConfigError::SplitFactor(split_factor));
        }
        if leaf_size < 1 {
            return Err(ConfigError::LeafSize(leaf_size));
        }
        if let Some(got) = max_message_bytes
            && got < Self::MIN_MESSAGE_BYTES
        {
            return Err(ConfigError::Budget {
                min: Self::MIN_MESSAGE_BYTES,
                got,
            });
        }
        Ok(Config {
            split_factor,
            leaf_size,
            dense_leaf_size: leaf_size,
            max_message_bytes,
            eager_leaves: true,
            lone_differences: false,
            echoes: false,
        })
    }

    /// Whether the sub-ranges of a split that hold at most `leaf_size` entries go out as items
    /// (`true`: iroh-docs, [`Config::reference`] and [`Config::custom`]) or as fingerprints
    /// like the others (`false`: [`Config::bounded`], see [`Config::DEFAULT_EAGER_LEAVES`]).
    ///
    /// Eager leaves save a round trip but ship entries the peer may already have (iroh-docs'
    /// W3: most entries moved by a sync with scattered differences are redundant). Lazy leaves
    /// send entries only where a difference is known: a peer that finds it has at most
    /// `leaf_size` entries in a differing range answers with them, as always. Either way every
    /// peer converges.
    ///
    /// Lazy leaves pay off while differences are sparse. In a message where at least three
    /// quarters of the fingerprints differ from ours (a peer that lacks most of the ranges it
    /// asks about, as in a first sync of two different documents), a leaf sent as a fingerprint
    /// would almost surely differ too and come back as a request, costing a fingerprint part
    /// and a round trip per entry; so in such a message leaves go out as entries even when this
    /// is `false`. Not, though, where more than half of the peer's ranges (sampled) start at
    /// entries we hold: a peer splits at its own entries, so that is a peer that shares most
    /// entries and differs in many places, and entries sent at once would mostly be ones it
    /// has. (A message that fills most of the budget may hold ranges of ours that the peer
    /// sends back merged for want of room, which start at our keys too; such a message counts
    /// only as the second of two in a row.) With 500 entries of each side's own among 4000
    /// shared, the in-memory benchmark moved 3.4 to 4.6 times the entries needed before this
    /// check, 1.00 with it.
    pub fn with_eager_leaves(mut self, eager: bool) -> Self {
        self.eager_leaves = eager;
        self
    }

    /// The leaf size in messages of at least 64 fingerprints that all differ from ours and
    /// whose ranges mostly start at keys we do not hold (lazy leaves go out as entries in
    /// those anyway, see [`Config::with_eager_leaves`]): there,
    /// ranges with at most this many local entries (and
    /// at least `leaf_size`; smaller values mean `leaf_size`) are sent as entries instead of
    /// being split further. [`Config::custom`] sets it to `leaf_size`; [`Config::bounded`] to
    /// [`Config::DEFAULT_DENSE_LEAF_SIZE`]. Without lazy leaves it has no effect.
    ///
    /// In a dense message the peer lacks most of the ranges it asks about (as when two
    /// documents with nothing in common meet), so entries sent there are mostly entries it
    /// needs. Every item carries its range, two record identifiers of about the size of an
    /// entry's fixed fields; with one entry per item they cost more than half again the entry
    /// itself, and each level of splitting below costs fingerprint parts and a round trip. Larger
    /// leaves there amortise both. Sparse differences are unaffected: their messages are dense
    /// only near the top, where ranges are far larger than any leaf.
    pub fn with_dense_leaf_size(mut self, leaves: usize) -> Self {
        self.dense_leaf_size = leaves;
        self
    }

    /// The leaf size in dense messages; see [`Config::with_dense_leaf_size`].
    pub fn dense_leaf_size(&self) -> usize {
        self.dense_leaf_size.max(self.leaf_size)
    }

    /// Whether a differing range whose difference is one entry of ours is answered with that
    /// entry at once (`true`: [`Config::bounded`]) or split like any other (`false`:
    /// iroh-docs, [`Config::reference`] and [`Config::custom`]).
    ///
    /// A range fingerprint is the XOR of its entries' fingerprints, so ours XOR the peer's is
    /// the XOR of the entries only one side holds. If that equals the fingerprint of one of our
    /// entries inside the range, the peer lacks exactly that entry there (anything else would
    /// take a collision of the 256-bit hash, or entries forged for it; see the security caveat
    /// in the crate docs, which this shares). Instead of splitting the range again and again
    /// down to that entry, which costs about `split_factor` fingerprint parts per level and a
    /// round trip each, the session sends the entry in an item with `have_local == true` (one
    /// item per message holds all such entries; its range is the whole set, which a peer never
    /// looks at in such an item). The peer stores it, as it would any item, and no round trip
    /// follows. Where the lone entry is
    /// the peer's, the split goes on one more level and the peer finds it there.
    ///
    /// Only stores that index their entries by fingerprint take the shortcut
    /// ([`Store::entry_by_fingerprint`](crate::Store::entry_by_fingerprint)); others behave as
    /// with `false`. The parts sent are ones iroh-docs also sends and handles by its own rules.
    pub fn with_lone_differences(mut self, lone: bool) -> Self {
        self.lone_differences = lone;
        self
    }

    /// Whether lone differences are answered at once; see [`Config::with_lone_differences`].
    pub fn lone_differences(&self) -> bool {
        self.lone_differences
    }

    /// Echoes (off in [`Config::reference`] and [`Config::custom`], on in [`Config::bounded`]):
    /// a differing range that is expected to hold a single difference, none of it ours alone (the
    /// peer's fingerprint XOR ours is not the fingerprint of one of our entries there), goes
    /// back as our fingerprint of the whole range instead of being split. The peer then finds
    /// its lone entry at once (see [`Config::with_lone_differences`]): one part instead of
    /// `split_factor` parts and the peer's answer to them. Where the guess is wrong the peer
    /// splits the range one round trip later, so echoes are only sent in replies that would
    /// not fit the budget otherwise (where bytes decide the number of rounds), for ranges
    /// where the message's differing parts per entry covered predict at most half a
    /// difference. A range we sent in our last message is never echoed (the peer's fingerprint
    /// for it may be an echo), so every echo is answered by an entry or a split. Harmless with a
    /// peer that does not echo: iroh-docs splits an echoed range like any other.
    pub fn with_echoes(mut self, echoes: bool) -> Self {
        self.echoes = echoes;
        self
    }

    /// Whether differing ranges may be echoed; see [`Config::with_echoes`].
    pub fn echoes(&self) -> bool {
        self.echoes
    }

    /// Into how many parts a range whose fingerprints differ is split.
    pub fn split_factor(&self) -> usize {
        self.split_factor
    }

    /// Ranges with at most this many local entries are sent as entries.
    pub fn leaf_size(&self) -> usize {
        self.leaf_size
    }

    /// Whether small sub-ranges go out as items; see [`Config::with_eager_leaves`].
    pub fn eager_leaves(&self) -> bool {
        self.eager_leaves
    }

    /// The message budget in bytes, `None` if unbounded.
    pub fn max_message_bytes(&self) -> Option<usize> {
        self.max_message_bytes
    }
}
