//! Sync between two file stores (docsync `RedbStore` against iroh-docs `Store`), and the
//! bootstrap of an empty peer in a child process (for its peak memory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ranger::Config;
use sync_core::{Capability, KeyInterval, ReplicaStore, SignedEntry, Store};
use sync_store_redb::RedbStore;

use crate::data::{self, diff_sets, namespace};
use crate::local::repeat;
use crate::peers::{Ours, SyncStats, Theirs, run_session};
use crate::pure::{Shape, ratio, sync_row};
use crate::report::{ChartPoint, Report, Target, table};
use crate::stats::{Timings, fmt_bytes, fmt_factor};
use crate::{BUDGET, Ctx, progress};

pub(crate) fn their_id() -> iroh_docs::NamespaceId {
    iroh_docs::NamespaceId::from(namespace().id().as_bytes())
}

/// Our store file holding `entries` (built in this run: our format may change between runs).
fn ours_base(ctx: &Ctx, entries: &[SignedEntry]) -> Result<PathBuf> {
    ours_base_at(ctx, entries, 0)
}

/// [`ours_base`] for entries that start at index `offset` of the generated sequence.
pub(crate) fn ours_base_at(ctx: &Ctx, entries: &[SignedEntry], offset: u64) -> Result<PathBuf> {
    let path = ctx.work.path().join(if offset == 0 {
        format!("ours-base-{}.redb", entries.len())
    } else {
        format!("ours-base-{offset}+{}.redb", entries.len())
    });
    if path.exists() {
        return Ok(path);
    }
    progress(&format!(
        "building docsync's store of {} entries",
        entries.len()
    ));
    let mut store = RedbStore::persistent(&path)?;
    store.import_namespace(Capability::Write(namespace()))?;
    for e in entries {
        store.insert(e.clone())?;
    }
    store.close()?;
    Ok(path)
}

/// The reference's store file holding `entries`. Loading it means verifying every signature
/// (iroh-docs has no other way in), so it is cached across runs; iroh-docs is pinned.
fn theirs_base(ctx: &Ctx, entries: &[SignedEntry]) -> Result<PathBuf> {
    theirs_base_at(ctx, entries, 0)
}

