//! `cargo xtask bench [--quick] [--out <file>]`: builds the benchmark program
//! (`crates/interop-tests/src/bin/bench`) in release mode and runs it once.
//!
//! The full run writes `docs/BENCHMARKS.md` and `docs/bench-sync-time.svg`. `--quick` (small
//! sizes, few repetitions; what CI runs to prove the command works, asserting no timing)
//! writes to `<target>/bench/BENCHMARKS-quick.md` instead, so that it never replaces the
//! committed figures of a full run. Signed entries and the reference's store files are cached
//! in `<target>/bench-cache` between runs.
//!
//! The program runs inside a network namespace that has nothing but loopback (made the way
//! `cargo xtask ci` makes it for the tests); without one the command fails. `--only <group>`
//! runs one group of workloads and merges its sections and targets into the existing report.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) out: Option<PathBuf>,
    /// Run one group of workloads only; its figures are merged into the existing report.
    pub(crate) only: Option<String>,
}

pub(crate) fn parse(flags: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => options.quick = true,
            "--out" => {
                options.out = Some(PathBuf::from(
                    it.next().context("`--out` needs a file name")?,
                ))
            }
            "--only" => {
                options.only = Some(it.next().context("`--only` needs a group name")?.clone())
            }
            other => bail!("unknown flag `{other}` for `bench`"),
        }
    }
    Ok(options)
}

/// The target directory cargo uses for this workspace.
fn target_dir(root: &Path, cargo: &str) -> Result<PathBuf> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("running `cargo metadata`")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` names no target directory")
}

pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target = target_dir(root, &cargo)?;
    let out = match (&options.out, options.quick) {
        (Some(out), _) => out.clone(),
        (None, false) => root.join("docs").join("BENCHMARKS.md"),
        (None, true) => target.join("bench").join("BENCHMARKS-quick.md"),
    };
    let mut command = "cargo xtask bench".to_string();
    if options.quick {
        command += " --quick";
    }
    if let Some(out) = &options.out {
        command += &format!(" --out {}", out.display());
    }
    if let Some(only) = &options.only {
        command += &format!(" --only {only}");
    }
    eprintln!("xtask: building the benchmark (release)");
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "interop-tests",
            "--bin",
            "bench",
        ])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the benchmark failed ({status})");
    }
    let exe = target.join("release").join("bench");
    // The loopback workload runs real nodes on iroh endpoints: the whole program runs in a
    // network namespace that has nothing but loopback.
    let mut run = crate::ci::loopback_only(&exe).map_err(|why| {
        anyhow::anyhow!(
            "cannot create a loopback-only network namespace for the benchmark ({why}); its \
             loopback workload runs networked nodes, which must not reach the network. {}",
            crate::ci::NETNS_HELP
        )
    })?;
    if options.quick {
        run.arg("--quick");
    }
    run.arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(target.join("bench-cache"))
        .arg("--command")
        .arg(&command)
        .current_dir(root);
    if let Some(only) = &options.only {
        run.arg("--only").arg(only);
    }
    eprintln!(
        "xtask: running {} in a loopback-only network namespace",
        exe.display()
    );
    let status = run
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    eprintln!("xtask: report written to {}", out.display());
    Ok(())
}
