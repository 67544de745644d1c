//! `cargo xtask ci`: exactly what CI runs, in order, stopping at the first failure.
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets --all-features -- -D warnings`
//! 3. check-layers (called directly, see `layers.rs`)
//! 4. `cargo deny check bans licenses sources`, then `advisories` when the advisory database can be
//!    fetched (see the comment at the top of `deny.toml`)
//! 5. `cargo test --workspace --all-features --no-run`: builds every test target; may download crates
//! 6. `cargo test --workspace --all-features --offline` inside a network namespace that has only
//!    loopback, so no test can reach past this machine
//! 7. `cargo xtask bench --quick`: proves the benchmark command works (release build, small
//!    sizes, under two minutes of running); it asserts no timing and writes its report under
//!    `target/`, never over `docs/BENCHMARKS.md`
//!
//! `-D warnings` goes to clippy only; RUSTFLAGS is never touched, so steps 5 and 6 share one build.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::layers;

/// Flags of `cargo xtask ci`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Skip `cargo deny` entirely (for machines without cargo-deny).
    pub(crate) skip_deny: bool,
    /// Run the tests with the network when no network namespace can be made (unprotected).
    pub(crate) allow_network: bool,
}

/// The features and targets every build step uses, kept identical so the build is shared.
const TEST_ARGS: &[&str] = &["test", "--workspace", "--all-features"];

/// The lines `../shared/tools/offline` runs inside the new namespace: bring loopback up, mark the
/// environment, run the command. Exit status 3 means loopback could not be brought up.
const NETNS_SCRIPT: &str = r#"ip link set lo up || exit 3; OFFLINE_NETNS=1 exec "$@""#;

pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let started = Instant::now();
    let steps: [(&str, &dyn Fn() -> Result<()>); 7] = [
        ("fmt", &|| cargo(root, ["fmt", "--all", "--", "--check"])),
        ("clippy", &|| {
            cargo(
                root,
                [
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        }),
        ("check-layers", &|| layers::run(root)),
        ("deny", &|| deny(root, options)),
        ("build", &|| {
            cargo(root, TEST_ARGS.iter().chain(&["--no-run"]))
        }),
        ("test", &|| {
            offline(root, TEST_ARGS.iter().chain(&["--offline"]), options)
        }),
        ("bench --quick", &|| {
            crate::bench::run(
                root,
                &crate::bench::Options {
                    quick: true,
                    ..Default::default()
                },
            )
        }),
    ];
    let total = steps.len();
    for (index, (name, step)) in steps.iter().enumerate() {
        println!("==> ci [{}/{total}] {name}", index + 1);
        let step_started = Instant::now();
        step().with_context(|| format!("ci step `{name}` failed"))?;
        println!(
            "<== ci [{}/{total}] {name} ok in {:.1}s",
            index + 1,
            step_started.elapsed().as_secs_f64()
        );
    }
    println!(
        "ci: all {total} steps passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo deny`: bans, licenses and sources always; advisories when the database is reachable.
fn deny(root: &Path, options: &Options) -> Result<()> {
    if options.skip_deny {
        println!("skipping cargo deny (--skip-deny)");
        return Ok(());
    }
    let installed = Command::new("cargo")
        .args(["deny", "--version"])
        .current_dir(root)
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        bail!(
            "cargo-deny is not installed. Install it with `cargo install cargo-deny --locked` \
             (a few minutes of compiling), or pass --skip-deny to leave this step out."
        );
    }
    cargo(root, ["deny", "check", "bans", "licenses", "sources"])?;

    // The advisory database is a git repository on github.com, which CI cannot reach (it only has
    // crates.io). Check advisories when the database can be fetched, or with a copy already on disk;
    // otherwise say loudly that they were not checked.
    println!("$ cargo deny fetch db");
    let fetch = Command::new("cargo")
        .args(["deny", "fetch", "db"])
        .current_dir(root)
        .output()
        .context("cannot run `cargo deny fetch db`")?;
    let check_advisories = ["deny", "check", "--disable-fetch", "advisories"];
    if fetch.status.success() {
        return cargo(root, check_advisories);
    }
    let stderr = String::from_utf8_lossy(&fetch.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if advisory_db_on_disk() {
        println!(
            "warning: cannot fetch the advisory database ({reason}); checking against the copy \
             already on disk, which may be stale"
        );
        cargo(root, check_advisories)
    } else {
        println!(
            "warning: advisories (and yanked crates) NOT checked: the advisory database \
             (github.com/rustsec/advisory-db) cannot be fetched ({reason}) and there is no copy \
             on disk. Run `cargo deny check advisories` where github.com is reachable."
        );
        Ok(())
    }
}

/// Whether `deny.toml`'s `db-path` (`$CARGO_HOME/advisory-dbs`) holds a database.
fn advisory_db_on_disk() -> bool {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    cargo_home
        .and_then(|home| std::fs::read_dir(home.join("advisory-dbs")).ok())
        .is_some_and(|mut entries| {
            entries.any(|entry| entry.is_ok_and(|entry| entry.path().join("crates").is_dir()))
        })
}

/// Runs `cargo ARGS` in a loopback-only network namespace, as `../shared/tools/offline` does.
fn offline<I, S>(root: &Path, args: I, options: &Options) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = match loopback_only("cargo") {
        Ok(command) => command,
        Err(why) if options.allow_network => {
            println!(
                "warning: no loopback-only network namespace ({why}); running the tests WITH \
                 network access because --allow-network was given"
            );
            Command::new("cargo")
        }
        Err(why) => bail!(
            "cannot create a loopback-only network namespace for the tests ({why}).\n\
             The tests must not reach the network. {NETNS_HELP} Or pass --allow-network to \
             run them unprotected."
        ),
    };
    command.args(args).current_dir(root);
    status(&mut command)
}

/// How to make namespaces available, for error messages.
pub(crate) const NETNS_HELP: &str = "Run as root (or with unprivileged user namespaces) with \
     util-linux `unshare` and iproute2 `ip` installed (`apt-get install -y util-linux iproute2`).";

/// A command that runs `program` (arguments to be added by the caller) in a new network
/// namespace that has nothing but loopback, as `../shared/tools/offline` does; `program`
/// itself when this process already runs in one (`OFFLINE_NETNS=1`). The error says why no
/// namespace can be made here.
pub(crate) fn loopback_only(program: impl AsRef<OsStr>) -> Result<Command, String> {
    if std::env::var_os("OFFLINE_NETNS").is_some_and(|value| value == "1") {
        println!("already inside a loopback-only network namespace (OFFLINE_NETNS=1)");
        return Ok(Command::new(program));
    }
    // Probe with exactly what the real run needs: a new namespace and `ip` to bring loopback up.
    let probe = Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .output();
    match &probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
        Err(error) => return Err(format!("cannot run `unshare`: {error}")),
    }
    let mut command = Command::new("unshare");
    command
        .args(["--net", "--", "sh", "-c", NETNS_SCRIPT, "offline"])
        .arg(program);
    Ok(command)
}

/// Runs `cargo ARGS` in `root`, inheriting stdout and stderr.
fn cargo<I, S>(root: &Path, args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("cargo");
    command.args(args).current_dir(root);
    status(&mut command)
}

/// Runs `command`, echoing it first; an error unless it exits successfully.
fn status(command: &mut Command) -> Result<()> {
    let line = display(command);
    println!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            if part.contains(' ') || part.contains('"') {
                format!("'{part}'")
            } else {
                part.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
