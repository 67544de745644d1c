//! Content: the values of entries, not just the entries. Three workloads, each run side by side
//! with iroh-docs 0.101 in the same run:
//!
//! - **over loopback**: a writer node holds N values, a second node syncs the document once and
//!   the time runs until every value is readable there (docsync `Node::memory()` pair, also with
//!   a persistent reader; an iroh-docs pair in memory; and a bare iroh-blobs transfer of the same
//!   bytes, one `GetMany` request between two `MemStore`s, as the floor);
//! - **writes**: `Doc::set` of small values awaited one by one and from 8 concurrent writers, on
//!   our memory and persistent nodes, against iroh-docs' `set_bytes` on its memory and file
//!   stores;
//! - **import**: `Doc::set_file` of a large file on a persistent node against hashing the file
//!   with BLAKE3 plus copying it once, each run in a child process of its own
//!   (`bench --child content import|floor ...`) so that its peak RSS is its own.
//!
//! Networked cases run their nodes in this process on a fresh multi-threaded runtime per run (2
//! worker threads, the cores of the benchmark machine), inside the loopback-only network
//! namespace `cargo xtask bench` puts the program in. Bytes on the wire are read from the
//! loopback interface's counters (`/proc/net/dev`), which in that namespace count nothing but
//! the run's own packets.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use docsync::{Capability, ContentHash, Node, Query};
use interop_tests::nodes::{RefNode, counted_endpoint};
use iroh::protocol::Router;
use iroh_docs::engine::LiveEvent;
use n0_future::StreamExt as _;

use crate::loopback::reset_peak;
use crate::report::{Report, Target, table};
use crate::stats::{Timings, fmt_bytes, fmt_duration, fmt_factor, fmt_rate};
use crate::sync::{mib, status_kb};
use crate::{Ctx, progress};

/// How long one transfer may take before the benchmark gives up.
const WAIT: Duration = Duration::from_secs(600);

/// How long the reader waits for an event before it checks the reference's blob store.
const POLL: Duration = Duration::from_millis(200);

/// The least time between two checks of the reference's whole missing set.
const SWEEP: Duration = Duration::from_secs(1);

/// The reference gives up on a value whose download failed (it retries only when a neighbor
/// announces the content again): once no value has become complete for this long, the run
/// stops waiting and counts as incomplete.
const STALL: Duration = Duration::from_secs(30);

/// The size of each small write (workload b).
const WRITE_SIZE: usize = 100;

/// Concurrent writers of workload b's second mode.
const WRITERS: u64 = 8;

/// The sizes of the three workloads in one mode.
#[derive(Debug, Clone)]
pub(crate) struct ContentPlan {
    /// (values, bytes per value) of the loopback transfers.
    pub(crate) transfers: Vec<(u64, usize)>,
    /// Writes per run of the write workload.
    pub(crate) writes: u64,
    /// The size of the imported file.
    pub(crate) import_bytes: u64,
}

impl ContentPlan {
    /// The sizes of the targets: 10 000 × 1 KiB and 100 × 1 MiB, 3000 writes, a 1 GiB file.
    pub(crate) fn full() -> Self {
        Self {
            transfers: vec![(10_000, 1024), (100, 1024 * 1024)],
            writes: 3_000,
            import_bytes: 1 << 30,
        }
    }

    /// `--quick`: the same shapes, small.
    pub(crate) fn quick() -> Self {
        Self {
            transfers: vec![(1_000, 1024), (10, 1024 * 1024)],
            writes: 200,
            import_bytes: 64 << 20,
        }
    }
}

/// Runs every content workload and reports it.
pub(crate) fn content(ctx: &Ctx, report: &mut Report) -> Result<()> {
    transfers(ctx, report)?;
    writes(ctx, report)?;
    import(ctx, report)?;
    Ok(())
}

// --- shared helpers ---

/// Runs `fut` on a fresh multi-threaded runtime (2 workers), which is shut down afterwards so
/// that nothing a run leaves behind competes with the next one.
fn on_fresh_runtime<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = rt.block_on(fut);
    rt.shutdown_timeout(Duration::from_secs(2));
    out
}

/// Bytes the loopback interface has sent so far (every packet of the namespace, link, IP and
/// UDP headers included; on loopback each packet is sent once and received once).
fn lo_bytes() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/net/dev")?;
    for line in text.lines() {
        if let Some((name, counters)) = line.split_once(':')
            && name.trim() == "lo"
        {
            let fields: Vec<&str> = counters.split_whitespace().collect();
            return Ok(fields
                .get(8)
                .context("/proc/net/dev: short lo line")?
                .parse()?);
        }
    }
    bail!("/proc/net/dev lists no lo interface")
}

/// A cheap generator (splitmix64) for values that differ from key to key and are not zeros.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            chunk.copy_from_slice(&x[..chunk.len()]);
        }
    }
}

/// `len` pseudo-random bytes seeded with `seed`.
fn value(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    SplitMix(seed ^ 0x0C0F_FEE0_D15E_A5E5).fill(&mut out);
    out
}

fn their_hash(hash: &ContentHash) -> iroh_blobs::Hash {
    iroh_blobs::Hash::from_bytes(*hash.as_bytes())
}

/// The values one transfer moves, with their hashes.
struct Values {
    items: Vec<(String, Vec<u8>)>,
    hashes: Vec<ContentHash>,
    bytes: u64,
}

