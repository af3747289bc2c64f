//! hyperfine-compatible JSON export (documented in `docs/json-format.md`).

use serde_json::{Value, json};

use crate::BenchmarkResult;

/// Version of the JSON export format (`schema_version` in every result). Bump on any
/// incompatible change; fields may be added without a bump.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// `{"results": [...]}` with hyperfine's field names (`command`, `mean`, `stddev`, `median`,
/// `user`, `system`, `min`, `max`, `times`, `memory_usage_byte`, `exit_codes`, `parameters`) plus
/// benchfleet's own (`name`, `command_line`, `kind`, `run_id`, `schema_version`, `p95`, `p99`,
/// `mad`, `max_rss_bytes`, `runs`, `failures`, `machine_classes`, and per run `instructions`,
/// `cycles`, `concurrent`).
///
/// `command` means what it means in hyperfine's export: the benchmark's name (its `-n` name,
/// else its command line); `command_line` is the command that ran.
///
/// Statistics are over successful runs; `times`, `memory_usage_byte`, `max_rss_bytes`,
/// `exit_codes`, `instructions`, `cycles` and `concurrent` list every run (aligned by index;
/// `null` where a run has no such measurement). When no run succeeded the statistics are
/// `null`. See `docs/json-format.md`.
pub fn hyperfine_json(results: &[BenchmarkResult]) -> Value {
    json!({ "results": results.iter().map(one).collect::<Vec<_>>() })
}

fn one(r: &BenchmarkResult) -> Value {
    let s = r.wall();
    let stat = |f: fn(&benchfleet_analysis::Summary) -> f64| s.as_ref().map(f);
    let mut v = json!({
        "command": r.name,
        "mean": stat(|s| s.mean),
        "stddev": s.as_ref().and_then(|s| s.stddev),
        "median": stat(|s| s.median),
        "user": r.mean_user(),
        "system": r.mean_system(),
        "min": stat(|s| s.min),
        "max": stat(|s| s.max),
        "times": r.times,
        "memory_usage_byte": r.max_rss_bytes,
        "exit_codes": r.exit_codes,
        "parameters": r.parameters,
        "name": r.name,
        "command_line": r.command,
        "kind": r.kind.as_str(),
        "run_id": r.run_id.as_str(),
        "schema_version": JSON_SCHEMA_VERSION,
        "p95": stat(|s| s.p95),
        "p99": stat(|s| s.p99),
        "mad": stat(|s| s.mad),
        "max_rss_bytes": r.max_rss_bytes,
        "runs": r.runs(),
        "failures": r.failures,
        "instructions": r.instructions,
        "cycles": r.cycles,
        "concurrent": r.concurrent,
    });
    // Absent, not empty, where the records do not say (exports of older runs stay as they were).
    if !r.machine_classes.is_empty() {
        v["machine_classes"] = json!(r.machine_classes);
    }
    v
}
