//! `cargo xtask check-layers`: the dependency direction of `ARCHITECTURE.md`, checked by a machine.
//!
//! Reads `cargo metadata --no-deps` and checks every direct dependency edge (normal, build and dev)
//! of every workspace package against [`LAYERS`] and [`EXCLUSIVE`]. Transitive dependencies are not
//! checked: `interop-tests` pulls `redb` in through `iroh-docs`, and that is fine. The check itself
//! ([`check`]) is a pure function over the parsed metadata so tests can plant a bad edge.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The rules for one workspace package. Keep in step with the table in `ARCHITECTURE.md`.
#[derive(Debug)]
pub(crate) struct Layer {
    /// The package name (= folder name).
    pub(crate) package: &'static str,
    /// Workspace crates this package may depend on, with any dependency kind.
    pub(crate) workspace_deps: &'static [&'static str],
    /// Further workspace crates allowed as dev-dependencies only.
    pub(crate) dev_only_workspace_deps: &'static [&'static str],
    /// External crates this package must not name directly, with any dependency kind.
    pub(crate) forbidden: &'static [&'static str],
}

/// The library crates below the facade, in dependency order.
const LIBS: &[&str] = &[
    "ranger",
    "sync-core",
    "sync-store-redb",
    "sync-actor",
    "sync-net",
    "sync-engine",
];

/// The layer table: one row per workspace package. A package missing here is a violation.
pub(crate) const LAYERS: &[Layer] = &[
    Layer {
        package: "ranger",
        workspace_deps: &[],
        dev_only_workspace_deps: &[],
        forbidden: &["tokio", "redb", "iroh", "iroh-docs", "rand", "getrandom"],
    },
    Layer {
        package: "sync-core",
        workspace_deps: &["ranger"],
        dev_only_workspace_deps: &[],
        forbidden: &["tokio", "redb", "iroh", "iroh-docs"],
    },
    Layer {
        package: "sync-store-redb",
        workspace_deps: &["sync-core", "ranger"],
        dev_only_workspace_deps: &[],
        forbidden: &["iroh", "iroh-docs", "tokio"],
    },
    Layer {
        package: "sync-actor",
        workspace_deps: &["sync-core", "ranger"],
        dev_only_workspace_deps: &["sync-store-redb"],
        forbidden: &["redb", "iroh", "iroh-docs"],
    },
    Layer {
        package: "sync-net",
        workspace_deps: &["sync-core", "ranger", "sync-actor"],
        dev_only_workspace_deps: &["sync-store-redb"],
        forbidden: &["redb", "iroh-docs"],
    },
    Layer {
        package: "sync-engine",
        workspace_deps: &["sync-core", "sync-actor", "sync-net"],
        dev_only_workspace_deps: &["sync-store-redb"],
        forbidden: &["redb", "iroh-docs"],
    },
    Layer {
        package: "docsync",
        workspace_deps: LIBS,
        dev_only_workspace_deps: &[],
        forbidden: &["redb", "iroh-docs"],
    },
    Layer {
        package: "interop-tests",
        workspace_deps: &[
            "ranger",
            "sync-core",
            "sync-store-redb",
            "sync-actor",
            "sync-net",
            "docsync",
        ],
        dev_only_workspace_deps: &[],
        forbidden: &[],
    },
    Layer {
        package: "reliability",
        workspace_deps: &[
            "ranger",
            "sync-core",
            "sync-store-redb",
            "sync-actor",
            "sync-net",
            "docsync",
        ],
        dev_only_workspace_deps: &[],
        // It reaches redb through sync-store-redb's raw-storage hook and the network through
        // the facade and sync-net, so that its tests see what users see. Its tests may name
        // iroh (a dev dependency): the connection flood opens raw QUIC connections and streams.
        forbidden: &["redb", "iroh-docs"],
    },
    Layer {
        package: "xtask",
        workspace_deps: &[],
        dev_only_workspace_deps: &[],
        forbidden: &[],
    },
];

