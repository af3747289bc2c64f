//! Importing results measured by other tools so that they enter history like native runs:
//! hyperfine `--export-json` files (and benchfleet's own JSON export, which is a superset),
//! criterion's `target/criterion` directories (`new/sample.json`, `new/estimates.json`) and
//! Bencher Metric Format (BMF) JSON.
//!
//! Parsing ([`parse_hyperfine`], [`parse_bmf`], [`parse_criterion_sample`],
//! [`parse_criterion_estimates`], [`read`]) is pure apart from reading the given files and never
//! panics on any input: a malformed file gives an [`ImportError`] naming the file and the JSON
//! path that is wrong (`$.results[2].times[5]: expected a number ≥ 0 (seconds), found "x"`).
//! The parsers are fuzzed with proptest (arbitrary JSON values and bytes).
//!
//! # What is synthesized
//!
//! Other tools do not keep everything a [`RunRecord`] holds; an import fills the gaps as follows
//! (every imported record has `kind = benchmark`):
//!
//! * **hyperfine**: one record per entry of `times` (wall time of that run). hyperfine reports
//!   only the *mean* `user` and `system` times, so every run gets those means as its user/sys
//!   time. Peak RSS comes from `memory_usage_byte[i]` (or benchfleet's `max_rss_bytes[i]`) when
//!   present, else 0. The outcome comes from `exit_codes[i]` (0 success, other code failed,
//!   `null` failed without a code); without `exit_codes` every run is a success. A result without
//!   `times` becomes one record whose wall time is `mean`.
//! * **criterion**: one record per sample of `sample.json`, whose wall time is that sample's
//!   time per iteration (`times[i] / iters[i]`, ns), so the run's mean is criterion's mean of
//!   per-iteration times (not its slope estimate). With only `estimates.json`, one record whose
//!   wall time is `mean.point_estimate`. CPU times and RSS are 0 (criterion does not measure them).
//! * **BMF**: one record per benchmark with a `latency` measure (ns) as its wall time; a
//!   `max-rss-bytes` measure (what benchfleet exports) becomes the peak RSS. `lower_value` and
//!   `upper_value` are checked but not stored (they are not runs). Other measures have no
//!   benchfleet equivalent and are reported as skipped. One record means a BMF import can be
//!   plotted in history but has too few runs for a two-sample `compare`.
//!
//! Every run made by an import has `source = "import:<format>:<path>"`, an empty
//! [`HostInfo`](benchfleet_model::HostInfo) (the measuring machine is unknown) and the import
//! time as `started_at`. A directory of hyperfine or BMF files gives one run per `*.json` file,
//! in file-name order, with increasing times; a criterion directory gives one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use benchfleet_model::{
    HostInfo, Measurement, NodeKind, Outcome, RunId, RunInfo, RunRecord, RunStatus, SCHEMA_VERSION,
    Timestamp,
};
use benchfleet_store::Storage;

use crate::host;

/// Which tool wrote the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Hyperfine,
    Criterion,
    Bmf,
}

impl ImportFormat {
    pub const ALL: [ImportFormat; 3] = [
        ImportFormat::Hyperfine,
        ImportFormat::Criterion,
        ImportFormat::Bmf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Hyperfine => "hyperfine",
            ImportFormat::Criterion => "criterion",
            ImportFormat::Bmf => "bmf",
        }
    }
}

impl FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown import format `{s}`; expected hyperfine, criterion or bmf")
            })
    }
}

/// An import that failed. Every variant names the file; shape errors also name the JSON path.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("`{}` is not valid JSON (line {line}, column {column}): {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// The JSON parsed but does not have the expected shape at `json_path`.
    #[error("`{}` at `{json_path}`: {message}", path.display())]
    Shape {
        path: PathBuf,
        json_path: String,
        message: String,
    },

    /// Nothing importable was found.
    #[error("`{}`: {message}", path.display())]
    Empty { path: PathBuf, message: String },

    #[error(transparent)]
    Facade(#[from] crate::Error),
}

impl ImportError {
    /// Whether the user can fix this by changing their input (exit code 2 in the CLI).
    pub fn is_user_input(&self) -> bool {
        match self {
            ImportError::Facade(e) => e.is_user_input(),
            _ => true,
        }
    }
}