impl Values {
    fn new(n: u64, size: usize) -> Self {
        let items: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| (format!("k/{i:06}"), value(i | ((size as u64) << 32), size)))
            .collect();
        let hashes = items.iter().map(|(_, v)| ContentHash::of(v)).collect();
        Self {
            bytes: n * size as u64,
            items,
            hashes,
        }
    }

    fn n(&self) -> u64 {
        self.items.len() as u64
    }
}

// --- workload a: two nodes over loopback ---

/// What one transfer run measured.
#[derive(Debug, Clone, Default)]
struct TransferRun {
    time: Duration,
    /// Bytes of every packet on the loopback interface during the run.
    lo: u64,
    /// UDP bytes of every connection of the providing node, as its endpoint counted them
    /// (where the endpoint could be built with the counting hook).
    udp: Option<u64>,
    /// docsync: sync frame bytes of the session (both directions), from the reader's metrics.
    sync_frames: Option<u64>,
    /// Set when the run stopped waiting before every value was complete: how many were.
    incomplete: Option<u64>,
    /// When the sync session was done (docsync: `sync_with` returned; iroh-docs: the reader's
    /// first `SyncFinished` event).
    sync: Option<Duration>,
    /// Things worth a note (each once per series).
    notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// Two `Node::memory()` nodes.
    Ours,
    /// Writer `Node::memory()`, reader `Node::persistent(dir)`.
    OursDisk,
    /// Two iroh-docs nodes (`RefNode`, in memory).
    Theirs,
    /// Two iroh-blobs `MemStore`s, one `GetMany` request.
    Bare,
}

impl Transfer {
    const ALL: [Self; 4] = [Self::Ours, Self::OursDisk, Self::Theirs, Self::Bare];

    fn label(self) -> &'static str {
        match self {
            Self::Ours => "docsync (memory → memory)",
            Self::OursDisk => "docsync (memory → persistent)",
            Self::Theirs => "iroh-docs 0.101 (memory → memory)",
            Self::Bare => "bare iroh-blobs (MemStore → MemStore, GetMany)",
        }
    }
}

