//! `docsync`: the command-line tool of docsync.
//!
//! Every command works on a data directory (`--data-dir`, default: the platform's data
//! directory, see `docsync --help`). Commands that name no document use the current one, set
//! by `doc new`, `doc join` and `doc switch`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use docsync::{
    AuthorId, ContentStatus, Doc, DocTicket, Event, NamespaceId, Node, Query, Received, ShareMode,
    SignedEntry, Subscription,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

mod cli;

use cli::content;

/// Exit code: no entry at the key.
const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: the entry exists but its content is not on this node.
const EXIT_CONTENT_MISSING: u8 = 4;

/// Replicated, signed key-value documents kept in step over iroh (iroh-docs compatible).
#[derive(Parser, Debug)]
#[command(name = "docsync", version, about)]
struct Cli {
    /// The data directory (store, content, node key). Default: $DOCSYNC_DIR, else
    /// $XDG_DATA_HOME/docsync, ~/.local/share/docsync (Linux), ~/Library/Application
    /// Support/docsync (macOS), %APPDATA%\docsync (Windows).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage authors.
    Author {
        #[command(subcommand)]
        command: AuthorCommand,
    },
    /// Manage documents.
    Doc {
        #[command(subcommand)]
        command: DocCommand,
    },
    /// Write VALUE at KEY (`-` reads it from stdin; --file streams a file).
    Set {
        /// The key.
        key: String,
        /// The value, or `-` for stdin.
        value: Option<String>,
        /// Read the value from this file (streamed, never all in memory).
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// Write the newest value at KEY to stdout, raw (or to --out). Exit code 3: no such key;
    /// 4: the content is not on this node (see --wait).
    Get {
        /// The key.
        key: String,
        /// Write the value to this file instead of stdout.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Wait (up to SECONDS) for content that is still downloading.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "60")]
        wait: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Write every file under DIR at the key of its path relative to DIR (after --prefix).
    Import {
        /// The directory.
        dir: PathBuf,
        /// Put this before every key.
        #[arg(long, default_value = "")]
        prefix: String,
        #[command(flatten)]
        target: Target,
    },
    /// Write the value of every key starting with PREFIX to a file under DIR, named by the
    /// rest of the key.
    Export {
        /// The key prefix.
        prefix: String,
        /// The directory.
        dir: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// List entries (newest per key).
    Ls {
        /// Only keys with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Delete every entry of the author whose key starts with PREFIX.
    Del {
        /// The prefix.
        prefix: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print the events of the current document as they happen (until interrupted).
    Watch {
        /// The document (default: the current one).
        #[arg(long)]
        doc: Option<String>,
    },
    /// Run a node that serves this data directory's documents until interrupted; print a
    /// ticket for the current document.
    Serve {
        /// Bind to this address (default 127.0.0.1:0).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// Use iroh's public relays and discovery (off by default).
        #[arg(long)]
        public: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Sync once with the peers of TICKET (importing its document if needed).
    Sync {
        /// A document ticket.
        ticket: String,
    },
    /// Show the node, its documents and authors.
    Status,
    /// Two nodes on 127.0.0.1 in temporary directories write, sync and compare.
    Demo {
        /// Entries written on each side.
        #[arg(long, default_value_t = 10_000)]
        entries: u64,
    },
}

#[derive(Subcommand, Debug)]
enum AuthorCommand {
    /// Create an author (and make it the default if there is none).
    New,
    /// List authors.
    List,
    /// Print the default author, or set it.
    Default {
        /// The author to make the default.
        author: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum DocCommand {
    /// Create a document and make it current.
    New,
    /// List documents.
    List,
    /// Print a ticket for the current document.
    Share {
        /// `read` or `write`.
        #[arg(long, default_value = "write")]
        mode: String,
        /// Bind the address put in the ticket to this socket (default: an ephemeral port;
        /// use `serve` to keep serving).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Join the document of a ticket (import and sync) and make it current.
    Join {
        /// A document ticket.
        ticket: String,
    },
    /// Make a document current.
    Switch {
        /// The document id.
        doc: String,
    },
}

/// The document and author a command applies to.
#[derive(clap::Args, Debug)]
struct Target {
    /// The document (default: the current one).
    #[arg(long)]
    doc: Option<String>,
    /// The author (default: the default author).
    #[arg(long)]
    author: Option<String>,
}

const CURRENT_DOC_FILE: &str = "current-doc";

fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCSYNC_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(windows)
        && let Some(appdata) = std::env::var_os("APPDATA")
    {
        return Ok(PathBuf::from(appdata).join("docsync"));
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("docsync"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        anyhow!("no data directory: pass --data-dir or set DOCSYNC_DIR (HOME is not set)")
    })?;
    if cfg!(target_os = "macos") {
        return Ok(PathBuf::from(home).join("Library/Application Support/docsync"));
    }
    Ok(PathBuf::from(home).join(".local/share/docsync"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, filtered by RUST_LOG (default: warnings only).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Demo { entries } = cli.command {
        return demo(entries, cli.json).await;
    }
    let dir = match cli.data_dir.clone() {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let bind = match &cli.command {
        Command::Serve { bind, .. } => *bind,
        Command::Doc {
            command: DocCommand::Share { bind, .. },
        } => *bind,
        _ => None,
    };
    let public = matches!(cli.command, Command::Serve { public: true, .. });
    let mut builder = Node::persistent(&dir).public_network(public);
    if let Some(bind) = bind {
        builder = builder.bind_addr(bind);
    }
    let node = builder.spawn().await.with_context(|| {
        format!(
            "cannot open the data directory {} (is another docsync process using it?)",
            dir.display()
        )
    })?;
    let out = Output { json: cli.json };
    let code = command(&node, &dir, cli.command, &out).await;
    node.shutdown().await.context("shutting down")?;
    code
}

struct Output {
    json: bool,
}

impl Output {
    fn print(&self, text: impl std::fmt::Display, value: serde_json::Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

fn parse_doc(text: &str) -> Result<NamespaceId> {
    text.parse()
        .map_err(|e| anyhow!("invalid document id {text:?}: {e}"))
}

fn parse_author(text: &str) -> Result<AuthorId> {
    text.parse()
        .map_err(|e| anyhow!("invalid author id {text:?}: {e}"))
}

fn parse_ticket(text: &str) -> Result<DocTicket> {
    text.parse().map_err(|e| anyhow!("invalid ticket: {e}"))
}

fn current_doc(dir: &Path, explicit: Option<&str>) -> Result<NamespaceId> {
    if let Some(doc) = explicit {
        return parse_doc(doc);
    }
    let path = dir.join(CURRENT_DOC_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        anyhow!("no current document: create one with `docsync doc new`, join one with `docsync doc join TICKET`, or pass --doc")
    })?;
    parse_doc(text.trim())
}

fn set_current_doc(dir: &Path, doc: NamespaceId) -> Result<()> {
    let path = dir.join(CURRENT_DOC_FILE);
    std::fs::write(&path, doc.to_string()).with_context(|| format!("writing {}", path.display()))
}

async fn author_of(node: &Node, explicit: Option<&str>) -> Result<AuthorId> {
    match explicit {
        Some(a) => parse_author(a),
        None => Ok(node.default_author().await?),
    }
}

fn entry_json(entry: &SignedEntry, here: bool) -> serde_json::Value {
    json!({
        "key": String::from_utf8_lossy(entry.key()),
        "author": entry.author().to_string(),
        "hash": entry.content_hash().to_string(),
        "len": entry.content_len(),
        "timestamp": entry.timestamp(),
        "content": if here { "here" } else { "missing" },
    })
}

fn entry_text(entry: &SignedEntry, here: bool) -> String {
    format!(
        "{}\t{}\t{} B\t{}",
        String::from_utf8_lossy(entry.key()),
        entry.author().fmt_short(),
        entry.content_len(),
        if here { "here" } else { "missing" }
    )
}

async fn command(node: &Node, dir: &Path, command: Command, out: &Output) -> Result<ExitCode> {
    match command {
        Command::Author { command } => match command {
            AuthorCommand::New => {
                let id = node.create_author().await?;
                let default = node.default_author().await?;
                if default != id && node.list_authors().await?.len() == 1 {
                    node.set_default_author(id).await?;
                }
                out.print(id, json!({ "author": id.to_string() }));
            }
            AuthorCommand::List => {
                let default = node.default_author().await?;
                let authors = node.list_authors().await?;
                let text: Vec<String> = authors
                    .iter()
                    .map(|a| format!("{a}{}", if *a == default { " (default)" } else { "" }))
                    .collect();
                out.print(
                    text.join("\n"),
                    json!({ "authors": authors.iter().map(|a| a.to_string()).collect::<Vec<_>>(), "default": default.to_string() }),
                );
            }
            AuthorCommand::Default { author } => {
                if let Some(author) = author {
                    let id = parse_author(&author)?;
                    if !node.set_default_author(id).await? {
                        bail!("author {id} is not in this data directory");
                    }
                }
                let id = node.default_author().await?;
                out.print(id, json!({ "default": id.to_string() }));
            }
        },
        Command::Doc { command } => match command {
            DocCommand::New => {
                let doc = node.create_doc().await?;
                set_current_doc(dir, doc.id())?;
                out.print(doc.id(), json!({ "doc": doc.id().to_string() }));
            }
            DocCommand::List => {
                let docs = node.list_docs().await?;
                let text: Vec<String> = docs
                    .iter()
                    .map(|(id, kind)| format!("{id}\t{kind:?}"))
                    .collect();
                out.print(
                    text.join("\n"),
                    json!({ "docs": docs.iter().map(|(id, kind)| json!({"doc": id.to_string(), "capability": format!("{kind:?}")})).collect::<Vec<_>>() }),
                );
            }
            DocCommand::Share { mode, .. } => {
                let mode = match mode.as_str() {
                    "read" => ShareMode::Read,
                    "write" => ShareMode::Write,
                    other => bail!("--mode must be read or write, not {other:?}"),
                };
                let doc = node.open_doc(current_doc(dir, None)?).await?;
                let ticket = doc.share(mode).await?;
                out.print(&ticket, json!({ "ticket": ticket.to_string() }));
            }
            DocCommand::Join { ticket } => {
                let ticket = parse_ticket(&ticket)?;
                let (doc, syncs) = join_with_progress(node, &ticket, out).await?;
                set_current_doc(dir, doc.id())?;
                let received: u64 = syncs.iter().map(|s| s.outcome.entries_inserted).sum();
                out.print(
                    format!("joined {} ({received} entries received)", doc.id()),
                    json!({ "doc": doc.id().to_string(), "received": received }),
                );
            }
            DocCommand::Switch { doc } => {
                let id = parse_doc(&doc)?;
                node.open_doc(id).await?;
                set_current_doc(dir, id)?;
                out.print(id, json!({ "doc": id.to_string() }));
            }
        },
        Command::Set {
            key,
            value,
            file,
            target,
        } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            let author = author_of(node, target.author.as_deref()).await?;
            let entry = match (value, file) {
                (Some(v), None) if v == "-" => {
                    doc.set_reader(author, key.clone(), tokio::io::stdin())
                        .await?
                }
                (Some(v), None) => {
                    let hash = doc.set(author, key.clone(), v).await?;
                    return print_set(out, &key, hash);
                }
                (None, Some(path)) => doc
                    .set_file(author, key.clone(), &path)
                    .await
                    .with_context(|| format!("importing {}", path.display()))?,
                _ => bail!("give a VALUE, `-` for stdin, or --file PATH"),
            };
            return print_set(out, &key, entry.content_hash());
        }
        Command::Get {
            key,
            out: path,
            wait,
            target,
        } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            return content::get(&doc, &key, target.author.as_deref(), path, wait, out).await;
        }
        Command::Import {
            dir: from,
            prefix,
            target,
        } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            let author = author_of(node, target.author.as_deref()).await?;
            let count = content::import(&doc, author, &from, &prefix, out.json).await?;
            out.print(
                format!("imported {count} files"),
                json!({ "imported": count }),
            );
        }
        Command::Export {
            prefix,
            dir: to,
            target,
        } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            return content::export(&doc, &prefix, &to, out).await;
        }
        Command::Ls { prefix, target } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            let mut query = Query::latest_per_key();
            if let Some(p) = prefix {
                query = query.with_key_prefix(p);
            }
            if let Some(a) = target.author {
                query = query.with_author(parse_author(&a)?);
            }
            let entries = doc.query(query).await?;
            let mut lines = Vec::new();
            let mut values = Vec::new();
            for entry in &entries {
                let here = doc.content_status(entry).await? == ContentStatus::Complete;
                lines.push(entry_text(entry, here));
                values.push(entry_json(entry, here));
            }
            out.print(lines.join("\n"), json!({ "entries": values }));
        }
        Command::Del { prefix, target } => {
            let doc = node
                .open_doc(current_doc(dir, target.doc.as_deref())?)
                .await?;
            let author = author_of(node, target.author.as_deref()).await?;
            let removed = doc.delete(author, prefix.clone()).await?;
            node.flush().await?;
            out.print(
                format!("deleted {removed} entries"),
                json!({ "prefix": prefix, "removed": removed }),
            );
        }
        Command::Watch { doc } => {
            let doc = node.open_doc(current_doc(dir, doc.as_deref())?).await?;
            let mut events = doc.subscribe().await?;
            eprintln!("watching {} (Ctrl-C to stop)", doc.id());
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    event = events.recv() => match event {
                        None => break,
                        Some(Received::Lagged(n)) => eprintln!("(missed {n} events)"),
                        Some(Received::Event(Event::LocalInsert { entry, .. })) => {
                            out.print(format!("local\t{}", entry_text(&entry, true)), json!({"event": "local", "entry": entry_json(&entry, true)}));
                        }
                        Some(Received::Event(Event::RemoteInsert { entry, from, .. })) => {
                            let here = doc.content_status(&entry).await? == ContentStatus::Complete;
                            out.print(format!("remote\t{}", entry_text(&entry, here)), json!({"event": "remote", "from": hex::encode(from), "entry": entry_json(&entry, here)}));
                        }
                        Some(Received::Event(_)) => {}
                    }
                }
            }
        }
        Command::Serve { metrics, .. } => {
            let _metrics = match metrics {
                Some(addr) => {
                    let server = node.serve_metrics(addr).await?;
                    eprintln!("metrics at http://{}/metrics", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            // Serve every document of the data directory.
            let mut docs = Vec::new();
            for (id, _) in node.list_docs().await? {
                docs.push(node.open_doc(id).await?);
            }
            if let Ok(current) = current_doc(dir, None)
                && let Some(doc) = docs.iter().find(|d| d.id() == current)
            {
                let ticket = doc.share(ShareMode::Write).await?;
                out.print(
                    &ticket,
                    json!({ "ticket": ticket.to_string(), "node": node.id().to_string() }),
                );
            } else {
                out.print(
                    format!("serving {} documents as {}", docs.len(), node.id()),
                    json!({ "node": node.id().to_string(), "docs": docs.len() }),
                );
            }
            // Install the Ctrl-C handler (on the first poll) before saying so, so that an
            // interrupt sent as soon as the line appears is caught.
            let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
            tokio::select! {
                biased;
                result = &mut interrupted => {
                    result.context("waiting for Ctrl-C")?;
                    return Ok(ExitCode::SUCCESS);
                }
                () = std::future::ready(()) => {}
            }
            eprintln!("serving (Ctrl-C to stop)");
            interrupted.await.context("waiting for Ctrl-C")?;
        }
        Command::Sync { ticket } => {
            let ticket = parse_ticket(&ticket)?;
            let (doc, syncs) = join_with_progress(node, &ticket, out).await?;
            let received: u64 = syncs.iter().map(|s| s.outcome.entries_inserted).sum();
            let sent: u64 = syncs.iter().map(|s| s.outcome.entries_sent).sum();
            out.print(
                format!(
                    "synced {}: {received} entries received, {sent} sent",
                    doc.id()
                ),
                json!({ "doc": doc.id().to_string(), "received": received, "sent": sent }),
            );
        }
        Command::Status => {
            let docs = node.list_docs().await?;
            let authors = node.list_authors().await?;
            let current = current_doc(dir, None).ok();
            out.print(
                format!(
                    "node {}\ndata dir {}\n{} documents, {} authors\ncurrent document {}",
                    node.id(),
                    dir.display(),
                    docs.len(),
                    authors.len(),
                    current.map(|c| c.to_string()).unwrap_or_else(|| "none".into())
                ),
                json!({ "node": node.id().to_string(), "data_dir": dir.display().to_string(), "docs": docs.len(), "authors": authors.len(), "current": current.map(|c| c.to_string()) }),
            );
        }
        Command::Demo { .. } => unreachable_demo()?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_set(out: &Output, key: &str, hash: docsync::ContentHash) -> Result<ExitCode> {
    out.print(hash, json!({ "key": key, "hash": hash.to_string() }));
    Ok(ExitCode::SUCCESS)
}

fn unreachable_demo() -> Result<()> {
    bail!("demo runs without a data directory")
}

/// Imports the ticket's document and syncs with its peers like [`Node::join`], with a spinner
/// on stderr counting the entries received so far (none under `--json`).
async fn join_with_progress(
    node: &Node,
    ticket: &DocTicket,
    out: &Output,
) -> Result<(Doc, Vec<docsync::SyncFinished>)> {
    // Import first (join imports again, which changes nothing) so the events of the session
    // can be watched from its start.
    let doc = node.import_doc(ticket.capability.clone()).await?;
    let spinner = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {pos} entries received ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let peers = ticket.nodes.len();
    spinner.set_message(format!(
        "syncing with {peers} peer{}",
        if peers == 1 { "" } else { "s" }
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let counting = count_received(doc.subscribe().await?, spinner.clone());
    let joined = node.join(ticket).await;
    counting.abort();
    let settled = fetch_with_progress(node, doc.id(), &spinner).await?;
    spinner.finish_and_clear();
    if settled.wanted > 0 {
        eprintln!(
            "{} values could not be fetched yet (`get --wait` or a later sync fetches them)",
            settled.wanted
        );
    }
    Ok(joined?)
}

/// Waits for the downloads to settle, showing on `spinner` how many values arrived and how
/// many are still to come.
async fn fetch_with_progress(
    node: &Node,
    doc: NamespaceId,
    spinner: &ProgressBar,
) -> Result<docsync::DownloadStatus> {
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let downloads = node.content().downloads();
    let start = downloads.status().await.completed;
    let waiting = node.content().settled(doc);
    let mut waiting = std::pin::pin!(waiting);
    loop {
        let status = downloads.status().await;
        spinner.set_message(format!(
            "fetching content: {} values arrived, {} to come",
            status.completed.saturating_sub(start),
            status.wanted
        ));
        tokio::select! {
            settled = &mut waiting => return Ok(settled?),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Advances `bar` by one for every entry a peer stores in the document of `events`, until
/// aborted or the subscription ends.
fn count_received(mut events: Subscription, bar: ProgressBar) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(received) = events.recv().await {
            match received {
                Received::Event(Event::RemoteInsert { .. }) => bar.inc(1),
                // Events missed by this slow reader: while syncing, they are received entries.
                Received::Lagged(n) => bar.inc(n),
                Received::Event(_) => {}
            }
        }
    })
}

fn bar(len: u64, what: &str, hidden: bool) -> ProgressBar {
    let target = if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The main job in one command: two nodes, N entries each, one sync, a comparison.
async fn demo(entries: u64, json_out: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let alice = Node::persistent(tmp.path().join("alice")).spawn().await?;
    let bob = Node::persistent(tmp.path().join("bob")).spawn().await?;
    eprintln!("two nodes on 127.0.0.1 in {}", tmp.path().display());
    let doc_a = alice.create_doc().await?;
    let ticket = doc_a.share(ShareMode::Write).await?;
    let doc_b = bob.import_doc(ticket.capability.clone()).await?;
    let (author_a, author_b) = (alice.default_author().await?, bob.default_author().await?);

    for (name, node, doc, author) in [
        ("alice", &alice, &doc_a, author_a),
        ("bob", &bob, &doc_b, author_b),
    ] {
        let progress = bar(entries, &format!("{name} writes"), json_out);
        write_demo_values(node, doc.id(), author, name, entries, &progress).await?;
        progress.finish();
    }
    let committing = if json_out {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    committing.set_message("committing both stores to disk");
    committing.enable_steady_tick(Duration::from_millis(100));
    alice.flush().await?;
    bob.flush().await?;
    committing.finish_with_message("committed both stores to disk");

    // Both sides receive `entries`: the bar counts what each stores as it arrives.
    let progress = bar(2 * entries, "sync", json_out);
    progress.enable_steady_tick(Duration::from_millis(200));
    let counting = [
        count_received(doc_a.subscribe().await?, progress.clone()),
        count_received(doc_b.subscribe().await?, progress.clone()),
    ];
    let sync_started = Instant::now();
    let finished = doc_b.sync_with(alice.addr()).await;
    let sync_time = sync_started.elapsed();
    for task in counting {
        task.abort();
    }
    progress.finish();
    let finished = finished?;

    let all = Query::all().with_include_empty(true);
    let (a, b) = (doc_a.query(all.clone()).await?, doc_b.query(all).await?);
    let fetching = bar(2 * entries, "content", json_out);
    let values_identical = demo_values_arrived(&alice, &doc_a, &a, &fetching).await?
        && demo_values_arrived(&bob, &doc_b, &b, &fetching).await?;
    fetching.finish();
    let identical = a == b && values_identical;
    let o = &finished.outcome;
    let summary = json!({
        "entries_per_side": entries,
        "alice_entries": a.len(),
        "bob_entries": b.len(),
        "identical": identical,
        "values_identical": values_identical,
        "rounds": o.rounds,
        "bytes_sent": o.bytes_sent,
        "bytes_received": o.bytes_received,
        "entries_sent": o.entries_sent,
        "entries_received": o.entries_received,
        "sync_seconds": sync_time.as_secs_f64(),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    if json_out {
        println!("{summary}");
    } else {
        println!(
            "alice: {} entries, bob: {} entries, identical (entries and values): {}\n\
             sync: {} rounds, {} bytes sent, {} bytes received, {} entries sent, {} received, {:.2?}\n\
             total: {:.2?}",
            a.len(),
            b.len(),
            if identical { "yes" } else { "NO" },
            o.rounds,
            o.bytes_sent,
            o.bytes_received,
            o.entries_sent,
            o.entries_received,
            sync_time,
            started.elapsed()
        );
    }
    alice.shutdown().await?;
    bob.shutdown().await?;
    Ok(if identical && a.len() as u64 == 2 * entries {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes `entries` demo values as eight concurrent writers, as an application would.
async fn write_demo_values(
    node: &Node,
    doc: NamespaceId,
    author: AuthorId,
    name: &str,
    entries: u64,
    progress: &ProgressBar,
) -> Result<()> {
    const WRITERS: u64 = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (doc, name, progress) = (
            node.open_doc(doc).await?,
            name.to_string(),
            progress.clone(),
        );
        tasks.spawn(async move {
            for i in (writer..entries).step_by(WRITERS as usize) {
                let value = format!("value {i} from {name}");
                doc.set(author, format!("{name}/{i:07}"), value).await?;
                progress.inc(1);
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a writer failed")??;
    }
    Ok(())
}

/// Whether every value of `entries` is on `node` and is the one its key was written with.
async fn demo_values_arrived(
    node: &Node,
    doc: &Doc,
    entries: &[SignedEntry],
    progress: &ProgressBar,
) -> Result<bool> {
    node.content().settled(doc.id()).await?;
    for entry in entries {
        let key = String::from_utf8_lossy(entry.key());
        let Some((name, i)) = key.split_once('/') else {
            return Ok(false);
        };
        let expected = format!("value {} from {name}", i.parse::<u64>().unwrap_or(u64::MAX));
        match doc.read_to_bytes(entry).await {
            Ok(value) if value == expected.as_bytes() => progress.inc(1),
            _ => return Ok(false),
        }
    }
    Ok(true)
}
