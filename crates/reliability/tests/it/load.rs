//! The load scenario once: one hub, 8 peers, 8 documents, 64 sessions in flight per wave,
//! until every document converges on every node. Bounded in time (a deadlock fails the test
//! instead of hanging it) and in memory (the process's peak resident set).

use std::time::Duration;

use reliability::load::{Cluster, LoadConfig, peak_rss_kib};

/// A generous bound on the peak resident set of the whole test binary (which also runs the
/// fuzz and fault tests in parallel threads).
const MAX_PEAK_RSS_MIB: u64 = 2048;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hub_serves_many_peers_until_everything_converges() {
    let config = LoadConfig::default();
    assert!(config.peers >= 8 && config.peers * config.docs >= 64);
    let outcome = tokio::time::timeout(Duration::from_secs(240), async {
        let mut cluster = Cluster::start(config.clone()).await?;
        let mut reports = Vec::new();
        // Two rounds: the second overwrites keys of the first on every node.
        for _ in 0..2 {
            let written = cluster.write().await?;
            let report = cluster.converge().await?;
            reports.push((written, report));
        }
        let accounted = cluster.settle(Duration::from_secs(20)).await;
        let dialed = cluster.sessions_dialed();
        let metrics = cluster.hub_metrics();
        cluster.shutdown().await?;
        anyhow::Ok((reports, accounted, dialed, metrics))
    })
    .await;
    let (reports, accounted, dialed, metrics) = outcome
        .expect("the scenario finishes within its time bound (no deadlock)")
        .expect("the scenario runs");
    for (written, report) in &reports {
        eprintln!("load: {written} entries written, {report:?}");
        assert_eq!(report.lost, 0, "entries lost");
        assert_eq!(report.failed, 0, "every session succeeds");
        assert_eq!(
            report.peak_in_flight,
            config.peers * config.docs,
            "a whole wave is in flight at once"
        );
        assert_eq!(report.entries_per_doc.len(), config.docs);
        assert!(report.entries_per_doc.iter().all(|&n| n > 0));
    }
    eprintln!(
        "load: {dialed} sessions dialed, hub accounted for {accounted} ({metrics:?}), peak rss {:?} KiB",
        peak_rss_kib()
    );
    assert_eq!(
        accounted, dialed as u64,
        "every session is accounted for at the hub"
    );
    assert_eq!(
        metrics.accept_ok, dialed as u64,
        "every accepted session succeeded"
    );
    if let Some(peak) = peak_rss_kib() {
        assert!(
            peak / 1024 < MAX_PEAK_RSS_MIB,
            "peak resident set {} MiB",
            peak / 1024
        );
    }
}
