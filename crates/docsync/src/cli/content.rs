//! `get`, `import` and `export`: content between documents, files and stdout.

use std::io::IsTerminal as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use docsync::{AuthorId, ContentStatus, Doc, Query, SignedEntry};
use indicatif::ProgressBar;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::{EXIT_CONTENT_MISSING, EXIT_NOT_FOUND, Output, entry_json, parse_author};

/// `get KEY`: the raw value to stdout (a newline added only on a terminal) or to `path`.
pub(crate) async fn get(
    doc: &Doc,
    key: &str,
    author: Option<&str>,
    path: Option<PathBuf>,
    wait: Option<u64>,
    out: &Output,
) -> Result<ExitCode> {
    let entry = match author {
        Some(a) => doc
            .get_exact(parse_author(a)?, key.to_string())
            .await?
            .map(|e| e.entry),
        None => doc.get_entry(key.to_string()).await?,
    };
    let Some(entry) = entry else {
        eprintln!("error: no entry at {key:?}");
        return Ok(ExitCode::from(EXIT_NOT_FOUND));
    };
    if let Some(seconds) = wait {
        let waited = tokio::time::timeout(Duration::from_secs(seconds), doc.wait_content(&entry));
        // A timeout leaves the status as it is: reported below.
        let _ = waited.await;
    }
    if doc.content_status(&entry).await? != ContentStatus::Complete {
        eprintln!(
            "error: the content of {key:?} ({} bytes, {}) is not on this node (yet); \
             `get --wait` waits for its download",
            entry.content_len(),
            entry.content_hash()
        );
        return Ok(ExitCode::from(EXIT_CONTENT_MISSING));
    }
    if out.json {
        let value = doc.read_to_bytes(&entry).await?;
        let mut shown = entry_json(&entry, true);
        shown["value"] = json!(String::from_utf8_lossy(&value));
        println!("{shown}");
        return Ok(ExitCode::SUCCESS);
    }
    match path {
        Some(path) => {
            doc.export(&entry, &path).await?;
        }
        None => write_stdout(doc, &entry).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn write_stdout(doc: &Doc, entry: &SignedEntry) -> Result<()> {
    let mut reader = doc.reader(entry).await?;
    let mut stdout = tokio::io::stdout();
    tokio::io::copy(&mut reader, &mut stdout)
        .await
        .context("writing the value to stdout")?;
    if std::io::stdout().is_terminal() {
        stdout.write_all(b"\n").await?;
    }
    stdout.flush().await?;
    Ok(())
}

/// `import DIR`: every file under `dir` at `prefix` + its relative path (`/`-separated).
pub(crate) async fn import(
    doc: &Doc,
    author: AuthorId,
    dir: &Path,
    prefix: &str,
    quiet: bool,
) -> Result<u64> {
    let files = files_under(dir)?;
    let bar = progress(files.len() as u64, "import", quiet);
    for file in &files {
        let relative = file.strip_prefix(dir).unwrap_or(file);
        let key = format!("{prefix}{}", key_of(relative)?);
        doc.set_file(author, key, file)
            .await
            .with_context(|| format!("importing {}", file.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(files.len() as u64)
}

/// `export PREFIX DIR`: every value under `prefix` to a file under `dir`.
pub(crate) async fn export(doc: &Doc, prefix: &str, dir: &Path, out: &Output) -> Result<ExitCode> {
    let entries = doc
        .query(Query::latest_per_key().with_key_prefix(prefix.to_string()))
        .await?;
    let bar = progress(entries.len() as u64, "export", out.json);
    let (mut written, mut missing) = (0u64, 0u64);
    for entry in &entries {
        let target = dir.join(path_of(&entry.key()[prefix.len()..])?);
        if doc.content_status(entry).await? != ContentStatus::Complete {
            eprintln!("missing content: {}", target.display());
            missing += 1;
            continue;
        }
        doc.export(entry, &target).await?;
        written += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.print(
        format!("exported {written} files, {missing} with content not here"),
        json!({ "exported": written, "missing": missing }),
    );
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CONTENT_MISSING)
    })
}

fn progress(len: u64, what: &str, hidden: bool) -> ProgressBar {
    let bar = crate::bar(len, what, hidden);
    // Shown only for work that lasts: a bar that would flash by stays hidden.
    bar.enable_steady_tick(Duration::from_secs(1));
    bar
}

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let listing =
            std::fs::read_dir(&next).with_context(|| format!("reading {}", next.display()))?;
        for item in listing {
            let item = item?;
            let kind = item.file_type()?;
            if kind.is_dir() {
                pending.push(item.path());
            } else if kind.is_file() {
                files.push(item.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The key of a relative path: its components joined by `/`.
fn key_of(relative: &Path) -> Result<String> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    match parts {
        Some(parts) => Ok(parts.join("/")),
        None => bail!("{} is not a plain UTF-8 relative path", relative.display()),
    }
}

/// The relative path a key names under the export directory. Keys come from peers: one that
/// would leave the directory (`..`, absolute, empty parts) is refused.
fn path_of(key: &[u8]) -> Result<PathBuf> {
    let text = std::str::from_utf8(key).context("a key that is not UTF-8 names no file")?;
    let mut path = PathBuf::new();
    for part in text.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.contains('\\')
            || part.contains('\0')
        {
            bail!("the key {text:?} names no file inside the export directory");
        }
        path.push(part);
    }
    Ok(path)
}
