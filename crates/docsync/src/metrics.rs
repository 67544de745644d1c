//! [`Metrics`]: the counters of a node's layers, as a struct and in the Prometheus text format,
//! and [`MetricsServer`], which serves that text on a local address.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Weak;
use std::time::Duration;

use sync_net::{DURATION_BUCKETS, NetMetricsSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::node::{Inner, Node};

/// The counters of a node at one moment: its network layer and its actor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Sessions, bytes, entries and session durations of the network layer.
    pub net: NetMetricsSnapshot,
    /// Sync sessions running now.
    pub sessions_running: u64,
    /// Requests, commits and entries of the actor (and with it the store).
    pub actor: sync_actor::Metrics,
}

impl Metrics {
    /// The counters in the Prometheus text exposition format (version 0.0.4): every family
    /// with its `# HELP` and `# TYPE` lines, names prefixed `docsync_`, counters ending in
    /// `_total`, the session durations as a histogram in seconds.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let n = &self.net;
        family(
            &mut out,
            "docsync_net_sessions_total",
            "counter",
            "Sync sessions that ended, by side (connect: we dialed) and result.",
        );
        for (side, result, value) in [
            ("connect", "ok", n.connect_ok),
            ("connect", "aborted", n.connect_aborted),
            ("connect", "failed", n.connect_failed),
            ("accept", "ok", n.accept_ok),
            ("accept", "aborted", n.accept_aborted),
            ("accept", "failed", n.accept_failed),
        ] {
            let _ = writeln!(
                out,
                "docsync_net_sessions_total{{side=\"{side}\",result=\"{result}\"}} {value}"
            );
        }
        family(
            &mut out,
            "docsync_net_sessions_running",
            "gauge",
            "Sync sessions running now.",
        );
        let _ = writeln!(
            out,
            "docsync_net_sessions_running {}",
            self.sessions_running
        );
        for (name, help, value) in [
            (
                "docsync_net_received_bytes_total",
                "Frame bytes received in sync sessions, length prefixes included.",
                n.bytes_received,
            ),
            (
                "docsync_net_sent_bytes_total",
                "Frame bytes sent in sync sessions, length prefixes included.",
                n.bytes_sent,
            ),
            (
                "docsync_net_entries_received_total",
                "Entries received from peers, stored or not.",
                n.entries_received,
            ),
            (
                "docsync_net_entries_sent_total",
                "Entries sent to peers.",
                n.entries_sent,
            ),
            (
                "docsync_net_entries_inserted_total",
                "Entries received from peers and stored.",
                n.entries_inserted,
            ),
            (
                "docsync_net_entries_rejected_total",
                "Entries received from peers that failed validation.",
                n.entries_rejected,
            ),
        ] {
            counter(&mut out, name, help, value);
        }
        histogram(
            &mut out,
            "docsync_net_session_duration_seconds",
            "Duration of finished sync sessions.",
            n,
        );
        let a = &self.actor;
        for (name, help, value) in [
            (
                "docsync_actor_requests_total",
                "Requests served by the actor.",
                a.requests,
            ),
            (
                "docsync_actor_requests_failed_total",
                "Requests that panicked inside the actor.",
                a.requests_failed,
            ),
            ("docsync_actor_commits_total", "Store commits.", a.commits),
            (
                "docsync_actor_commit_failures_total",
                "Store commits that failed.",
                a.commit_failures,
            ),
            (
                "docsync_actor_local_entries_total",
                "Entries written locally.",
                a.entries_local,
            ),
            (
                "docsync_actor_local_entry_content_bytes_total",
                "Content bytes described by entries written locally.",
                a.entries_local_bytes,
            ),
            (
                "docsync_actor_remote_entries_total",
                "Entries from peers that were stored.",
                a.entries_remote,
            ),
            (
                "docsync_actor_remote_entry_content_bytes_total",
                "Content bytes described by stored entries from peers.",
                a.entries_remote_bytes,
            ),
            (
                "docsync_actor_rejected_entries_total",
                "Entries from peers that failed validation in the actor.",
                a.entries_rejected,
            ),
        ] {
            counter(&mut out, name, help, value);
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, help: &str, n: &NetMetricsSnapshot) {
    family(out, name, "histogram", help);
    // The snapshot counts per bucket; Prometheus buckets are cumulative.
    let mut cumulative = 0u64;
    for (bound, count) in DURATION_BUCKETS.iter().zip(n.duration_buckets.iter()) {
        cumulative += count;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            seconds(*bound)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", n.duration_count);
    let _ = writeln!(out, "{name}_sum {}", seconds(n.duration_sum));
    let _ = writeln!(out, "{name}_count {}", n.duration_count);
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Serves `GET /metrics` of a node in the Prometheus text format on a local address. Stops
/// when dropped or with [`MetricsServer::shutdown`]; answers 503 once the node has stopped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// The longest request head read; longer requests are refused.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl MetricsServer {
    pub(crate) async fn bind(node: &Node, addr: SocketAddr) -> Result<Self, Error> {
        let failed = |source| Error::MetricsListen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(failed)?;
        let addr = listener.local_addr().map_err(failed)?;
        let node = std::sync::Arc::downgrade(&node.inner);
        let task = tokio::spawn(async move {
            loop {
                // An accept error concerns one connection (a peer reset, no descriptors for
                // a moment); the listener goes on.
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                tokio::spawn(answer(stream, node.clone()));
            }
        });
        Ok(Self { addr, task })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening; the address is free when this returns.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The listener is dropped with the task; the result is the abort itself.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head and answers it; the connection closes after the response.
async fn answer(mut stream: TcpStream, node: Weak<Inner>) {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        // Too long, cut off, or too slow: nothing worth answering.
        _ => return,
    };
    let mut parts = head.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => match node.upgrade() {
            Some(inner) => match (Node { inner }).metrics().await {
                Ok(metrics) => ("200 OK", metrics.to_prometheus()),
                Err(e) => ("503 Service Unavailable", format!("{e}\n")),
            },
            None => ("503 Service Unavailable", "the node has stopped\n".into()),
        },
        (_, "/metrics") => ("405 Method Not Allowed", "only GET\n".into()),
        _ => ("404 Not Found", "metrics are at /metrics\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may have gone; there is no one to tell.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request line of a request whose head (up to the blank line) fits in [`MAX_REQUEST`].
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    }
    let line = buf.split(|b| *b == b'\r').next()?;
    String::from_utf8(line.to_vec()).ok()
}