async fn ours_transfer(v: &Values, reader_dir: Option<&Path>) -> Result<TransferRun> {
    let a = Node::memory().spawn().await?;
    let b = match reader_dir {
        Some(dir) => Node::persistent(dir).spawn().await?,
        None => Node::memory().spawn().await?,
    };
    let doc_a = a.create_doc().await?;
    let author = a.default_author().await?;
    for (key, value) in &v.items {
        doc_a.set(author, key.clone(), value.clone()).await?;
    }
    let doc_b = b.import_doc(Capability::Read(doc_a.id())).await?;
    let mut run = TransferRun::default();
    let lo = lo_bytes()?;
    let since = Instant::now();
    let finished = doc_b.sync_with(a.addr()).await?;
    run.sync = Some(since.elapsed());
    let settled = b.content().settled(doc_b.id()).await?;
    let store = b.content().content();
    let mut missing: Vec<ContentHash> = v
        .hashes
        .iter()
        .filter(|h| !store.is_complete(h))
        .copied()
        .collect();
    let early = missing.len();
    while !missing.is_empty() {
        ensure!(
            since.elapsed() < WAIT,
            "docsync: {} of {} values not complete after {WAIT:?} ({:?})",
            missing.len(),
            v.n(),
            b.content().downloads().status().await
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        missing.retain(|h| !store.is_complete(h));
    }
    run.time = since.elapsed();
    run.lo = lo_bytes()? - lo;
    let net = b.net_metrics();
    run.sync_frames = Some(net.bytes_sent + net.bytes_received);
    ensure!(
        finished.outcome.entries_inserted == v.n(),
        "docsync: the reader took in {} entries, expected {}",
        finished.outcome.entries_inserted,
        v.n()
    );
    if early > 0 {
        run.notes.push(format!(
            "`content().settled(doc)` returned with {early} of {} values not yet complete \
             (status then: {settled:?}); the time includes waiting for them",
            v.n()
        ));
    }
    let status = b.content().downloads().status().await;
    if status.failed > 0 {
        run.notes
            .push(format!("{} download attempts failed", status.failed));
    }
    // Untimed: every value, byte for byte, by key.
    let expected: HashMap<&[u8], &[u8]> = v
        .items
        .iter()
        .map(|(k, val)| (k.as_bytes(), val.as_slice()))
        .collect();
    let entries = doc_b.query(Query::all()).await?;
    ensure!(
        entries.len() as u64 == v.n(),
        "docsync: the reader holds {} entries, expected {}",
        entries.len(),
        v.n()
    );
    for e in &entries {
        let want = expected
            .get(e.key())
            .context("docsync: an unexpected key on the reader")?;
        let got = doc_b.read_to_bytes(e).await?;
        ensure!(
            got.as_ref() == *want,
            "docsync: other bytes at {:?}",
            String::from_utf8_lossy(e.key())
        );
    }
    drop((doc_a, doc_b));
    b.shutdown().await?;
    a.shutdown().await?;
    Ok(run)
}

/// What the reader of a reference pair passes on from its event stream.
enum TheirEvent {
    /// `ContentReady`.
    Ready(iroh_blobs::Hash),
    /// `PendingContentReady`: every download queued so far completed or failed.
    AllTried,
    /// `SyncFinished`.
    Synced,
}

async fn theirs_transfer(v: &Values) -> Result<TransferRun> {
    let (ea, log_a) = counted_endpoint().await?;
    let a = RefNode::spawn_on(ea, iroh_docs::store::Store::memory()).await?;
    let (eb, _log_b) = counted_endpoint().await?;
    let b = RefNode::spawn_on(eb, iroh_docs::store::Store::memory()).await?;
    let doc_a = a.docs.create().await?;
    let author = a.docs.author_default().await?;
    for (key, value) in &v.items {
        doc_a.set_bytes(author, key.clone(), value.clone()).await?;
    }
    // A accepts sessions for the document once it is in its sync set.
    doc_a.start_sync(vec![]).await?;
    let doc_b = b
        .docs
        .import_namespace(iroh_docs::Capability::Read(doc_a.id()))
        .await?;
    // Every event is read at once (the reference's actor waits for slow subscribers); the
    // ones the wait needs are passed on.
    let mut events = doc_b.subscribe().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            let passed = match event {
                LiveEvent::ContentReady { hash } => tx.send(TheirEvent::Ready(hash)),
                LiveEvent::PendingContentReady => tx.send(TheirEvent::AllTried),
                LiveEvent::SyncFinished(_) => tx.send(TheirEvent::Synced),
                _ => Ok(()),
            };
            if passed.is_err() {
                return;
            }
        }
    });
    let mut pending: HashSet<iroh_blobs::Hash> = v.hashes.iter().map(their_hash).collect();
    let mut run = TransferRun::default();
    let lo = lo_bytes()?;
    let since = Instant::now();
    doc_b.start_sync(vec![a.addr.clone()]).await?;
    let mut progressed = since;
    let mut swept = since;
    // When `PendingContentReady` arrived, and how many values were complete then.
    let mut all_tried: Option<(Duration, u64)> = None;
    while !pending.is_empty() {
        if since.elapsed() >= WAIT || progressed.elapsed() >= STALL {
            run.incomplete = Some(v.n() - pending.len() as u64);
            break;
        }
        let event = tokio::time::timeout(POLL, rx.recv()).await;
        let before = pending.len();
        match event {
            Ok(Some(TheirEvent::Ready(hash))) => {
                pending.remove(&hash);
            }
            Ok(Some(TheirEvent::Synced)) => {
                run.sync.get_or_insert(since.elapsed());
            }
            Ok(Some(TheirEvent::AllTried)) => {
                all_tried.get_or_insert((since.elapsed(), v.n() - pending.len() as u64));
                swept = since;
            }
            Err(_) => {}
            Ok(None) => bail!("iroh-docs: the event stream ended"),
        }
        if matches!(event, Ok(Some(TheirEvent::AllTried)) | Err(_)) && swept.elapsed() >= SWEEP {
            let mut still = HashSet::new();
            for hash in &pending {
                if !matches!(
                    b.blobs.blobs().status(*hash).await?,
                    iroh_blobs::api::blobs::BlobStatus::Complete { .. }
                ) {
                    still.insert(*hash);
                }
            }
            pending = still;
            swept = Instant::now();
        }
        if pending.len() < before {
            progressed = Instant::now();
        }
    }
    run.time = since.elapsed();
    run.lo = lo_bytes()? - lo;
    let done = Instant::now();
    let wire = log_a.wire_bytes(None, since..done, Duration::ZERO).await;
    run.udp = Some(wire.sent + wire.received);
    if let Some(ready) = run.incomplete {
        let tried = all_tried.map_or("no `PendingContentReady` event".to_string(), |(at, k)| {
            format!(
                "`PendingContentReady` (every queued download done or failed) after {} with \
                 {k} values complete",
                fmt_duration(at)
            )
        });
        run.notes.push(format!(
            "incomplete: {tried}; {ready} of {} complete when the run stopped waiting ({} \
             without progress)",
            v.n(),
            fmt_duration(STALL)
        ));
    }
    // Untimed: every value that arrived, byte for byte, by key.
    for (key, value) in &v.items {
        let entry = doc_b
            .get_exact(author, key.clone(), false)
            .await?
            .with_context(|| format!("iroh-docs: no entry at {key} on the reader"))?;
        if pending.contains(&entry.content_hash()) {
            continue;
        }
        let bytes = b.blobs.blobs().get_bytes(entry.content_hash()).await?;
        ensure!(
            bytes.as_ref() == value.as_slice(),
            "iroh-docs: other bytes at {key}"
        );
    }
    reader.abort();
    drop((doc_a, doc_b));
    b.shutdown().await?;
    a.shutdown().await?;
    Ok(run)
}

