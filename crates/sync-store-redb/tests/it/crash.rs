//! Crash tests: a child process writes and flushes in a loop and is killed with SIGKILL at a
//! random moment; the reopened store must hold exactly the state after some prefix of the
//! writes that includes every flushed one, and pass the consistency check.
//!
//! The child is this test binary itself, run with [`CHILD_ENV`] set to the store path (the
//! `child_writer` test does nothing without it). Iterations: 20, or
//! `SYNC_STORE_REDB_CRASH_ITERATIONS`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use sync_core::store::conformance::namespace;
use sync_core::{Capability, KeyInterval, MemStore, SignedEntry, Store};
use sync_store_redb::RedbStore;

use crate::model::fake_entry;

const CHILD_ENV: &str = "SYNC_STORE_REDB_CRASH_CHILD";
const FLUSH_EVERY: u64 = 10;
/// The child stops by itself after this many writes, should nobody kill it.
const MAX_OPS: u64 = 200_000;

/// The `i`-th write of the workload: files in five directories by two authors, overwriting
/// each other, and now and then a deletion marker at a directory.
fn op(i: u64) -> SignedEntry {
    let author = 1 + (i % 2) as u8;
    if i % 50 == 49 {
        let dir = (i / 50) % 5;
        fake_entry(1, author, format!("p{dir}/").as_bytes(), i + 1, true)
    } else {
        let key = format!("p{}/k{}", i % 5, i % 37);
        fake_entry(1, author, key.as_bytes(), i + 1, false)
    }
}

/// The child: writes the workload forever, flushing every [`FLUSH_EVERY`] writes and
/// printing how many writes are flushed. Also commits on its own every 7 writes.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = RedbStore::persistent(&path).unwrap();
    store.set_max_batch(7);
    store
        .import_namespace(Capability::Write(namespace(1)))
        .unwrap();
    store.flush().unwrap();
    for i in 0..MAX_OPS {
        store.insert(op(i)).unwrap();
        if (i + 1) % FLUSH_EVERY == 0 {
            store.flush().unwrap();
            println!("flushed {}", i + 1);
        }
    }
}

/// Runs one child, kills it after it reported `kill_after` flushes, and checks the store.
fn crash_once(kill_after: u64, iteration: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let log = dir.path().join("child.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut flushed = 0;
    let mut reports = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("flushed ") {
            flushed = n.trim().parse::<u64>().unwrap();
            reports += 1;
            if reports == kill_after {
                break;
            }
        }
    }
    // SIGKILL on unix: no destructor, no final commit.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        reports,
        kill_after,
        "iteration {iteration}: the child ended early: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let mut store = RedbStore::persistent(&path).unwrap();
    store
        .check_consistency()
        .unwrap_or_else(|e| panic!("iteration {iteration}: {e}"));
    let ns = namespace(1).id();
    let stored = store
        .entries(&ns, &KeyInterval::all(), 0, usize::MAX)
        .unwrap();
    let stored_fp = store.fingerprint(&ns, &KeyInterval::all()).unwrap();

    // Replay the workload on the model until its state equals the store's, at or after the
    // last flushed write.
    let mut model = MemStore::new();
    model
        .import_namespace(Capability::Write(namespace(1)))
        .unwrap();
    let mut done = 0u64;
    loop {
        if done >= flushed
            && model.count(&ns, &KeyInterval::all()).unwrap() == stored.len() as u64
            && model.fingerprint(&ns, &KeyInterval::all()).unwrap() == stored_fp
        {
            let want = model
                .entries(&ns, &KeyInterval::all(), 0, usize::MAX)
                .unwrap();
            if want == stored {
                break;
            }
        }
        assert!(
            done < flushed + 100_000,
            "iteration {iteration}: the store matches no prefix of the writes from {flushed} on"
        );
        model.insert(op(done)).unwrap();
        done += 1;
    }
    assert!(done >= flushed);
}

#[test]
fn killed_writer_keeps_every_flushed_write() {
    let iterations = std::env::var("SYNC_STORE_REDB_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20usize);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    eprintln!("crash test seed {seed}");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    for iteration in 0..iterations {
        crash_once(rng.random_range(1..=30), iteration);
    }
}
