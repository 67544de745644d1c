//! Workloads on one node: Ed25519 rates, local insert, ingest of remote entries, and the actor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sync_actor::{ActorConfig, OpenOptions, SyncHandle};
use sync_core::{Capability, InsertOutcome, SignedEntry, Store, ValidationConfig, now_micros};
use sync_store_redb::RedbStore;

use crate::data::{self, authors, content, key, make_entry, namespace};
use crate::loopback::reset_peak;
use crate::report::{Report, Target, table};
use crate::stats::{Timings, fmt_bytes, fmt_rate};
use crate::sync::status_kb;
use crate::{Ctx, progress};

/// Ed25519 verification rates of this machine, in signatures per second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    pub(crate) single: f64,
    pub(crate) batch_all_cores: f64,
    /// docsync's strict batch verifier ([`SignedEntry::verify_batch`]) on every core.
    pub(crate) ours_all_cores: f64,
    pub(crate) cores: usize,
}

/// Verifies `sample` with [`SignedEntry::verify_batch`] in batches of [`BATCH`] entries on
/// every core, `rounds` times; returns signatures.
fn ours_batch_verify(sample: &[SignedEntry], rounds: usize, cores: usize) -> Result<u64> {
    let refs: Vec<&SignedEntry> = sample.iter().collect();
    let threads = std::num::NonZeroUsize::new(cores).context("no cores")?;
    let mut n = 0;
    for _ in 0..rounds {
        for chunk in refs.chunks(BATCH) {
            for verdict in SignedEntry::verify_batch(chunk, threads) {
                verdict?;
            }
            n += 2 * chunk.len() as u64;
        }
    }
    Ok(n)
}

/// Entries per batch: about what one 64 KiB sync message carries, the unit our ingest
/// verifies together.
const BATCH: usize = 256;

/// Messages, signatures and keys of a batch verification.
type BatchInputs = (
    Vec<Vec<u8>>,
    Vec<ed25519_dalek::Signature>,
    Vec<ed25519_dalek::VerifyingKey>,
);

fn batch_inputs(entries: &[SignedEntry]) -> Result<BatchInputs> {
    let mut msgs = Vec::new();
    let mut sigs = Vec::new();
    let mut keys = Vec::new();
    for e in entries {
        let msg = e.entry().signed_bytes();
        let ns = ed25519_dalek::VerifyingKey::from_bytes(e.namespace().as_bytes())?;
        let au = ed25519_dalek::VerifyingKey::from_bytes(e.author().as_bytes())?;
        msgs.push(msg.clone());
        sigs.push(ed25519_dalek::Signature::from_bytes(
            e.signature().namespace(),
        ));
        keys.push(ns);
        msgs.push(msg);
        sigs.push(ed25519_dalek::Signature::from_bytes(e.signature().author()));
        keys.push(au);
    }
    Ok((msgs, sigs, keys))
}

/// Batch-verifies `sample` in batches of [`BATCH`] entries, `rounds` times; returns signatures.
fn batch_verify(sample: &[SignedEntry], rounds: usize) -> Result<u64> {
    let (msgs, sigs, keys) = batch_inputs(sample)?;
    let mut n = 0;
    for _ in 0..rounds {
        for ((m, s), k) in msgs
            .chunks(2 * BATCH)
            .zip(sigs.chunks(2 * BATCH))
            .zip(keys.chunks(2 * BATCH))
        {
            let m: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&m, s, k).map_err(|e| anyhow!("batch: {e}"))?;
            n += s.len() as u64;
        }
    }
    Ok(n)
}

