//! The `docsync` command in separate processes over loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn docsync(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docsync"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run docsync")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = docsync(dir, args);
    assert!(
        out.status.success(),
        "docsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn serve_join_set_get_ls_del_across_processes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["set", "color", "blue"]);
    ok(a.path(), &["set", "tmp/x", "1"]);
    assert_eq!(ok(a.path(), &["get", "color"]), "blue");

    // Serve A in the background; its first line is the ticket.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_docsync"))
        .arg("--data-dir")
        .arg(a.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ticket = line.trim().to_string();
    assert!(ticket.starts_with("doc"), "{ticket}");

    let joined = ok(b.path(), &["doc", "join", &ticket]);
    assert!(joined.contains("2 entries received"), "{joined}");
    assert_eq!(
        ok(b.path(), &["ls", "--json"]).matches("\"key\"").count(),
        2
    );
    // The join fetched the content too: B prints the raw value, and its metadata in JSON.
    assert_eq!(ok(b.path(), &["get", "color"]), "blue");
    let got = ok(b.path(), &["get", "color", "--json"]);
    assert!(
        got.contains("\"len\":4") && got.contains("\"value\":\"blue\""),
        "{got}"
    );
    ok(b.path(), &["set", "shape", "round"]);
    let synced = ok(b.path(), &["sync", &ticket]);
    assert!(synced.contains("1 sent"), "{synced}");
    // Interrupt (Ctrl-C) the server: it commits and closes its store before exiting. (A SIGKILL
    // would lose the writes of the last commit window, by design: see sync-actor's docs.)
    let interrupted = Command::new("kill")
        .args(["-INT", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = serve.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on Ctrl-C: {status:?}"
    );

    // A now has B's entry; deleting on A removes A's entries under the prefix.
    let listed = ok(a.path(), &["ls"]);
    assert!(
        listed.contains("shape") && listed.contains("color"),
        "{listed}"
    );
    assert!(ok(a.path(), &["del", "tmp/"]).contains("deleted 1"));
    assert!(!ok(a.path(), &["ls"]).contains("tmp/x"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = docsync(dir.path(), &["get", "k"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no current document"));

    let out = docsync(dir.path(), &["doc", "join", "not-a-ticket"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid ticket"));

    let unknown = "55154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207";
    let out = docsync(dir.path(), &["get", "k", "--doc", unknown]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not known"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = docsync(dir.path(), &["get", "k", "--doc", "xyz"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid document id"));

    // A data directory that cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = docsync(&file.join("sub"), &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the data directory"));
}

#[test]
fn demo_with_a_small_n_ends_identical() {
    let out = Command::new(env!("CARGO_BIN_EXE_docsync"))
        .args(["demo", "--entries", "50", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["identical"], true);
    assert_eq!(summary["alice_entries"], 100);
    assert_eq!(summary["bob_entries"], 100);
}

#[test]
fn serve_with_metrics_answers_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["doc", "new"]);
    ok(dir.path(), &["set", "k", "v"]);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_docsync"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--metrics", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr says where the metrics are before it says it serves.
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("metrics at http://")
        .unwrap_or_else(|| panic!("{line}"));
    let addr = url.strip_suffix("/metrics").unwrap().to_string();
    // Once it says it serves, it handles Ctrl-C.
    line.clear();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "serving (Ctrl-C to stop)");

    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\r\nContent-Type: text/plain; version=0.0.4"));
    assert!(response.contains("\n# TYPE docsync_net_sessions_total counter\n"));
    // The write of the earlier `set` process is in the store, but counters start with the
    // process: no session and no write yet.
    assert!(response.contains("\ndocsync_net_sessions_total{side=\"accept\",result=\"ok\"} 0\n"));
    assert!(response.contains("\ndocsync_actor_local_entries_total 0\n"));

    let interrupted = Command::new("kill")
        .args(["-INT", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert!(serve.wait().unwrap().success());
}

#[test]
fn values_are_binary_safe_through_stdin_files_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["doc", "new"]);
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut set = Command::new(env!("CARGO_BIN_EXE_docsync"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["set", "from-stdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(&binary).unwrap();
    assert!(set.wait().unwrap().success());
    let got = docsync(dir.path(), &["get", "from-stdin"]);
    assert!(got.status.success());
    assert_eq!(
        got.stdout, binary,
        "raw bytes, no newline added off a terminal"
    );

    let file = dir.path().join("in.bin");
    std::fs::write(&file, &binary[..1000]).unwrap();
    ok(
        dir.path(),
        &["set", "from-file", "--file", file.to_str().unwrap()],
    );
    let out = dir.path().join("out.bin");
    ok(
        dir.path(),
        &["get", "from-file", "--out", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), &binary[..1000]);

    let listed = ok(dir.path(), &["ls"]);
    assert!(listed.contains("70000 B\there"), "{listed}");
    let missing = docsync(dir.path(), &["get", "no-such-key"]);
    assert_eq!(
        missing.status.code(),
        Some(3),
        "a missing key has its own exit code"
    );
}

#[test]
fn import_and_export_map_files_to_keys_and_refuse_escaping_keys() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("a/b")).unwrap();
    std::fs::write(tree.path().join("top.txt"), b"top").unwrap();
    std::fs::write(tree.path().join("a/b/deep.bin"), [0u8, 1, 2, 255]).unwrap();
    ok(dir.path(), &["doc", "new"]);
    let imported = ok(
        dir.path(),
        &[
            "import",
            tree.path().to_str().unwrap(),
            "--prefix",
            "files/",
        ],
    );
    assert!(imported.contains("imported 2 files"), "{imported}");
    assert_eq!(ok(dir.path(), &["get", "files/top.txt"]), "top");

    let target = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["export", "files/", target.path().to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(target.path().join("top.txt")).unwrap(),
        b"top"
    );
    assert_eq!(
        std::fs::read(target.path().join("a/b/deep.bin")).unwrap(),
        [0u8, 1, 2, 255]
    );

    // A key from a peer could name a path outside the directory: export refuses it.
    ok(dir.path(), &["set", "evil/../../escaped", "x"]);
    let out = docsync(
        dir.path(),
        &["export", "evil/", target.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no file"));
    assert!(!target.path().parent().unwrap().join("escaped").exists());
}
