//! Two nodes over loopback (issues 6 and 8): a docsync pair and an iroh-docs 0.101 pair, each
//! two full nodes on offline iroh endpoints in one child process, syncing one document over
//! QUIC on 127.0.0.1.
//!
//! The parent prepares the store files of both nodes (entries signed once and cached, see
//! `data.rs`; nothing is signed while timed), then runs every repetition in a fresh child
//! process (`bench --child loopback ...`), which opens the two stores, starts the two nodes,
//! resets its peak-RSS mark, dials, waits until both sides report the session done, reads the
//! bytes its endpoints counted, checks that both nodes hold exactly the expected entry set
//! (count and digest) and prints one result line. The whole program runs inside a
//! loopback-only network namespace (`cargo xtask bench` puts it there).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use interop_tests::nodes::{ConnectionLog, OurNode, RefNode, counted_endpoint};
use iroh_docs::engine::{LiveEvent, SyncEvent};
use n0_future::StreamExt as _;
use sync_actor::{ActorConfig, SyncHandle};
use sync_core::{Capability, ContentHash, SignedEntry, Store};
use sync_net::SyncProtocol;
use sync_store_redb::RedbStore;

use crate::data::{diff_sets, namespace};
use crate::peers::{Theirs, run_session};
use crate::report::{Report, Target, table};
use crate::stats::{Timings, fmt_bytes, fmt_rate};
use crate::sync::{copy_to, mib, ours_base_at, status_kb, their_id, theirs_base_at, theirs_insert};
use crate::{Ctx, progress};

/// How long a child waits for a session before it gives up.
const SESSION_WAIT: Duration = Duration::from_secs(900);

/// How long a finished session's connection is given to close, so that its close sequence is
/// counted (not timed).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the two nodes hold before the session.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The same `n` entries on both, plus `d / 2` entries only on A and `d - d / 2` only on B.
    Diff(u64),
    /// `n` entries on each node, none shared: each side lacks all of the other's.
    Disjoint,
}

impl Shape {
    fn label(self, n: u64) -> String {
        match self {
            Self::Diff(d) => format!("N = {n}, d = {d}"),
            Self::Disjoint => format!("disjoint, {n} + {n}"),
        }
    }
}

/// An order-independent digest of an entry set: the XOR of a hash of each entry's identity and
/// record (author, key, timestamp, content hash, content length). Signatures are not part of
/// it: both nodes verified them on the way in, and they are deterministic for a given record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Digest {
    count: u64,
    xor: [u8; 32],
}

impl Digest {
    fn add(&mut self, author: &[u8], key: &[u8], timestamp: u64, hash: &[u8], len: u64) {
        let mut buf = Vec::with_capacity(32 + key.len() + 48 + 8);
        buf.extend_from_slice(author);
        buf.extend_from_slice(&(key.len() as u64).to_be_bytes());
        buf.extend_from_slice(key);
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(hash);
        buf.extend_from_slice(&len.to_be_bytes());
        let h = ContentHash::of(&buf);
        for (x, b) in self.xor.iter_mut().zip(h.as_bytes()) {
            *x ^= b;
        }
        self.count += 1;
    }

    fn add_ours(&mut self, e: &SignedEntry) {
        self.add(
            e.author().as_bytes(),
            e.key(),
            e.timestamp(),
            e.content_hash().as_bytes(),
            e.content_len(),
        );
    }

    fn of(entries: &[&[SignedEntry]]) -> Self {
        let mut d = Self::default();
        for e in entries.iter().flat_map(|s| s.iter()) {
            d.add_ours(e);
        }
        d
    }

    fn hex(&self) -> String {
        let mut s = format!("{}:", self.count);
        for b in self.xor {
            s += &format!("{b:02x}");
        }
        s
    }
}