/// One measured run of an imported benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRun {
    pub measurement: Measurement,
    pub outcome: Outcome,
}

/// One imported benchmark and its (possibly synthesized) runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedBenchmark {
    pub name: String,
    pub command: String,
    pub parameters: BTreeMap<String, String>,
    pub runs: Vec<ImportedRun>,
}

/// What one file (or one criterion directory) held: becomes one stored run.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedSet {
    pub path: PathBuf,
    pub format: ImportFormat,
    pub benchmarks: Vec<ImportedBenchmark>,
    /// Things left out and why (unknown measures, benchmarks without a usable value, …).
    pub notes: Vec<String>,
}

/// How to import.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// Suite name of the imported runs; default: the file stem (directory name for a directory).
    pub suite: Option<String>,
    /// Labels stored with the runs and each record.
    pub tags: BTreeMap<String, String>,
}

/// One stored run made by [`import`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRunInfo {
    pub run: RunInfo,
    pub benchmarks: usize,
    pub records: usize,
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// JSON navigation with paths

/// A JSON value and where it is, for error messages.
#[derive(Clone, Copy)]
struct At<'a> {
    file: &'a Path,
    v: &'a Value,
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("the string {:?}", short)
        }
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// `path` extended by an object key: `.key` for identifiers, `["odd key"]` otherwise.
fn key_path(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if ident {
        format!("{path}.{key}")
    } else {
        format!(
            "{path}[{}]",
            serde_json::to_string(key).unwrap_or_else(|_| "?".into())
        )
    }
}

impl<'a> At<'a> {
    fn bad(&self, path: &str, message: impl Into<String>) -> ImportError {
        ImportError::Shape {
            path: self.file.to_owned(),
            json_path: path.to_owned(),
            message: message.into(),
        }
    }

    fn object(
        &self,
        path: &str,
        what: &str,
    ) -> Result<&'a serde_json::Map<String, Value>, ImportError> {
        self.v
            .as_object()
            .ok_or_else(|| self.bad(path, format!("expected {what}, found {}", kind(self.v))))
    }

    fn array(&self, path: &str, what: &str) -> Result<&'a Vec<Value>, ImportError> {
        self.v
            .as_array()
            .ok_or_else(|| self.bad(path, format!("expected {what}, found {}", kind(self.v))))
    }

    fn with(&self, v: &'a Value) -> At<'a> {
        At { file: self.file, v }
    }

    /// A finite number ≥ 0.
    fn non_negative(&self, path: &str, what: &str) -> Result<f64, ImportError> {
        match self.v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(self.bad(
                path,
                format!("expected {what} (a number ≥ 0), found {}", kind(self.v)),
            )),
        }
    }

    fn optional_number(&self, path: &str, what: &str) -> Result<Option<f64>, ImportError> {
        if self.v.is_null() {
            Ok(None)
        } else {
            self.non_negative(path, what).map(Some)
        }
    }
}

/// Seconds (or any unit) times `scale` as integer nanoseconds, refusing what does not fit.
fn to_ns(at: &At<'_>, path: &str, x: f64, scale: f64) -> Result<u64, ImportError> {
    let ns = (x * scale).round();
    if ns.is_finite() && ns >= 0.0 && ns < u64::MAX as f64 {
        Ok(ns as u64)
    } else {
        Err(at.bad(path, format!("{x} is out of range for a duration")))
    }
}

fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value, ImportError> {
    serde_json::from_slice(bytes).map_err(|e| ImportError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.to_owned(),
        source: e,
    })
}

