//! SIGKILL in the middle of writes and downloads: after a restart, every entry whose content
//! this node claims is complete reads back exactly, and every entry of its own has content.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn docsync(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docsync"));
    command.arg("--data-dir").arg(dir);
    command
}

fn ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = docsync(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The listed entries of the current document (or `doc`): (key, content here); `None` if the
/// node does not know the document.
fn listed_in(dir: &Path, doc: Option<&str>) -> Option<Vec<(String, bool)>> {
    let mut args = vec!["ls", "--json"];
    args.extend(doc.map(|d| ["--doc", d]).into_iter().flatten());
    let out = docsync(dir).args(&args).output().unwrap();
    if !out.status.success() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["content"] == "here",
            )
        })
        .collect::<Vec<_>>()
        .into()
}

fn listed(dir: &Path) -> Vec<(String, bool)> {
    listed_in(dir, None).expect("ls succeeds")
}

fn big_file(path: &Path, mib: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let data: Vec<u8> = (0..mib << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::File::create(path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    data
}

#[test]
fn a_kill_during_set_file_never_leaves_an_entry_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    ok(dir.path(), &["doc", "new"]);
    let mut written = std::collections::HashMap::new();
    // Kills land at different points of the import and the commit.
    for (round, delay_ms) in [30u64, 120, 250, 400, 700].into_iter().enumerate() {
        let path = files.path().join(format!("in-{round}.bin"));
        written.insert(format!("big/{round}"), big_file(&path, 48, round as u8));
        let mut child = docsync(dir.path())
            .args([
                "set",
                &format!("big/{round}"),
                "--file",
                path.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let entries = listed(dir.path());
    eprintln!("{} of 5 interrupted imports left an entry", entries.len());
    for (key, here) in entries {
        assert!(
            here,
            "{key}: an entry of ours whose content is not complete"
        );
        let got = ok(dir.path(), &["get", &key]);
        assert!(
            got == written[&key],
            "{key}: the content differs from what was written"
        );
    }
}

#[test]
fn a_kill_during_downloads_never_reports_partial_content_complete() {
    let (a, b, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    ok(a.path(), &["doc", "new"]);
    let mut written = std::collections::HashMap::new();
    for i in 0..4u8 {
        let path = files.path().join(format!("v{i}.bin"));
        written.insert(format!("v/{i}"), big_file(&path, 24, 10 + i));
        ok(
            a.path(),
            &["set", &format!("v/{i}"), "--file", path.to_str().unwrap()],
        );
    }
    let mut serve = docsync(a.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ticket = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut ticket)
        .unwrap();
    let ticket = ticket.trim().to_string();
    let doc = std::fs::read_to_string(a.path().join("current-doc")).unwrap();
    let mut checked = 0;

    for delay_ms in [300u64, 900, 1500, 2500, 4000] {
        let mut join = docsync(b.path())
            .args(["doc", "join", &ticket])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = join.kill();
        let _ = join.wait();
        // After each kill: whatever B claims to hold is exactly what A wrote.
        if let Some(entries) = listed_in(b.path(), Some(doc.trim())) {
            checked += 1;
            let here = entries.iter().filter(|(_, here)| *here).count();
            eprintln!(
                "killed after {delay_ms} ms: {} entries, {here} with content",
                entries.len()
            );
            for (key, here) in entries {
                let args = ["get", &key, "--doc", doc.trim()];
                let out = docsync(b.path()).args(args).output().unwrap();
                if here {
                    assert!(out.stdout == written[&key], "{key}: complete but wrong");
                } else {
                    assert_eq!(
                        out.status.code(),
                        Some(4),
                        "{key}: missing content exit code"
                    );
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no kill left a document to check: the delays are too short"
    );
    // A last join runs to its end and brings everything.
    ok(b.path(), &["doc", "join", &ticket]);
    for (key, value) in &written {
        assert!(
            &ok(b.path(), &["get", key]) == value,
            "{key} after the final join"
        );
    }
    let _ = serve.kill();
    let _ = serve.wait();
}