/// What one child run measured.
#[derive(Debug, Clone, Default)]
struct Run {
    time: Duration,
    /// UDP bytes of the sync protocol's connections, as A's endpoint counted them.
    wire_a_to_b: u64,
    wire_b_to_a: u64,
    /// Sync connections between the two during the run.
    sync_connections: u64,
    /// UDP bytes of every connection of A (gossip and blobs included, for the reference).
    wire_all: u64,
    /// docsync only: frame bytes of the session (both directions, length prefixes included).
    payload: u64,
    /// docsync only: frames of the session (both directions).
    messages: u64,
    /// Entries each side took in (docsync: from the session outcomes; iroh-docs: filled in
    /// by the parent from the entry counts before and after).
    inserted_a: u64,
    inserted_b: u64,
    /// docsync: sessions B reported as failed before the successful one. iroh-docs: nodes
    /// whose `SyncFinished` reported an error (the close race, protocol notes §11).
    failed_sessions: u64,
    peak_kb: u64,
    before_kb: u64,
    reset: bool,
}

impl Run {
    fn to_line(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.time.as_nanos(),
            self.wire_a_to_b,
            self.wire_b_to_a,
            self.sync_connections,
            self.wire_all,
            self.payload,
            self.messages,
            self.inserted_a,
            self.inserted_b,
            self.failed_sessions,
            self.peak_kb,
            self.before_kb,
            u8::from(self.reset)
        )
    }

    fn from_line(line: &str) -> Result<Self> {
        let v: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [
            time,
            ab,
            ba,
            conns,
            all,
            payload,
            messages,
            ia,
            ib,
            failed,
            peak,
            before,
            reset,
        ] = v[..]
        else {
            bail!("loopback child: bad result line {line}");
        };
        Ok(Self {
            time: Duration::from_nanos(time),
            wire_a_to_b: ab,
            wire_b_to_a: ba,
            sync_connections: conns,
            wire_all: all,
            payload,
            messages,
            inserted_a: ia,
            inserted_b: ib,
            failed_sessions: failed,
            peak_kb: peak,
            before_kb: before,
            reset: reset == 1,
        })
    }

    fn wire(&self) -> u64 {
        self.wire_a_to_b + self.wire_b_to_a
    }
}

