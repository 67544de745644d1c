//! The Prometheus endpoint, read with a raw TCP client.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use docsync::{Node, ShareMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 GET; the status line and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head.lines().next().unwrap().to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a content length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, body.to_string())
}

/// The samples of an exposition, by name with labels; checks that every family has its HELP
/// and TYPE lines before its samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut help = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help.insert(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let name = series.split('{').next().unwrap();
            assert!(name.starts_with("docsync_"), "{name}");
            let family = match types.get(name) {
                Some(_) => name,
                None => name
                    .strip_suffix("_bucket")
                    .or_else(|| name.strip_suffix("_sum"))
                    .or_else(|| name.strip_suffix("_count"))
                    .unwrap_or(name),
            };
            let kind = types
                .get(family)
                .unwrap_or_else(|| panic!("no TYPE for {name}"));
            assert!(help.contains(family), "no HELP for {name}");
            if kind == "counter" {
                assert!(
                    family.ends_with("_total"),
                    "counter {family} ends in _total"
                );
            }
            let previous = samples.insert(series.to_string(), value.parse::<f64>().unwrap());
            assert!(previous.is_none(), "{series} twice");
        }
    }
    samples
}

fn at(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing"))
}

#[tokio::test]
async fn prometheus_endpoint_counts_writes_and_syncs() {
    let alice = Node::memory().spawn().await.unwrap();
    let bob = Node::memory().spawn().await.unwrap();
    // Bob dials, so his counters are final when his sync call returns.
    let server = bob
        .serve_metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let before = parse(&body);
    let ok = "docsync_net_sessions_total{side=\"connect\",result=\"ok\"}";
    assert_eq!(at(&before, ok), 0.0);
    assert_eq!(at(&before, "docsync_actor_local_entries_total"), 0.0);
    assert_eq!(
        at(&before, "docsync_net_session_duration_seconds_count"),
        0.0
    );

    let doc = alice.create_doc().await.unwrap();
    let a = alice.default_author().await.unwrap();
    for i in 0..20 {
        doc.set(a, format!("a/{i}"), "from alice").await.unwrap();
    }
    let ticket = doc.share(ShareMode::Write).await.unwrap();
    let bdoc = bob.import_doc(ticket.capability.clone()).await.unwrap();
    let b = bob.default_author().await.unwrap();
    for i in 0..3 {
        bdoc.set(b, format!("b/{i}"), "from bob!").await.unwrap();
    }
    let finished = bdoc.sync_with(alice.addr()).await.unwrap();
    assert_eq!(finished.outcome.entries_inserted, 20);

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let after = parse(&body);
    assert_eq!(at(&after, ok), 1.0);
    assert_eq!(
        at(
            &after,
            "docsync_net_sessions_total{side=\"connect\",result=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(at(&after, "docsync_net_entries_inserted_total"), 20.0);
    assert_eq!(at(&after, "docsync_net_entries_sent_total"), 3.0);
    assert_eq!(at(&after, "docsync_actor_local_entries_total"), 3.0);
    assert_eq!(
        at(&after, "docsync_actor_local_entry_content_bytes_total"),
        27.0
    );
    assert_eq!(at(&after, "docsync_actor_remote_entries_total"), 20.0);
    assert_eq!(
        at(&after, "docsync_actor_remote_entry_content_bytes_total"),
        200.0
    );
    assert!(at(&after, "docsync_net_sent_bytes_total") > 0.0);
    assert!(
        at(&after, "docsync_net_received_bytes_total") > at(&after, "docsync_net_sent_bytes_total")
    );
    assert!(
        at(&after, "docsync_actor_requests_total") > at(&before, "docsync_actor_requests_total")
    );
    // The histogram: one session, cumulative buckets ending in +Inf = count.
    let h = "docsync_net_session_duration_seconds";
    assert_eq!(at(&after, &format!("{h}_count")), 1.0);
    assert_eq!(at(&after, &format!("{h}_bucket{{le=\"+Inf\"}}")), 1.0);
    assert!(at(&after, &format!("{h}_sum")) > 0.0);
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&format!("{h}_bucket{{le=\""))?;
            let le = le.strip_suffix("\"}")?;
            (le != "+Inf").then(|| (le.parse::<f64>().unwrap(), *v))
        })
        .collect();
    assert_eq!(buckets.len(), sync_net::DURATION_BUCKETS.len());
    buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    // Which bucket the session fell in depends on the machine; none can hold more than it.
    assert!(buckets.iter().all(|b| b.1 <= 1.0), "{buckets:?}");

    // Other paths and methods.
    assert_eq!(get(addr, "/").await.0, "HTTP/1.1 404 Not Found");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).await.unwrap();
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");

    // After the node stops, the endpoint says so instead of serving stale numbers.
    bob.shutdown().await.unwrap();
    assert_eq!(
        get(addr, "/metrics").await.0,
        "HTTP/1.1 503 Service Unavailable"
    );
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped listening"
    );
    alice.shutdown().await.unwrap();
}
