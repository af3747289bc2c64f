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
    /// The most nodes the suite may expand into (matrices multiplied out); more is refused
    /// before anything is expanded. `None`: the runner's default (1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u64>,
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
    pub resources: Option<String>,
    pub cpus: Option<f64>,
    pub memory: Option<ByteSize>,
    pub retries: Option<u32>,
    pub cache: Option<bool>,
    /// Whether benchmarks run alone (see [`NodeSpec::exclusive`]); jobs do not inherit it.
    pub exclusive: Option<bool>,
    /// Run once before this node's first run (hyperfine `--setup`); not measured.
    pub setup: Option<CommandSpec>,
    /// Run before every run, warmups included (hyperfine `--prepare`); not measured.
    pub prepare: Option<CommandSpec>,
    /// Run after every run, warmups included (hyperfine `--conclude`); not measured.
    pub conclude: Option<CommandSpec>,
    /// Run once after this node's last run (hyperfine `--cleanup`), also after a failed run;
    /// not measured.
    pub cleanup: Option<CommandSpec>,
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
    /// Resource profile: `micro`, `small`, `medium`, `large` or `xlarge`.
    pub resources: Option<String>,
    /// Explicit CPUs this node needs (overrides the profile's).
    pub cpus: Option<f64>,
    /// Explicit memory this node needs (overrides the profile's), e.g. `"2GiB"`.
    pub memory: Option<ByteSize>,
    /// Extra attempts after a failure, with exponential backoff.
    pub retries: Option<u32>,
    /// Files or directories whose contents are part of this node's cache key.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Programs this node needs (`jj`, or a path): looked up on `PATH` before the run; when one
    /// is missing the node and the nodes needing it are skipped with the reason, not failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// `false`: always run, never reuse a cached result.
    pub cache: Option<bool>,
    /// `true`: nothing else of the suite runs while this node runs (it waits for what runs to
    /// end). Default: `true` for a benchmark (measured alone), `false` for a job; a benchmark
    /// opts in to sharing the machine with `exclusive = false`.
    pub exclusive: Option<bool>,
    /// Run once before this node's first run (hyperfine `--setup`); not measured.
    pub setup: Option<CommandSpec>,
    /// Run before every run, warmups included (hyperfine `--prepare`); not measured.
    pub prepare: Option<CommandSpec>,
    /// Run after every run, warmups included (hyperfine `--conclude`); not measured.
    pub conclude: Option<CommandSpec>,
    /// Run once after this node's last run (hyperfine `--cleanup`), also after a failed run;
    /// not measured.
    pub cleanup: Option<CommandSpec>,
    /// Run the command under a load profile (what `benchfleet load` does) instead of a number
    /// of runs. Boxed: few nodes have one, and a node's size counts in a suite of 100,000.
    pub load: Option<Box<LoadSpec>>,
}

/// A node's `load` table: run the command repeatedly at a concurrency and/or target rate
/// following a profile, as `benchfleet load` does. The keys are that command's flags
/// (`--max-concurrency` is `max_concurrency`); which ones apply depends on `profile`. Values are
/// checked when the suite is expanded, not here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// `soak` (the default), `stress` or `spike`.
    pub profile: Option<String>,
    /// Length of a soak or spike; for stress, divided into `steps` when `step_duration` is not
    /// given.
    pub duration: Option<DurationSpec>,
    /// Runs in flight at most (soak), of the first step (stress), outside the burst (spike).
    pub concurrency: Option<u32>,
    /// Runs started per second (open loop); without it a new run starts as soon as one ends.
    pub rate: Option<f64>,
    /// Stress: number of steps.
    pub steps: Option<u32>,
    /// Stress: length of each step.
    pub step_duration: Option<DurationSpec>,
    /// Stress: concurrency of the last step.
    pub max_concurrency: Option<u32>,
    /// Stress: rate of the last step (ramps from `rate`).
    pub max_rate: Option<f64>,
    /// Spike: concurrency outside the burst.
    pub baseline: Option<u32>,
    /// Spike: concurrency during the burst.
    pub burst: Option<u32>,
    /// Spike: length of the burst.
    pub burst_duration: Option<DurationSpec>,
    /// Spike: rate during the burst.
    pub burst_rate: Option<f64>,
    /// Length of the reporting windows.
    pub window: Option<DurationSpec>,
}

/// A size in bytes, written as an integer or a string with a unit (`"512MiB"`, `"2GiB"`, `"1G"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| {
            format!(
                "`{s}` is not a size: write bytes (1048576) or a number with a unit (512MiB, 2GiB)"
            )
        })?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mib" => 1024.0 * 1024.0,
            "g" | "gb" => 1e9,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" => 1e12,
            "tib" => 1024.0f64.powi(4),
            other => {
                return Err(format!(
                    "`{s}`: unknown size unit `{other}` (use B, KiB, MiB, GiB, TiB, or KB/MB/GB/TB)"
                ));
            }
        };
        let bytes = value * scale;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("`{s}` is out of range"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a size: bytes as an integer, or a string such as \"512MiB\" or \"2GiB\"",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} is not a size")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
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
            max_nodes = 5000
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
        assert_eq!(s.suite.max_nodes, Some(5000));
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
    fn byte_sizes() {
        for (text, bytes) in [
            ("512MiB", 512u64 << 20),
            ("2GiB", 2 << 30),
            ("1G", 1_000_000_000),
            ("100", 100),
            ("1.5KiB", 1536),
        ] {
            assert_eq!(text.parse::<ByteSize>().unwrap().0, bytes, "{text}");
        }
        for bad in ["", "lots", "5 parsecs", "-1"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
        let n: NodeSpec =
            toml::from_str("name='a'\ncommand='x'\nmemory='1GiB'\ninputs=['f']\nretries=2\n")
                .unwrap();
        assert_eq!(
            (n.memory, n.retries, n.inputs.len()),
            (Some(ByteSize(1 << 30)), Some(2), 1)
        );
    }

    #[test]
    fn a_load_table_reads_numbers_and_durations() {
        let n: NodeSpec = toml::from_str(
            "name='a'\ncommand='x'\nload={ profile='soak', concurrency=4, rate=200, duration='30s', window=1 }\n",
        )
        .unwrap();
        let l = n.load.unwrap();
        assert_eq!(l.profile.as_deref(), Some("soak"));
        assert_eq!(
            (l.concurrency, l.rate),
            (Some(4), Some(200.0)),
            "an integer rate is a rate"
        );
        assert_eq!(l.duration.unwrap().0.as_secs(), 30);
        assert_eq!(l.window.unwrap().0.as_secs(), 1);
        let err = toml::from_str::<NodeSpec>("name='a'\ncommand='x'\nload={ concurency=4 }\n")
            .unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
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
