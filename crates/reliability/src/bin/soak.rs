//! `soak`: the load scenario in a loop. Each round writes fresh random entries on every node
//! and syncs every document between the hub and every peer until all converge; prints one
//! line of figures per round and a summary. Run through `cargo xtask soak --minutes N`.
//!
//! Flags: `--minutes N` (default 1), `--peers N` (8), `--docs N` (8), `--writes N` (entries
//! per node and document per round, 12), `--seed N` (1), `--max-rss-mib N` (fail if the peak
//! resident set exceeds it; default 2048).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reliability::load::{Cluster, LoadConfig, peak_rss_kib, rss_kib};

struct Args {
    minutes: f64,
    config: LoadConfig,
    max_rss_mib: u64,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        minutes: 1.0,
        config: LoadConfig::default(),
        max_rss_mib: 2048,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => args.minutes = value()?.parse().context("--minutes")?,
            "--peers" => args.config.peers = value()?.parse().context("--peers")?,
            "--docs" => args.config.docs = value()?.parse().context("--docs")?,
            "--writes" => args.config.writes_per_round = value()?.parse().context("--writes")?,
            "--seed" => args.config.seed = value()?.parse().context("--seed")?,
            "--max-rss-mib" => args.max_rss_mib = value()?.parse().context("--max-rss-mib")?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".to_string(), |k| format!("{:.0}", k as f64 / 1024.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse()?;
    let budget = Duration::from_secs_f64(args.minutes * 60.0);
    println!(
        "soak: {} peers, {} documents, {} writes per node and document per round, for {:.1} min",
        args.config.peers, args.config.docs, args.config.writes_per_round, args.minutes
    );
    let started = Instant::now();
    let mut cluster = Cluster::start(args.config.clone()).await?;
    let mut rounds = 0u64;
    let mut written = 0usize;
    let mut failed = 0usize;
    let mut peak = 0usize;
    let mut lost = 0usize;
    let first_rss = rss_kib();
    while started.elapsed() < budget {
        rounds += 1;
        let round_started = Instant::now();
        written += cluster.write().await?;
        // A round that does not converge within the waves, or takes over five minutes, is
        // a failure (a deadlock shows up here).
        let report = tokio::time::timeout(Duration::from_secs(300), cluster.converge())
            .await
            .context("a round did not finish within 5 minutes")??;
        failed += report.failed;
        peak = peak.max(report.peak_in_flight);
        lost += report.lost;
        let metrics = cluster.hub_metrics();
        println!(
            "round {rounds}: {} entries/doc, {} waves, {} sessions ({} failed, peak {} in flight), \
             sync {:.2}s, round {:.2}s, hub accepted {} ok / {} aborted / {} failed, rss {} MiB, peak {} MiB",
            report.entries_per_doc.iter().sum::<usize>() / report.entries_per_doc.len().max(1),
            report.waves,
            report.sessions,
            report.failed,
            report.peak_in_flight,
            report.sync_time.as_secs_f64(),
            round_started.elapsed().as_secs_f64(),
            metrics.accept_ok,
            metrics.accept_aborted,
            metrics.accept_failed,
            mib(rss_kib()),
            mib(peak_rss_kib()),
        );
        if let Some(peak) = peak_rss_kib()
            && peak / 1024 > args.max_rss_mib
        {
            bail!(
                "peak resident set {} MiB exceeds {} MiB",
                peak / 1024,
                args.max_rss_mib
            );
        }
    }
    let dialed = cluster.sessions_dialed();
    let accounted = cluster.settle(Duration::from_secs(10)).await;
    cluster.shutdown().await?;
    println!(
        "soak summary: {rounds} rounds in {:.1}s, {written} entries written, {dialed} sessions \
         dialed ({failed} failed, peak {peak} in flight), hub accounted for {accounted}, \
         entries lost {lost}, rss {} -> {} MiB (peak {} MiB)",
        started.elapsed().as_secs_f64(),
        mib(first_rss),
        mib(rss_kib()),
        mib(peak_rss_kib()),
    );
    if accounted != dialed as u64 {
        bail!("the hub accounted for {accounted} sessions, {dialed} were dialed");
    }
    if lost != 0 || failed != 0 {
        bail!("{lost} entries lost, {failed} sessions failed");
    }
    Ok(())
}
