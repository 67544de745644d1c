//! The docsync benchmark: every workload of issue 8 for docsync and for iroh-docs 0.101 (and the
//! `negentropy` crate for pure set reconciliation), in one run on one machine, written up as
//! `docs/BENCHMARKS.md` with a chart.
//!
//! Run it with `cargo xtask bench [--quick]`, which builds this in release mode and passes:
//!
//! ```text
//! bench [--quick] --out <report.md> --cache <dir> --command <text>
//! bench --profile <n> <d | bootstrap> <runs> --cache <dir>         (one in-memory case)
//! bench --child bootstrap <ours|theirs> <n> <source store> <work dir>   (internal)
//! bench --child loopback <ours|theirs> <store a> <store b> <expected>   (internal)
//! bench --child content <import|floor> <file> <node dir | copy>          (internal)
//! ```
//!
//! Entries are generated deterministically, signed once and cached in `<cache>`; both
//! implementations get the same signed entries (the reference through postcard). Timed cases
//! run a warm-up first (not counted) and report the median of the measured runs; a case whose
//! runs spread by more than 20% of the median is flagged as noisy. Peak memory of a bootstrap
//! is measured in a child process of its own (VmHWM of /proc/self/status).

mod content;
mod data;
mod fingerprint;
mod local;
mod loopback;
mod peers;
mod pure;
mod report;
mod stats;
mod sync;
mod timed;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::report::Report;

/// The budget of every docsync message in these benchmarks.
pub(crate) const BUDGET: usize = 64 * 1024;

/// Sizes and repetitions of one mode.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Warm-up runs before the measured ones.
    pub(crate) warmup: usize,
    /// Measured runs of fast cases.
    pub(crate) reps: usize,
    /// Entries of the local-insert, ingest and actor workloads (issue 8: 100k).
    pub(crate) insert_n: u64,
    /// Document sizes of the file-store sync workloads (the chart's x axis).
    pub(crate) sync_sizes: Vec<u64>,
    /// Sizes of the bootstrap workload.
    pub(crate) bootstrap_sizes: Vec<u64>,
    /// Sizes of the in-memory algorithm comparison with negentropy.
    pub(crate) pure_sizes: Vec<u64>,
    /// The size of the split-factor / leaf-size sweep.
    pub(crate) sweep_n: u64,
    /// Measured runs of the sweep.
    pub(crate) sweep_reps: usize,
    /// Entries on each node of the loopback workload (issue 6: 100k).
    pub(crate) loopback_n: u64,
    /// Differences of the loopback workload's first shape (issue 6: 1000).
    pub(crate) loopback_d: u64,
    /// After this much time spent on one case, no further repetitions are started.
    pub(crate) case_budget: Duration,
    /// Sizes of the content workloads (values over loopback, small writes, a large import).
    pub(crate) content: content::ContentPlan,
}

impl Plan {
    fn full() -> Self {
        Self {
            quick: false,
            warmup: 1,
            reps: 5,
            insert_n: 100_000,
            sync_sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            bootstrap_sizes: vec![100_000, 1_000_000],
            pure_sizes: vec![100_000, 1_000_000],
            sweep_n: 100_000,
            sweep_reps: 3,
            loopback_n: 100_000,
            loopback_d: 1_000,
            case_budget: Duration::from_secs(120),
            content: content::ContentPlan::full(),
        }
    }

    fn quick() -> Self {
        Self {
            quick: true,
            warmup: 1,
            reps: 2,
            insert_n: 2_000,
            sync_sizes: vec![300, 3_000],
            bootstrap_sizes: vec![3_000],
            pure_sizes: vec![3_000],
            sweep_n: 2_000,
            sweep_reps: 1,
            loopback_n: 2_000,
            loopback_d: 200,
            case_budget: Duration::from_secs(10),
            content: content::ContentPlan::quick(),
        }
    }

    /// The largest size that is needed at all.
    fn max_n(&self) -> u64 {
        self.sync_sizes
            .iter()
            .chain(&self.bootstrap_sizes)
            .chain(&self.pure_sizes)
            .chain([&self.insert_n, &self.sweep_n, &(2 * self.loopback_n)])
            .copied()
            .max()
            .unwrap_or(0)
    }
}

