//! Project automation for docsync, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: exactly what CI runs (fmt, clippy, check-layers, cargo deny, build, offline tests).
//! - `check-layers`: the dependency direction of `ARCHITECTURE.md`, checked against `cargo metadata`.
//! - `bench`: the benchmarks of docsync against iroh-docs 0.101 and negentropy, written up as
//!   `docs/BENCHMARKS.md` (see `bench.rs`).
//! - `fuzz`: cargo-fuzz on nightly over the targets in `fuzz/` (see `fuzz.rs`).
//! - `soak`: the many-peers load scenario in a loop for minutes (see `soak.rs`).
//!
//! This is deliberately small: std, `anyhow` and `serde_json` only, so it compiles in seconds.

mod bench;
mod ci;
mod fuzz;
mod layers;
mod soak;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [flags]

commands:
  ci [--skip-deny] [--allow-network]
        run exactly what CI runs: fmt, clippy, check-layers, cargo deny, build, and the tests
        in a loopback-only network namespace
        --skip-deny       leave out cargo deny (e.g. where cargo-deny is not installed)
        --allow-network   if no network namespace can be made, run the tests unprotected
  check-layers
        check every workspace dependency edge against the layer table (see ARCHITECTURE.md)
  bench [--quick] [--out <file>]
        build the benchmark program in release mode and run every workload for docsync,
        iroh-docs 0.101 and negentropy in one run; writes docs/BENCHMARKS.md and its chart
        --quick           small sizes, few repetitions (under two minutes after the build; what
                          CI runs); writes <target>/bench/BENCHMARKS-quick.md
        --out <file>      write the report there instead
        --only <group>    run one group only (insert, ingest, actor, memory, sweep, sync,
                          fingerprint, bootstrap, loopback) and merge it into the report
  fuzz [target...] [--seconds N] [--no-cmin]
        run cargo-fuzz (nightly) on each target (default: all) for N seconds (default 60),
        then minimize its corpus in fuzz/corpus/<target>; needs `rustup toolchain install
        nightly` and `cargo install cargo-fuzz --locked` (installs nothing itself)
        --no-cmin         keep the grown corpus as it is
  soak [--minutes N] [--release] [-- <soak flags>]
        the load scenario (one hub, 8 peers, 8 documents, 64 sessions per wave) in a loop
        for N minutes (default 10) with fresh writes every round; prints figures per round
        soak flags: --peers N, --docs N, --writes N, --seed N, --max-rss-mib N
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, flags)) = args.split_first() else {
        print!("{USAGE}");
        bail!("no command given");
    };
    let root = project_root();
    match command.as_str() {
        "ci" => {
            let mut options = ci::Options::default();
            for flag in flags {
                match flag.as_str() {
                    "--skip-deny" => options.skip_deny = true,
                    "--allow-network" => options.allow_network = true,
                    other => bail!("unknown flag `{other}` for `ci`\n\n{USAGE}"),
                }
            }
            ci::run(&root, &options)
        }
        "check-layers" => {
            no_flags(command, flags)?;
            layers::run(&root)
        }
        "bench" => bench::run(&root, &bench::parse(flags)?),
        "fuzz" => fuzz::run(&root, &fuzz::parse(flags)?),
        "soak" => soak::run(&root, &soak::parse(flags)?),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn no_flags(command: &str, flags: &[String]) -> Result<()> {
    if let Some(flag) = flags.first() {
        bail!("`{command}` takes no flags, got `{flag}`");
    }
    Ok(())
}

/// The workspace root, asked of cargo at run time (`cargo xtask` runs in the workspace), so a
/// binary built from another checkout that shares the target directory still works here;
/// falls back to the parent of this crate's directory at build time.
fn project_root() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let located = std::process::Command::new(cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output();
    if let Ok(out) = located
        && out.status.success()
        && let Ok(path) = String::from_utf8(out.stdout)
        && let Some(dir) = Path::new(path.trim()).parent()
    {
        return dir.to_path_buf();
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