/// Resets the peak-RSS mark; whether that worked.
pub(crate) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `bench --child loopback <ours|theirs> <store a> <store b> <expected digest>`
pub(crate) fn child_main(args: &[String]) -> Result<()> {
    let [imp, a, b, expected] = args else {
        bail!("loopback child: bad arguments {args:?}");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (run, digests) = match imp.as_str() {
        "ours" => rt.block_on(child_ours(Path::new(a), Path::new(b)))?,
        "theirs" => rt.block_on(child_theirs(Path::new(a), Path::new(b)))?,
        other => bail!("loopback child: unknown implementation {other}"),
    };
    for (side, d) in ["A", "B"].iter().zip(digests) {
        ensure!(
            d.hex() == *expected,
            "{imp}: node {side} holds {} after the session, expected {expected} \
             (entry count:digest): the nodes did not converge",
            d.hex()
        );
    }
    println!("{}", run.to_line());
    Ok(())
}

/// Both of our nodes over `RedbStore` files, with the default actor configuration and limits.
async fn child_ours(a: &Path, b: &Path) -> Result<(Run, [Digest; 2])> {
    let ns = namespace();
    let id = ns.id();
    let mut nodes = Vec::new();
    let mut logs: Vec<ConnectionLog> = Vec::new();
    for path in [a, b] {
        let (endpoint, log) = counted_endpoint().await?;
        let handle = SyncHandle::spawn(RedbStore::persistent(path)?, ActorConfig::default());
        let mut node = OurNode::with_protocol(SyncProtocol::new(endpoint, handle));
        node.join(&ns, true).await?;
        nodes.push(node);
        logs.push(log);
    }
    let (na, nb) = (&nodes[0], &nodes[1]);
    let mut reports = nb.sync.subscribe();
    let mut run = Run {
        before_kb: status_kb("VmRSS:"),
        reset: reset_peak(),
        ..Run::default()
    };
    let since = Instant::now();
    let dialed = na
        .sync
        .connect_and_sync(id, nb.addr.clone())
        .await
        .context("docsync: the dial failed")?;
    let accepted = loop {
        let report = tokio::time::timeout(SESSION_WAIT, reports.recv())
            .await
            .context("docsync: node B reports no session in time")??;
        match report.as_ref() {
            Ok(finished) => break finished.clone(),
            Err(e) => {
                eprintln!("docsync: a session failed on B: {e}");
                run.failed_sessions += 1;
            }
        }
    };
    run.time = since.elapsed();
    run.peak_kb = status_kb("VmHWM:");
    let o = &dialed.outcome;
    ensure!(
        o.entries_rejected == 0 && accepted.outcome.entries_rejected == 0,
        "docsync: entries rejected ({} on A, {} on B)",
        o.entries_rejected,
        accepted.outcome.entries_rejected
    );
    run.payload = o.bytes_sent + o.bytes_received;
    run.messages = o.frames_sent + o.frames_received;
    run.inserted_a = o.entries_inserted;
    run.inserted_b = accepted.outcome.entries_inserted;
    let done = since + run.time;
    fill_wire(&mut run, &logs[0], since, done).await;
    let mut digests = [Digest::default(); 2];
    for (node, d) in nodes.iter().zip(&mut digests) {
        for e in node.entries(id).await? {
            d.add_ours(&e);
        }
    }
    for node in nodes {
        node.shutdown().await?;
    }
    Ok((run, digests))
}

/// The bytes A's endpoint counted on connections opened between `since` and `done` (a
/// connection opened after both nodes reported the session done belongs to no measured
/// session).
async fn fill_wire(run: &mut Run, log: &ConnectionLog, since: Instant, done: Instant) {
    // Our pair negotiates the compact encoding, a reference pair `/iroh-sync/1`: both count.
    for alpn in [sync_net::ALPN, sync_net::COMPACT_ALPN] {
        let sync = log.wire_bytes(Some(alpn), since..done, CLOSE_GRACE).await;
        run.wire_a_to_b += sync.sent;
        run.wire_b_to_a += sync.received;
        run.sync_connections += sync.connections;
    }
    let all = log.wire_bytes(None, since..done, Duration::ZERO).await;
    run.wire_all = all.sent + all.received;
}

/// Consumes `doc`'s events until its first `SyncFinished`, successful or not: between two
/// reference nodes the dialer often records a complete exchange as failed because the
/// accepting node drops the connection before the close sequence ends (protocol notes §11).
/// Whether the exchange was complete is checked afterwards on the entry sets. Every event is
/// read at once: the reference's actor waits for slow subscribers.
async fn first_finished(
    doc: &iroh_docs::api::Doc,
) -> Result<tokio::task::JoinHandle<Result<SyncEvent>>> {
    let mut events = doc.subscribe().await?;
    Ok(tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let LiveEvent::SyncFinished(e) = event? {
                return Ok(e);
            }
        }
        bail!("iroh-docs: the event stream ended")
    }))
}