/// External crates that only the listed packages may name directly (any dependency kind).
/// This catches what the per-package `forbidden` lists do not mention, e.g. `xtask` naming `redb`.
pub(crate) const EXCLUSIVE: &[(&str, &[&str])] = &[
    ("redb", &["sync-store-redb", "interop-tests"]),
    (
        "iroh",
        &[
            "sync-net",
            "sync-engine",
            "docsync",
            "interop-tests",
            "reliability",
        ],
    ),
    ("iroh-docs", &["interop-tests"]),
];

/// The kind of a dependency edge, as `cargo metadata` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DepKind {
    Normal,
    Build,
    Dev,
}

impl fmt::Display for DepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DepKind::Normal => "normal",
            DepKind::Build => "build",
            DepKind::Dev => "dev",
        })
    }
}

/// One direct dependency of a workspace package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dep {
    /// The package name of the dependency (not its rename).
    pub(crate) name: String,
    pub(crate) kind: DepKind,
    /// Whether the dependency is itself a workspace package.
    pub(crate) workspace: bool,
}

/// A workspace package and its direct dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) deps: Vec<Dep>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Violation {
    pub(crate) package: String,
    /// The offending edge, or `None` when the package itself is the problem.
    pub(crate) edge: Option<(String, DepKind)>,
    /// Which rule was broken, in words.
    pub(crate) rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.edge {
            Some((dep, kind)) => write!(
                f,
                "{} -> {dep} ({kind} dependency): {}",
                self.package, self.rule
            ),
            None => write!(f, "{}: {}", self.package, self.rule),
        }
    }
}

/// Extracts the workspace packages and their direct dependencies from `cargo metadata` JSON.
pub(crate) fn parse_metadata(metadata: &Value) -> Result<Vec<Package>> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("cargo metadata: no `workspace_members` array")?
        .iter()
        .map(|id| {
            id.as_str()
                .context("cargo metadata: a workspace member id is not a string")
        })
        .collect::<Result<_>>()?;
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata: no `packages` array")?;

    let mut raw = Vec::new();
    for package in packages {
        let id = package["id"]
            .as_str()
            .context("cargo metadata: a package without an id")?;
        if !members.contains(id) {
            continue;
        }
        let name = package["name"]
            .as_str()
            .with_context(|| format!("cargo metadata: package {id} has no name"))?;
        raw.push((name, package));
    }
    let names: BTreeSet<&str> = raw.iter().map(|(name, _)| *name).collect();

    raw.iter()
        .map(|(name, package)| {
            let deps = package["dependencies"]
                .as_array()
                .with_context(|| {
                    format!("cargo metadata: package {name} has no `dependencies` array")
                })?
                .iter()
                .map(|dep| {
                    let dep_name = dep["name"].as_str().with_context(|| {
                        format!("cargo metadata: a dependency of {name} has no name")
                    })?;
                    let kind = match &dep["kind"] {
                        Value::Null => DepKind::Normal,
                        Value::String(kind) if kind == "build" => DepKind::Build,
                        Value::String(kind) if kind == "dev" => DepKind::Dev,
                        other => bail!("cargo metadata: unknown dependency kind {other} in {name}"),
                    };
                    Ok(Dep {
                        name: dep_name.to_owned(),
                        kind,
                        workspace: names.contains(dep_name),
                    })
                })
                .collect::<Result<_>>()?;
            Ok(Package {
                name: (*name).to_owned(),
                deps,
            })
        })
        .collect()
}

/// Checks packages against [`LAYERS`] and [`EXCLUSIVE`]; returns the violations, sorted, one per edge.
pub(crate) fn check(packages: &[Package]) -> Vec<Violation> {
    let mut violations = BTreeSet::new();
    for package in packages {
        let Some(layer) = LAYERS.iter().find(|layer| layer.package == package.name) else {
            violations.insert(Violation {
                package: package.name.clone(),
                edge: None,
                rule: "not in the layer table: add it to LAYERS in xtask/src/layers.rs \
                       and to the table in ARCHITECTURE.md"
                    .to_owned(),
            });
            continue;
        };
        for dep in &package.deps {
            if let Some(rule) = broken_rule(layer, dep) {
                violations.insert(Violation {
                    package: package.name.clone(),
                    edge: Some((dep.name.clone(), dep.kind)),
                    rule,
                });
            }
        }
    }
    violations.into_iter().collect()
}

