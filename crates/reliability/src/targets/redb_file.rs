//! A damaged store file: byte flips and truncation of a small valid store, then opening it,
//! checking it, reading everything and writing once more. Every step may fail with a
//! `StoreError`; no panic may come out of `RedbStore`, not even one raised inside redb (the
//! store turns those into `StoreError::Corrupt`, see `redb_panics`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use sync_core::{
    Author, Capability, DownloadPolicy, FilterKind, KeyInterval, Query, QueryCursor, Store,
    StoreError,
};
use sync_store_redb::RedbStore;

use super::fixtures::{self, fake_entry};
use super::redb_panics::{containing_redb_panics, redb_panics_on_this_thread};
use crate::input::Input;
use crate::storage::Image;

/// The most byte edits one input applies.
const MAX_EDITS: usize = 64;

/// The bytes of a small store, closed cleanly: three documents (one read-only), three
/// authors, a default author, a few dozen entries with deletions, peers and a policy.
pub fn valid_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = Image::new();
        let mut store = match RedbStore::on_raw_storage(image.healthy()) {
            Ok(store) => store,
            Err(e) => panic!("a new store on a healthy image: {e}"),
        };
        let filled = fill(&mut store).and_then(|()| store.close());
        if let Err(e) = filled {
            panic!("filling the reference image: {e}");
        }
        image.volatile()
    })
}

fn fill(store: &mut RedbStore) -> Result<(), StoreError> {
    store.import_namespace(Capability::Write(fixtures::namespace(1)))?;
    store.import_namespace(Capability::Write(fixtures::namespace(2)))?;
    store.import_namespace(Capability::Read(fixtures::ns_id(3)))?;
    for seed in 1..=3 {
        store.import_author(fixtures::author(seed))?;
    }
    store.set_default_author(&fixtures::author_id(2))?;
    for (i, key) in fixtures::KEYS.iter().enumerate() {
        for author in 1..=2u8 {
            let ts = 10 + i as u64 + u64::from(author);
            store.insert(fake_entry(1, author, key, ts, i % 4 == 3))?;
            store.insert(fake_entry(2, author, key, ts, false))?;
        }
    }
    store.register_useful_peer(&fixtures::ns_id(1), [7; 32])?;
    store.set_download_policy(
        &fixtures::ns_id(2),
        DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(b"a".to_vec().into())]),
    )?;
    store.flush()
}

/// The damaged bytes an input of the target describes: up to [`MAX_EDITS`] byte flips of
/// [`valid_image`], then, if bit 0 of the first byte is set, a truncation.
pub fn damaged_image(data: &[u8]) -> Vec<u8> {
    let mut input = Input::new(data);
    let mut bytes = valid_image().to_vec();
    let flags = input.u8();
    for _ in 0..input.below(MAX_EDITS + 1) {
        if bytes.is_empty() {
            break;
        }
        let at = input.u32() as usize % bytes.len();
        bytes[at] ^= input.u8().max(1);
    }
    if flags & 1 == 1 && !bytes.is_empty() {
        let len = input.u32() as usize % bytes.len();
        bytes.truncate(len);
    }
    bytes
}

/// The target: see the module docs.
pub fn redb_file(data: &[u8]) {
    let _ = open_damaged(damaged_image(data));
}

/// What a store on damaged bytes did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Opening failed with `StoreError::Corrupt` after redb panicked.
    OpenPanicked,
    /// Opening failed with a typed error, without a panic.
    OpenFailed,
    /// It opened; a later call panicked inside redb, which poisoned the store.
    Poisoned,
    /// It opened and every call returned; `errors` says whether some returned an error.
    Opened {
        /// Some call returned an error.
        errors: bool,
    },
}

/// Opens a store on `bytes` and uses it as the target does (consistency check, every read, a
/// write, a flush, close), asserting what must hold: no panic comes out of `RedbStore`; a
/// panic inside redb becomes `StoreError::Corrupt` and poisons the store (every later call
/// fails with `Corrupt`); the storage is released at the end, whatever happened.
pub fn open_damaged(bytes: Vec<u8>) -> Outcome {
    let image = Image::from_bytes(bytes);
    let outcome = containing_redb_panics(|| use_damaged(&image));
    assert_eq!(
        image.other_handles(),
        0,
        "the store left its storage open ({outcome:?})"
    );
    outcome
}

