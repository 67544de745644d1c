//! The benchmark's entries: deterministic, signed once, cached on disk, shared by every
//! implementation (the reference gets them through their postcard encoding).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use sync_core::encoding::{Decode, DecodeLimits, Encode, Reader};
use sync_core::{Author, ContentHash, NamespaceSecret, Record, SignedEntry};

/// The document every workload writes to.
pub(crate) fn namespace() -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[0x5e; 32])
}

/// The four authors that take turns.
pub(crate) fn authors() -> Vec<Author> {
    (1..=4u8).map(|s| Author::from_bytes(&[s; 32])).collect()
}

/// A fixed time in the past (2023-11-14), so that cached entries stay valid (no entry is ever
/// "too far in the future") and runs are reproducible.
pub(crate) const BASE_TIMESTAMP: u64 = 1_700_000_000_000_000;

/// The key of entry `i`: path-like, 19 to 24 bytes, no key a prefix of another; consecutive
/// entries land in different directories, so inserts are not in key order.
pub(crate) fn key(i: u64) -> Vec<u8> {
    format!("dir{:03}/file{:010}", i % 997, i).into_bytes()
}

/// Content hash and length of entry `i` (the content itself is never stored).
pub(crate) fn content(i: u64) -> (ContentHash, u64) {
    (ContentHash::of(i.to_le_bytes()), 100 + i % 900)
}

/// Entry `i`, signed by the namespace and author `i % 4`.
pub(crate) fn make_entry(ns: &NamespaceSecret, authors: &[Author], i: u64) -> SignedEntry {
    make_entry_at(ns, authors, i, BASE_TIMESTAMP + i)
}

/// Entry `i` with this timestamp.
fn make_entry_at(ns: &NamespaceSecret, authors: &[Author], i: u64, timestamp: u64) -> SignedEntry {
    let (hash, len) = content(i);
    let author = &authors[(i % authors.len() as u64) as usize];
    SignedEntry::create(ns, author, key(i), Record::new(hash, len, timestamp))
}

/// Index of the first "difference" entry: the entries a side has and the other lacks come from
/// an index range of their own, so they never collide with the shared ones.
pub(crate) const DIFF_BASE: u64 = 1 << 40;

/// Signs entries `start..start + count` on every core.
pub(crate) fn sign_range(start: u64, count: u64) -> Vec<SignedEntry> {
    sign_range_at(start, count, |i| BASE_TIMESTAMP + i)
}

/// [`sign_range`] with the timestamp of entry `i` given by `timestamp(i)`.
fn sign_range_at(
    start: u64,
    count: u64,
    timestamp: impl Fn(u64) -> u64 + Sync,
) -> Vec<SignedEntry> {
    let ns = namespace();
    let authors = authors();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    const CHUNK: usize = 4096;
    let chunks = (count as usize).div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Vec<SignedEntry>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    let lo = start + (c * CHUNK) as u64;
                    let hi = (lo + CHUNK as u64).min(start + count);
                    let v: Vec<SignedEntry> = (lo..hi)
                        .map(|i| make_entry_at(&ns, &authors, i, timestamp(i)))
                        .collect();
                    if let Ok(mut d) = done.lock() {
                        d.push((c, v));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(c, _)| *c);
    done.into_iter().flat_map(|(_, v)| v).collect()
}

/// Entries `0..n`, from the cache file if a previous run left one (the generator is
/// deterministic, so the file is only a shortcut), otherwise signed now and cached.
pub(crate) fn entries(cache: &Path, n: u64) -> Result<Vec<SignedEntry>> {
    let path = cache_file(cache, n);
    if path.exists() {
        match read_entries(&path, n) {
            Ok(v) => return Ok(v),
            Err(e) => eprintln!("bench: ignoring cache {}: {e:#}", path.display()),
        }
    }
    // A larger cached file holds these as a prefix.
    if let Some(bigger) = larger_cache(cache, n)
        && let Ok(mut v) = read_entries(&bigger.1, bigger.0)
    {
        v.truncate(n as usize);
        return Ok(v);
    }
    let v = sign_range(0, n);
    write_entries(&path, &v)?;
    Ok(v)
}