async fn bare_transfer(v: &Values) -> Result<TransferRun> {
    let provider = iroh_blobs::store::mem::MemStore::new();
    for (_, value) in &v.items {
        provider.blobs().add_bytes(value.clone()).await?;
    }
    let (ea, log_a) = counted_endpoint().await?;
    let router = Router::builder(ea.clone())
        .accept(
            iroh_blobs::ALPN,
            iroh_blobs::BlobsProtocol::new(&provider, None),
        )
        .spawn();
    let addr = sync_net::dial_addr(&ea);
    let (eb, _log_b) = counted_endpoint().await?;
    let fetcher = iroh_blobs::store::mem::MemStore::new();
    let request: iroh_blobs::protocol::GetManyRequest = v.hashes.iter().map(their_hash).collect();
    let mut run = TransferRun::default();
    let lo = lo_bytes()?;
    let since = Instant::now();
    let conn = eb.connect(addr, iroh_blobs::ALPN).await?;
    let stats = fetcher
        .remote()
        .execute_get_many(conn.clone(), request)
        .complete()
        .await?;
    run.time = since.elapsed();
    run.lo = lo_bytes()? - lo;
    let done = Instant::now();
    let wire = log_a.wire_bytes(None, since..done, Duration::ZERO).await;
    run.udp = Some(wire.sent + wire.received);
    ensure!(
        stats.payload_bytes_read == v.bytes,
        "bare iroh-blobs: {} payload bytes read, expected {}",
        stats.payload_bytes_read,
        v.bytes
    );
    for ((_, value), hash) in v.items.iter().zip(&v.hashes) {
        let bytes = fetcher.blobs().get_bytes(their_hash(hash)).await?;
        ensure!(
            bytes.as_ref() == value.as_slice(),
            "bare iroh-blobs: other bytes"
        );
    }
    conn.close(0u32.into(), b"done");
    eb.close().await;
    router.shutdown().await?;
    Ok(run)
}

/// The measured runs of one implementation on one shape.
#[derive(Default)]
struct TransferSeries {
    timings: Timings,
    last: TransferRun,
    /// Notes of the runs, each once (the note of an incomplete run: the last one only).
    notes: Vec<String>,
    incomplete_note: Option<String>,
    /// Runs (warm-up included), and those that stopped before every value was complete.
    runs: usize,
    incomplete_runs: usize,
    /// The sync part of the measured runs.
    sync: Timings,
}

impl TransferSeries {
    /// `"> "` when a run was incomplete: its time is then a lower bound of the time it
    /// would have taken to deliver every value.
    fn bound(&self) -> &'static str {
        if self.incomplete_runs > 0 { "> " } else { "" }
    }

    fn describe(&self) -> String {
        format!("{}{}", self.bound(), self.timings.describe())
    }
}

/// `a`'s median time over `b`'s, as text, marked as a lower bound if `a` is one.
fn factor(a: &TransferSeries, b: &TransferSeries) -> String {
    if std::ptr::eq(a, b) {
        return "1×".into();
    }
    crate::pure::ratio(&a.timings, &b.timings)
        .map_or("–".into(), |r| format!("{}{}", a.bound(), fmt_factor(r)))
}

