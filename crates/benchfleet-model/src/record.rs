use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Digest, RunId, Timestamp};

/// Version of the [`RunRecord`] / [`RunInfo`] schema. Bump on any incompatible change; readers
/// accept every version up to this one.
pub const SCHEMA_VERSION: u32 = 1;

/// Whether a DAG node is run once (`[[job]]`) or benchmarked (`[[benchmark]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Job,
    Benchmark,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Job => "job",
            NodeKind::Benchmark => "benchmark",
        }
    }
}

/// What one process run cost, measured from that child alone (its own `wait4` rusage).
///
/// Times are integer nanoseconds so that records are exact and reproducible; reports convert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Monotonic wall-clock time from spawn to reap.
    pub wall_ns: u64,
    /// User CPU time of the child (and its reaped descendants).
    pub user_ns: u64,
    /// System CPU time of the child (and its reaped descendants).
    pub sys_ns: u64,
    /// Peak resident set size of this run, in bytes.
    pub max_rss_bytes: u64,
    #[serde(default)]
    pub minor_faults: u64,
    #[serde(default)]
    pub major_faults: u64,
    #[serde(default)]
    pub voluntary_context_switches: u64,
    #[serde(default)]
    pub involuntary_context_switches: u64,
    /// Block input operations.
    #[serde(default)]
    pub block_in: u64,
    /// Block output operations.
    #[serde(default)]
    pub block_out: u64,
}

impl Measurement {
    /// Every counter, in declaration order (wall, user, sys, max RSS, minor and major faults,
    /// voluntary and involuntary context switches, blocks in and out): for encodings that store
    /// them as a row of integers.
    pub fn counters(&self) -> [u64; 10] {
        [
            self.wall_ns,
            self.user_ns,
            self.sys_ns,
            self.max_rss_bytes,
            self.minor_faults,
            self.major_faults,
            self.voluntary_context_switches,
            self.involuntary_context_switches,
            self.block_in,
            self.block_out,
        ]
    }

    pub fn wall_secs(&self) -> f64 {
        self.wall_ns as f64 / 1e9
    }
    pub fn user_secs(&self) -> f64 {
        self.user_ns as f64 / 1e9
    }
    pub fn sys_secs(&self) -> f64 {
        self.sys_ns as f64 / 1e9
    }
}

/// How one process run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Exited with status 0.
    Success,
    /// Exited with a non-zero status, or was killed by a signal.
    Failed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// Killed because it exceeded its timeout.
    TimedOut { timeout_ns: u64 },
    /// Could not be started at all (command not found, permission denied, bad cwd).
    SpawnFailed { message: String },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }

    /// The exit code as hyperfine reports it: `Some(0)` on success, the code on failure, `None`
    /// when there is none (killed by a signal, timed out, never started).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Outcome::Success => Some(0),
            Outcome::Failed { exit_code, .. } => *exit_code,
            _ => None,
        }
    }

    /// A short human description: `ok`, `exit 3`, `signal 9`, `timed out after 2s`, ….
    pub fn describe(&self) -> String {
        match self {
            Outcome::Success => "ok".into(),
            Outcome::Failed {
                exit_code: Some(c), ..
            } => format!("exit {c}"),
            Outcome::Failed {
                signal: Some(s), ..
            } => format!("killed by signal {s}"),
            Outcome::Failed { .. } => "failed".into(),
            Outcome::TimedOut { timeout_ns } => {
                format!("timed out after {:.3}s", *timeout_ns as f64 / 1e9)
            }
            Outcome::SpawnFailed { message } => format!("could not start: {message}"),
        }
    }
}

/// One measured run of one benchmark (or the single run of a job): the unit benchfleet stores.
///
/// Records are immutable once written. Their canonical encoding ([`RunRecord::canonical_bytes`])
/// is hashed to give the content address under which every storage tier keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub run_id: RunId,
    pub suite: String,
    /// The node's name after matrix expansion, e.g. `gzip-9`.
    pub name: String,
    pub kind: NodeKind,
    /// The command as the user wrote it, placeholders substituted.
    pub command: String,
    /// Matrix / parameter values that produced this node.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// 0-based index of this measured run within its benchmark.
    pub iteration: u32,
    pub started_at: Timestamp,
    pub measurement: Measurement,
    pub outcome: Outcome,
    /// Last bytes of the child's stderr when it failed (bounded), for diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Free-form labels recorded with the run (e.g. `git.commit`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl RunRecord {
    /// The canonical, deterministic encoding of this record (compact JSON, fields in declaration
    /// order, maps sorted). Its SHA-256 is the record's identity in every storage tier.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("RunRecord serialization cannot fail")
    }

    /// Content address of [`Self::canonical_bytes`].
    pub fn digest(&self) -> Digest {
        Digest::of(&self.canonical_bytes())
    }

    /// Tag with the run's retired instructions (hardware counter), when the kernel allowed it.
    /// Absent means unavailable, never zero. Kept in `tags` so records without it still parse
    /// and no struct literal of the schema changes.
    pub const TAG_INSTRUCTIONS: &'static str = "hw.instructions";
    /// Tag with the run's CPU cycles (hardware counter); absent when unavailable.
    pub const TAG_CYCLES: &'static str = "hw.cycles";
    /// Tag saying whether another measured process ran at the same time (`true`) or the run was
    /// alone (`false`). Absent in records written before it existed.
    pub const TAG_CONCURRENT: &'static str = "run.concurrent";
    /// Tag with the content digest of the run's captured stdout (blob namespace `output`).
    pub const TAG_STDOUT: &'static str = "output.stdout";
    /// Tag with the machine class the run was measured on: `mc-` and 12 hex digits of a digest
    /// of CPU model, cores, threads, memory, kernel, governor and SMT. Also a run tag (a fleet
    /// run's: the class its benchmarks were pinned to).
    pub const TAG_MACHINE_CLASS: &'static str = "machine.class";

    /// Retired instructions of this run; `None` when unavailable (not requested, no PMU, refused).
    pub fn instructions(&self) -> Option<u64> {
        self.tags.get(Self::TAG_INSTRUCTIONS)?.parse().ok()
    }

    /// CPU cycles of this run; `None` when unavailable.
    pub fn cycles(&self) -> Option<u64> {
        self.tags.get(Self::TAG_CYCLES)?.parse().ok()
    }

    /// `Some(true)` when the run shared the machine with other measured runs, `Some(false)` when
    /// it ran alone, `None` when not recorded.
    pub fn concurrent(&self) -> Option<bool> {
        self.tags.get(Self::TAG_CONCURRENT)?.parse().ok()
    }

    /// Decode a record from its canonical bytes, checking the schema version.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let r: RunRecord = serde_json::from_slice(bytes)?;
        if r.schema_version > SCHEMA_VERSION {
            return Err(serde::de::Error::custom(format!(
                "record schema_version {} is newer than this benchfleet understands ({SCHEMA_VERSION}); upgrade benchfleet",
                r.schema_version
            )));
        }
        Ok(r)
    }
}

