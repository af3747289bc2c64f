//! Bencher Metric Format (BMF) JSON export.

use serde_json::{Map, Value, json};

use crate::BenchmarkResult;

/// Bencher Metric Format: `{"<benchmark>": {"latency": {"value", "lower_value", "upper_value"}}}`
/// with nanoseconds (mean, min, max of the successful runs' wall times), plus a
/// `max-rss-bytes` measure (peak RSS, lower = smallest, upper = largest successful run).
/// Benchmarks without a successful run are left out.
pub fn bmf_json(results: &[BenchmarkResult]) -> Value {
    let mut out = Map::new();
    for r in results {
        let Some(s) = r.wall() else { continue };
        let mut measures = Map::new();
        measures.insert("latency".into(), json!({ "value": s.mean * 1e9, "lower_value": s.min * 1e9, "upper_value": s.max * 1e9 }));
        let rss: Vec<u64> = (0..r.runs())
            .filter(|&i| r.succeeded(i))
            .filter_map(|i| r.max_rss_bytes.get(i).copied())
            .collect();
        if let (Some(lo), Some(hi)) = (rss.iter().min(), rss.iter().max()) {
            let mean = rss.iter().map(|&b| b as f64).sum::<f64>() / rss.len() as f64;
            measures.insert(
                "max-rss-bytes".into(),
                json!({ "value": mean, "lower_value": *lo as f64, "upper_value": *hi as f64 }),
            );
        }
        out.insert(r.name.clone(), Value::Object(measures));
    }
    Value::Object(out)
}
