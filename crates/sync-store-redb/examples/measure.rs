//! Rough timings of the redb store: insert rate, range operations at scale, file size.
//!
//! ```text
//! cargo run --release -p sync-store-redb --example measure -- [entries, default 100000]
//! ```
//!
//! Entries carry made-up signatures (the store does not verify them), so the insert rate is
//! the store's alone; signing costs about 41 us per entry on top (see issue 4). Not a
//! benchmark harness: the recorded figures belong to `cargo xtask bench`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sync_core::{
    Author, Capability, ContentHash, Entry, EntrySignature, Fingerprint, KeyInterval,
    NamespaceSecret, Record, RecordIdentifier, SignedEntry, Store,
};
use sync_store_redb::RedbStore;

fn entry(ns: &NamespaceSecret, author: &Author, i: u64) -> SignedEntry {
    // Keys like "dir17/file00042-1234": shared prefixes, like paths.
    let key = format!("dir{:02}/file{:05}-{}", i % 97, (i / 97) % 100_000, i);
    let hash = ContentHash::of(key.as_bytes());
    let id = RecordIdentifier::new(ns.id(), author.id(), key);
    let entry = Entry::new(id, Record::new(hash, 100, 1_700_000_000_000_000 + i));
    SignedEntry::from_parts(EntrySignature::from_parts([1; 64], [2; 64]), entry)
}

/// The peak resident set size of this process (Linux), e.g. "412 MB".
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".to_string(), |kb| format!("{} MB", kb / 1024))
}

/// The CPU time of this process so far (Linux, in clock ticks of 10 ms), which a busy machine
/// inflates less than wall time.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses: utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn per_op(d: Duration, n: u64) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6 / n as f64)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measure.redb");
    let mut store = RedbStore::persistent(&path).unwrap();
    if let Some(batch) = std::env::var("MAX_BATCH").ok().and_then(|v| v.parse().ok()) {
        store.set_max_batch(batch);
    }
    let ns = NamespaceSecret::from_bytes(&[1; 32]);
    let authors: Vec<Author> = (1..=4u8).map(|s| Author::from_bytes(&[s; 32])).collect();
    store
        .import_namespace(Capability::Write(ns.clone()))
        .unwrap();
    // A neighbouring document, so that nothing is accidentally whole-table.
    let other = NamespaceSecret::from_bytes(&[2; 32]);
    store
        .import_namespace(Capability::Write(other.clone()))
        .unwrap();
    for i in 0..1000 {
        store.insert(entry(&other, &authors[0], i)).unwrap();
    }

    let start = Instant::now();
    let cpu_start = cpu_time();
    for i in 0..n {
        store
            .insert(entry(&ns, &authors[(i % 4) as usize], i))
            .unwrap();
    }
    store.flush().unwrap();
    let took = start.elapsed();
    println!(
        "insert {n} entries into the file store, flushed: {:.2} s, {:.0} entries/s, {} per entry",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        per_op(took, n)
    );
    if let (Some(a), Some(b)) = (cpu_start, cpu_time()) {
        println!(
            "  of which CPU time (user + system): {} per entry",
            per_op(b.saturating_sub(a), n)
        );
    }
    println!("peak memory after inserting: {}", peak_memory());

    let id = ns.id();
    let all = KeyInterval::all();
    let reps = 1000u64;
    let start = Instant::now();
    let mut fp = Fingerprint::ZERO;
    for _ in 0..reps {
        fp = store.fingerprint(&id, &all).unwrap();
    }
    println!(
        "fingerprint of the whole document: {}",
        per_op(start.elapsed(), reps)
    );

    // Random ranges between stored identifiers.
    let sample = store.entries(&id, &all, 0, usize::MAX).unwrap();
    let bounds: Vec<RecordIdentifier> = sample
        .iter()
        .step_by((sample.len() / 1000).max(1))
        .map(|e| e.id().clone())
        .collect();
    let mut x = 12345u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let intervals: Vec<KeyInterval> = (0..reps)
        .map(|_| {
            let a = &bounds[(next() % bounds.len() as u64) as usize];
            let b = &bounds[(next() % bounds.len() as u64) as usize];
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            KeyInterval {
                start: Some(a.clone()),
                end: Some(b.clone()),
            }
        })
        .collect();
    let start = Instant::now();
    for interval in &intervals {
        store.fingerprint(&id, interval).unwrap();
    }
    println!(
        "fingerprint of a random range: {}",
        per_op(start.elapsed(), reps)
    );
    // Narrow ranges, as deep in a reconciliation: neighbouring sample bounds.
    let narrow: Vec<KeyInterval> = (0..reps)
        .map(|_| {
            let i = (next() % (bounds.len() as u64 - 1)) as usize;
            KeyInterval {
                start: Some(bounds[i].clone()),
                end: Some(bounds[i + 1].clone()),
            }
        })
        .collect();
    let start = Instant::now();
    for interval in &narrow {
        store.fingerprint(&id, interval).unwrap();
    }
    println!(
        "fingerprint of a narrow range (~{} entries): {}",
        sample.len() / bounds.len(),
        per_op(start.elapsed(), reps)
    );
    let start = Instant::now();
    for interval in &intervals {
        store.count(&id, interval).unwrap();
    }
    println!("count of a random range: {}", per_op(start.elapsed(), reps));
    let start = Instant::now();
    for (i, interval) in intervals.iter().enumerate() {
        store.entries(&id, interval, i as u64 * 7, 1).unwrap();
    }
    println!(
        "entries(skip, 1) of a random range: {}",
        per_op(start.elapsed(), reps)
    );

    // What iroh-docs does for a fingerprint: read the range and hash every entry.
    let start = Instant::now();
    let scanned = sample
        .iter()
        .fold(Fingerprint::ZERO, |acc, e| acc ^ e.entry().fingerprint());
    let hash_only = start.elapsed();
    let start = Instant::now();
    let read = store.entries(&id, &all, 0, usize::MAX).unwrap();
    let read_took = start.elapsed();
    assert_eq!(scanned, fp);
    println!(
        "for comparison, a scan of the whole document: read {:.1} ms + hash {:.1} ms ({} entries)",
        read_took.as_secs_f64() * 1e3,
        hash_only.as_secs_f64() * 1e3,
        read.len()
    );
    drop(read);
    drop(sample);
    store.close().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "file size: {:.1} MB, {:.0} bytes per entry (as written)",
        size as f64 / 1e6,
        size as f64 / (n + 1000) as f64
    );
    let mut db = redb::Database::open(&path).unwrap();
    while db.compact().unwrap() {}
    drop(db);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "after compaction: {:.1} MB, {:.0} bytes per entry",
        size as f64 / 1e6,
        size as f64 / (n + 1000) as f64
    );
}