/// How a whole invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running, or the process died without saying otherwise (see `--resume`).
    Running,
    /// Every node ran and succeeded.
    Succeeded,
    /// Finished; some nodes failed or were skipped.
    Failed,
    /// Stopped by Ctrl-C or cancellation; what finished is kept.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// The machine a run happened on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: u32,
    #[serde(default)]
    pub memory_bytes: u64,
}

/// One invocation of a suite: the catalog's run-level row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub schema_version: u32,
    pub run_id: RunId,
    pub suite: String,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub status: RunStatus,
    #[serde(default)]
    pub host: HostInfo,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Where the suite came from (a file path, `bench` for ad-hoc runs, `import:…`).
    #[serde(default)]
    pub source: String,
}

impl RunInfo {
    /// Tag with the content digest (blob namespace [`RunInfo::SYSTEM_SERIES_NS`]) of the system
    /// samples taken during the run (JSON of `benchfleet_metrics::SystemSeries`).
    pub const TAG_SYSTEM_SERIES: &'static str = "system.series";
    /// Blob namespace of stored system series.
    pub const SYSTEM_SERIES_NS: &'static str = "system";
    /// Tag with the mean CPU utilisation over all cores during the run, percent (`12.5`).
    pub const TAG_SYSTEM_BUSY: &'static str = "system.mean_busy_pct";
    /// Tag `true` when the machine was judged noisy during the run.
    pub const TAG_SYSTEM_NOISY: &'static str = "system.noisy";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: "01HZY3K4MZ8Q6X2V1B0C9D7E5F".parse().unwrap(),
            suite: "s".into(),
            name: "b".into(),
            kind: NodeKind::Benchmark,
            command: "sleep 0.01".into(),
            parameters: [("z".to_string(), "1".to_string()), ("a".into(), "2".into())].into(),
            iteration: 3,
            started_at: Timestamp(1_700_000_000_000_000_000),
            measurement: Measurement {
                wall_ns: 10_000_000,
                max_rss_bytes: 4096,
                ..Default::default()
            },
            outcome: Outcome::Failed {
                exit_code: Some(2),
                signal: None,
            },
            stderr_tail: Some("boom".into()),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn canonical_bytes_are_stable_and_round_trip() {
        let r = record();
        let bytes = r.canonical_bytes();
        assert_eq!(bytes, r.clone().canonical_bytes());
        let back = RunRecord::from_canonical_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.digest(), r.digest());
        // Maps are sorted in the canonical form.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.find("\"a\"").unwrap() < text.find("\"z\"").unwrap());
    }

    #[test]
    fn optional_run_facts_come_from_tags_and_are_none_when_absent() {
        let check = |tags: &[(&str, &str)], want: (Option<u64>, Option<u64>, Option<bool>)| {
            let mut r = record();
            r.tags = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let back = RunRecord::from_canonical_bytes(&r.canonical_bytes()).unwrap();
            assert_eq!(
                (back.instructions(), back.cycles(), back.concurrent()),
                want,
                "{tags:?}"
            );
        };
        check(&[], (None, None, None));
        check(
            &[
                (RunRecord::TAG_INSTRUCTIONS, "123"),
                (RunRecord::TAG_CYCLES, "456"),
                (RunRecord::TAG_CONCURRENT, "true"),
            ],
            (Some(123), Some(456), Some(true)),
        );
        check(
            &[(RunRecord::TAG_CONCURRENT, "false")],
            (None, None, Some(false)),
        );
        check(&[(RunRecord::TAG_INSTRUCTIONS, "n/a")], (None, None, None));
    }

    #[test]
    fn newer_schema_is_refused_with_advice() {
        let mut r = record();
        r.schema_version = SCHEMA_VERSION + 1;
        let err = RunRecord::from_canonical_bytes(&r.canonical_bytes()).unwrap_err();
        assert!(err.to_string().contains("upgrade benchfleet"), "{err}");
    }

    #[test]
    fn outcome_exit_codes() {
        assert_eq!(Outcome::Success.exit_code(), Some(0));
        assert_eq!(
            Outcome::Failed {
                exit_code: Some(3),
                signal: None
            }
            .exit_code(),
            Some(3)
        );
        assert_eq!(Outcome::TimedOut { timeout_ns: 1 }.exit_code(), None);
        assert_eq!(
            Outcome::Failed {
                exit_code: None,
                signal: Some(9)
            }
            .describe(),
            "killed by signal 9"
        );
    }
}