fn transfers(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let plan = &ctx.plan.content;
    let reps = ctx.plan.reps.min(3);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut labels = Vec::new();
    for &(n, size) in &plan.transfers {
        let label = format!("{n} × {}", fmt_bytes(size as u64));
        labels.push(label.clone());
        progress(&format!(
            "content over loopback, {label}: generating the values"
        ));
        let v = Values::new(n, size);
        let mut series: Vec<TransferSeries> = Transfer::ALL
            .iter()
            .map(|_| TransferSeries::default())
            .collect();
        let spent = Instant::now();
        let total = ctx.plan.warmup + reps;
        // The implementations take turns within each repetition, so that a change of machine
        // load hits all of them alike.
        for i in 0..total {
            for (imp, s) in Transfer::ALL.iter().zip(&mut series) {
                progress(&format!(
                    "content over loopback, {label}: {}, run {} of {total}",
                    imp.label(),
                    i + 1
                ));
                let dir = ctx.work.path().join("content-reader");
                let mut run = on_fresh_runtime(async {
                    match imp {
                        Transfer::Ours => ours_transfer(&v, None).await,
                        Transfer::OursDisk => ours_transfer(&v, Some(&dir)).await,
                        Transfer::Theirs => theirs_transfer(&v).await,
                        Transfer::Bare => bare_transfer(&v).await,
                    }
                })
                .with_context(|| format!("{}, {label}", imp.label()))?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                s.runs += 1;
                if run.incomplete.is_some() {
                    s.incomplete_runs += 1;
                    s.incomplete_note = run.notes.pop();
                    progress(&format!(
                        "content over loopback, {label}: {}: {}",
                        imp.label(),
                        s.incomplete_note.as_deref().unwrap_or("incomplete")
                    ));
                }
                for note in &run.notes {
                    if !s.notes.contains(note) {
                        s.notes.push(note.clone());
                    }
                }
                if i >= ctx.plan.warmup {
                    s.timings.push(run.time);
                    if let Some(sync) = run.sync {
                        s.sync.push(sync);
                    }
                }
                s.last = run;
            }
            if spent.elapsed() > ctx.plan.case_budget * 2 && i >= ctx.plan.warmup {
                break;
            }
        }
        let [ours, ours_disk, theirs, bare] = &series[..] else {
            bail!("content over loopback: a series is missing");
        };
        for (imp, s) in Transfer::ALL.iter().zip(&series) {
            let r = &s.last;
            let throughput = s.timings.median().map_or("–".to_string(), |m| {
                let rate = v.bytes as f64 / (1024.0 * 1024.0) / m.as_secs_f64();
                // A lower bound of the time is an upper bound of the rate.
                let mark = if s.incomplete_runs > 0 { "< " } else { "" };
                format!("{mark}{rate:.1} MiB/s")
            });
            let mut notes = s.notes.clone();
            if let Some(frames) = r.sync_frames {
                notes.insert(0, format!("sync frames {}", fmt_bytes(frames)));
            }
            if let Some(note) = &s.incomplete_note {
                notes.push(format!(
                    "{note} (the last such run; {} of {} runs incomplete)",
                    s.incomplete_runs, s.runs
                ));
            }
            rows.push(vec![
                imp.label().to_string(),
                label.clone(),
                s.describe(),
                s.sync.median().map_or("–".into(), fmt_duration),
                throughput,
                factor(theirs, s),
                factor(s, bare),
                fmt_bytes(r.lo),
                r.udp.map_or("–".into(), fmt_bytes),
                notes.join("; "),
            ]);
        }
        let speed = crate::pure::ratio(&theirs.timings, &ours.timings);
        let never = if theirs.incomplete_runs > 0 {
            format!(
                "; iroh-docs did not deliver every value in {} of {} runs, so its time and the \
                 factor are lower bounds",
                theirs.incomplete_runs, theirs.runs
            )
        } else {
            String::new()
        };
        targets.push(Target {
            name: format!(
                "Content over loopback, {label}: docsync ≥ 2× faster than iroh-docs (memory)"
            ),
            measured: format!(
                "{} ({} vs {}; persistent reader {}){never}",
                factor(theirs, ours),
                ours.describe(),
                theirs.describe(),
                ours_disk.describe()
            ),
            met: speed.map(|s| s >= 2.0),
        });
        let floor = crate::pure::ratio(&ours.timings, &bare.timings);
        targets.push(Target {
            name: format!("Content over loopback, {label}: docsync within 1.5× of bare iroh-blobs"),
            measured: format!(
                "{} the floor's time ({} vs {})",
                factor(ours, bare),
                ours.describe(),
                bare.describe()
            ),
            met: floor.map(|f| f <= 1.5 && ours.incomplete_runs == 0),
        });
    }
    let body = format!(
        "A writer node holds N values (written before the clock starts, one by one); a second \
         node, which has imported the document (read capability) but holds nothing, syncs \
         once with it, and the time runs from the dial until every value is complete in the \
         second node's blob store. docsync: `Doc::sync_with(writer)`, then \
         `content().settled(doc)` (a rescan of the document, then the download queue's \
         settled state), then every value's hash checked complete (waiting for any that is not \
         yet — a note says if that happened). iroh-docs: two `RefNode`s \
         (engine, gossip, blobs, in memory); the reader subscribes, then `start_sync([writer])`; \
         done when its `ContentReady` events (with a check of its blob store on \
         `PendingContentReady` and, at most once a second, after {} ms without an event) \
         cover every hash. iroh-docs does not retry a download that failed (it waits for a \
         neighbor to announce the content again): a run in which no value became complete \
         for {} stops waiting and counts as incomplete — its time (to the moment it stopped \
         waiting) is then marked \"> \", a lower bound of the time to every value. Bare \
         iroh-blobs: the same values in one `MemStore`, served with `BlobsProtocol`; a second \
         `MemStore` dials and fetches all of them in one `GetMany` request (the least any \
         content transfer over iroh-blobs can cost: no entries, no per-blob requests). After \
         the clock stops every value is read back on the receiving side and compared byte for \
         byte (a mismatch fails the benchmark). Each run starts fresh nodes on a fresh \
         runtime (2 worker threads) in this process; the implementations take turns within \
         each repetition.\n\n\
         \"Of which sync\": the median time at which the sync session was done (docsync: \
         `sync_with` returned; iroh-docs: the reader's first `SyncFinished` event); the rest is \
         content transfer. \"vs iroh-docs\": iroh-docs' median time / this one (> 1: faster). \"vs bare\": this \
         median time / the bare transfer's (the floor; 1.5× is the target). \"Loopback \
         bytes\": every packet on the namespace's loopback interface during the timed part \
         (`/proc/net/dev`; link, IP and UDP headers included, both directions, all protocols). \
         \"UDP bytes\": what the providing node's endpoint counted on its connections opened \
         in the timed part (`counted_endpoint`; only where the endpoint could be built with \
         the counting hook — a docsync `Node` builds its own). \"Sync frames\": the session's \
         frame bytes from the reader's metrics. Byte figures and notes are from the last run.\n\n{}",
        POLL.as_millis(),
        fmt_duration(STALL),
        table(
            &[
                "implementation",
                "values",
                "median time",
                "of which sync",
                "throughput",
                "vs iroh-docs",
                "vs bare",
                "loopback bytes",
                "UDP bytes",
                "note",
            ],
            rows,
        )
    );
    report.section(
        &format!("Content over loopback ({})", labels.join(", ")),
        &body,
    );
    for t in targets {
        report.target(t);
    }
    Ok(())
}

// --- workload b: small writes ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Disk,
}

/// The values of one write run, split among `writers` (keys distinct over all writers).
fn write_values(n: u64, writers: u64) -> Vec<Vec<(String, Vec<u8>)>> {
    (0..writers)
        .map(|w| {
            (w..n)
                .step_by(writers as usize)
                .map(|i| (format!("w/{i:06}"), value(i, WRITE_SIZE)))
                .collect()
        })
        .collect()
}