/// Make names unique within a set (`name`, `name#2`, …), noting each rename.
fn dedupe(benchmarks: &mut [ImportedBenchmark], notes: &mut Vec<String>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for b in benchmarks.iter_mut() {
        let n = seen.entry(b.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            let new = format!("{}#{n}", b.name);
            notes.push(format!(
                "benchmark `{}` appears {n} times; imported as `{new}`",
                b.name
            ));
            b.name = new;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hyperfine

/// Parse a hyperfine `--export-json` file (or benchfleet's JSON export).
pub fn parse_hyperfine(path: &Path, bytes: &[u8]) -> Result<ImportedSet, ImportError> {
    let root = parse_json(path, bytes)?;
    let at = At {
        file: path,
        v: &root,
    };
    let obj = at.object(
        "$",
        "an object with a `results` array (hyperfine --export-json)",
    )?;
    let results = obj.get("results").ok_or_else(|| {
        at.bad(
            "$",
            "missing `results`; expected a hyperfine --export-json file",
        )
    })?;
    let results = at.with(results).array("$.results", "an array of results")?;
    let mut benchmarks = Vec::with_capacity(results.len());
    for (i, r) in results.iter().enumerate() {
        benchmarks.push(hyperfine_result(&at.with(r), &format!("$.results[{i}]"))?);
    }
    if benchmarks.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
            message: "`results` is empty; nothing to import".into(),
        });
    }
    let mut notes = Vec::new();
    dedupe(&mut benchmarks, &mut notes);
    Ok(ImportedSet {
        path: path.to_owned(),
        format: ImportFormat::Hyperfine,
        benchmarks,
        notes,
    })
}

fn hyperfine_result(at: &At<'_>, p: &str) -> Result<ImportedBenchmark, ImportError> {
    let obj = at.object(p, "a result object")?;
    let string = |key: &str| -> Result<Option<String>, ImportError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(at.bad(
                &key_path(p, key),
                format!("expected a string, found {}", kind(v)),
            )),
        }
    };
    // hyperfine's `command` is the benchmark's name (its `-n` name, else its command line);
    // benchfleet's own export adds the command line as `command_line`.
    let command = string("command")?
        .ok_or_else(|| at.bad(p, "missing `command` (the benchmarked command)"))?;
    let name = string("name")?.unwrap_or_else(|| command.clone());
    let command = string("command_line")?.unwrap_or(command);
    let field = |key: &str| obj.get(key).filter(|v| !v.is_null());

    let times: Option<Vec<f64>> = match field("times") {
        None => None,
        Some(v) => {
            let tp = key_path(p, "times");
            let arr = at.with(v).array(&tp, "an array of run times in seconds")?;
            let mut out = Vec::with_capacity(arr.len());
            for (i, t) in arr.iter().enumerate() {
                out.push(
                    at.with(t)
                        .non_negative(&format!("{tp}[{i}]"), "a run time in seconds")?,
                );
            }
            Some(out)
        }
    };
    let mean = match field("mean") {
        None => None,
        Some(v) => at
            .with(v)
            .optional_number(&key_path(p, "mean"), "the mean time in seconds")?,
    };
    let times = match (times, mean) {
        (Some(t), _) if !t.is_empty() => t,
        (_, Some(m)) => vec![m],
        _ => {
            return Err(at.bad(
                p,
                "has neither `times` nor `mean`; nothing to import for this result",
            ));
        }
    };
    let n = times.len();

    let exit_codes: Option<Vec<Option<i32>>> =
        match field("exit_codes") {
            None => None,
            Some(v) => {
                let ep = key_path(p, "exit_codes");
                let arr = at
                    .with(v)
                    .array(&ep, "an array of exit codes (integers or null)")?;
                if arr.len() != n {
                    return Err(at.bad(
                        &ep,
                        format!("has {} entries but there are {n} run times", arr.len()),
                    ));
                }
                let mut out = Vec::with_capacity(n);
                for (i, c) in arr.iter().enumerate() {
                    out.push(match c {
                        Value::Null => None,
                        c => Some(c.as_i64().and_then(|c| i32::try_from(c).ok()).ok_or_else(
                            || {
                                at.bad(
                                    &format!("{ep}[{i}]"),
                                    format!("expected an exit code, found {}", kind(c)),
                                )
                            },
                        )?),
                    });
                }
                Some(out)
            }
        };
    let rss_key = if field("memory_usage_byte").is_some() {
        "memory_usage_byte"
    } else {
        "max_rss_bytes"
    };
    let rss: Option<Vec<u64>> = match field(rss_key) {
        None => None,
        Some(v) => {
            let rp = key_path(p, rss_key);
            let arr = at.with(v).array(&rp, "an array of byte counts")?;
            if arr.len() != n {
                return Err(at.bad(
                    &rp,
                    format!("has {} entries but there are {n} run times", arr.len()),
                ));
            }
            let mut out = Vec::with_capacity(n);
            for (i, b) in arr.iter().enumerate() {
                out.push(b.as_u64().ok_or_else(|| {
                    at.bad(
                        &format!("{rp}[{i}]"),
                        format!("expected a byte count, found {}", kind(b)),
                    )
                })?);
            }
            Some(out)
        }
    };
    let mean_of = |key: &str| -> Result<u64, ImportError> {
        match field(key) {
            None => Ok(0),
            Some(v) => {
                let kp = key_path(p, key);
                let x = at.with(v).non_negative(&kp, "a time in seconds")?;
                to_ns(at, &kp, x, 1e9)
            }
        }
    };
    let (user_ns, sys_ns) = (mean_of("user")?, mean_of("system")?);

    let mut parameters = BTreeMap::new();
    if let Some(v) = field("parameters") {
        let pp = key_path(p, "parameters");
        for (k, val) in at.with(v).object(&pp, "an object of parameter values")? {
            let s = match val {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(at.bad(
                        &key_path(&pp, k),
                        format!("expected a parameter value, found {}", kind(other)),
                    ));
                }
            };
            parameters.insert(k.clone(), s);
        }
    }

    let tp = key_path(p, "times");
    let mut runs = Vec::with_capacity(n);
    for (i, t) in times.iter().enumerate() {
        let outcome = match exit_codes.as_ref().map(|c| c[i]) {
            None | Some(Some(0)) => Outcome::Success,
            Some(code) => Outcome::Failed {
                exit_code: code,
                signal: None,
            },
        };
        runs.push(ImportedRun {
            measurement: Measurement {
                wall_ns: to_ns(at, &format!("{tp}[{i}]"), *t, 1e9)?,
                user_ns,
                sys_ns,
                max_rss_bytes: rss.as_ref().map_or(0, |r| r[i]),
                ..Default::default()
            },
            outcome,
        });
    }
    Ok(ImportedBenchmark {
        name,
        command,
        parameters,
        runs,
    })
}