/// The rule `dep` breaks as a dependency of `layer`'s package, if any.
fn broken_rule(layer: &Layer, dep: &Dep) -> Option<String> {
    // A crate naming itself (a dev-dependency that turns on a feature for its own tests, e.g.
    // sync-core's `test-suite`) crosses no layer.
    if dep.name == layer.package {
        return None;
    }
    if dep.workspace {
        let allowed = layer.workspace_deps.contains(&dep.name.as_str())
            || (dep.kind == DepKind::Dev
                && layer.dev_only_workspace_deps.contains(&dep.name.as_str()));
        if allowed {
            return None;
        }
        let mut rule = format!(
            "{} may depend on workspace crates [{}] only",
            layer.package,
            layer.workspace_deps.join(", ")
        );
        if !layer.dev_only_workspace_deps.is_empty() {
            rule += &format!(
                ", plus [{}] as dev-dependencies",
                layer.dev_only_workspace_deps.join(", ")
            );
        }
        return Some(rule);
    }
    if layer.forbidden.contains(&dep.name.as_str()) {
        return Some(format!(
            "{} must not name `{}` (forbidden in its layer)",
            layer.package, dep.name
        ));
    }
    EXCLUSIVE
        .iter()
        .find(|(external, owners)| *external == dep.name && !owners.contains(&layer.package))
        .map(|(external, owners)| format!("only [{}] may name `{external}`", owners.join(", ")))
}

/// Runs `cargo metadata` on the workspace at `root` and checks it.
pub(crate) fn check_workspace(root: &Path) -> Result<Vec<Violation>> {
    Ok(check(&workspace_packages(root)?))
}

