//! CSV export: one row per benchmark (hyperfine's columns first).

use std::collections::BTreeSet;

use crate::BenchmarkResult;

/// Quote a CSV field when needed (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

/// CSV with hyperfine's columns first, in hyperfine's order: `command,mean,stddev,median,user,
/// system,min,max` (seconds; `command` is the benchmark's name, as in hyperfine) and one
/// `parameter_<key>` column per parameter key found in any result (sorted); then benchfleet's
/// `command_line,name,kind,run_id,runs,failed,p95,p99,mad,max_rss_bytes`. Statistics are over
/// successful runs; an empty field means "not available".
pub fn csv(results: &[BenchmarkResult]) -> String {
    let keys: BTreeSet<&str> = results
        .iter()
        .flat_map(|r| r.parameters.keys().map(String::as_str))
        .collect();
    let mut header: Vec<String> = [
        "command", "mean", "stddev", "median", "user", "system", "min", "max",
    ]
    .map(String::from)
    .to_vec();
    header.extend(keys.iter().map(|k| format!("parameter_{k}")));
    header.extend(
        [
            "command_line",
            "name",
            "kind",
            "run_id",
            "runs",
            "failed",
            "p95",
            "p99",
            "mad",
            "max_rss_bytes",
        ]
        .map(String::from),
    );
    let mut out = header
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in results {
        let s = r.wall();
        let st = |f: fn(&benchfleet_analysis::Summary) -> f64| num(s.as_ref().map(f));
        let mut row = vec![
            field(&r.name),
            st(|s| s.mean),
            num(s.as_ref().and_then(|s| s.stddev)),
            st(|s| s.median),
            num(r.mean_user()),
            num(r.mean_system()),
            st(|s| s.min),
            st(|s| s.max),
        ];
        row.extend(
            keys.iter()
                .map(|k| r.parameters.get(*k).map(|v| field(v)).unwrap_or_default()),
        );
        row.extend([
            field(&r.command),
            field(&r.name),
            r.kind.as_str().to_string(),
            r.run_id.to_string(),
            r.runs().to_string(),
            r.failed().to_string(),
            st(|s| s.p95),
            st(|s| s.p99),
            st(|s| s.mad),
            r.peak_rss().map(|b| b.to_string()).unwrap_or_default(),
        ]);
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