/// Everything a workload needs.
pub(crate) struct Ctx {
    pub(crate) plan: Plan,
    pub(crate) cache: PathBuf,
    /// Scratch directory of this run (removed at the end).
    pub(crate) work: tempfile::TempDir,
    pub(crate) rt: tokio::runtime::Runtime,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        if args.get(1).map(String::as_str) == Some("loopback") {
            return loopback::child_main(&args[2..]);
        }
        if args.get(1).map(String::as_str) == Some("content") {
            return content::child_main(&args[2..]);
        }
        return sync::child_main(&args[1..]);
    }
    let mut quick = false;
    let mut out = None;
    let mut cache = None;
    let mut command = None;
    let mut only: Option<String> = None;
    let mut profile: Option<(u64, pure::Shape, usize)> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = it.next().map(PathBuf::from),
            "--cache" => cache = it.next().map(PathBuf::from),
            "--command" => command = it.next(),
            "--only" => only = it.next(),
            "--profile" => {
                let mut next = || it.next().context("--profile <n> <d | bootstrap> <runs>");
                let n = next()?.parse()?;
                let shape = match next()?.as_str() {
                    "bootstrap" => pure::Shape::Bootstrap,
                    d => pure::Shape::Diff(d.parse()?),
                };
                profile = Some((n, shape, next()?.parse()?));
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    let cache = cache.context("--cache <dir> is required")?;
    if let Some((n, shape, runs)) = profile {
        std::fs::create_dir_all(&cache)?;
        return pure::profile(&data::entries(&cache, n)?, shape, runs);
    }
    let out = out.context("--out <report.md> is required")?;
    let command = command.unwrap_or_else(|| "bench".to_string());
    std::fs::create_dir_all(&cache)?;
    let plan = if quick { Plan::quick() } else { Plan::full() };
    let ctx = Ctx {
        work: tempfile::Builder::new()
            .prefix("bench-run-")
            .tempdir_in(&cache)?,
        cache,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        plan,
    };
    let started = std::time::Instant::now();
    let mut report = Report::new(&command, ctx.plan.quick);
    report.load_before = load_average();

    progress(&format!(
        "signing or loading {} entries (cached in {})",
        ctx.plan.max_n(),
        ctx.cache.display()
    ));
    let entries = data::entries(&ctx.cache, ctx.plan.max_n())?;

    // `--only <name>` runs one group of workloads and merges its figures into the report.
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let rates = local::ed25519_rates(&ctx, &entries, &mut report)?;
    // The ingest group is measured against these rates, so it merges them too.
    if only.is_some() && only.as_deref() != Some("ingest") {
        report.forget();
    }
    if wanted("insert") {
        local::local_insert(&ctx, &mut report)?;
    }
    if wanted("ingest") {
        local::ingest(&ctx, &entries, &rates, &mut report)?;
    }
    if wanted("actor") {
        local::actor(&ctx, &mut report)?;
    }
    if wanted("memory") {
        pure::compare(&ctx, &entries, &mut report)?;
    }
    if wanted("sweep") {
        pure::sweep(&ctx, &entries, &rates, &mut report)?;
    }
    if wanted("sync") {
        sync::file_sync(&ctx, &entries, &mut report)?;
    }
    if wanted("fingerprint") {
        fingerprint::fingerprints(&ctx, &entries, &mut report)?;
    }
    if wanted("bootstrap") {
        sync::bootstrap(&ctx, &entries, &mut report)?;
    }
    if wanted("loopback") {
        loopback::loopback(&ctx, &entries, &mut report)?;
    }
    if wanted("content") {
        content::content(&ctx, &mut report)?;
    }
    drop(entries);

    report.load_after = load_average();
    report.finish(started.elapsed());
    // A `--only` run replaces its own sections and targets in an existing report and leaves
    // the rest of it alone.
    if only.is_some() {
        report.merge_into(&out)?;
    } else {
        report.write(&out)?;
    }
    progress(&format!(
        "wrote {} in {}",
        out.display(),
        stats::fmt_duration(started.elapsed())
    ));
    Ok(())
}

/// A progress line on stderr.
pub(crate) fn progress(s: &str) {
    eprintln!("bench: {s}");
}

/// The 1-, 5- and 15-minute load averages: other work on the machine shows up here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