pub(crate) fn ed25519_rates(
    ctx: &Ctx,
    entries: &[SignedEntry],
    report: &mut Report,
) -> Result<Rates> {
    progress("ed25519 verification rates");
    let sample = &entries[..entries.len().min(2048)];
    let rounds = if ctx.plan.quick { 1 } else { 4 };
    // Warm-up, then single signatures (strict, as an entry is verified).
    sample.iter().take(64).try_for_each(|e| e.verify())?;
    let start = Instant::now();
    for _ in 0..rounds {
        for e in sample {
            e.verify()?;
        }
    }
    let single = (2 * sample.len() * rounds) as f64 / start.elapsed().as_secs_f64();
    batch_verify(&sample[..BATCH.min(sample.len())], 1)?;
    let start = Instant::now();
    let n = batch_verify(sample, rounds)?;
    let batch_one_core = n as f64 / start.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let total = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                if let Ok(n) = batch_verify(sample, rounds) {
                    total.fetch_add(n, Ordering::Relaxed);
                }
            });
        }
    });
    let batch_all_cores = total.into_inner() as f64 / start.elapsed().as_secs_f64();
    ours_batch_verify(&sample[..BATCH.min(sample.len())], 1, cores)?;
    let start = Instant::now();
    let n = ours_batch_verify(sample, rounds, cores)?;
    let ours_all_cores = n as f64 / start.elapsed().as_secs_f64();
    let rates = Rates {
        single,
        batch_all_cores,
        ours_all_cores,
        cores,
    };
    report.section(
        "Ed25519 verification on this machine",
        &format!(
            "ed25519-dalek 3, {} signatures ({} entries × 2), measured in this run. An entry \
             carries two signatures, so the entry rate is half the signature rate. Batches of \
             {BATCH} entries ({} signatures). `verify_batch` of ed25519-dalek is the limit the \
             ingest target is measured against; docsync's `SignedEntry::verify_batch` gives \
             exactly the verdicts of strict one-by-one verification (ed25519-dalek's batch does \
             not: it can accept a signature whose R has a torsion component), which costs a fixed \
             64 torsion rounds per batch.\n\n{}",
            2 * sample.len() * rounds,
            sample.len(),
            2 * BATCH,
            table(
                &["mode", "signatures/s", "entries/s"],
                vec![
                    vec![
                        "single, strict (1 core)".into(),
                        fmt_rate(single),
                        fmt_rate(single / 2.0)
                    ],
                    vec![
                        "batch (1 core)".into(),
                        fmt_rate(batch_one_core),
                        fmt_rate(batch_one_core / 2.0)
                    ],
                    vec![
                        format!("batch ({cores} threads)"),
                        fmt_rate(batch_all_cores),
                        fmt_rate(batch_all_cores / 2.0)
                    ],
                    vec![
                        format!("docsync strict batch ({cores} threads)"),
                        fmt_rate(ours_all_cores),
                        fmt_rate(ours_all_cores / 2.0)
                    ],
                ]
            )
        ),
    );
    Ok(rates)
}

