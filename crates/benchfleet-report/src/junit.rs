//! JUnit XML: one test case per benchmark, failed when a run failed or the benchmark regressed.

use benchfleet_analysis::Verdict;

use crate::{BenchmarkResult, NamedComparison};

/// Escape text for XML attributes and content.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// A JUnit XML document (`<testsuites>` with one `<testsuite name=suite>`): each benchmark is a
/// test case whose `time` is its mean wall time; it fails when any run failed (message: the
/// status, body: the stderr tail) or when `comparisons` has it `regressed` (message: change and
/// p-values). CI systems show these as failed tests.
pub fn junit_xml(
    suite: &str,
    results: &[BenchmarkResult],
    comparisons: &[NamedComparison],
) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    for r in results {
        let time = r.wall().map_or(0.0, |s| s.mean);
        cases.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.6}\">\n",
            xml_escape(suite),
            xml_escape(&r.name)
        ));
        let mut failed = false;
        if r.failed() > 0 {
            failed = true;
            cases.push_str(&format!(
                "      <failure message=\"{}\" type=\"run-failed\">{}</failure>\n",
                xml_escape(&r.status()),
                xml_escape(r.stderr_tail.as_deref().unwrap_or(""))
            ));
        }
        if let Some(c) = comparisons
            .iter()
            .find(|c| c.name == r.name && c.comparison.verdict == Verdict::Regressed)
        {
            failed = true;
            let k = &c.comparison;
            cases.push_str(&format!(
                "      <failure message=\"regressed by {:+.2}% (mean {:.6}s → {:.6}s, Welch p={:.2e}, Mann–Whitney p={:.2e})\" type=\"regression\"/>\n",
                k.change() * 100.0,
                k.baseline.mean,
                k.candidate.mean,
                k.welch.p_value,
                k.mann_whitney.p_value
            ));
        }
        failures += usize::from(failed);
        cases.push_str("    </testcase>\n");
    }
    let total: f64 = results
        .iter()
        .filter_map(|r| r.wall())
        .map(|s| s.mean)
        .sum();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" time=\"{total:.6}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml_escape(suite),
        n = results.len()
    )
}