async fn ours_writes(dir: Option<&Path>, n: u64, writers: u64) -> Result<Duration> {
    let node = match dir {
        Some(dir) => Node::persistent(dir).spawn().await?,
        None => Node::memory().spawn().await?,
    };
    let doc = node.create_doc().await?;
    let author = node.default_author().await?;
    let mut docs = Vec::new();
    for _ in 0..writers {
        docs.push(node.open_doc(doc.id()).await?);
    }
    let values = write_values(n, writers);
    let since = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (d, vals) in docs.into_iter().zip(values) {
        tasks.spawn(async move {
            for (key, value) in vals {
                d.set(author, key, value).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let time = since.elapsed();
    let count = doc.query(Query::all()).await?.len() as u64;
    ensure!(count == n, "docsync: {count} entries after {n} writes");
    drop(doc);
    node.shutdown().await?;
    Ok(time)
}

async fn theirs_set_loop(
    docs: &iroh_docs::protocol::Docs,
    n: u64,
    writers: u64,
) -> Result<Duration> {
    let doc = docs.create().await?;
    let author = docs.author_default().await?;
    let values = write_values(n, writers);
    let since = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for vals in values {
        let d = doc.clone();
        tasks.spawn(async move {
            for (key, value) in vals {
                d.set_bytes(author, key, value).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let time = since.elapsed();
    let mut count = 0u64;
    let mut listed = std::pin::pin!(doc.get_many(iroh_docs::store::Query::all().build()).await?);
    while let Some(e) = listed.next().await {
        e?;
        count += 1;
    }
    ensure!(count == n, "iroh-docs: {count} entries after {n} writes");
    doc.close().await?;
    Ok(time)
}

async fn theirs_writes(dir: Option<&Path>, n: u64, writers: u64) -> Result<Duration> {
    match dir {
        None => {
            let node = RefNode::spawn().await?;
            let time = theirs_set_loop(&node.docs, n, writers).await?;
            node.shutdown().await?;
            Ok(time)
        }
        Some(dir) => {
            // What a reference node on disk is: its blob file store and `Docs::persistent`
            // (redb document store, author file) in one directory, behind a router.
            let endpoint = sync_net::offline_endpoint(None).await?;
            let blobs = iroh_blobs::store::fs::FsStore::load(dir.join("blobs")).await?;
            let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
            let docs = iroh_docs::protocol::Docs::persistent(dir.to_path_buf())
                .spawn(endpoint.clone(), (*blobs).clone(), gossip.clone())
                .await?;
            let router = Router::builder(endpoint)
                .accept(
                    iroh_blobs::ALPN,
                    iroh_blobs::BlobsProtocol::new(&blobs, None),
                )
                .accept(iroh_gossip::ALPN, gossip)
                .accept(iroh_docs::ALPN, docs.clone())
                .spawn();
            let time = theirs_set_loop(&docs, n, writers).await?;
            // The blobs protocol shuts the blob store down with the router.
            router.shutdown().await?;
            Ok(time)
        }
    }
}

fn writes(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let n = ctx.plan.content.writes;
    let reps = ctx.plan.reps;
    let mut rows = Vec::new();
    for store in [Store::Memory, Store::Disk] {
        for writers in [1, WRITERS] {
            let mode = if writers == 1 {
                "one by one".to_string()
            } else {
                format!("{writers} concurrent writers")
            };
            let store_label = match store {
                Store::Memory => "memory (docsync `Node::memory()`, iroh-docs in memory)",
                Store::Disk => "disk (docsync `Node::persistent`, iroh-docs fs-store)",
            };
            let mut ours = Timings::default();
            let mut theirs = Timings::default();
            let spent = Instant::now();
            let total = ctx.plan.warmup + reps;
            for i in 0..total {
                progress(&format!(
                    "content writes, {n} × {WRITE_SIZE} B, {store_label}, {mode}: run {} of {total}",
                    i + 1
                ));
                for imp in ["ours", "theirs"] {
                    let dir = ctx.work.path().join(format!("content-writes-{imp}"));
                    let d = (store == Store::Disk).then_some(dir.as_path());
                    let time = on_fresh_runtime(async {
                        if imp == "ours" {
                            ours_writes(d, n, writers).await
                        } else {
                            theirs_writes(d, n, writers).await
                        }
                    })
                    .with_context(|| format!("content writes, {imp}, {store_label}, {mode}"))?;
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir)?;
                    }
                    if i >= ctx.plan.warmup {
                        if imp == "ours" {
                            ours.push(time);
                        } else {
                            theirs.push(time);
                        }
                    }
                }
                if spent.elapsed() > ctx.plan.case_budget && i >= ctx.plan.warmup {
                    break;
                }
            }
            let rate = |t: &Timings| {
                t.median().map_or("–".into(), |m| {
                    format!(
                        "{} ({})",
                        fmt_rate(n as f64 / m.as_secs_f64()),
                        t.describe()
                    )
                })
            };
            let ratio = crate::pure::ratio(&theirs, &ours);
            rows.push((store, writers, mode, rate(&ours), rate(&theirs), ratio));
        }
    }
    let mut targets = Vec::new();
    let mut table_rows = Vec::new();
    for (store, writers, mode, ours, theirs, ratio) in rows {
        let store_name = match store {
            Store::Memory => "memory",
            Store::Disk => "disk",
        };
        table_rows.push(vec![
            store_name.to_string(),
            mode.clone(),
            ours.clone(),
            theirs.clone(),
            ratio.map_or("–".into(), fmt_factor),
        ]);
        let what = if writers == 1 {
            "one by one".to_string()
        } else {
            format!("{writers} writers")
        };
        targets.push(Target {
            name: format!(
                "Content writes ({WRITE_SIZE} B values, {what}, {store_name}): docsync `Doc::set` \
                 ≥ 2× iroh-docs' `set_bytes`"
            ),
            measured: format!(
                "{} ({} vs {})",
                ratio.map_or("–".into(), fmt_factor),
                ours,
                theirs
            ),
            met: ratio.map(|r| r >= 2.0),
        });
    }
    let body = format!(
        "{n} writes of {WRITE_SIZE}-byte values (distinct keys and values) into one document as \
         one author, each awaited before the next, either one by one in a single task or \
         from {WRITERS} tasks at once (each with its own document handle, {} writes each). \
         docsync: `Doc::set`; on a persistent node it returns once the value and then the \
         entry are durable (content store metadata committed, then the entry store committed \
         and synced to disk), on a memory node once both are stored. iroh-docs: \
         `Doc::set_bytes` on a node in memory (`RefNode`) or on disk (its iroh-blobs \
         `FsStore` and `Docs::persistent`, which commit in batches: a write it acknowledges \
         is not yet on disk, so the disk rows compare durable writes with undurable ones). \
         Every run starts a fresh node on a fresh runtime (2 worker threads); the time is the \
         writes only, and the entry count is checked afterwards. Rates are writes per second \
         of the median run; the ratio is iroh-docs' median time over docsync's (> 1: docsync \
         is faster).\n\n{}",
        n / WRITERS,
        table(
            &[
                "store",
                "mode",
                "docsync",
                "iroh-docs 0.101",
                "docsync vs iroh-docs"
            ],
            table_rows,
        )
    );
    report.section(&format!("Content writes ({n} × {WRITE_SIZE} B)"), &body);
    for t in targets {
        report.target(t);
    }
    Ok(())
}

// --- workload c: importing a large file ---

/// What one import or floor child measured.
#[derive(Debug, Clone, Default)]
struct ImportRun {
    time: Duration,
    /// VmRSS just before the timed part (kB).
    before_kb: u64,
    /// VmHWM after it (kB).
    peak_kb: u64,
    reset: bool,
    hash: String,
    len: u64,
}

impl ImportRun {
    fn to_line(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {}",
            self.time.as_nanos(),
            self.before_kb,
            self.peak_kb,
            u8::from(self.reset),
            self.hash,
            self.len
        )
    }

    fn from_line(line: &str) -> Result<Self> {
        let v: Vec<&str> = line.split_whitespace().collect();
        let [time, before, peak, reset, hash, len] = v[..] else {
            bail!("content child: bad result line {line}");
        };
        Ok(Self {
            time: Duration::from_nanos(time.parse()?),
            before_kb: before.parse()?,
            peak_kb: peak.parse()?,
            reset: reset == "1",
            hash: hash.to_string(),
            len: len.parse()?,
        })
    }

    /// The rise of resident memory during the timed part (kB).
    fn growth_kb(&self) -> u64 {
        self.peak_kb.saturating_sub(self.before_kb)
    }
}

/// `bench --child content import <file> <node dir>` or `... floor <file> <copy>`.
pub(crate) fn child_main(args: &[String]) -> Result<()> {
    let [what, file, target] = args else {
        bail!("content child: bad arguments {args:?}");
    };
    let (file, target) = (Path::new(file), Path::new(target));
    let run = match what.as_str() {
        "import" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(child_import(file, target))?
        }
        "floor" => child_floor(file, target)?,
        other => bail!("content child: unknown job {other}"),
    };
    println!("{}", run.to_line());
    Ok(())
}

async fn child_import(file: &Path, dir: &Path) -> Result<ImportRun> {
    let node = Node::persistent(dir).spawn().await?;
    let doc = node.create_doc().await?;
    let author = node.default_author().await?;
    let mut run = ImportRun {
        before_kb: status_kb("VmRSS:"),
        reset: reset_peak(),
        ..ImportRun::default()
    };
    if !run.reset {
        run.before_kb = status_kb("VmHWM:");
    }
    let since = Instant::now();
    let entry = doc.set_file(author, "big", file).await?;
    run.time = since.elapsed();
    run.peak_kb = status_kb("VmHWM:");
    run.hash = entry.content_hash().to_string();
    run.len = entry.content_len();
    drop(doc);
    node.shutdown().await?;
    Ok(run)
}

/// The floor: BLAKE3 over the file (read in 1 MiB pieces, one thread) plus one copy of it
/// (`std::fs::copy`, then synced to disk, as `set_file` syncs what it stored).
fn child_floor(file: &Path, copy: &Path) -> Result<ImportRun> {
    let mut run = ImportRun {
        before_kb: status_kb("VmRSS:"),
        reset: reset_peak(),
        ..ImportRun::default()
    };
    if !run.reset {
        run.before_kb = status_kb("VmHWM:");
    }
    let since = Instant::now();
    let mut hasher = blake3::Hasher::new();
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        run.len += k as u64;
    }
    std::fs::copy(file, copy)?;
    std::fs::File::open(copy)?.sync_all()?;
    run.time = since.elapsed();
    run.peak_kb = status_kb("VmHWM:");
    run.hash = hasher.finalize().to_hex().to_string();
    Ok(run)
}

fn run_import_child(ctx: &Ctx, what: &str, file: &Path, target: &Path) -> Result<ImportRun> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--child", "content", what])
        .arg(file)
        .arg(target)
        .current_dir(ctx.work.path())
        .output()?;
    if !out.status.success() {
        bail!(
            "content child ({what}) failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("content child printed no result")?;
    ImportRun::from_line(line)
}

/// Writes `size` pseudo-random bytes to `path` (not timed).
fn generate(path: &Path, size: u64) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = SplitMix(0x1A2B_3C4D_5E6F_7081);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..k]);
        out.write_all(&buf[..k])?;
        left -= k as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn import(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let size = ctx.plan.content.import_bytes;
    let reps = ctx.plan.reps.min(3);
    let src: PathBuf = ctx.work.path().join("content-import.bin");
    progress(&format!(
        "content import: generating a {} file",
        fmt_bytes(size)
    ));
    generate(&src, size)?;
    let mut ours = Timings::default();
    let mut floor = Timings::default();
    let (mut ours_growth, mut floor_growth) = (Vec::new(), Vec::new());
    let (mut last_ours, mut last_floor) = (ImportRun::default(), ImportRun::default());
    let total = ctx.plan.warmup + reps;
    for i in 0..total {
        progress(&format!(
            "content import, {}: floor and docsync, run {} of {total}",
            fmt_bytes(size),
            i + 1
        ));
        let copy = ctx.work.path().join("content-floor-copy.bin");
        let f = run_import_child(ctx, "floor", &src, &copy)?;
        std::fs::remove_file(&copy)?;
        let dir = ctx.work.path().join("content-import-node");
        let o = run_import_child(ctx, "import", &src, &dir)?;
        std::fs::remove_dir_all(&dir)?;
        ensure!(
            f.len == size && o.len == size,
            "content import: lengths {} (floor) and {} (docsync), expected {size}",
            f.len,
            o.len
        );
        ensure!(
            f.hash == o.hash,
            "content import: docsync's hash {} differs from BLAKE3's {}",
            o.hash,
            f.hash
        );
        if i >= ctx.plan.warmup {
            floor.push(f.time);
            ours.push(o.time);
            floor_growth.push(f.growth_kb());
            ours_growth.push(o.growth_kb());
        }
        last_ours = o;
        last_floor = f;
    }
    std::fs::remove_file(&src)?;
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let (og, fg) = (max(&ours_growth), max(&floor_growth));
    let throughput = |t: &Timings| {
        t.median().map_or("–".into(), |m| {
            format!(
                "{:.0} MiB/s",
                size as f64 / (1024.0 * 1024.0) / m.as_secs_f64()
            )
        })
    };
    let ratio = crate::pure::ratio(&ours, &floor);
    let mut notes = Vec::new();
    if !last_ours.reset || !last_floor.reset {
        notes.push("the high-water mark could not be reset: growth is measured from the mark");
    }
    let rows = vec![
        vec![
            "docsync `Doc::set_file` (persistent node)".to_string(),
            ours.describe(),
            throughput(&ours),
            ratio.map_or("–".into(), fmt_factor),
            mib(og),
            mib(last_ours.peak_kb),
        ],
        vec![
            "floor: BLAKE3 of the file + one copy, synced".to_string(),
            floor.describe(),
            throughput(&floor),
            "1×".to_string(),
            mib(fg),
            mib(last_floor.peak_kb),
        ],
    ];
    let body = format!(
        "A {} file of pseudo-random bytes (splitmix64; generated once per run in the run's \
         scratch directory, so it is in the page cache for every repetition) imported with \
         `Doc::set_file` into a document of a fresh persistent node: the content store copies \
         it and computes its BLAKE3 outboard, then the entry is written; the call returns once \
         both are durable. The floor does the least such an import must: BLAKE3 of the whole \
         file (read in 1 MiB pieces, one thread, `blake3::Hasher::update`) plus one copy of it \
         (`std::fs::copy`, then `fsync`). Both run alternately, each in a child process of its \
         own (`bench --child content import|floor`), and the hashes must agree. \"RSS growth\" \
         is the process's resident high-water mark after the timed part (`VmHWM`, reset with \
         `/proc/self/clear_refs` just before it) less its resident size before it (`VmRSS`; \
         process-wide: the node's runtime and stores are included), the largest of the \
         measured runs; \"peak RSS\" is the mark itself (last run). The ratio is the time over \
         the floor's (< 1.5 is the target).{}\n\n{}",
        fmt_bytes(size),
        if notes.is_empty() {
            String::new()
        } else {
            format!(" Note: {}.", notes.join("; "))
        },
        table(
            &[
                "case",
                "median time",
                "throughput",
                "vs floor",
                "RSS growth (max)",
                "peak RSS",
            ],
            rows,
        )
    );
    report.section(&format!("Content import ({} file)", fmt_bytes(size)), &body);
    report.target(Target {
        name: format!(
            "Content import ({}): `Doc::set_file` within 1.5× of BLAKE3 + one copy",
            fmt_bytes(size)
        ),
        measured: format!(
            "{} ({} vs {})",
            ratio.map_or("–".into(), fmt_factor),
            ours.describe(),
            floor.describe()
        ),
        met: ratio.map(|r| r <= 1.5),
    });
    report.target(Target {
        name: format!(
            "Content import ({}): peak memory growth under 64 MiB",
            fmt_bytes(size)
        ),
        measured: format!(
            "{} (largest of {} runs; the floor {})",
            mib(og),
            ours_growth.len(),
            mib(fg)
        ),
        met: (!ours_growth.is_empty()).then_some(og < 64 * 1024),
    });
    Ok(())
}
