//! The suite file as written (TOML). Expansion (matrices, placeholders) happens in the runner.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DurationSpec;

/// A whole suite file: `[suite]`, `[defaults]`, `[[job]]` and `[[benchmark]]` tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub suite: SuiteMeta,
    #[serde(default)]
    pub defaults: Defaults,
    /// Nodes run once and measured (setup, data generation, workload steps).
    #[serde(default)]
    pub job: Vec<NodeSpec>,
    /// Nodes warmed up, then measured repeatedly.
    #[serde(default)]
    pub benchmark: Vec<NodeSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Values every node inherits unless it sets its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub warmup: Option<u32>,
    pub runs: Option<u32>,
    pub min_runs: Option<u32>,
    pub max_runs: Option<u32>,
    pub min_time: Option<DurationSpec>,
    pub timeout: Option<DurationSpec>,
    pub shell: Option<String>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A command: a string (split into words like a shell would, but run without one unless
/// `shell` is set) or an explicit argument vector.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    Line(String),
    Argv(Vec<String>),
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandSpec::Line(s) => write!(f, "{s:?}"),
            CommandSpec::Argv(v) => write!(f, "{v:?}"),
        }
    }
}

/// A matrix value as written: strings, integers, floats and booleans are all accepted and used
/// as text in placeholders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatrixValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for MatrixValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatrixValue::Bool(b) => write!(f, "{b}"),
            MatrixValue::Int(i) => write!(f, "{i}"),
            MatrixValue::Float(x) => write!(f, "{x}"),
            MatrixValue::Str(s) => f.write_str(s),
        }
    }
}

/// One `[[job]]` or `[[benchmark]]` entry, before matrix expansion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub command: CommandSpec,
    /// Names of nodes (before expansion) that must succeed first.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Run exactly this many measured runs (overrides min/max).
    pub runs: Option<u32>,
    pub min_runs: Option<u32>,
    pub max_runs: Option<u32>,
    /// Keep measuring until at least this much time was spent (hyperfine: 3 s).
    pub min_time: Option<DurationSpec>,
    pub warmup: Option<u32>,
    /// Cross product of parameter values; `{key}` placeholders in name, command, env and cwd.
    #[serde(default)]
    pub matrix: BTreeMap<String, Vec<MatrixValue>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub timeout: Option<DurationSpec>,
    /// Run the command through this shell (`sh`, `bash`, …) as `SHELL -c COMMAND`.
    pub shell: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_suite() {
        let s: SuiteFile = toml::from_str(
            r#"
            [suite]
            name = "q"
            [defaults]
            warmup = 2
            min_time = "1s"
            env = { LC_ALL = "C" }
            [[job]]
            name = "gen"
            command = ["sh", "-c", "seq 1000 > {out}/x"]
            [[benchmark]]
            name = "gzip-{level}"
            command = "gzip -{level} -c {out.gen}/x"
            needs = ["gen"]
            matrix = { level = [1, 9], mode = ["a", 1.5, true] }
            timeout = 10
            "#,
        )
        .unwrap();
        assert_eq!(s.defaults.warmup, Some(2));
        assert_eq!(s.defaults.min_time.unwrap().0.as_secs(), 1);
        assert_eq!(
            s.job[0].command,
            CommandSpec::Argv(vec!["sh".into(), "-c".into(), "seq 1000 > {out}/x".into()])
        );
        let b = &s.benchmark[0];
        assert_eq!(b.timeout.unwrap().0.as_secs(), 10);
        let modes: Vec<String> = b.matrix["mode"].iter().map(|v| v.to_string()).collect();
        assert_eq!(modes, ["a", "1.5", "true"]);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let err = toml::from_str::<SuiteFile>(
            "[suite]\nname='x'\n[[benchmark]]\nname='a'\ncommand='true'\nrusn=3\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("rusn"), "{err}");
    }
}
