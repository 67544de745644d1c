//! Storage faults under `RedbStore`: I/O errors from the k-th storage operation on (a dead
//! disk), at the k-th operation only (a transient error), and a disk that fills up. For every
//! k (or size) the writer must see typed errors and no panic, and the bytes that survive
//! (everything written, or only what was synced) must reopen on a healthy storage into a
//! consistent store holding every flushed entry: exactly the state of the last successful
//! flush, or of a flush that failed after its commit reached the storage.
//!
//! Repeated SIGKILL of a writing process is tested where the file store lives:
//! `crates/sync-store-redb/tests/it/crash.rs` (`killed_writer_keeps_every_flushed_write`).

use sync_core::{
    Capability, ContentHash, KeyInterval, MemStore, NamespaceSecret, Record, SignedEntry, Store,
    StoreError,
};
use sync_store_redb::RedbStore;

use reliability::storage::{Crash, FaultPlan, Image};

/// Writes of one run.
const WRITES: u64 = 60;
/// A flush after every this many writes.
const FLUSH_EVERY: u64 = 6;

fn namespace() -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[9; 32])
}

/// The `i`-th write: distinct keys, so "every flushed entry is there" is literal.
fn write(i: u64) -> SignedEntry {
    let author = sync_core::Author::from_bytes(&[(1 + i % 3) as u8; 32]);
    let key = format!("dir{}/file{i:04}", i % 4);
    let record = Record::new(ContentHash::of(key.as_bytes()), key.len() as u64, 1_000 + i);
    SignedEntry::create(&namespace(), &author, key, record)
}

fn contents(store: &mut impl Store) -> Result<Vec<SignedEntry>, StoreError> {
    store.entries(&namespace().id(), &KeyInterval::all(), 0, usize::MAX)
}

/// Where the first error hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Open,
    Setup,
    Insert,
    Flush,
    None,
}

/// What one run under a fault plan did.
#[derive(Debug)]
struct Run {
    stage: Stage,
    injected: u64,
    /// Entries acknowledged by a successful flush.
    flushed: u64,
    /// Calls after the first error that still failed / succeeded.
    after_errors: (u64, u64),
}

/// The states the reopened store may be in: after the last successful flush, or after a
/// failed flush whose commit reached the storage.
fn model(writes: u64) -> Vec<SignedEntry> {
    let mut store = MemStore::new();
    store
        .import_namespace(Capability::Write(namespace()))
        .unwrap();
    for i in 0..writes {
        store.insert(write(i)).unwrap();
    }
    contents(&mut store).unwrap()
}

/// Runs the workload on `image` under `plan`; then checks what survives each kind of crash.
fn run(plan: FaultPlan) -> Run {
    let image = Image::new();
    let (storage, stats) = image.storage(plan);
    let mut flushed = 0;
    let mut stage = Stage::None;
    // Writes a failed flush may have committed.
    let mut maybe = None;
    let mut after_errors = (0, 0);
    let mut extra_flushed = false;
    match RedbStore::on_raw_storage(storage) {
        Err(e) => {
            assert!(matches!(e, StoreError::Backend(_)), "open: {e}");
            stage = Stage::Open;
        }
        Ok(mut store) => {
            let setup = store
                .import_namespace(Capability::Write(namespace()))
                .and_then(|_| store.flush());
            if let Err(e) = setup {
                assert!(matches!(e, StoreError::Backend(_)), "setup: {e}");
                stage = Stage::Setup;
            } else {
                for i in 0..WRITES {
                    if let Err(e) = store.insert(write(i)) {
                        assert!(matches!(e, StoreError::Backend(_)), "insert {i}: {e}");
                        stage = Stage::Insert;
                        break;
                    }
                    if (i + 1) % FLUSH_EVERY == 0 {
                        match store.flush() {
                            Ok(()) => flushed = i + 1,
                            Err(e) => {
                                assert!(matches!(e, StoreError::Backend(_)), "flush {i}: {e}");
                                stage = Stage::Flush;
                                maybe = Some(i + 1);
                                break;
                            }
                        }
                    }
                }
                if stage != Stage::None {
                    // The aftermath: reads and one more write on the failed store. Each call
                    // returns a result (a dead disk keeps failing; after a transient error
                    // the store may recover); none may panic.
                    let mut tally = |ok: bool| {
                        if ok {
                            after_errors.1 += 1;
                        } else {
                            after_errors.0 += 1;
                        }
                    };
                    tally(contents(&mut store).is_ok());
                    tally(store.count(&namespace().id(), &KeyInterval::all()).is_ok());
                    let inserted = store.insert(write(WRITES)).is_ok();
                    tally(inserted);
                    let flushed_again = store.flush().is_ok();
                    tally(flushed_again);
                    extra_flushed = inserted && flushed_again;
                }
            }
            // Dropping commits what is open, best effort.
            drop(store);
        }
    }

    for crash in [Crash::Process, Crash::Power] {
        let survivor = image.survivor(crash);
        let reopened = RedbStore::on_raw_storage(survivor.healthy());
        let mut store = match reopened {
            Ok(store) => store,
            Err(e) => {
                // Only a store whose creation never completed may fail to open; its bytes
                // then hold no flushed entry either.
                assert!(
                    stage <= Stage::Setup && flushed == 0,
                    "{plan:?}: {crash:?} survivor does not open after {stage:?}: {e}"
                );
                continue;
            }
        };
        store
            .check_consistency()
            .unwrap_or_else(|e| panic!("{plan:?}: {crash:?} survivor inconsistent: {e}"));
        if stage <= Stage::Setup {
            // The document may or may not have been created; nothing was flushed.
            assert_eq!(flushed, 0);
            continue;
        }
        let got = contents(&mut store)
            .unwrap_or_else(|e| panic!("{plan:?}: {crash:?} survivor unreadable: {e}"));
        let mut candidates = vec![model(flushed)];
        if let Some(n) = maybe {
            candidates.push(model(n));
        }
        if extra_flushed {
            // The write after the error was flushed too: every candidate plus it.
            for c in candidates.clone() {
                let mut with = c;
                with.push(write(WRITES));
                with.sort_by(|a, b| a.id().cmp(b.id()));
                candidates.push(with);
            }
            candidates.retain(|c| c.iter().any(|e| e == &write(WRITES)));
        }
        assert!(
            candidates.contains(&got),
            "{plan:?}: {crash:?} survivor holds {} entries; {flushed} were flushed (stage {stage:?})",
            got.len()
        );
        for i in 0..flushed {
            assert!(got.contains(&write(i)), "flushed write {i} lost");
        }
        // And it takes writes again.
        store.insert(write(WRITES + 1)).unwrap();
        store.flush().unwrap();
    }
    Run {
        stage,
        injected: stats.injected(),
        flushed,
        after_errors,
    }
}