// ---------------------------------------------------------------------------------------------
// BMF

/// Parse a Bencher Metric Format file: `{"<benchmark>": {"<measure>": {"value": …}}}`.
pub fn parse_bmf(path: &Path, bytes: &[u8]) -> Result<ImportedSet, ImportError> {
    let root = parse_json(path, bytes)?;
    let at = At {
        file: path,
        v: &root,
    };
    let obj = at.object(
        "$",
        "an object of benchmarks (Bencher Metric Format: {\"name\": {\"latency\": {\"value\": ns}}})",
    )?;
    let mut benchmarks = Vec::new();
    let mut notes = Vec::new();
    for (name, measures) in obj {
        let bp = key_path("$", name);
        let measures = at.with(measures).object(&bp, "an object of measures")?;
        let mut latency = None;
        let mut rss = None;
        for (measure, m) in measures {
            let mp = key_path(&bp, measure);
            let mo = at.with(m).object(&mp, "a metric object with a `value`")?;
            let value = mo
                .get("value")
                .ok_or_else(|| at.bad(&mp, "missing `value`"))?;
            match value.as_f64() {
                Some(x) if x.is_finite() => {}
                _ => {
                    return Err(at.bad(
                        &key_path(&mp, "value"),
                        format!("expected a number, found {}", kind(value)),
                    ));
                }
            };
            for bound in ["lower_value", "upper_value"] {
                if let Some(b) = mo.get(bound).filter(|b| !b.is_null())
                    && !b.as_f64().is_some_and(f64::is_finite)
                {
                    return Err(at.bad(
                        &key_path(&mp, bound),
                        format!("expected a number or null, found {}", kind(b)),
                    ));
                }
            }
            match measure.as_str() {
                "latency" => {
                    let vp = key_path(&mp, "value");
                    let ns = at.with(&mo["value"]).non_negative(&vp, "a latency in ns")?;
                    latency = Some(to_ns(&at, &vp, ns, 1.0)?);
                }
                "max-rss-bytes" => {
                    let vp = key_path(&mp, "value");
                    let b = at.with(&mo["value"]).non_negative(&vp, "a byte count")?;
                    rss = Some(b.round().min(u64::MAX as f64) as u64);
                }
                other => notes.push(format!(
                    "measure `{other}` of `{name}` has no benchfleet equivalent; skipped"
                )),
            }
        }
        match latency {
            Some(wall_ns) => benchmarks.push(ImportedBenchmark {
                name: name.clone(),
                command: String::new(),
                parameters: BTreeMap::new(),
                runs: vec![ImportedRun {
                    measurement: Measurement {
                        wall_ns,
                        max_rss_bytes: rss.unwrap_or(0),
                        ..Default::default()
                    },
                    outcome: Outcome::Success,
                }],
            }),
            None => notes.push(format!(
                "benchmark `{name}` has no `latency` measure; skipped"
            )),
        }
    }
    if benchmarks.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
            message: "no benchmark with a `latency` measure; nothing to import".into(),
        });
    }
    Ok(ImportedSet {
        path: path.to_owned(),
        format: ImportFormat::Bmf,
        benchmarks,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// criterion

/// Parse criterion's `sample.json` (`{"iters": [...], "times": [...]}`, ns per sample): one run
/// per sample with the time per iteration.
pub fn parse_criterion_sample(
    path: &Path,
    bytes: &[u8],
    name: &str,
) -> Result<ImportedBenchmark, ImportError> {
    let root = parse_json(path, bytes)?;
    let at = At {
        file: path,
        v: &root,
    };
    let obj = at.object("$", "criterion's sample object with `iters` and `times`")?;
    let list = |key: &str, what: &str| -> Result<Vec<f64>, ImportError> {
        let kp = key_path("$", key);
        let v = obj
            .get(key)
            .ok_or_else(|| at.bad("$", format!("missing `{key}`")))?;
        let arr = at.with(v).array(&kp, what)?;
        arr.iter()
            .enumerate()
            .map(|(i, x)| at.with(x).non_negative(&format!("{kp}[{i}]"), what))
            .collect()
    };
    let iters = list("iters", "an iteration count")?;
    let times = list("times", "a total time in ns")?;
    if iters.len() != times.len() {
        return Err(at.bad(
            "$.times",
            format!(
                "has {} entries but `iters` has {}",
                times.len(),
                iters.len()
            ),
        ));
    }
    if times.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
            message: "no samples; nothing to import".into(),
        });
    }
    let mut runs = Vec::with_capacity(times.len());
    for (i, (t, n)) in times.iter().zip(&iters).enumerate() {
        if *n < 1.0 {
            return Err(at.bad(
                &format!("$.iters[{i}]"),
                format!("expected at least 1 iteration, found {n}"),
            ));
        }
        runs.push(ImportedRun {
            measurement: Measurement {
                wall_ns: to_ns(&at, &format!("$.times[{i}]"), t / n, 1.0)?,
                ..Default::default()
            },
            outcome: Outcome::Success,
        });
    }
    Ok(ImportedBenchmark {
        name: name.to_owned(),
        command: String::new(),
        parameters: BTreeMap::new(),
        runs,
    })
}