/// The workspace packages at `root`, from `cargo metadata --no-deps` (which needs no network).
fn workspace_packages(root: &Path) -> Result<Vec<Package>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .with_context(|| format!("cannot run `{} metadata`", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed invalid JSON")?;
    parse_metadata(&metadata)
}

/// `cargo xtask check-layers`: prints every violation; fails if there is any.
pub(crate) fn run(root: &Path) -> Result<()> {
    let violations = check_workspace(root)?;
    if violations.is_empty() {
        println!(
            "check-layers: ok ({} layers, no forbidden edges)",
            LAYERS.len()
        );
        return Ok(());
    }
    for violation in &violations {
        eprintln!("layer violation: {violation}");
    }
    bail!(
        "check-layers: {} violation(s); the allowed edges are in xtask/src/layers.rs and ARCHITECTURE.md",
        violations.len()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A dependency edge in a fake graph: `(dependency, kind)`, kind `None` = normal.
    type Edge = (&'static str, Option<&'static str>);
    /// A fake workspace: `(package, edges)`.
    type Graph = Vec<(&'static str, Vec<Edge>)>;

    /// Builds `cargo metadata`-shaped JSON in which every package of `graph` is a workspace member;
    /// `registry-only` is a non-member that must be ignored.
    fn metadata(graph: &Graph) -> Value {
        let id = |name: &str| format!("path+file:///ws/crates/{name}#0.1.0");
        let mut all: Vec<Value> = graph
            .iter()
            .map(|(name, deps)| {
                json!({
                    "name": name,
                    "id": id(name),
                    "dependencies": deps.iter().map(|(dep, kind)| json!({
                        "name": dep, "kind": kind, "req": "*", "source": null,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        all.push(json!({
            "name": "registry-only",
            "id": "registry+https://github.com/rust-lang/crates.io-index#registry-only@1.0.0",
            "dependencies": [{ "name": "iroh-docs", "kind": null }],
        }));
        json!({
            "packages": all,
            "workspace_members": graph.iter().map(|(name, _)| id(name)).collect::<Vec<_>>(),
        })
    }

    /// The intended graph of the finished workspace, every allowance used once.
    fn good_graph() -> Graph {
        vec![
            ("ranger", vec![("proptest", Some("dev"))]),
            (
                "sync-core",
                vec![("ranger", None), ("blake3", None), ("getrandom", None)],
            ),
            (
                "sync-store-redb",
                vec![("sync-core", None), ("ranger", None), ("redb", None)],
            ),
            (
                "sync-actor",
                vec![
                    ("sync-core", None),
                    ("tokio", None),
                    ("sync-store-redb", Some("dev")),
                ],
            ),
            (
                "sync-net",
                vec![
                    ("sync-actor", None),
                    ("sync-core", None),
                    ("iroh", None),
                    ("tokio", None),
                    ("sync-store-redb", Some("dev")),
                ],
            ),
            (
                "sync-engine",
                vec![
                    ("sync-net", None),
                    ("sync-actor", None),
                    ("iroh", None),
                    ("sync-store-redb", Some("dev")),
                ],
            ),
            (
                "docsync",
                vec![
                    ("sync-net", None),
                    ("sync-engine", None),
                    ("sync-store-redb", None),
                    ("iroh", None),
                ],
            ),
            (
                "interop-tests",
                vec![
                    ("sync-core", None),
                    ("iroh-docs", Some("dev")),
                    ("redb", Some("dev")),
                ],
            ),
            (
                "reliability",
                vec![
                    ("docsync", None),
                    ("sync-store-redb", None),
                    ("tokio", None),
                ],
            ),
            ("xtask", vec![("anyhow", None), ("serde_json", None)]),
        ]
    }

    fn check_graph(graph: &Graph) -> Vec<Violation> {
        check(&parse_metadata(&metadata(graph)).expect("fake metadata parses"))
    }

    /// The good graph with one extra edge planted in `package`.
    fn with_edge(package: &str, dep: &'static str, kind: Option<&'static str>) -> Vec<Violation> {
        let mut graph = good_graph();
        graph
            .iter_mut()
            .find(|(name, _)| *name == package)
            .expect("package in the good graph")
            .1
            .push((dep, kind));
        check_graph(&graph)
    }

    fn only_violation(violations: &[Violation], package: &str, dep: &str, kind: DepKind) -> String {
        assert_eq!(
            violations.len(),
            1,
            "expected exactly one violation, got {violations:#?}"
        );
        let violation = &violations[0];
        assert_eq!(violation.package, package);
        assert_eq!(violation.edge, Some((dep.to_owned(), kind)));
        violation.to_string()
    }

    #[test]
    fn good_graph_passes() {
        let packages = parse_metadata(&metadata(&good_graph())).expect("fake metadata parses");
        assert_eq!(
            packages.len(),
            LAYERS.len(),
            "the non-member package is skipped"
        );
        assert_eq!(check(&packages), vec![]);
    }

    #[test]
    fn ranger_depending_on_sync_core_fails() {
        let violations = with_edge("ranger", "sync-core", None);
        let text = only_violation(&violations, "ranger", "sync-core", DepKind::Normal);
        assert!(
            text.contains("ranger may depend on workspace crates [] only"),
            "{text}"
        );
    }

    #[test]
    fn ranger_dev_depending_on_a_workspace_crate_fails() {
        let violations = with_edge("ranger", "sync-core", Some("dev"));
        only_violation(&violations, "ranger", "sync-core", DepKind::Dev);
    }

    #[test]
    fn self_dev_dependency_is_allowed() {
        assert_eq!(with_edge("sync-core", "sync-core", Some("dev")), vec![]);
    }

    #[test]
    fn ranger_randomness_fails() {
        let violations = with_edge("ranger", "rand", None);
        let text = only_violation(&violations, "ranger", "rand", DepKind::Normal);
        assert!(text.contains("forbidden in its layer"), "{text}");
    }

    #[test]
    fn sync_actor_depending_on_redb_fails() {
        let violations = with_edge("sync-actor", "redb", None);
        only_violation(&violations, "sync-actor", "redb", DepKind::Normal);
    }

    #[test]
    fn sync_core_depending_on_iroh_fails_even_as_build_dependency() {
        let violations = with_edge("sync-core", "iroh", Some("build"));
        only_violation(&violations, "sync-core", "iroh", DepKind::Build);
    }

    #[test]
    fn store_is_a_dev_dependency_only_for_actor() {
        let violations = with_edge("sync-actor", "sync-store-redb", None);
        let text = only_violation(
            &violations,
            "sync-actor",
            "sync-store-redb",
            DepKind::Normal,
        );
        assert!(
            text.contains("plus [sync-store-redb] as dev-dependencies"),
            "{text}"
        );
    }

    #[test]
    fn only_interop_tests_may_name_iroh_docs() {
        let violations = with_edge("docsync", "iroh-docs", Some("dev"));
        only_violation(&violations, "docsync", "iroh-docs", DepKind::Dev);
    }

    #[test]
    fn exclusive_rule_covers_packages_without_a_forbidden_list() {
        let violations = with_edge("xtask", "redb", None);
        let text = only_violation(&violations, "xtask", "redb", DepKind::Normal);
        assert!(
            text.contains("only [sync-store-redb, interop-tests] may name `redb`"),
            "{text}"
        );
    }

    #[test]
    fn nothing_depends_on_xtask() {
        let violations = with_edge("docsync", "xtask", None);
        only_violation(&violations, "docsync", "xtask", DepKind::Normal);
    }

    #[test]
    fn nothing_depends_on_reliability() {
        let violations = with_edge("sync-net", "reliability", Some("dev"));
        only_violation(&violations, "sync-net", "reliability", DepKind::Dev);
    }

    #[test]
    fn reliability_reaches_redb_only_through_the_store() {
        let violations = with_edge("reliability", "redb", Some("dev"));
        only_violation(&violations, "reliability", "redb", DepKind::Dev);
    }

    #[test]
    fn unknown_package_fails() {
        let mut graph = good_graph();
        graph.push(("sync-extra", vec![]));
        let violations = check_graph(&graph);
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert_eq!(violations[0].package, "sync-extra");
        assert_eq!(violations[0].edge, None);
        assert!(violations[0].rule.contains("not in the layer table"));
    }

    #[test]
    fn unknown_dependency_kind_is_an_error() {
        let bad = json!({
            "packages": [{ "name": "ranger", "id": "r", "dependencies": [{ "name": "x", "kind": "weird" }] }],
            "workspace_members": ["r"],
        });
        let error = parse_metadata(&bad).expect_err("unknown kind must not be ignored");
        assert!(
            error.to_string().contains("unknown dependency kind"),
            "{error}"
        );
    }

    /// The real workspace: `cargo test --workspace` fails as soon as someone adds a forbidden edge.
    #[test]
    fn this_workspace_has_no_violations() {
        let root = crate::project_root();
        let violations = check_workspace(&root).expect("cargo metadata runs");
        assert!(
            violations.is_empty(),
            "layer violations:\n{}",
            violations
                .iter()
                .map(|v| format!("  {v}\n"))
                .collect::<String>()
        );
    }

    /// Guards against the check passing vacuously on the real workspace.
    #[test]
    fn real_metadata_lists_the_workspace() {
        let packages = workspace_packages(&crate::project_root()).expect("cargo metadata runs");
        let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        for expected in ["ranger", "sync-core", "interop-tests", "xtask"] {
            assert!(
                names.contains(expected),
                "{expected} missing from {names:?}"
            );
        }
        let core = packages
            .iter()
            .find(|p| p.name == "sync-core")
            .expect("sync-core");
        assert!(
            core.deps.iter().any(|d| d.name == "ranger" && d.workspace),
            "sync-core -> ranger is seen as a workspace edge"
        );
    }
}
