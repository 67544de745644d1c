//! `fuzz-seeds <dir>`: writes the seeds of every fuzz target (valid inputs built from the real
//! encoders, `reliability::targets::seeds`) into `<dir>/<target>/seed-<hash>`, the starting
//! corpus of cargo-fuzz. `cargo xtask fuzz` runs it for a target whose corpus is empty.

use std::path::PathBuf;

use anyhow::{Context, Result};
use reliability::targets::{TARGETS, seeds};

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: fuzz-seeds <corpus dir> [target...]")?,
    );
    let only: Vec<String> = std::env::args().skip(2).collect();
    for (name, _) in TARGETS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let target_dir = dir.join(name);
        std::fs::create_dir_all(&target_dir)
            .with_context(|| format!("creating {}", target_dir.display()))?;
        let seeds = seeds(name);
        for seed in &seeds {
            let hash = blake3::hash(seed).to_hex();
            let path = target_dir.join(format!("seed-{}", &hash[..16]));
            std::fs::write(&path, seed).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{name}: {} seeds in {}", seeds.len(), target_dir.display());
    }
    Ok(())
}