/// Parse criterion's `estimates.json`: one run whose wall time is `mean.point_estimate` (ns).
pub fn parse_criterion_estimates(
    path: &Path,
    bytes: &[u8],
    name: &str,
) -> Result<ImportedBenchmark, ImportError> {
    let root = parse_json(path, bytes)?;
    let at = At {
        file: path,
        v: &root,
    };
    let obj = at.object("$", "criterion's estimates object")?;
    let mean = obj
        .get("mean")
        .ok_or_else(|| at.bad("$", "missing `mean`"))?;
    let mean = at.with(mean).object("$.mean", "an estimate object")?;
    let pe = mean
        .get("point_estimate")
        .ok_or_else(|| at.bad("$.mean", "missing `point_estimate`"))?;
    let ns = at
        .with(pe)
        .non_negative("$.mean.point_estimate", "a time in ns")?;
    Ok(ImportedBenchmark {
        name: name.to_owned(),
        command: String::new(),
        parameters: BTreeMap::new(),
        runs: vec![ImportedRun {
            measurement: Measurement {
                wall_ns: to_ns(&at, "$.mean.point_estimate", ns, 1.0)?,
                ..Default::default()
            },
            outcome: Outcome::Success,
        }],
    })
}

/// The benchmark's id from criterion's `benchmark.json` (`full_id`), if readable.
fn criterion_full_id(new_dir: &Path) -> Option<String> {
    let bytes = std::fs::read(new_dir.join("benchmark.json")).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("full_id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Name of a criterion benchmark directory (`<root>/<group>/<bench>/new`): `full_id` from
/// `benchmark.json`, else the path from `root` to the benchmark directory.
fn criterion_name(root: &Path, new_dir: &Path) -> String {
    if let Some(id) = criterion_full_id(new_dir) {
        return id;
    }
    let bench = new_dir.parent().unwrap_or(new_dir);
    let rel = bench.strip_prefix(root).unwrap_or(bench);
    let name = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if name.is_empty() {
        bench
            .file_name()
            .map_or_else(|| "criterion".into(), |n| n.to_string_lossy().into_owned())
    } else {
        name
    }
}

fn criterion_bench(root: &Path, new_dir: &Path) -> Result<ImportedBenchmark, ImportError> {
    let name = criterion_name(root, new_dir);
    let sample = new_dir.join("sample.json");
    if sample.is_file() {
        parse_criterion_sample(&sample, &read_file(&sample)?, &name)
    } else {
        let est = new_dir.join("estimates.json");
        parse_criterion_estimates(&est, &read_file(&est)?, &name)
    }
}

/// Every `new` directory holding `sample.json` or `estimates.json` under `dir`, sorted; `report`
/// directories are skipped. Symlinks are not followed; depth is bounded.
fn criterion_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    if depth > 12 {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ImportError::Io {
            path: dir.to_owned(),
            source: e,
        })?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        match p.file_name().and_then(|n| n.to_str()) {
            Some("report") | Some("base") | Some("change") => {}
            Some("new") => {
                if p.join("sample.json").is_file() || p.join("estimates.json").is_file() {
                    out.push(p);
                }
            }
            _ => criterion_dirs(&p, depth + 1, out)?,
        }
    }
    Ok(())
}