fn cache_file(cache: &Path, n: u64) -> PathBuf {
    cache.join(format!("entries-v1-{n}.bin"))
}

fn larger_cache(cache: &Path, n: u64) -> Option<(u64, PathBuf)> {
    let mut best = None;
    for e in fs::read_dir(cache).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(m) = name
            .strip_prefix("entries-v1-")
            .and_then(|r| r.strip_suffix(".bin"))
            .and_then(|r| r.parse::<u64>().ok())
            && m > n
            && best.as_ref().is_none_or(|(b, _)| m < *b)
        {
            best = Some((m, e.path()));
        }
    }
    best
}

fn write_entries(path: &Path, entries: &[SignedEntry]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = BufWriter::new(fs::File::create(&tmp)?);
    let mut buf = Vec::new();
    for e in entries {
        buf.clear();
        e.encode(&mut buf);
        w.write_all(&(buf.len() as u32).to_le_bytes())?;
        w.write_all(&buf)?;
    }
    w.flush()?;
    drop(w);
    fs::rename(&tmp, path)?;
    Ok(())
}

fn read_entries(path: &Path, n: u64) -> Result<Vec<SignedEntry>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut v = Vec::with_capacity(n as usize);
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes: [u8; 4] = bytes
            .get(at..at + 4)
            .context("truncated cache")?
            .try_into()?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let body = bytes.get(at + 4..at + 4 + len).context("truncated cache")?;
        let mut r = Reader::new(body, DecodeLimits::default());
        v.push(SignedEntry::decode(&mut r)?);
        at += 4 + len;
    }
    if v.len() as u64 != n {
        bail!("cache holds {} entries, expected {n}", v.len());
    }
    // Spot check: the cache must be what the generator makes.
    let ns = namespace();
    let authors = authors();
    for i in [0, n / 2, n.saturating_sub(1)] {
        if let Some(e) = v.get(i as usize)
            && *e != make_entry(&ns, &authors, i)
        {
            bail!("cache entry {i} differs from the generator");
        }
    }
    Ok(v)
}

/// Our entry as the reference's type (through the shared postcard encoding).
pub(crate) fn to_theirs(e: &SignedEntry) -> Result<iroh_docs::SignedEntry> {
    Ok(postcard::from_bytes(&e.to_vec())?)
}

/// The index of the first difference entry of repetition `r` for `d` differences.
fn diff_start(d: u64, r: u64) -> u64 {
    DIFF_BASE + d * (1 << 20) + r * d
}

/// The difference sets of repetition `rep` for `d` differences: `d / 2` entries for side A
/// only and the rest for side B only, signed now (a few thousand at most), never reused
/// across repetitions, so a repetition can start from the converged state of the one before.
pub(crate) fn diff_sets(d: u64, reps: usize) -> Vec<(Vec<SignedEntry>, Vec<SignedEntry>)> {
    (0..reps as u64)
        .map(|r| {
            let mut all = sign_range(diff_start(d, r), d);
            let b = all.split_off((d / 2) as usize);
            (all, b)
        })
        .collect()
}

/// [`diff_sets`] whose entries' timestamps are spread evenly over those of the shared entries
/// `0..n` instead of all being newer. The keys are the same; only an order by time, such as
/// negentropy's, sees a difference: the differences are scattered there too, not gathered at
/// the end.
pub(crate) fn diff_sets_spread(
    d: u64,
    reps: usize,
    n: u64,
) -> Vec<(Vec<SignedEntry>, Vec<SignedEntry>)> {
    (0..reps as u64)
        .map(|r| {
            let start = diff_start(d, r);
            let all = sign_range_at(start, d, |i| {
                let j = i - start;
                BASE_TIMESTAMP + j * n / d.max(1) + n / (2 * d.max(1))
            });
            // Alternating, so that both sides' differences cover the whole span.
            let (a, b): (Vec<_>, Vec<_>) =
                all.into_iter().enumerate().partition(|(j, _)| j % 2 == 0);
            (
                a.into_iter().map(|(_, e)| e).collect(),
                b.into_iter().map(|(_, e)| e).collect(),
            )
        })
        .collect()
}
