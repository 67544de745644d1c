//! `cargo xtask fuzz [target...] [--seconds N] [--no-cmin]`: runs cargo-fuzz (nightly) on the
//! targets of `fuzz/` for N seconds each (default 60), then minimizes each grown corpus.
//!
//! Installs nothing: without a nightly toolchain or cargo-fuzz it says how to install them and
//! fails. An empty corpus is seeded first (`cargo run -p reliability --bin fuzz-seeds`). The
//! committed crash reproducers in `fuzz/regressions/<target>/` are read as a second corpus. A
//! crash fails the command after the other targets ran, naming the artifact to turn into a
//! regression file. Prints, per target, the inputs tried (libFuzzer's
//! `stat::number_of_executed_units`) and the corpus size before and after.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Every target of `fuzz/fuzz_targets/` (checked by a test below). Input sizes are left to
/// libFuzzer (at most 4096 bytes unless the corpus holds longer inputs).
pub(crate) const TARGETS: &[&str] = &[
    "wire_message",
    "compact_message",
    "wire_frames",
    "signed_entry",
    "record_identifier",
    "capability",
    "ticket",
    "redb_file",
    "ranger_sync",
    "store_model",
];

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) targets: Vec<String>,
    pub(crate) seconds: u64,
    pub(crate) cmin: bool,
}

pub(crate) fn parse(flags: &[String]) -> Result<Options> {
    let mut options = Options {
        targets: Vec::new(),
        seconds: 60,
        cmin: true,
    };
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--seconds" => {
                let value = it.next().context("--seconds needs a number")?;
                options.seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value}: not a number"))?;
            }
            "--no-cmin" => options.cmin = false,
            name if !name.starts_with('-') => {
                if !TARGETS.contains(&name) {
                    bail!(
                        "unknown fuzz target `{name}`; the targets are: {}",
                        TARGETS.join(", ")
                    );
                }
                options.targets.push(name.to_owned());
            }
            other => bail!("unknown flag `{other}` for `fuzz`"),
        }
    }
    if options.targets.is_empty() {
        options.targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(options)
}

/// A `cargo +nightly` command in `dir` with the environment `cargo xtask` added removed:
/// `cargo run` exports `CARGO_*` variables (and rustup its toolchain) to xtask, and build
/// scripts that watch them (ring's does) would make every fuzz build start from scratch.
fn nightly(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        let drop = (key_text.starts_with("CARGO") && key_text != "CARGO_HOME")
            || matches!(key_text.as_ref(), "RUSTUP_TOOLCHAIN" | "RUSTC" | "RUSTDOC");
        if drop {
            command.env_remove(&key);
        }
    }
    command.arg("+nightly").current_dir(dir);
    command
}

/// Runs `command`, echoing it first; an error unless it exits successfully.
pub(crate) fn status(command: &mut Command) -> Result<()> {
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    println!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Fails with install instructions unless `cargo +nightly fuzz` works.
fn check_tools(root: &Path) -> Result<()> {
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .current_dir(root)
        .output();
    if !matches!(&nightly, Ok(out) if out.status.success()) {
        bail!(
            "cargo-fuzz needs a nightly toolchain, and `cargo +nightly` does not run here.\n\
             Install it with `rustup toolchain install nightly` (nothing was installed)."
        );
    }
    let fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .current_dir(root)
        .output();
    if !matches!(&fuzz, Ok(out) if out.status.success()) {
        bail!(
            "cargo-fuzz is not installed.\n\
             Install it with `cargo install cargo-fuzz --locked` (a few minutes of compiling; \
             nothing was installed)."
        );
    }
    Ok(())
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .count()
    })
}

/// What one target's run did.
#[derive(Debug)]
struct Outcome {
    target: String,
    executions: Option<u64>,
    corpus_before: usize,
    corpus_after: usize,
    crash: Option<String>,
}

/// `stat::number_of_executed_units: N` from libFuzzer's final statistics.
pub(crate) fn executed_units(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|n| n.trim().parse().ok())
        .next_back()
}

/// The crash artifact libFuzzer names in its log, if any.
pub(crate) fn crash_artifact(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| line.split_once("Test unit written to "))
        .map(|(_, path)| path.trim().to_owned())
        .next_back()
}

pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    check_tools(root)?;
    let fuzz_dir = root.join("fuzz");
    let logs = root.join("target").join("fuzz-logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut outcomes = Vec::new();
    for target in &options.targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let regressions = fuzz_dir.join("regressions").join(target);
        fs::create_dir_all(&corpus)?;
        fs::create_dir_all(&regressions)?;
        if files_in(&corpus) == 0 {
            status(
                Command::new("cargo")
                    .args([
                        "run",
                        "-q",
                        "-p",
                        "reliability",
                        "--bin",
                        "fuzz-seeds",
                        "--",
                    ])
                    .arg(fuzz_dir.join("corpus"))
                    .arg(target)
                    .current_dir(root),
            )?;
        }
        let corpus_before = files_in(&corpus);
        let log_path = logs.join(format!("{target}.log"));
        let log_file = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        println!(
            "==> fuzz {target}: {} s, corpus {corpus_before} files (log: {})",
            options.seconds,
            log_path.display()
        );
        let started = Instant::now();
        // 16 codegen units: the build of the whole stack (iroh included) with sanitizer
        // coverage takes minutes less, for slightly slower runs.
        let exit = nightly(&fuzz_dir)
            .args(["fuzz", "run", "--codegen-units", "16", target])
            .arg(&corpus)
            .arg(&regressions)
            .arg("--")
            .arg(format!("-max_total_time={}", options.seconds))
            .args(["-timeout=30", "-rss_limit_mb=4096", "-print_final_stats=1"])
            .current_dir(&fuzz_dir)
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .status()
            .context("cannot run `cargo +nightly fuzz run`")?;
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let crash = crash_artifact(&log);
        if !exit.success() && crash.is_none() {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            bail!(
                "`cargo fuzz run {target}` failed ({exit}) without a crash artifact; end of the log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if options.cmin && crash.is_none() {
            status(
                nightly(&fuzz_dir)
                    .args(["fuzz", "cmin", "--codegen-units", "16", target])
                    .arg(&corpus)
                    .stdout(Stdio::null()),
            )?;
        }
        let outcome = Outcome {
            target: target.clone(),
            executions: executed_units(&log),
            corpus_before,
            corpus_after: files_in(&corpus),
            crash,
        };
        println!(
            "<== fuzz {target}: {} inputs in {:.0}s, corpus {} -> {} files{}",
            outcome.executions.map_or("?".to_owned(), |n| n.to_string()),
            started.elapsed().as_secs_f64(),
            outcome.corpus_before,
            outcome.corpus_after,
            outcome
                .crash
                .as_ref()
                .map_or(String::new(), |c| format!(", CRASH: {c}")),
        );
        outcomes.push(outcome);
    }
    println!("\nfuzz summary ({} s per target):", options.seconds);
    println!("| target | inputs tried | corpus files | crashes |");
    println!("|---|---:|---:|---:|");
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} |",
            o.target,
            o.executions.map_or("?".to_owned(), |n| n.to_string()),
            o.corpus_after,
            usize::from(o.crash.is_some())
        );
    }
    let crashes: Vec<&Outcome> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if !crashes.is_empty() {
        bail!(
            "{} target(s) crashed: {}. Reproduce with `cargo +nightly fuzz run <target> <artifact>` \
             in fuzz/; once fixed, copy the artifact into fuzz/regressions/<target>/",
            crashes.len(),
            crashes
                .iter()
                .filter_map(|o| o.crash.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz directory's targets, from `fuzz/fuzz_targets/*.rs`.
    fn target_files(root: &Path) -> Result<Vec<String>> {
        let dir: std::path::PathBuf = root.join("fuzz").join("fuzz_targets");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                (path.extension()? == "rs")
                    .then(|| path.file_stem()?.to_str().map(str::to_owned))
                    .flatten()
            })
            .collect();
        names.sort();
        Ok(names)
    }

    #[test]
    fn the_target_list_matches_fuzz_targets() {
        let mut listed: Vec<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
        listed.sort();
        assert_eq!(listed, target_files(&crate::project_root()).unwrap());
    }

    #[test]
    fn flags_parse() {
        let o = parse(&["ticket".into(), "--seconds".into(), "5".into()]).unwrap();
        assert_eq!(o.targets, vec!["ticket"]);
        assert_eq!(o.seconds, 5);
        assert!(o.cmin);
        let all = parse(&["--no-cmin".into()]).unwrap();
        assert_eq!(all.targets.len(), TARGETS.len());
        assert!(!all.cmin);
        assert!(parse(&["nope".into()]).is_err());
        assert!(parse(&["--seconds".into()]).is_err());
    }

    #[test]
    fn statistics_are_read_from_the_log() {
        let log = "INFO: seed\n#1024 pulse\nstat::number_of_executed_units: 123456\n\
                   stat::average_exec_per_sec:     2057\n";
        assert_eq!(executed_units(log), Some(123_456));
        assert_eq!(crash_artifact(log), None);
        let crashed = "==1== ERROR\nartifact_prefix='x/'; Test unit written to \
                       fuzz/artifacts/ticket/crash-abc\n";
        assert_eq!(
            crash_artifact(crashed).as_deref(),
            Some("fuzz/artifacts/ticket/crash-abc")
        );
    }
}