fn read_criterion(path: &Path) -> Result<ImportedSet, ImportError> {
    let mut benchmarks = Vec::new();
    if path.is_dir() {
        // A benchmark directory itself (`…/bench`, holding `new/`) or a tree of them.
        let mut dirs = Vec::new();
        if path.file_name().is_some_and(|n| n == "new") {
            dirs.push(path.to_owned());
        } else {
            criterion_dirs(path, 0, &mut dirs)?;
        }
        if dirs.is_empty() {
            return Err(ImportError::Empty {
                path: path.to_owned(),
                message: "no criterion results found (expected `<benchmark>/new/sample.json` or `<benchmark>/new/estimates.json`, as under target/criterion)".into(),
            });
        }
        for d in &dirs {
            benchmarks.push(criterion_bench(path, d)?);
        }
    } else {
        // One sample.json or estimates.json: named after its benchmark directory.
        let parent = path.parent().unwrap_or(Path::new(""));
        let bench_dir = if parent.file_name().is_some_and(|n| n == "new") {
            parent.parent().unwrap_or(parent)
        } else {
            parent
        };
        let name = if parent.file_name().is_some_and(|n| n == "new") {
            criterion_full_id(parent)
        } else {
            None
        }
        .or_else(|| {
            bench_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "criterion".into());
        let bytes = read_file(path)?;
        let is_sample = path.file_name().is_some_and(|n| n == "sample.json")
            || serde_json::from_slice::<Value>(&bytes)
                .ok()
                .is_some_and(|v| v.get("iters").is_some());
        benchmarks.push(if is_sample {
            parse_criterion_sample(path, &bytes, &name)?
        } else {
            parse_criterion_estimates(path, &bytes, &name)?
        });
    }
    let mut notes = Vec::new();
    dedupe(&mut benchmarks, &mut notes);
    Ok(ImportedSet {
        path: path.to_owned(),
        format: ImportFormat::Criterion,
        benchmarks,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading and storing

/// Read `path` (a file, or a directory) in `format`: one [`ImportedSet`] per future run.
pub fn read(path: &Path, format: ImportFormat) -> Result<Vec<ImportedSet>, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    if format == ImportFormat::Criterion {
        return Ok(vec![read_criterion(path)?]);
    }
    let parse = |p: &Path| {
        let bytes = read_file(p)?;
        match format {
            ImportFormat::Bmf => parse_bmf(p, &bytes),
            _ => parse_hyperfine(p, &bytes),
        }
    };
    if !meta.is_dir() {
        return Ok(vec![parse(path)?]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| ImportError::Io {
            path: path.to_owned(),
            source: e,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ImportError::Empty {
            path: path.to_owned(),
            message: format!(
                "no *.json files in this directory; expected {} exports",
                format.as_str()
            ),
        });
    }
    files.iter().map(|f| parse(f)).collect()
}

/// The records of one imported set, as they will be stored.
pub fn to_records(
    set: &ImportedSet,
    run_id: &RunId,
    suite: &str,
    started_at: Timestamp,
    tags: &BTreeMap<String, String>,
) -> Vec<RunRecord> {
    let mut out = Vec::new();
    for b in &set.benchmarks {
        for (i, r) in b.runs.iter().enumerate() {
            out.push(RunRecord {
                schema_version: SCHEMA_VERSION,
                run_id: run_id.clone(),
                suite: suite.to_owned(),
                name: b.name.clone(),
                kind: NodeKind::Benchmark,
                command: b.command.clone(),
                parameters: b.parameters.clone(),
                iteration: u32::try_from(i).unwrap_or(u32::MAX),
                started_at,
                measurement: r.measurement,
                outcome: r.outcome.clone(),
                stderr_tail: None,
                tags: tags.clone(),
            });
        }
    }
    out
}

/// A run id for the `k`-th run of one import: ULIDs from consecutive milliseconds, so that the
/// runs keep their order in history.
fn run_id_at(ms: u64) -> RunId {
    ulid::Ulid::from_parts(ms, rand_bits())
        .to_string()
        .parse()
        .expect("a ULID is a valid run id")
}

fn rand_bits() -> u128 {
    // The random part of a fresh ULID is as good as any.
    ulid::Ulid::new().random()
}

/// Read and store `path`: each [`ImportedSet`] becomes one run (status `succeeded`, or `failed`
/// when an imported run failed) with its records. Nothing is stored unless every file parses.
pub async fn import(
    storage: &Storage,
    path: &Path,
    format: ImportFormat,
    opts: &ImportOptions,
) -> Result<Vec<ImportedRunInfo>, ImportError> {
    let sets = read(path, format)?;
    let default_suite = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "import".into());
    let suite = opts.suite.clone().unwrap_or(default_suite);
    let now_ms = u64::try_from(host::now().unix_nanos() / 1_000_000).unwrap_or(0);
    let mut out = Vec::with_capacity(sets.len());
    for (k, set) in sets.iter().enumerate() {
        let ms = now_ms + k as u64;
        let started_at = Timestamp(
            i64::try_from(ms)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
        );
        let run_id = run_id_at(ms);
        let records = to_records(set, &run_id, &suite, started_at, &opts.tags);
        let failed = records.iter().any(|r| !r.outcome.is_success());
        let run = RunInfo {
            schema_version: SCHEMA_VERSION,
            run_id,
            suite: suite.clone(),
            started_at,
            finished_at: Some(started_at),
            status: if failed {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            },
            host: HostInfo::default(),
            tags: opts.tags.clone(),
            source: format!("import:{}:{}", format.as_str(), set.path.display()),
        };
        storage
            .catalog
            .put_run(&run)
            .await
            .map_err(crate::Error::from)?;
        storage
            .write_records(&records)
            .await
            .map_err(crate::Error::from)?;
        out.push(ImportedRunInfo {
            run,
            benchmarks: set.benchmarks.len(),
            records: records.len(),
            notes: set.notes.clone(),
        });
    }
    crate::session::release_lease(storage).await;
    Ok(out)
}

#[cfg(test)]
mod tests;
