//! The dependency rules of `ARCHITECTURE.md`, checked against `cargo metadata`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use cargo_metadata::{DependencyKind, MetadataCommand};

/// A crate's normal and build dependencies, split into workspace crates and third-party ones.
#[derive(Debug, Default, Clone)]
pub struct Edges {
    /// Path of the crate relative to the workspace root (`crates/…`, `plugins/…`).
    pub dir: String,
    pub workspace: Vec<String>,
    pub external: Vec<String>,
}

/// Check the real workspace; returns the number of crates checked.
pub fn check_workspace() -> Result<usize> {
    let meta = MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata failed")?;
    let root = meta.workspace_root.clone();
    let members: Vec<String> = meta.packages.iter().map(|p| p.name.to_string()).collect();
    let mut graph = BTreeMap::new();
    for p in &meta.packages {
        let dir = p
            .manifest_path
            .parent()
            .and_then(|d| d.strip_prefix(&root).ok())
            .map(|d| d.to_string())
            .unwrap_or_default();
        let mut e = Edges {
            dir,
            ..Default::default()
        };
        for d in &p.dependencies {
            if d.kind == DependencyKind::Development {
                continue;
            }
            if members.contains(&d.name) {
                e.workspace.push(d.name.clone());
            } else {
                e.external.push(d.name.clone());
            }
        }
        graph.insert(p.name.to_string(), e);
    }
    let violations = check(&graph);
    if !violations.is_empty() {
        bail!(
            "dependency rules broken (see ARCHITECTURE.md):\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(graph.len())
}

/// Which workspace crates `krate` may depend on (normal/build dependencies), or `None` for any.
fn allowed_workspace(krate: &str, dir: &str) -> Option<&'static [&'static str]> {
    const MODEL: &[&str] = &["benchfleet-model"];
    if dir.starts_with("plugins/") {
        return Some(&["benchfleet-model", "benchfleet-store"]);
    }
    Some(match krate {
        "benchfleet-model" => &[],
        "benchfleet-sched" | "benchfleet-metrics" | "benchfleet-store" | "benchfleet-analysis" => {
            MODEL
        }
        "benchfleet-report" => &["benchfleet-model", "benchfleet-analysis"],
        "benchfleet-config" => MODEL,
        "benchfleet-testkit" => &["benchfleet-model", "benchfleet-store"],
        // The facade composes everything below it, and is the only crate naming plugins.
        "benchfleet" => return None,
        // The dashboard server sits on the facade (and what it re-exports), under the CLI.
        "benchfleet-serve" => &["benchfleet"],
        "benchfleet-cli" => return None,
        "xtask" => &[],
        _ => return None,
    })
}

/// Third-party crates reserved to one workspace crate: (dependency, the only crate allowed).
const RESERVED: &[(&str, &str)] = &[
    ("figment", "benchfleet-config"),
    ("clap", "benchfleet-cli"),
    ("indicatif", "benchfleet-cli"),
    ("console", "benchfleet-cli"),
    ("axum", "benchfleet-serve"),
    ("tower-http", "benchfleet-serve"),
];

/// All rule violations in `graph`, as sentences.
pub fn check(graph: &BTreeMap<String, Edges>) -> Vec<String> {
    let mut out = Vec::new();
    let is_plugin = |name: &str| {
        graph
            .get(name)
            .is_some_and(|e| e.dir.starts_with("plugins/"))
    };
    for (krate, edges) in graph {
        if let Some(allowed) = allowed_workspace(krate, &edges.dir) {
            for dep in &edges.workspace {
                if !allowed.contains(&dep.as_str()) {
                    out.push(format!(
                        "{krate} must not depend on {dep} (allowed: {})",
                        list(allowed)
                    ));
                }
            }
        }
        for dep in &edges.workspace {
            if is_plugin(dep) && krate != "benchfleet" {
                out.push(format!(
                    "{krate} names plugin {dep}; only the facade `benchfleet` may"
                ));
            }
            if dep == "benchfleet-cli" {
                out.push(format!("{krate} depends on the CLI; nothing may"));
            }
        }
        for (reserved, owner) in RESERVED {
            if edges.external.iter().any(|d| d == reserved) && krate != owner {
                out.push(format!("{krate} uses {reserved}; only {owner} may"));
            }
        }
    }
    out
}

fn list(xs: &[&str]) -> String {
    if xs.is_empty() {
        "nothing in the workspace".into()
    } else {
        xs.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (crate, directory, workspace deps, external deps)
    type Spec<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str]);

    fn graph(edges: &[Spec<'_>]) -> BTreeMap<String, Edges> {
        edges
            .iter()
            .map(|(name, dir, ws, ext)| {
                let e = Edges {
                    dir: dir.to_string(),
                    workspace: ws.iter().map(|s| s.to_string()).collect(),
                    external: ext.iter().map(|s| s.to_string()).collect(),
                };
                (name.to_string(), e)
            })
            .collect()
    }

    #[test]
    fn the_real_workspace_obeys_the_rules() {
        check_workspace().unwrap();
    }

    #[test]
    fn violations_are_found() {
        let cases: &[(&[Spec<'_>], &str)] = &[
            (
                &[(
                    "benchfleet-model",
                    "crates/benchfleet-model",
                    &["benchfleet-store"],
                    &[],
                )],
                "benchfleet-model must not depend on benchfleet-store",
            ),
            (
                &[(
                    "benchfleet-sched",
                    "crates/benchfleet-sched",
                    &["benchfleet-store"],
                    &[],
                )],
                "benchfleet-sched must not depend on benchfleet-store",
            ),
            (
                &[(
                    "benchfleet-fs",
                    "plugins/benchfleet-fs",
                    &["benchfleet-analysis"],
                    &[],
                )],
                "benchfleet-fs must not depend on benchfleet-analysis",
            ),
            (
                &[
                    ("benchfleet-fs", "plugins/benchfleet-fs", &[], &[]),
                    (
                        "benchfleet-report",
                        "crates/benchfleet-report",
                        &["benchfleet-fs"],
                        &[],
                    ),
                ],
                "names plugin benchfleet-fs",
            ),
            (
                &[(
                    "benchfleet-report",
                    "crates/benchfleet-report",
                    &[],
                    &["figment"],
                )],
                "uses figment; only benchfleet-config",
            ),
            (
                &[("benchfleet", "crates/benchfleet", &[], &["clap"])],
                "uses clap; only benchfleet-cli",
            ),
            (
                &[("benchfleet", "crates/benchfleet", &["benchfleet-cli"], &[])],
                "depends on the CLI",
            ),
        ];
        for (g, needle) in cases {
            let v = check(&graph(g));
            assert!(
                v.iter().any(|s| s.contains(needle)),
                "expected {needle:?} in {v:?}"
            );
        }
    }

    #[test]
    fn allowed_edges_pass() {
        let g = graph(&[
            (
                "benchfleet-fs",
                "plugins/benchfleet-fs",
                &["benchfleet-store", "benchfleet-model"],
                &["tokio"],
            ),
            (
                "benchfleet",
                "crates/benchfleet",
                &["benchfleet-fs", "benchfleet-sched"],
                &[],
            ),
            (
                "benchfleet-cli",
                "crates/benchfleet-cli",
                &["benchfleet", "benchfleet-config"],
                &["clap"],
            ),
        ]);
        assert_eq!(check(&g), Vec::<String>::new());
    }
}