/// Summary figures of a sweep, printed for docs/RELIABILITY.md.
#[derive(Debug, Default)]
struct Sweep {
    runs: u64,
    injected: u64,
    flushed_checked: u64,
    by_stage: std::collections::BTreeMap<String, u64>,
    after_errors: (u64, u64),
}

impl Sweep {
    fn add(&mut self, run: &Run) {
        self.runs += 1;
        self.injected += run.injected;
        // Checked against both survivors.
        self.flushed_checked += 2 * run.flushed;
        *self.by_stage.entry(format!("{:?}", run.stage)).or_default() += 1;
        self.after_errors.0 += run.after_errors.0;
        self.after_errors.1 += run.after_errors.1;
    }
}

/// The number of storage operations and the largest size of a healthy run.
fn healthy_run() -> (u64, u64) {
    let image = Image::new();
    let (storage, stats) = image.storage(FaultPlan::healthy());
    let mut store = RedbStore::on_raw_storage(storage).unwrap();
    store
        .import_namespace(Capability::Write(namespace()))
        .unwrap();
    store.flush().unwrap();
    for i in 0..WRITES {
        store.insert(write(i)).unwrap();
        if (i + 1) % FLUSH_EVERY == 0 {
            store.flush().unwrap();
        }
    }
    drop(store);
    // The disk must hold the largest the file ever was, not only what is left at the end.
    let size = (image.volatile().len() as u64).max(stats.peak_len());
    (stats.ops(), size)
}

#[test]
fn a_healthy_run_keeps_everything() {
    let run = run(FaultPlan::healthy());
    assert_eq!(run.stage, Stage::None);
    assert_eq!(run.injected, 0);
    assert_eq!(run.flushed, WRITES);
}

#[test]
fn io_errors_from_every_operation_on() {
    let (ops, _) = healthy_run();
    let mut sweep = Sweep::default();
    // Every operation index of the workload, and a few past it (which never fire).
    for k in 0..ops + 3 {
        sweep.add(&run(FaultPlan::dead_after(k)));
    }
    eprintln!("faults: dead disk after k of {ops} operations: {sweep:?}");
    assert!(sweep.injected >= ops, "every k below {ops} injects");
    // Failures hit opening, setup, inserts (which grow the file) and flushes alike.
    for stage in ["Open", "Setup", "Insert", "Flush"] {
        assert!(
            sweep.by_stage.contains_key(stage),
            "no run failed at {stage}"
        );
    }
}

#[test]
fn a_transient_io_error_at_every_operation() {
    let (ops, _) = healthy_run();
    let mut sweep = Sweep::default();
    for k in 0..ops {
        sweep.add(&run(FaultPlan::transient_at(k)));
    }
    eprintln!("faults: one transient error at op k of {ops}: {sweep:?}");
    assert_eq!(sweep.injected, ops, "exactly one fault per run");
}

#[test]
fn a_full_disk_at_every_size() {
    let (_, size) = healthy_run();
    let mut sweep = Sweep::default();
    // From an empty disk to one that holds the whole run, in 64 steps, plus every page
    // boundary around the sizes redb grows through.
    let step = (size / 64).max(1);
    let mut limits: Vec<u64> = (0..=64).map(|i| i * step).collect();
    limits.extend([4096, 8192, 16 * 1024, 64 * 1024, size - 1, size, size + 1]);
    limits.sort_unstable();
    limits.dedup();
    for max_len in limits {
        sweep.add(&run(FaultPlan::disk_full_at(max_len)));
    }
    eprintln!("faults: disk full at sizes up to {size} bytes: {sweep:?}");
    assert!(sweep.injected > 0);
    assert!(
        sweep.by_stage.contains_key("None"),
        "a disk as large as the run holds it"
    );
}