/// Two iroh-docs 0.101 nodes (engine, gossip, blobs behind a router) over `Store::persistent`
/// files; content downloads are switched off (no node has any content, and ours fetches none).
async fn child_theirs(a: &Path, b: &Path) -> Result<(Run, [Digest; 2])> {
    let ns = namespace();
    let mut nodes = Vec::new();
    let mut logs = Vec::new();
    let mut docs = Vec::new();
    for path in [a, b] {
        let (endpoint, log) = counted_endpoint().await?;
        let node = RefNode::spawn_on(endpoint, iroh_docs::store::Store::persistent(path)?).await?;
        let doc = node.import(&ns).await?;
        doc.set_download_policy(iroh_docs::store::DownloadPolicy::NothingExcept(vec![]))
            .await?;
        nodes.push(node);
        logs.push(log);
        docs.push(doc);
    }
    // B accepts sessions for the document once it is in its sync set (no peers to dial).
    docs[1].start_sync(vec![]).await?;
    let watch_a = first_finished(&docs[0]).await?;
    let watch_b = first_finished(&docs[1]).await?;
    let mut run = Run {
        before_kb: status_kb("VmRSS:"),
        reset: reset_peak(),
        ..Run::default()
    };
    let since = Instant::now();
    docs[0].start_sync(vec![nodes[1].addr.clone()]).await?;
    let mut events = Vec::new();
    for watch in [watch_a, watch_b] {
        events.push(
            tokio::time::timeout(SESSION_WAIT, watch)
                .await
                .context("iroh-docs: a node reports no sync in time")???,
        );
    }
    run.time = since.elapsed();
    run.peak_kb = status_kb("VmHWM:");
    for event in &events {
        if let Err(why) = &event.result {
            eprintln!("iroh-docs: a node reports its session as failed: {why}");
            run.failed_sessions += 1;
        }
    }
    let done = since + run.time;
    fill_wire(&mut run, &logs[0], since, done).await;
    let mut digests = [Digest::default(); 2];
    for (doc, d) in docs.iter().zip(&mut digests) {
        let query = iroh_docs::store::Query::all().include_empty().build();
        let mut stream = std::pin::pin!(doc.get_many(query).await?);
        while let Some(e) = stream.next().await {
            let e = e?;
            d.add(
                e.author().as_bytes(),
                e.key(),
                e.timestamp(),
                e.content_hash().as_bytes(),
                e.content_len(),
            );
        }
    }
    drop(docs);
    for node in nodes {
        node.shutdown().await?;
    }
    Ok((run, digests))
}