fn use_damaged(image: &Image) -> Outcome {
    let before = redb_panics_on_this_thread();
    let panicked = || redb_panics_on_this_thread() > before;
    let mut store = match RedbStore::on_raw_storage(image.healthy()) {
        Ok(store) => store,
        Err(e) if panicked() => {
            assert!(
                matches!(e, StoreError::Corrupt(_)),
                "redb panicked on open, but the error is not Corrupt: {e:?}"
            );
            return Outcome::OpenPanicked;
        }
        Err(_) => return Outcome::OpenFailed,
    };
    // Damage the consistency check does not cover (a policy, a peer list, free pages) may
    // surface as an error of one read; any answer is fine, a panic is not.
    let results = [
        store.check_consistency(),
        read_everything(&mut store),
        // A write and a flush on whatever opened.
        store
            .insert(fake_entry(1, 3, b"after", 99, false))
            .map(|_| ()),
        store.flush(),
    ];
    let errors = results.iter().any(Result::is_err);
    if panicked() {
        assert_poisoned(&mut store);
        let closed = store.close();
        assert!(
            matches!(closed, Err(StoreError::Corrupt(_))),
            "close of a poisoned store: {closed:?}"
        );
        return Outcome::Poisoned;
    }
    let closed = store.close();
    if panicked() {
        assert!(
            matches!(closed, Err(StoreError::Corrupt(_))),
            "redb panicked on close, but the error is not Corrupt: {closed:?}"
        );
        return Outcome::Poisoned;
    }
    Outcome::Opened {
        errors: errors || closed.is_err(),
    }
}

/// After a panic every call fails with `Corrupt`, reads and writes alike.
fn assert_poisoned(store: &mut RedbStore) {
    let results = [
        store.list_authors().map(|_| ()),
        store.list_namespaces().map(|_| ()),
        store.import_author(fixtures::author(4)),
        store.check_consistency(),
        store.flush(),
    ];
    for result in results {
        assert!(
            matches!(result, Err(StoreError::Corrupt(_))),
            "a poisoned store answered: {result:?}"
        );
    }
}

/// Counts of a bit-flip survey (see [`bit_flip_survey`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Survey {
    /// Damaged images tried.
    pub tried: u64,
    /// Opening failed with `Corrupt` after a panic inside redb.
    pub open_panicked: u64,
    /// Opening failed with a typed error, no panic.
    pub open_failed: u64,
    /// Opened; a later panic inside redb poisoned the store.
    pub poisoned: u64,
    /// Opened; every call answered without an error.
    pub opened_clean: u64,
    /// Opened; some call returned a typed error.
    pub opened_with_errors: u64,
    /// A panic came out of `RedbStore`, or a property of [`open_damaged`] failed (must be 0).
    pub escaped: u64,
}

impl Survey {
    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &Survey) {
        self.tried += other.tried;
        self.open_panicked += other.open_panicked;
        self.open_failed += other.open_failed;
        self.poisoned += other.poisoned;
        self.opened_clean += other.opened_clean;
        self.opened_with_errors += other.opened_with_errors;
        self.escaped += other.escaped;
    }
}

/// Flips each bit of [`valid_image`] named in `bits` (bit `i` is bit `i % 8` of byte `i / 8`),
/// one at a time, and runs [`open_damaged`] on the result, counting outcomes instead of
/// stopping at a failure.
pub fn bit_flip_survey(bits: impl IntoIterator<Item = usize>) -> Survey {
    let mut survey = Survey::default();
    for bit in bits {
        let mut bytes = valid_image().to_vec();
        let Some(byte) = bytes.get_mut(bit / 8) else {
            continue;
        };
        *byte ^= 1 << (bit % 8);
        survey.tried += 1;
        match catch_unwind(AssertUnwindSafe(|| open_damaged(bytes))) {
            Ok(Outcome::OpenPanicked) => survey.open_panicked += 1,
            Ok(Outcome::OpenFailed) => survey.open_failed += 1,
            Ok(Outcome::Poisoned) => survey.poisoned += 1,
            Ok(Outcome::Opened { errors: false }) => survey.opened_clean += 1,
            Ok(Outcome::Opened { errors: true }) => survey.opened_with_errors += 1,
            Err(_) => survey.escaped += 1,
        }
    }
    survey
}

fn read_everything(store: &mut RedbStore) -> Result<(), StoreError> {
    let namespaces = store.list_namespaces()?;
    for (ns, _) in namespaces {
        let _ = store.capability(&ns)?;
        let all = KeyInterval::all();
        let entries = store.entries(&ns, &all, 0, usize::MAX)?;
        let count = store.count(&ns, &all)?;
        if count != entries.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "count {count} for {} entries",
                entries.len()
            )));
        }
        let _ = store.fingerprint(&ns, &all)?;
        let query = Query::all().with_include_empty(true);
        let _ = store.query(&ns, &query, &QueryCursor::start(&query), 1000)?;
        let latest = Query::latest_per_key();
        let _ = store.query(&ns, &latest, &QueryCursor::start(&latest), 1000)?;
        let _ = store.latest_per_author(&ns)?;
        let _ = store.useful_peers(&ns)?;
        let _ = store.download_policy(&ns)?;
    }
    for id in store.list_authors()? {
        let _: Option<Author> = store.author(&id)?;
    }
    let _ = store.default_author()?;
    Ok(())
}

pub(super) fn seeds() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        // One flip in the header region, one in the middle, a truncation.
        vec![0, 1, 0x10, 0, 0, 0, 0x01],
        vec![0, 1, 0x00, 0x10, 0, 0, 0x80],
        vec![1, 0, 0x00, 0x20, 0, 0],
        vec![
            2, 3, 1, 0, 0, 0, 0xff, 0, 2, 0, 0, 0x55, 0, 0x30, 0, 0, 0x0f,
        ],
    ]
}