/// [`theirs_base`] for entries that start at index `offset` of the generated sequence.
pub(crate) fn theirs_base_at(ctx: &Ctx, entries: &[SignedEntry], offset: u64) -> Result<PathBuf> {
    let path = ctx.cache.join(if offset == 0 {
        format!("iroh-docs-0.101.0-v1-{}.redb", entries.len())
    } else {
        format!("iroh-docs-0.101.0-v1-{offset}+{}.redb", entries.len())
    });
    if path.exists() {
        return Ok(path);
    }
    progress(&format!(
        "building iroh-docs' store of {} entries (cached for later runs)",
        entries.len()
    ));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        let mut store = iroh_docs::store::Store::persistent(&tmp)?;
        let secret = iroh_docs::NamespaceSecret::from_bytes(&namespace().to_bytes());
        {
            let mut replica = store.new_replica(secret)?;
            theirs_insert(ctx, &mut replica, entries)?;
        }
        store.close_replica(their_id());
        store.flush()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Adds `entries` to an iroh-docs replica as its network layer adds a peer's entries (both
/// signatures verified).
pub(crate) fn theirs_insert(
    ctx: &Ctx,
    replica: &mut iroh_docs::sync::Replica<'_>,
    entries: &[SignedEntry],
) -> Result<()> {
    for e in entries {
        ctx.rt.block_on(replica.insert_remote_entry(
            data::to_theirs(e)?,
            [0; 32],
            iroh_docs::ContentStatus::Missing,
        ))?;
    }
    Ok(())
}

pub(crate) fn copy_to(ctx: &Ctx, from: &Path, name: &str) -> Result<PathBuf> {
    let to = ctx.work.path().join(name);
    std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
    Ok(to)
}

fn ours_count(store: &mut RedbStore) -> Result<u64> {
    Ok(store.count(&namespace().id(), &KeyInterval::all())?)
}

pub(crate) fn theirs_count(store: &mut iroh_docs::store::Store) -> Result<u64> {
    Ok(store
        .get_many(
            their_id(),
            iroh_docs::store::Query::all().include_empty().build(),
        )?
        .count() as u64)
}

struct Case {
    timings: Timings,
    stats: SyncStats,
}

/// docsync on two copies of the base file: every shape in turn, each repetition adding fresh
/// differences to the converged pair.
fn ours_cases(
    ctx: &Ctx,
    base: &Path,
    n: u64,
    shapes: &[Shape],
    diffs: &[Vec<(Vec<SignedEntry>, Vec<SignedEntry>)>],
) -> Result<Vec<Case>> {
    let ns = namespace().id();
    let config = Config::bounded(BUDGET)?;
    let pa = copy_to(ctx, base, "ours-a.redb")?;
    let pb = copy_to(ctx, base, "ours-b.redb")?;
    let mut a = RedbStore::persistent(&pa)?;
    let mut b = RedbStore::persistent(&pb)?;
    let mut expected = n;
    let mut out = Vec::new();
    for (shape, diffs) in shapes.iter().zip(diffs) {
        progress(&format!("file stores, N = {n}, {}: docsync", shape.label()));
        let mut last = SyncStats::default();
        let timings = repeat(ctx, ctx.plan.reps, |i| {
            if let Some((da, db)) = diffs.get(i) {
                for e in da {
                    a.insert(e.clone())?;
                }
                for e in db {
                    b.insert(e.clone())?;
                }
                expected += (da.len() + db.len()) as u64;
            }
            let mut peer_a = Ours::new(ReplicaStore::new(&mut a, ns), ns, config, true);
            let mut peer_b = Ours::new(ReplicaStore::new(&mut b, ns), ns, config, true);
            last = run_session(&mut peer_a, &mut peer_b)?;
            ensure!(
                peer_a.outcome().entries_rejected == 0 && peer_b.outcome().entries_rejected == 0,
                "entries rejected"
            );
            let (ca, cb) = (ours_count(&mut a)?, ours_count(&mut b)?);
            ensure!(
                ca == expected && cb == expected,
                "docsync did not converge: {ca} and {cb}, expected {expected}"
            );
            Ok(last.time)
        })?;
        out.push(Case {
            timings,
            stats: last,
        });
    }
    a.close()?;
    b.close()?;
    std::fs::remove_file(pa)?;
    std::fs::remove_file(pb)?;
    Ok(out)
}

fn theirs_cases(
    ctx: &Ctx,
    base: &Path,
    n: u64,
    shapes: &[Shape],
    diffs: &[Vec<(Vec<SignedEntry>, Vec<SignedEntry>)>],
) -> Result<Vec<Case>> {
    let pa = copy_to(ctx, base, "theirs-a.redb")?;
    let pb = copy_to(ctx, base, "theirs-b.redb")?;
    let mut a = iroh_docs::store::Store::persistent(&pa)?;
    let mut b = iroh_docs::store::Store::persistent(&pb)?;
    let mut expected = n;
    let mut out = Vec::new();
    for (shape, diffs) in shapes.iter().zip(diffs) {
        progress(&format!(
            "file stores, N = {n}, {}: iroh-docs",
            shape.label()
        ));
        let mut last = SyncStats::default();
        let timings = repeat(ctx, ctx.plan.reps, |i| {
            last = theirs_round(ctx, &mut a, &mut b, diffs.get(i), &mut expected)?;
            Ok(last.time)
        })?;
        out.push(Case {
            timings,
            stats: last,
        });
    }
    // Counting scans the document: once, at the end.
    let (ca, cb) = (theirs_count(&mut a)?, theirs_count(&mut b)?);
    ensure!(
        ca == expected && cb == expected,
        "iroh-docs did not converge: {ca} and {cb}, expected {expected}"
    );
    a.flush()?;
    b.flush()?;
    drop((a, b));
    std::fs::remove_file(pa)?;
    std::fs::remove_file(pb)?;
    Ok(out)
}

/// One repetition on a converged pair of iroh-docs stores: `diff`'s entries added to each side
/// (not timed, `expected` grows by them), then a session, `a` initiating.
pub(crate) fn theirs_round(
    ctx: &Ctx,
    a: &mut iroh_docs::store::Store,
    b: &mut iroh_docs::store::Store,
    diff: Option<&(Vec<SignedEntry>, Vec<SignedEntry>)>,
    expected: &mut u64,
) -> Result<SyncStats> {
    let id = their_id();
    let mut ra = a.open_replica(&id)?;
    let mut rb = b.open_replica(&id)?;
    if let Some((da, db)) = diff {
        theirs_insert(ctx, &mut ra, da)?;
        theirs_insert(ctx, &mut rb, db)?;
        *expected += (da.len() + db.len()) as u64;
    }
    let mut peer_a = Theirs::new(ra, &ctx.rt, 1);
    let mut peer_b = Theirs::new(rb, &ctx.rt, 2);
    let stats = run_session(&mut peer_a, &mut peer_b)?;
    drop((peer_a, peer_b));
    a.close_replica(id);
    b.close_replica(id);
    Ok(stats)
}

/// In-sync check, d = 10 and d = 1000 on file stores at every size of the plan.
pub(crate) fn file_sync(ctx: &Ctx, entries: &[SignedEntry], report: &mut Report) -> Result<()> {
    let shapes = [Shape::Diff(0), Shape::Diff(10), Shape::Diff(1000)];
    let total = ctx.plan.warmup + ctx.plan.reps;
    let diffs: Vec<_> = shapes
        .iter()
        .map(|s| match s {
            Shape::Diff(d) if *d > 0 => diff_sets(*d, total),
            _ => Vec::new(),
        })
        .collect();
    let mut body = format!(
        "Two peers in one process, each with its own store file, every message encoded, \
         decoded and fully processed (received entries are validated, both signatures \
         verified, and stored). docsync: `RedbStore::persistent` through `ReplicaStore`, \
         `Config::bounded({BUDGET})`; iroh-docs: `Store::persistent`, \
         `Replica::sync_initial_message` / `sync_process_message` as its network layer calls \
         them (unbounded messages, split factor 2, leaf size 1). Both stores start as copies of \
         one file holding N entries; each repetition first adds fresh differences (half on each \
         side, not timed), so the sets grow by d per repetition. Messages count both directions \
         (a round trip is two); bytes are wire bytes without frame headers; \"moved\" is entries \
         sent by both sides.\n\n"
    );
    let mut at_max: Vec<(u64, Shape, Case, Case)> = Vec::new();
    let max_n = ctx.plan.sync_sizes.iter().copied().max().unwrap_or(0);
    for &n in &ctx.plan.sync_sizes {
        let shared = &entries[..n as usize];
        let ob = ours_base(ctx, shared)?;
        let tb = theirs_base(ctx, shared)?;
        let ours = ours_cases(ctx, &ob, n, &shapes, &diffs)?;
        let theirs = theirs_cases(ctx, &tb, n, &shapes, &diffs)?;
        let mut rows = Vec::new();
        for ((shape, o), t) in shapes.iter().zip(ours).zip(theirs) {
            let label = shape.label();
            let speedup = ratio(&t.timings, &o.timings);
            rows.push(sync_row(
                "docsync",
                &label,
                &o.timings,
                &o.stats,
                speedup.map(|r| format!("{} faster", fmt_factor(r))),
            ));
            rows.push(sync_row(
                "iroh-docs 0.101",
                &label,
                &t.timings,
                &t.stats,
                Some(format!(
                    "docsync: {:.2}× the bytes",
                    o.stats.bytes as f64 / t.stats.bytes.max(1) as f64
                )),
            ));
            if matches!(shape, Shape::Diff(0) | Shape::Diff(10)) {
                for (series, c) in [("docsync", &o), ("iroh-docs", &t)] {
                    if let Some(m) = c.timings.median() {
                        report.chart.push(ChartPoint {
                            series: format!("{series}, {label}"),
                            n,
                            seconds: m.as_secs_f64(),
                        });
                    }
                }
            }
            if n == max_n {
                at_max.push((n, *shape, o, t));
            }
        }
        body += &format!("**N = {n}**\n\n");
        body += &table(
            &[
                "implementation",
                "case",
                "median time",
                "messages",
                "bytes",
                "largest message",
                "moved",
                "note",
            ],
            rows,
        );
        body += "\n";
    }
    report.section("Sync between two file stores: docsync vs iroh-docs", &body);
    for (n, shape, o, t) in at_max {
        let speed = ratio(&t.timings, &o.timings).unwrap_or(0.0);
        match shape {
            Shape::Diff(0) => report.target(Target {
                name: format!("In-sync check at N = {n}: one round trip, ≥ 1000× faster"),
                measured: format!(
                    "{} message(s), {speed:.0}× faster ({} vs {})",
                    o.stats.messages,
                    o.timings.describe(),
                    t.timings.describe()
                ),
                met: Some(o.stats.messages <= 2 && speed >= 1000.0),
            }),
            Shape::Diff(10) => {
                let bytes = o.stats.bytes as f64 / t.stats.bytes.max(1) as f64;
                report.target(Target {
                    name: format!("d = 10 at N = {n}: ≥ 100× faster, ≤ 1/3 of the bytes"),
                    measured: format!(
                        "{speed:.0}× faster, {bytes:.2}× the bytes ({} vs {})",
                        fmt_bytes(o.stats.bytes),
                        fmt_bytes(t.stats.bytes)
                    ),
                    met: Some(speed >= 100.0 && bytes <= 1.0 / 3.0),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a bootstrap child reports.
#[derive(Debug, Clone, Default)]
struct ChildResult {
    stats: SyncStats,
    /// VmHWM after the session, with the high-water mark reset just before it (kB).
    peak_kb: u64,
    /// VmRSS just before the session (kB): both stores open, nothing synced.
    before_kb: u64,
    /// Whether the high-water mark could be reset (else the peak includes the setup).
    reset: bool,
}

pub(crate) fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `bench --child bootstrap <ours|theirs> <n> <source store> <work dir>`
pub(crate) fn child_main(args: &[String]) -> Result<()> {
    let [what, imp, n, source, work] = args else {
        bail!("child: bad arguments {args:?}");
    };
    ensure!(what == "bootstrap", "child: unknown job {what}");
    let n: u64 = n.parse()?;
    let source = Path::new(source);
    let work = Path::new(work);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ns = namespace();
    let mut result = ChildResult::default();
    let start;
    match imp.as_str() {
        "ours" => {
            let dest_path = work.join("bootstrap-dest-ours.redb");
            let _ = std::fs::remove_file(&dest_path);
            let mut src = RedbStore::persistent(source)?;
            let mut dst = RedbStore::persistent(&dest_path)?;
            dst.import_namespace(Capability::Write(ns.clone()))?;
            dst.flush()?;
            let config = Config::bounded(BUDGET)?;
            result.before_kb = status_kb("VmRSS:");
            result.reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
            start = Instant::now();
            {
                let id = ns.id();
                // The empty peer initiates, as a new node does.
                let mut a = Ours::new(ReplicaStore::new(&mut dst, id), id, config, true);
                let mut b = Ours::new(ReplicaStore::new(&mut src, id), id, config, true);
                result.stats = run_session(&mut a, &mut b)?;
            }
            dst.flush()?;
            result.stats.time = start.elapsed();
            result.peak_kb = status_kb("VmHWM:");
            let got = ours_count(&mut dst)?;
            ensure!(got == n, "bootstrap moved {got} of {n} entries");
            dst.close()?;
            src.close()?;
            std::fs::remove_file(&dest_path)?;
        }
        "theirs" => {
            let dest_path = work.join("bootstrap-dest-theirs.redb");
            let _ = std::fs::remove_file(&dest_path);
            let mut src = iroh_docs::store::Store::persistent(source)?;
            let mut dst = iroh_docs::store::Store::persistent(&dest_path)?;
            let secret = iroh_docs::NamespaceSecret::from_bytes(&ns.to_bytes());
            {
                let _ = dst.new_replica(secret)?;
            }
            dst.close_replica(their_id());
            dst.flush()?;
            result.before_kb = status_kb("VmRSS:");
            result.reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
            start = Instant::now();
            {
                let mut a = Theirs::new(dst.open_replica(&their_id())?, &rt, 1);
                let mut b = Theirs::new(src.open_replica(&their_id())?, &rt, 2);
                result.stats = run_session(&mut a, &mut b)?;
            }
            dst.close_replica(their_id());
            src.close_replica(their_id());
            dst.flush()?;
            result.stats.time = start.elapsed();
            result.peak_kb = status_kb("VmHWM:");
            let got = theirs_count(&mut dst)?;
            ensure!(got == n, "bootstrap moved {got} of {n} entries");
            drop(dst);
            std::fs::remove_file(&dest_path)?;
        }
        other => bail!("child: unknown implementation {other}"),
    }
    let s = &result.stats;
    println!(
        "RESULT {} {} {} {} {} {} {} {}",
        s.time.as_nanos(),
        s.messages,
        s.bytes,
        s.largest,
        s.moved,
        result.peak_kb,
        result.before_kb,
        u8::from(result.reset)
    );
    Ok(())
}

fn run_child(ctx: &Ctx, imp: &str, n: u64, source: &Path) -> Result<ChildResult> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--child")
        .arg("bootstrap")
        .arg(imp)
        .arg(n.to_string())
        .arg(source)
        .arg(ctx.work.path())
        .output()?;
    if !out.status.success() {
        bail!(
            "bootstrap child ({imp}, N = {n}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("bootstrap child printed no result")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [time, messages, bytes, largest, moved, peak, before, reset] = v[..] else {
        bail!("bootstrap child: bad result line {line}");
    };
    Ok(ChildResult {
        stats: SyncStats {
            time: Duration::from_nanos(time),
            messages,
            bytes,
            largest,
            moved,
        },
        peak_kb: peak,
        before_kb: before,
        reset: reset == 1,
    })
}

pub(crate) fn mib(kb: u64) -> String {
    format!("{:.0} MiB", kb as f64 / 1024.0)
}

/// Bootstrap of an empty peer, each run in a child process of its own.
pub(crate) fn bootstrap(ctx: &Ctx, entries: &[SignedEntry], report: &mut Report) -> Result<()> {
    let mut rows = Vec::new();
    let mut last = None;
    let mut single_runs = false;
    for &n in &ctx.plan.bootstrap_sizes {
        let shared = &entries[..n as usize];
        let ob = ours_base(ctx, shared)?;
        let tb = theirs_base(ctx, shared)?;
        // A 1M bootstrap takes minutes on each side: one run, no warm-up.
        let (warmup, reps) = if n >= 1_000_000 {
            single_runs = true;
            (0, 1)
        } else {
            (ctx.plan.warmup, ctx.plan.reps.min(2))
        };
        let mut results = Vec::new();
        for (imp, source) in [("ours", &ob), ("theirs", &tb)] {
            let mut t = Timings::default();
            let mut peaks = Vec::new();
            let mut last_run = ChildResult::default();
            let spent = Instant::now();
            for i in 0..warmup + reps {
                progress(&format!(
                    "bootstrap of an empty peer, N = {n}: {imp}, run {} of {}",
                    i + 1,
                    warmup + reps
                ));
                let r = run_child(ctx, imp, n, source)?;
                if i >= warmup {
                    t.push(r.stats.time);
                    peaks.push(r.peak_kb);
                }
                last_run = r;
                if spent.elapsed() > ctx.plan.case_budget && !t.runs.is_empty() {
                    break;
                }
            }
            peaks.sort_unstable();
            let peak = peaks.get(peaks.len() / 2).copied().unwrap_or(0);
            results.push((t, last_run, peak));
        }
        let speed = ratio(&results[1].0, &results[0].0);
        for ((name, (t, r, peak)), note) in ["docsync", "iroh-docs 0.101"]
            .iter()
            .zip(&results)
            .zip([speed.map(|s| format!("{s:.2}× iroh-docs' speed")), None])
        {
            let rate = t
                .median()
                .map_or(0.0, |m| n as f64 / m.as_secs_f64().max(1e-9));
            let mut note = note.unwrap_or_default();
            if !r.reset {
                note += " (high-water mark not reset: the peak includes the setup)";
            }
            let mut row = sync_row(name, &format!("N = {n}"), t, &r.stats, Some(note));
            row.insert(3, crate::stats::fmt_rate(rate));
            row.insert(4, mib(*peak));
            row.insert(5, mib(r.before_kb));
            rows.push(row);
        }
        last = Some((n, results));
    }
    report.section(
        "Bootstrap of an empty peer (file stores, own process)",
        &format!(
            "The empty peer initiates; the other holds N entries in its store file. Each run is \
             a fresh child process: both stores are opened, the peak-RSS mark is reset \
             (`/proc/self/clear_refs`), the session runs to the end, the new store is \
             flushed, and VmHWM is read from `/proc/self/status`. \"peak RSS\" is that \
             high-water mark (both peers, one process); \"RSS before\" is the resident size \
             with both stores open, before the session. Received entries are fully validated \
             (both signatures), so the entries/s column is also an ingest rate through sync. \
             docsync: budget {BUDGET} bytes per message.{}\n\n{}",
            if single_runs {
                " At N = 1M each implementation ran once (no warm-up): a run takes minutes."
            } else {
                ""
            },
            table(
                &[
                    "implementation",
                    "case",
                    "median time",
                    "entries/s",
                    "peak RSS",
                    "RSS before",
                    "messages",
                    "bytes",
                    "largest message",
                    "moved",
                    "note"
                ],
                rows
            )
        ),
    );
    if let Some((n, results)) = last {
        let (o, t) = (&results[0], &results[1]);
        let mem = o.2 as f64 / t.2.max(1) as f64;
        report.target(Target {
            name: format!(
                "Bootstrap at N = {n}: peak memory ≤ 1/4 of iroh-docs', no message over the budget"
            ),
            measured: format!(
                "{mem:.2}× the peak ({} vs {}); largest message {} (budget {})",
                mib(o.2),
                mib(t.2),
                fmt_bytes(o.1.stats.largest),
                fmt_bytes(BUDGET as u64)
            ),
            met: Some(mem <= 0.25 && o.1.stats.largest <= BUDGET as u64),
        });
    }
    Ok(())
}