/// Runs `f` `warmup + reps` times (fewer if the case budget runs out), timing each.
pub(crate) fn repeat(
    ctx: &Ctx,
    reps: usize,
    mut f: impl FnMut(usize) -> Result<Duration>,
) -> Result<Timings> {
    let mut t = Timings::default();
    let spent = Instant::now();
    for i in 0..ctx.plan.warmup + reps {
        let d = f(i)?;
        if i >= ctx.plan.warmup {
            t.push(d);
        }
        if spent.elapsed() > ctx.plan.case_budget && !t.runs.is_empty() {
            break;
        }
    }
    Ok(t)
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Ours, signing on the inserting thread (as the actor does).
fn ours_insert_serial(path: &std::path::Path, n: u64) -> Result<Duration> {
    let ns = namespace();
    let authors = authors();
    let mut store = RedbStore::persistent(path)?;
    store.import_namespace(Capability::Write(ns.clone()))?;
    store.flush()?;
    let start = Instant::now();
    for i in 0..n {
        let e = make_entry(&ns, &authors, i);
        if store.insert(e)? == InsertOutcome::NotInserted {
            bail!("entry {i} not inserted");
        }
    }
    store.flush()?;
    let d = start.elapsed();
    store.close()?;
    Ok(d)
}

/// Ours, signing on every core while this thread inserts.
fn ours_insert_parallel(path: &std::path::Path, n: u64) -> Result<Duration> {
    let ns = namespace();
    let authors = authors();
    let mut store = RedbStore::persistent(path)?;
    store.import_namespace(Capability::Write(ns.clone()))?;
    store.flush()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    const CHUNK: u64 = 512;
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let result: Result<()> = std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Vec<SignedEntry>>(2 * cores);
        for _ in 0..cores {
            let tx = tx.clone();
            let (ns, authors, next) = (&ns, &authors, &next);
            s.spawn(move || {
                loop {
                    let lo = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if lo >= n {
                        break;
                    }
                    let hi = (lo + CHUNK).min(n);
                    let v = (lo..hi).map(|i| make_entry(ns, authors, i)).collect();
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut count = 0;
        for chunk in rx {
            for e in chunk {
                store.insert(e)?;
                count += 1;
            }
        }
        if count != n {
            bail!("inserted {count} of {n}");
        }
        Ok(())
    });
    result?;
    store.flush()?;
    let d = start.elapsed();
    store.close()?;
    Ok(d)
}

/// The reference: `Replica::insert` (signs, validates, stores), then `flush`.
fn theirs_insert(ctx: &Ctx, path: &std::path::Path, n: u64) -> Result<Duration> {
    let mut store = iroh_docs::store::Store::persistent(path)?;
    let secret = iroh_docs::NamespaceSecret::from_bytes(&namespace().to_bytes());
    let authors: Vec<iroh_docs::Author> = authors()
        .iter()
        .map(|a| iroh_docs::Author::from_bytes(&a.to_bytes()))
        .collect();
    let id = secret.id();
    {
        let _ = store.new_replica(secret)?;
    }
    store.close_replica(id);
    store.flush()?;
    let start = Instant::now();
    {
        let mut replica = store.open_replica(&id)?;
        for i in 0..n {
            let (hash, len) = content(i);
            let author = &authors[(i % 4) as usize];
            ctx.rt.block_on(replica.insert(
                key(i),
                author,
                iroh_blobs_hash(hash.as_bytes()),
                len,
            ))?;
        }
    }
    store.close_replica(id);
    store.flush()?;
    Ok(start.elapsed())
}

fn iroh_blobs_hash(bytes: &[u8; 32]) -> iroh_blobs::Hash {
    iroh_blobs::Hash::from_bytes(*bytes)
}

pub(crate) fn local_insert(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let n = ctx.plan.insert_n;
    let reps = ctx.plan.reps.min(3);
    let dir = ctx.work.path();
    let mut sizes = [0u64; 3];
    // Peak resident memory added by each run: the high-water mark is reset just before it and
    // read just after, less what the process held before (it holds the cached entries).
    let mut peaks = [0u64; 3];
    let measured =
        |peak: &mut u64, run: &mut dyn FnMut() -> Result<Duration>| -> Result<Duration> {
            let before = status_kb("VmRSS:");
            let reset = reset_peak();
            let d = run()?;
            if reset {
                *peak = (*peak).max(status_kb("VmHWM:").saturating_sub(before));
            }
            Ok(d)
        };
    progress(&format!("local insert of {n} entries: docsync, one thread"));
    let serial = crate::local::repeat(ctx, reps, |i| {
        let p = dir.join(format!("li-serial-{i}.redb"));
        let d = measured(&mut peaks[0], &mut || ours_insert_serial(&p, n))?;
        sizes[0] = file_size(&p);
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    progress(&format!(
        "local insert of {n} entries: docsync, signing on every core"
    ));
    let parallel = repeat(ctx, reps, |i| {
        let p = dir.join(format!("li-par-{i}.redb"));
        let d = measured(&mut peaks[1], &mut || ours_insert_parallel(&p, n))?;
        sizes[1] = file_size(&p);
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    progress(&format!("local insert of {n} entries: iroh-docs"));
    let theirs = repeat(ctx, reps, |i| {
        let p = dir.join(format!("li-theirs-{i}.redb"));
        let d = measured(&mut peaks[2], &mut || theirs_insert(ctx, &p, n))?;
        sizes[2] = file_size(&p);
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    let rate = |t: &Timings| t.median().map_or(0.0, |m| n as f64 / m.as_secs_f64());
    let (rs, rp, rt) = (rate(&serial), rate(&parallel), rate(&theirs));
    let row = |name: &str, t: &Timings, r: f64, size: u64, peak_kb: u64| {
        vec![
            name.to_string(),
            t.describe(),
            fmt_rate(r),
            format!("{:.2}×", r / rt),
            format!("{} B", size / n.max(1)),
            fmt_bytes(peak_kb * 1024),
        ]
    };
    report.section(
        &format!("Local insert: {n} entries into the file store, flushed"),
        &format!(
            "Each entry is created, signed by namespace and author (two Ed25519 signatures), \
             validated and stored; the store is flushed (committed to disk) at the end. Keys \
             are 19–24 byte paths in 997 directories, 4 authors. docsync: `RedbStore::persistent`; \
             iroh-docs: `Store::persistent` + `Replica::insert`. The time includes signing. The \
             \"every core\" row signs on {} threads feeding the inserting thread (a library user \
             can do this; `SyncHandle::insert_local` signs on the actor's signing threads). \"Peak memory\" \
             is the largest rise of the process's resident memory during one run (VmHWM, reset \
             just before the run, less the resident size at its start).\n\n{}",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            table(
                &[
                    "implementation",
                    "median time",
                    "entries/s",
                    "vs iroh-docs",
                    "file size / entry",
                    "peak memory"
                ],
                vec![
                    row(
                        "docsync, signing on the inserting thread",
                        &serial,
                        rs,
                        sizes[0],
                        peaks[0]
                    ),
                    row(
                        "docsync, signing on every core",
                        &parallel,
                        rp,
                        sizes[1],
                        peaks[1]
                    ),
                    row("iroh-docs 0.101", &theirs, rt, sizes[2], peaks[2]),
                ]
            )
        ),
    );
    let best = rs.max(rp) / rt;
    report.target(Target {
        name: "Local insert: at least 2× iroh-docs".into(),
        measured: format!(
            "{:.2}× with signing on every core, {:.2}× signing on one thread",
            rp / rt,
            rs / rt
        ),
        met: Some(best >= 2.0),
    });
    Ok(())
}

fn ours_ingest(path: &std::path::Path, entries: &[SignedEntry]) -> Result<Duration> {
    let ns = namespace();
    let mut store = RedbStore::persistent(path)?;
    store.import_namespace(Capability::Read(ns.id()))?;
    store.flush()?;
    let config = ValidationConfig::default();
    let threads = std::thread::available_parallelism().context("no cores")?;
    let refs: Vec<&SignedEntry> = entries.iter().collect();
    let start = Instant::now();
    let now = now_micros();
    for chunk in refs.chunks(BATCH) {
        let verdicts = SignedEntry::validate_batch(chunk, ns.id(), now, &config, threads);
        for (e, verdict) in chunk.iter().zip(verdicts) {
            verdict?;
            store.insert((*e).clone())?;
        }
    }
    store.flush()?;
    let d = start.elapsed();
    store.close()?;
    Ok(d)
}

fn theirs_ingest(ctx: &Ctx, path: &std::path::Path, entries: &[SignedEntry]) -> Result<Duration> {
    let mut store = iroh_docs::store::Store::persistent(path)?;
    let id = iroh_docs::NamespaceId::from(namespace().id().as_bytes());
    store.import_namespace(iroh_docs::Capability::Read(id))?;
    store.flush()?;
    // Converting to their type is postcard decoding, not part of ingesting.
    let theirs: Vec<iroh_docs::SignedEntry> =
        entries.iter().map(data::to_theirs).collect::<Result<_>>()?;
    let start = Instant::now();
    {
        let mut replica = store.open_replica(&id)?;
        for e in theirs {
            ctx.rt.block_on(replica.insert_remote_entry(
                e,
                [7; 32],
                iroh_docs::ContentStatus::Missing,
            ))?;
        }
    }
    store.close_replica(id);
    store.flush()?;
    Ok(start.elapsed())
}

pub(crate) fn ingest(
    ctx: &Ctx,
    entries: &[SignedEntry],
    rates: &Rates,
    report: &mut Report,
) -> Result<()> {
    let n = ctx.plan.insert_n;
    let entries = &entries[..n as usize];
    let reps = ctx.plan.reps.min(3);
    let dir = ctx.work.path();
    progress(&format!("ingest of {n} remote entries: docsync"));
    let ours = repeat(ctx, reps, |i| {
        let p = dir.join(format!("ingest-ours-{i}.redb"));
        let d = ours_ingest(&p, entries)?;
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    progress(&format!("ingest of {n} remote entries: iroh-docs"));
    let theirs = repeat(ctx, reps, |i| {
        let p = dir.join(format!("ingest-theirs-{i}.redb"));
        let d = theirs_ingest(ctx, &p, entries)?;
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    let rate = |t: &Timings| t.median().map_or(0.0, |m| n as f64 / m.as_secs_f64());
    let (ro, rt) = (rate(&ours), rate(&theirs));
    // Our ingest verifies on every core: the limit is the all-core batch rate.
    let limit = rates.batch_all_cores / 2.0;
    report.section(
        &format!("Ingest: {n} remote entries into the file store, flushed"),
        &format!(
            "Entries that arrive from a peer, {BATCH} at a time (about one 64 KiB sync message): \
             every check, both signatures verified strictly, stored, flushed at the end. docsync: \
             `SignedEntry::validate_batch` on all {} cores (what the actor does with each \
             incoming message), then `RedbStore::insert` on one thread; iroh-docs: \
             `Replica::insert_remote_entry` per entry (its only path; it verifies one by one). \
             The limit is this machine's batch-verification rate on every core (ed25519-dalek \
             `verify_batch`: {} entries/s; docsync's strict batch verifier alone: {} entries/s; \
             one core verifying each signature alone: {} entries/s).\n\n{}",
            rates.cores,
            fmt_rate(limit),
            fmt_rate(rates.ours_all_cores / 2.0),
            fmt_rate(rates.single / 2.0),
            table(
                &[
                    "implementation",
                    "median time",
                    "entries/s",
                    "vs iroh-docs",
                    "of the batch limit (all cores)"
                ],
                vec![
                    vec![
                        "docsync".into(),
                        ours.describe(),
                        fmt_rate(ro),
                        format!("{:.2}×", ro / rt),
                        format!("{:.0}%", 100.0 * ro / limit),
                    ],
                    vec![
                        "iroh-docs 0.101".into(),
                        theirs.describe(),
                        fmt_rate(rt),
                        "1×".into(),
                        format!("{:.0}%", 100.0 * rt / limit),
                    ],
                ]
            )
        ),
    );
    report.target(Target {
        name: "Ingest: at least 80% of the batch-verification limit of the cores in use".into(),
        measured: format!(
            "{:.0}% ({} of {} entries/s, all cores; {:.2}× iroh-docs)",
            100.0 * ro / limit,
            fmt_rate(ro),
            fmt_rate(limit),
            ro / rt
        ),
        met: Some(ro >= 0.8 * limit),
    });
    report.target(Target {
        name: "Ingest (issue 4): at least 3× iroh-docs".into(),
        measured: format!("{:.2}×", ro / rt),
        met: Some(ro >= 3.0 * rt),
    });
    Ok(())
}

/// Local inserts through `SyncHandle` from several tasks against direct inserts into the same
/// kind of store on one thread, which signs each entry itself.
pub(crate) fn actor(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let n = ctx.plan.insert_n;
    let tasks = 4u64;
    let reps = ctx.plan.reps.min(3);
    let dir = ctx.work.path();
    progress(&format!("actor: {n} local inserts, direct"));
    let direct = repeat(ctx, reps, |i| {
        let p = dir.join(format!("actor-direct-{i}.redb"));
        let d = ours_insert_serial(&p, n)?;
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    progress(&format!(
        "actor: {n} local inserts through SyncHandle from {tasks} tasks"
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let through = repeat(ctx, reps, |i| {
        let p = dir.join(format!("actor-handle-{i}.redb"));
        let store = RedbStore::persistent(&p)?;
        let d = rt.block_on(async {
            let handle = SyncHandle::spawn(store, ActorConfig::default());
            let ns = namespace();
            handle
                .import_namespace(Capability::Write(ns.clone()))
                .await?;
            let mut ids = Vec::new();
            for a in authors() {
                ids.push(handle.import_author(a).await?);
            }
            let guard = handle.open(ns.id(), OpenOptions::default()).await?;
            handle.flush().await?;
            let start = Instant::now();
            let mut joins = Vec::new();
            for t in 0..tasks {
                let handle = handle.clone();
                let ids = ids.clone();
                let id = ns.id();
                joins.push(tokio::spawn(async move {
                    let mut i = t;
                    while i < n {
                        let (hash, len) = content(i);
                        handle
                            .insert_local(id, ids[(i % 4) as usize], key(i), hash, len)
                            .await?;
                        i += tasks;
                    }
                    Ok::<_, anyhow::Error>(())
                }));
            }
            for j in joins {
                j.await.context("insert task")??;
            }
            handle.flush().await?;
            let d = start.elapsed();
            guard.close().await?;
            let store: RedbStore = handle.shutdown().await?;
            store.close()?;
            Ok::<_, anyhow::Error>(d)
        })?;
        std::fs::remove_file(&p)?;
        Ok(d)
    })?;
    let rate = |t: &Timings| t.median().map_or(0.0, |m| n as f64 / m.as_secs_f64());
    let (rd, rh) = (rate(&direct), rate(&through));
    report.section(
        &format!("Actor: {n} local inserts through `SyncHandle`"),
        &format!(
            "The same file store (`RedbStore::persistent`), the same entries (signed where they \
             are inserted), flushed at the end. Direct: one thread calls `SignedEntry::create` \
             and `Store::insert`. Through the handle: {tasks} tokio tasks on a 2-thread runtime \
             call `SyncHandle::insert_local` (default `ActorConfig`: {} signing threads, \
             which the actor thread helps when no request waits; the actor thread stores).\n\n{}",
            ActorConfig::default().verify_threads,
            table(
                &["path", "median time", "entries/s", "of direct"],
                vec![
                    vec![
                        "direct store inserts (1 thread)".into(),
                        direct.describe(),
                        fmt_rate(rd),
                        "100%".into()
                    ],
                    vec![
                        format!("SyncHandle::insert_local, {tasks} tasks"),
                        through.describe(),
                        fmt_rate(rh),
                        format!("{:.0}%", 100.0 * rh / rd)
                    ],
                ]
            )
        ),
    );
    report.target(Target {
        name: "Actor (issue 5): inserts through the handle at least 80% of direct".into(),
        measured: format!("{:.0}%", 100.0 * rh / rd),
        met: Some(rh >= 0.8 * rd),
    });
    Ok(())
}
