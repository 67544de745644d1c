//! `cargo xtask soak [--minutes N] [--release] [-- <soak flags>]`: builds the `soak` binary of
//! `crates/reliability` and runs the load scenario in a loop for N minutes (default 10), with
//! fresh random writes between rounds; it prints one line of figures per round and a summary,
//! and fails on a lost entry, a failed session, an unaccounted session, a round that does not
//! finish in five minutes (a deadlock), or a peak resident set over its bound.
//!
//! Every endpoint of the scenario is built offline (loopback only, no relays, no discovery).
//! The run also goes into a loopback-only network namespace when one can be made, like the
//! tests in `ci`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::fuzz::status;

/// Flags of `cargo xtask soak`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub(crate) minutes: f64,
    pub(crate) release: bool,
    /// Passed on to the binary (`--peers`, `--docs`, `--writes`, `--seed`, `--max-rss-mib`).
    pub(crate) rest: Vec<String>,
}

pub(crate) fn parse(flags: &[String]) -> Result<Options> {
    let mut options = Options {
        minutes: 10.0,
        release: false,
        rest: Vec::new(),
    };
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--minutes" => {
                let value = it.next().context("--minutes needs a number")?;
                options.minutes = value
                    .parse()
                    .with_context(|| format!("--minutes {value}: not a number"))?;
            }
            "--release" => options.release = true,
            "--" => options.rest.extend(it.by_ref().cloned()),
            other => bail!("unknown flag `{other}` for `soak` (binary flags go after `--`)"),
        }
    }
    Ok(options)
}

/// The lines that bring loopback up in a new namespace and run the command (as in `ci`).
const NETNS_SCRIPT: &str = r#"ip link set lo up || exit 3; OFFLINE_NETNS=1 exec "$@""#;

pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let profile = if options.release { "release" } else { "debug" };
    let mut build = Command::new("cargo");
    build
        .args(["build", "-p", "reliability", "--bin", "soak"])
        .current_dir(root);
    if options.release {
        build.arg("--release");
    }
    status(&mut build)?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let binary = target_dir.join(profile).join("soak");
    let mut args = vec!["--minutes".to_owned(), options.minutes.to_string()];
    args.extend(options.rest.iter().cloned());

    let inside = std::env::var_os("OFFLINE_NETNS").is_some_and(|v| v == "1");
    let namespace = !inside
        && Command::new("unshare")
            .args(["--net", "--", "ip", "link", "set", "lo", "up"])
            .output()
            .is_ok_and(|out| out.status.success());
    let mut command = if namespace {
        let mut c = Command::new("unshare");
        c.args(["--net", "--", "sh", "-c", NETNS_SCRIPT, "offline"])
            .arg(&binary);
        c
    } else {
        if !inside {
            println!(
                "note: no loopback-only network namespace here; running as is (the scenario's \
                 endpoints are offline and bound to 127.0.0.1 either way)"
            );
        }
        Command::new(&binary)
    };
    command.args(&args).current_dir(root);
    status(&mut command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let o = parse(&[
            "--minutes".into(),
            "0.5".into(),
            "--".into(),
            "--peers".into(),
            "4".into(),
        ])
        .unwrap();
        assert_eq!(o.minutes, 0.5);
        assert!(!o.release);
        assert_eq!(o.rest, vec!["--peers", "4"]);
        assert!(parse(&["--peers".into()]).is_err());
        assert_eq!(parse(&[]).unwrap().minutes, 10.0);
    }
}