fn run_child(ctx: &Ctx, imp: &str, a: &Path, b: &Path, expected: &Digest) -> Result<Run> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["--child", "loopback", imp])
        .arg(a)
        .arg(b)
        .arg(expected.hex())
        .current_dir(ctx.work.path())
        .output()?;
    if !out.status.success() {
        bail!(
            "loopback child ({imp}) failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("loopback child printed no result")?;
    Run::from_line(line)
}

/// Our store file: a copy of `base` with `extra` inserted.
fn prepare_ours(ctx: &Ctx, base: &Path, extra: &[SignedEntry], name: &str) -> Result<PathBuf> {
    let path = copy_to(ctx, base, name)?;
    if !extra.is_empty() {
        let mut store = RedbStore::persistent(&path)?;
        store.import_namespace(Capability::Write(namespace()))?;
        for e in extra {
            store.insert(e.clone())?;
        }
        store.close()?;
    }
    Ok(path)
}

/// The reference's store file: a copy of `base` with `extra` inserted (verified, as a remote
/// entry: the reference has no other way in).
fn prepare_theirs(ctx: &Ctx, base: &Path, extra: &[SignedEntry], name: &str) -> Result<PathBuf> {
    let path = copy_to(ctx, base, name)?;
    if !extra.is_empty() {
        let mut store = iroh_docs::store::Store::persistent(&path)?;
        {
            let mut replica = store.open_replica(&their_id())?;
            theirs_insert(ctx, &mut replica, extra)?;
        }
        store.close_replica(their_id());
        store.flush()?;
    }
    Ok(path)
}

/// The messages and bytes of the reference's session, counted by replaying it in process on
/// copies of the same two stores with the calls its network layer makes (`peers::Theirs`): the
/// reference reports neither. The exchange is deterministic for given stores.
fn replay_theirs(ctx: &Ctx, a: &Path, b: &Path) -> Result<(u64, u64)> {
    let pa = copy_to(ctx, a, "loop-replay-a.redb")?;
    let pb = copy_to(ctx, b, "loop-replay-b.redb")?;
    let stats = {
        let mut sa = iroh_docs::store::Store::persistent(&pa)?;
        let mut sb = iroh_docs::store::Store::persistent(&pb)?;
        let stats = {
            let mut peer_a = Theirs::new(sa.open_replica(&their_id())?, &ctx.rt, 1);
            let mut peer_b = Theirs::new(sb.open_replica(&their_id())?, &ctx.rt, 2);
            run_session(&mut peer_a, &mut peer_b)?
        };
        sa.close_replica(their_id());
        sb.close_replica(their_id());
        stats
    };
    std::fs::remove_file(pa)?;
    std::fs::remove_file(pb)?;
    // Each message travels in a frame with a 4-byte length prefix, as ours are counted.
    Ok((stats.messages, stats.bytes + 4 * stats.messages))
}

/// The measured runs of one implementation on one shape.
struct Series {
    timings: Timings,
    last: Run,
    peak_kb: u64,
    /// (messages, payload bytes): ours from the session, the reference's from the replay.
    messages: u64,
    payload: u64,
    /// Runs (warm-up included), and runs in which a node reported its session as failed.
    runs: u64,
    failed_runs: u64,
}

fn series(
    ctx: &Ctx,
    imp: &str,
    label: &str,
    prepared: (&Path, &Path),
    expected: &Digest,
    needed: (u64, u64),
    reps: usize,
) -> Result<Series> {
    let mut timings = Timings::default();
    let mut peaks = Vec::new();
    let mut last = Run::default();
    let (mut runs, mut failed_runs) = (0, 0);
    let spent = Instant::now();
    let total = ctx.plan.warmup + reps;
    for i in 0..total {
        progress(&format!(
            "two nodes over loopback, {label}: {imp}, run {} of {total}",
            i + 1
        ));
        let a = copy_to(ctx, prepared.0, &format!("loop-run-{imp}-a.redb"))?;
        let b = copy_to(ctx, prepared.1, &format!("loop-run-{imp}-b.redb"))?;
        let mut run = run_child(ctx, imp, &a, &b, expected)?;
        std::fs::remove_file(a)?;
        std::fs::remove_file(b)?;
        if imp == "ours" {
            ensure!(
                (run.inserted_a, run.inserted_b) == needed,
                "docsync: the nodes took in {} and {} entries, expected {} and {}",
                run.inserted_a,
                run.inserted_b,
                needed.0,
                needed.1
            );
        } else {
            // The child checked the entry sets, so each node took in what it lacked.
            (run.inserted_a, run.inserted_b) = needed;
        }
        runs += 1;
        if run.failed_sessions > 0 {
            failed_runs += 1;
        }
        if i >= ctx.plan.warmup {
            timings.push(run.time);
            peaks.push(run.peak_kb);
        }
        last = run;
        if spent.elapsed() > ctx.plan.case_budget && !timings.runs.is_empty() {
            break;
        }
    }
    peaks.sort_unstable();
    Ok(Series {
        timings,
        peak_kb: peaks.get(peaks.len() / 2).copied().unwrap_or(0),
        messages: last.messages,
        payload: last.payload,
        last,
        runs,
        failed_runs,
    })
}

fn rate(entries: u64, t: &Timings) -> String {
    t.median().map_or_else(
        || "–".to_string(),
        |m| fmt_rate(entries as f64 / m.as_secs_f64().max(1e-9)),
    )
}

/// Two nodes over loopback at `N` (issue 6: 100k), d differences and the disjoint case, for
/// docsync and iroh-docs in the same run.
pub(crate) fn loopback(ctx: &Ctx, entries: &[SignedEntry], report: &mut Report) -> Result<()> {
    let n = ctx.plan.loopback_n;
    let d = ctx.plan.loopback_d;
    ensure!(
        entries.len() as u64 >= 2 * n,
        "loopback needs {} entries, {} loaded",
        2 * n,
        entries.len()
    );
    let first = &entries[..n as usize];
    let second = &entries[n as usize..2 * n as usize];
    let reps = ctx.plan.reps.min(3);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for shape in [Shape::Diff(d), Shape::Disjoint] {
        let label = shape.label(n);
        let (extra_a, extra_b, second_base) = match shape {
            Shape::Diff(d) => {
                let (a, b) = diff_sets(d, 1).into_iter().next().unwrap_or_default();
                (a, b, None)
            }
            Shape::Disjoint => (Vec::new(), Vec::new(), Some(second)),
        };
        let expected = match second_base {
            None => Digest::of(&[first, &extra_a, &extra_b]),
            Some(second) => Digest::of(&[first, second]),
        };
        progress(&format!(
            "two nodes over loopback, {label}: preparing the stores"
        ));
        let ours_a = ours_base_at(ctx, first, 0)?;
        let theirs_a = theirs_base_at(ctx, first, 0)?;
        let (ours_b, theirs_b) = match second_base {
            None => (ours_a.clone(), theirs_a.clone()),
            Some(second) => (
                ours_base_at(ctx, second, n)?,
                theirs_base_at(ctx, second, n)?,
            ),
        };
        let oa = prepare_ours(ctx, &ours_a, &extra_a, "loop-ours-a.redb")?;
        let ob = prepare_ours(ctx, &ours_b, &extra_b, "loop-ours-b.redb")?;
        let ta = prepare_theirs(ctx, &theirs_a, &extra_a, "loop-theirs-a.redb")?;
        let tb = prepare_theirs(ctx, &theirs_b, &extra_b, "loop-theirs-b.redb")?;

        // What each node lacks at the start.
        let needed = match second_base {
            None => (extra_b.len() as u64, extra_a.len() as u64),
            Some(second) => (second.len() as u64, first.len() as u64),
        };
        let ours = series(ctx, "ours", &label, (&oa, &ob), &expected, needed, reps)?;
        let mut theirs = series(ctx, "theirs", &label, (&ta, &tb), &expected, needed, reps)?;
        progress(&format!(
            "two nodes over loopback, {label}: counting the reference's messages (replay)"
        ));
        (theirs.messages, theirs.payload) = replay_theirs(ctx, &ta, &tb)?;
        for p in [oa, ob, ta, tb] {
            std::fs::remove_file(p)?;
        }

        let speed = crate::pure::ratio(&theirs.timings, &ours.timings);
        let bytes = ours.last.wire() as f64 / theirs.last.wire().max(1) as f64;
        for (name, s, note) in [
            (
                "docsync",
                &ours,
                speed.map_or(String::new(), |r| {
                    format!("{r:.2}× faster, {bytes:.2}× the wire bytes")
                }),
            ),
            ("iroh-docs 0.101", &theirs, String::new()),
        ] {
            let r = &s.last;
            let mut notes: Vec<String> = vec![note];
            if r.sync_connections != 1 {
                notes.push(format!(
                    "{} sync connections opened before both nodes were done (follow-up \
                     sessions the nodes started themselves; their bytes are counted)",
                    r.sync_connections
                ));
            }
            if s.failed_runs > 0 {
                notes.push(format!(
                    "in {} of {} runs a node reported the session as failed, yet the entry \
                     sets were complete (the close race, protocol notes §11)",
                    s.failed_runs, s.runs
                ));
            }
            if !r.reset {
                notes.push("high-water mark not reset: the peak includes the setup".into());
            }
            notes.retain(|n| !n.is_empty());
            let note = notes.join("; ");
            rows.push(vec![
                name.to_string(),
                label.clone(),
                s.timings.describe(),
                format!("{} ({} messages)", s.messages.div_ceil(2), s.messages),
                fmt_bytes(r.wire_a_to_b),
                fmt_bytes(r.wire_b_to_a),
                fmt_bytes(s.payload),
                fmt_bytes(r.wire_all),
                mib(s.peak_kb),
                format!(
                    "{} → A ({}), {} → B ({})",
                    r.inserted_a,
                    rate(r.inserted_a, &s.timings),
                    r.inserted_b,
                    rate(r.inserted_b, &s.timings)
                ),
                note,
            ]);
        }
        let speed_v = speed.unwrap_or(0.0);
        targets.push(Target {
            name: format!("Two nodes over loopback, {label}: ≥ 5× faster than iroh-docs"),
            measured: format!(
                "{speed_v:.2}× ({} vs {})",
                ours.timings.describe(),
                theirs.timings.describe()
            ),
            met: speed.map(|s| s >= 5.0),
        });
        targets.push(Target {
            name: format!("Two nodes over loopback, {label}: ≤ 1/2 of iroh-docs' bytes"),
            measured: format!(
                "{bytes:.2}× the wire bytes ({} vs {}, both directions)",
                fmt_bytes(ours.last.wire()),
                fmt_bytes(theirs.last.wire())
            ),
            met: Some(bytes <= 0.5),
        });
    }
    let body = format!(
        "Two nodes of each implementation in one child process per run, on offline iroh \
         endpoints (loopback only, dialed by direct address) inside a loopback-only network \
         namespace; both nodes of a pair use file stores (docsync: `SyncHandle` over \
         `RedbStore::persistent`, served by `sync_net::SyncProtocol` with default limits and \
         actor configuration; iroh-docs: a full node — engine, gossip, blobs — over \
         `Store::persistent`, content downloads switched off since no node has content). \
         Node A dials node B (docsync: `connect_and_sync`; iroh-docs: B joins the document \
         with `start_sync([])`, A calls `start_sync([B])`). The time runs from the dial until \
         both nodes report the session done (docsync: A's `connect_and_sync` returns and B's \
         accept report arrives; iroh-docs: the first `SyncFinished` event on each node, successful or not — see the \
         notes), \
         then both nodes' entry sets are checked against the expected count and digest, and \
         a mismatch fails the benchmark.\n\n\
         Shapes: \"d = {d}\" — both nodes hold the same N = {n} entries, A has {} more and B \
         {} more that the other lacks; \"disjoint\" — A holds N entries, B another N, none \
         shared, so each node takes in N. Store setup is not timed; entries are signed once \
         and cached.\n\n\
         Two docsync nodes negotiate the compact encoding of the same messages \
         (`/docsync/1`, docs/protocol.md §2.1); iroh-docs speaks `/iroh-sync/1`. \
         Wire bytes are UDP payload bytes of the sync protocol's QUIC connections \
         (either ALPN; QUIC headers, handshake, acknowledgements and close included) as \
         node A's endpoint counted them (`ConnectionStats` read at close through an endpoint \
         hook), per direction; \"all protocols\" adds the reference's gossip connection. \
         \"Sync payload\" is the frames' bytes (4-byte length prefixes included): docsync's \
         from its session outcome, the reference's counted by replaying the same session in \
         process (its network layer's calls on copies of the same stores; it reports no byte \
         or message counts of its own), as are its messages. Round trips are messages / 2, \
         rounded up. Peak RSS is the process's high-water mark (`VmHWM`, reset with \
         `/proc/self/clear_refs` just before the dial) for both nodes of the pair together. \
         Ingest: entries each node took in, per second of the whole session. Figures other \
         than time are from the last run.\n\n{}",
        d / 2,
        d - d / 2,
        table(
            &[
                "implementation",
                "case",
                "median time",
                "round trips",
                "wire A → B",
                "wire B → A",
                "sync payload",
                "all protocols",
                "peak RSS",
                "ingest",
                "note",
            ],
            rows,
        )
    );
    report.section(
        &format!("Two nodes over loopback (N = {n}: d = {d}, disjoint)"),
        &body,
    );
    for t in targets {
        report.target(t);
    }
    Ok(())
}
