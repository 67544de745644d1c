//! The programs in `examples/` run here: each example's body is included as a module and its
//! `run` called, so a test fails when an example stops working (not only when it stops
//! compiling).

#[path = "../../examples/two_peers.rs"]
#[allow(dead_code, unreachable_pub)]
mod two_peers;

#[path = "../../examples/persistent.rs"]
#[allow(dead_code, unreachable_pub)]
mod persistent;

#[tokio::test]
async fn two_peers_example_ends_identical() {
    let report = two_peers::run(7).await.unwrap();
    assert_eq!(report.entries, 14, "both peers hold both sides' entries");
    assert_eq!(report.received_by_bob, 7);
    assert_eq!(report.sent_by_bob, 7);
}

#[tokio::test]
async fn persistent_example_reads_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    persistent::run(dir.path()).await.unwrap();
    // The directory holds what the example says it does.
    for file in [
        docsync::STORE_FILE,
        docsync::NODE_KEY_FILE,
        docsync::CONTENT_DIR,
    ] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
}
