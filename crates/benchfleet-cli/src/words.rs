//! The one place that words what the facade reports: runner events, warnings, node states,
//! load and bench outcomes, import notes. Commands and the progress display print these lines;
//! they never build them from facade data themselves. When the facade's warnings become a typed
//! enum, this module is what changes: it names flags (`--jobs`) for `bench`/`load` and `suite.key`
//! names (`load.max_concurrency`) for suite runs.

use benchfleet::analysis::Comparison;
use benchfleet::bench::CommandReport;
use benchfleet::bisect::{BisectEvent, BisectOutcome, Finding, Inconclusive, StepVerdict};
use benchfleet::history::Metric;
use benchfleet::load::NodeLoadOutcome;
use benchfleet::metrics::SystemSeries;
use benchfleet::runner::{RunOutcome, RunnerEvent, Warning};
use benchfleet::sched::NodeState;

/// A runner event as one line of progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    pub text: String,
    /// A failure, a skip or cancellation: shown even above progress bars, where ordinary
    /// progress only moves the bar.
    pub notice: bool,
}

/// The warning line of an event that is a warning (printed in every progress mode).
pub fn event_warning(ev: &RunnerEvent) -> Option<String> {
    match ev {
        RunnerEvent::Warning { warning, .. } => Some(format!("warning: {}", warning_text(warning))),
        _ => ev.warning(),
    }
}

/// A typed warning of the library in the CLI's words: flags (`-j`) and suite keys
/// (`shell`, `memory`) by the names the user types.
pub fn warning_text(w: &Warning) -> String {
    match w {
        Warning::MoreJobsThanCores { jobs, physical } => format!(
            "up to {jobs} jobs run at once but this machine has {physical} physical cores; concurrent runs disturb each other (each record's `{}` tag says whether it ran alone), compare them with care or use -j {physical}",
            benchfleet::model::RunRecord::TAG_CONCURRENT
        ),
        Warning::JobsShareCpus { jobs, cpus } => format!(
            "up to {jobs} jobs run at once (-j {jobs}) on {cpus} CPUs; jobs running at once share CPUs"
        ),
        Warning::MemoryLimitByRlimit => format!(
            "memory limits of jobs are enforced with RLIMIT_AS (address space, which counts mappings, not only resident memory): no cgroup v2 with the memory controller is delegated to benchfleet here; a program that reserves much address space may fail below its `memory` (records say `{}=rlimit`)",
            benchfleet::runner::TAG_MEMORY_LIMIT
        ),
        Warning::ShortWithShell {
            name,
            shell_wall_ns,
        } => format!(
            "`{name}` took less than {} ms on average; the shell's spawn time ({:.2} ms) was subtracted, which cannot be calibrated much more precisely than that. Remove `shell` from the node (commands are then run directly) for accurate numbers",
            benchfleet::runner::SHELL_SHORT_MEAN.as_millis(),
            *shell_wall_ns as f64 / 1e6
        ),
    }
}

/// The progress line of an event, if it has one.
pub fn event_line(ev: &RunnerEvent) -> Option<EventLine> {
    let line = |text: String, notice: bool| Some(EventLine { text, notice });
    match ev {
        RunnerEvent::Started { run_id, nodes } => {
            line(format!("run {run_id}: {nodes} nodes"), false)
        }
        RunnerEvent::NodeFinished {
            name,
            state,
            runs,
            failure,
            ..
        } => {
            let status = match (state, failure) {
                (_, Some(f)) => format!("FAILED ({f})"),
                (NodeState::Cancelled, None) => "interrupted".to_owned(),
                (NodeState::Cached, None) => "cached".to_owned(),
                _ => "ok".to_owned(),
            };
            line(format!("{name}: {status}, {runs} runs"), failure.is_some())
        }
        RunnerEvent::NodeSkipped { name, because, .. } => {
            line(format!("{name}: skipped ({because} failed)"), true)
        }
        RunnerEvent::NodeUnavailable { name, reason } => {
            line(format!("{name}: skipped ({reason})"), true)
        }
        RunnerEvent::Cancelling => line("cancelling: running jobs get a grace period".into(), true),
        RunnerEvent::FleetClaimed { .. }
        | RunnerEvent::FleetCompleted { .. }
        | RunnerEvent::FleetConcurrency { .. }
        | RunnerEvent::FleetRunEnded { .. } => fleet_event(ev).map(|text| EventLine {
            text,
            notice: false,
        }),
        RunnerEvent::FleetQueue { .. }
        | RunnerEvent::NodeStarted { .. }
        | RunnerEvent::RunStarted { .. }
        | RunnerEvent::Measured { .. }
        | RunnerEvent::Stored { .. }
        | RunnerEvent::MissedStart { .. }
        | RunnerEvent::Warning { .. }
        | RunnerEvent::Outliers { .. } => None,
    }
}

/// Why each node of a finished suite run did not succeed, with the last lines of its stderr:
/// `FAILED  name: why`, `SKIPPED name: …`, `NOT RUN name: interrupted`.
pub fn node_states(outcome: &RunOutcome) -> Vec<String> {
    // The runs of the nodes that failed, by name (few: looked up once each).
    let failed: std::collections::HashMap<&str, &benchfleet::runner::NodeResult> = outcome
        .results
        .iter()
        .filter(|r| !r.runs.failures().is_empty() || r.runs.stderr_tail().is_some())
        .map(|r| (r.node.name.as_str(), r))
        .collect();
    let mut lines = Vec::new();
    for (node, state) in &outcome.states {
        let name = &node.name;
        match state {
            NodeState::Failed | NodeState::TimedOut => {
                let runs = failed.get(name.as_str()).map(|r| &r.runs);
                let why = runs
                    .and_then(|r| r.failures().first().cloned())
                    .or_else(|| {
                        // Failed before or around its runs (a hook, its output directory).
                        outcome
                            .failures
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, m)| m.clone())
                    })
                    .unwrap_or_else(|| "failed".into());
                lines.push(format!("FAILED  {name}: {why}"));
                if let Some(tail) = runs.and_then(|r| r.stderr_tail()) {
                    let last: Vec<&str> = tail.trim_end().lines().rev().take(5).collect();
                    for l in last.into_iter().rev() {
                        lines.push(format!("        | {l}"));
                    }
                }
            }
            NodeState::Skipped => lines.push(format!("SKIPPED {name}: a job it needs failed")),
            NodeState::Cancelled | NodeState::Pending => {
                lines.push(format!("NOT RUN {name}: interrupted"))
            }
            _ => {}
        }
    }
    // Not failures: the machine lacks a program the node requires.
    for (node, reason) in &outcome.unavailable {
        lines.push(format!("SKIPPED {}: {reason}", node.name));
    }
    lines
}

/// The warnings of a suite's load node, in the terms of its `load` table
/// (`load.max_concurrency`, not `--max-concurrency`).
/// The nodes reused from the cache, named (the first [`CACHED_NAMED`] of them; a sweep can reuse
/// thousands, and one line of every name helps nobody).
pub fn cached(names: &[&str]) -> String {
    let shown = names.len().min(CACHED_NAMED);
    let mut line = format!(
        "cached (unchanged, not run again): {}",
        names[..shown].join(", ")
    );
    if names.len() > shown {
        line.push_str(&format!(
            " … and {} more ({} nodes in all)",
            names.len() - shown,
            names.len()
        ));
    }
    line
}

/// How many cached nodes [`cached`] names.
const CACHED_NAMED: usize = 10;

pub fn load_node_warnings(load: &NodeLoadOutcome) -> Vec<String> {
    load.report
        .warnings
        .iter()
        .map(|w| format!("{}: {}", load.name, benchfleet::load::in_table_terms(w)))
        .collect()
}

/// The warnings of `bench` or `load` (worded with their flags by the facade today).
pub fn warnings(warnings: &[String]) -> Vec<String> {
    warnings.to_vec()
}

/// The machine's state while a run was measured: utilisation, and why it was noisy.
pub fn series(series: &SystemSeries) -> Vec<String> {
    benchfleet::bench::describe_series(series)
}

/// Why a `bench` command stopped, or how many of its runs failed under `-i`.
pub fn bench_commands(commands: &[CommandReport]) -> Vec<String> {
    let mut lines = Vec::new();
    for c in commands {
        if let Some(f) = &c.failure {
            lines.push(format!("FAILED  {}: {f}", c.name));
        } else if c.failed_runs > 0 {
            lines.push(format!(
                "note: {}: {} of {} runs failed (ignored with -i; statistics use the successful runs)",
                c.name, c.failed_runs, c.runs
            ));
        }
    }
    lines
}

/// What an import left out, and why.
pub fn import_notes(notes: &[String]) -> Vec<String> {
    notes.iter().map(|n| format!("note: {n}")).collect()
}

/// A value of `metric` with its unit (`23.4 ms`, `12.0 MiB`, `130`).
fn metric_value(metric: Metric, v: f64) -> String {
    use benchfleet::report::Quantity;
    match metric.quantity() {
        Quantity::Seconds => {
            let (unit, scale) = benchfleet::report::units::time_unit(v);
            benchfleet::report::units::format_in(v, unit, scale)
        }
        Quantity::Bytes => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        Quantity::Count => format!("{v:.1}"),
    }
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// `ratio 1.482 (95% CI 1.45 … 1.51), p = 1.2e-5 (Welch) / 6.1e-4 (Mann–Whitney), 23.1 ms → 34.2 ms`
fn comparison_words(c: &Comparison, metric: Metric) -> String {
    let ci = c.ratio_ci.map_or_else(String::new, |ci| {
        format!(" (95% CI {:.3} … {:.3})", ci.mean.lower, ci.mean.upper)
    });
    format!(
        "ratio {:.3}{ci}, p = {} (Welch) / {} (Mann–Whitney), {} → {} over {} / {} runs",
        c.mean_ratio,
        p_value(c.welch.p_value),
        p_value(c.mann_whitney.p_value),
        metric_value(metric, c.baseline.mean),
        metric_value(metric, c.candidate.mean),
        c.baseline.count,
        c.candidate.count,
    )
}

/// A bisection's progress as one line.
pub fn bisect_event(e: &BisectEvent) -> String {
    match e {
        BisectEvent::Measuring {
            commit,
            position,
            have,
        } => format!(
            "measuring commit {} (#{position}, {have} runs so far): {}",
            commit.short(),
            commit.subject
        ),
        BisectEvent::Step(s) => format!(
            "step: commit {} (#{}) is {} ({} runs{})",
            s.commit.short(),
            s.position,
            match s.verdict {
                StepVerdict::Good => "good",
                StepVerdict::Bad => "bad",
            },
            s.samples,
            if s.new_samples == 0 {
                ", reused from stored runs".to_owned()
            } else {
                format!(", {} measured now", s.new_samples)
            }
        ),
        BisectEvent::Skipped {
            commit,
            position,
            message,
        } => format!(
            "skipping commit {} (#{position}): the suite failed there ({message}); trying a commit next to it",
            commit.short()
        ),
    }
}

/// A bisection's answer: `first bad commit: <sha>` with ratio, CI and p-values, or why it is
/// inconclusive; then the steps.
pub fn bisect_outcome(o: &BisectOutcome, metric: Metric) -> Vec<String> {
    let mut lines = Vec::new();
    match &o.finding {
        Finding::FirstBad {
            first_bad,
            last_good,
            comparison,
        } => {
            lines.push(format!("first bad commit: {}", first_bad.sha));
            lines.push(format!("    {}", first_bad.subject));
            lines.push(format!(
                "against {} (last good): {}",
                last_good.short(),
                comparison_words(comparison, metric)
            ));
        }
        Finding::Inconclusive(why) => {
            lines.push(format!("inconclusive: {}", inconclusive(why, metric)))
        }
    }
    let reused = o.steps.iter().filter(|s| s.new_samples == 0).count();
    let skipped = match o.skipped.len() {
        0 => String::new(),
        k => format!(", {k} skipped (the suite failed there)"),
    };
    lines.push(format!(
        "{} steps over {} commits ({reused} reused from stored runs{skipped}), {} suite runs measured",
        o.steps.len(),
        o.candidates,
        o.runs
    ));
    lines
}

fn inconclusive(why: &Inconclusive, metric: Metric) -> String {
    match why {
        Inconclusive::EndsAlike { comparison } => format!(
            "the bad commit is not slower than the good one beyond the noise band ({}): {}; nothing to bisect (try a larger --max-runs, or check --good/--bad)",
            comparison.verdict.as_str(),
            comparison_words(comparison, metric)
        ),
        Inconclusive::Undecided {
            commit,
            vs_good,
            vs_bad,
        } => format!(
            "commit {} could not be placed on either side (it differs from neither end beyond the noise, or it is faster than both); against good: {} ({}); against bad: {} ({}). Raise --max-runs or narrow the range",
            commit.sha,
            vs_good.verdict.as_str(),
            comparison_words(vs_good, metric),
            vs_bad.verdict.as_str(),
            comparison_words(vs_bad, metric)
        ),
        Inconclusive::Failed { commit, message } => format!(
            "the benchmark could not be measured at commit {}: {message}",
            commit.sha
        ),
        Inconclusive::OnlySkippedLeft {
            last_good,
            candidates,
        } => format!(
            "only skipped commits are left to test (the suite failed at each): the first bad commit is one of {} (after {}, the last good commit)",
            candidates
                .iter()
                .map(|c| c.sha.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            last_good.sha
        ),
        Inconclusive::Interrupted => {
            "interrupted; the runs measured so far are stored and the next bisect reuses them"
                .to_owned()
        }
    }
}

/// A bisection as JSON: `{"schema_version", "good", "bad", "candidates", "runs", "steps":
/// [{"commit", "position", "verdict", "samples", "new_samples"}], "skipped": [{"commit",
/// "failure"}], "first_bad_commit",
/// "last_good_commit", "ratio", "ratio_ci": [lo, hi], "p_welch", "p_mann_whitney",
/// "inconclusive"}` (the last null when found).
pub fn bisect_json(o: &BisectOutcome, metric: Metric) -> serde_json::Value {
    use serde_json::json;
    let mut v = json!({
        "schema_version": benchfleet::report::JSON_SCHEMA_VERSION,
        "good": o.good.sha,
        "bad": o.bad.sha,
        "metric": metric.as_str(),
        "candidates": o.candidates,
        "runs": o.runs,
        "steps": o.steps.iter().map(|s| json!({
            "commit": s.commit.sha,
            "position": s.position,
            "verdict": match s.verdict { StepVerdict::Good => "good", StepVerdict::Bad => "bad" },
            "samples": s.samples,
            "new_samples": s.new_samples,
        })).collect::<Vec<_>>(),
        "skipped": o.skipped.iter().map(|(c, why)| json!({
            "commit": c.sha,
            "failure": why,
        })).collect::<Vec<_>>(),
        "first_bad_commit": null,
        "inconclusive": null,
    });
    match &o.finding {
        Finding::FirstBad {
            first_bad,
            last_good,
            comparison: c,
        } => {
            v["first_bad_commit"] = json!(first_bad.sha);
            v["last_good_commit"] = json!(last_good.sha);
            v["ratio"] = json!(c.mean_ratio);
            v["ratio_ci"] = json!(c.ratio_ci.map(|ci| [ci.mean.lower, ci.mean.upper]));
            v["p_welch"] = json!(c.welch.p_value);
            v["p_mann_whitney"] = json!(c.mann_whitney.p_value);
        }
        Finding::Inconclusive(why) => {
            v["inconclusive"] = json!(inconclusive(why, metric));
            if let Inconclusive::OnlySkippedLeft { candidates, .. } = why {
                v["first_bad_candidates"] =
                    json!(candidates.iter().map(|c| &c.sha).collect::<Vec<_>>());
            }
        }
    }
    v
}

/// `submit`: a node that no live worker of the pool could ever hold.
pub fn fits_no_worker<'a>(
    node: &str,
    cpus: f64,
    memory_bytes: u64,
    pool: &str,
    workers: impl Iterator<Item = &'a benchfleet::store::WorkerInfo>,
) -> String {
    let largest = workers.fold((0.0f64, 0u64), |(c, m), w| {
        (c.max(w.cpus), m.max(w.memory_bytes))
    });
    format!(
        "`{node}` needs {cpus} CPUs and {} MiB, but the largest live worker of pool `{pool}` offers {} CPUs and {} MiB; lower its `cpus`/`memory`, or start a larger worker (`benchfleet worker --pool {pool}`) before submitting",
        memory_bytes >> 20,
        largest.0,
        largest.1 >> 20
    )
}

/// `submit`: nobody serves the pool yet.
pub fn no_live_worker(pool: &str) -> String {
    format!(
        "no live worker serves pool `{pool}` yet: the run waits until one does (start one with `benchfleet worker --pool {pool}`)"
    )
}

/// `submit --wait`: one progress line.
pub fn fleet_progress(p: &benchfleet::store::RunProgress) -> String {
    let done = p.succeeded + p.failed + p.skipped + p.cancelled;
    let mut line = format!(
        "run {}: {} — {done}/{} nodes done ({} succeeded, {} failed, {} skipped, {} cancelled), {} running, {} ready, {} waiting",
        p.run_id,
        p.state,
        p.nodes,
        p.succeeded,
        p.failed,
        p.skipped,
        p.cancelled,
        p.running,
        p.ready,
        p.waiting
    );
    if let Some(c) = &p.machine_class {
        line.push_str(&format!("; benchmarks on machine class {c}"));
    }
    line
}

/// `worker`: the first signal.
/// `worker`: the hot tier is on this machine's disk.
pub fn local_hot_tier(root: &std::path::Path) -> String {
    format!(
        "warning: the hot tier is files under {} on this machine: records and the outputs other nodes use stay here, where other workers and `show` elsewhere cannot read them; put `storage.hot` in the catalog's PostgreSQL (`backend = \"catalog\"`, the default) or in S3 (docs/fleet.md)",
        root.display()
    )
}

pub fn worker_draining() -> &'static str {
    "draining: no new claims; running nodes finish and are stored (signal again to stop them)"
}

/// `worker`: a line per fleet event worth a line.
pub fn fleet_event(e: &RunnerEvent) -> Option<String> {
    match e {
        RunnerEvent::FleetClaimed {
            run_id,
            name,
            attempt,
            ..
        } => Some(if *attempt > 1 {
            format!("{run_id} {name}: claimed (attempt {attempt})")
        } else {
            format!("{run_id} {name}: claimed")
        }),
        RunnerEvent::FleetCompleted {
            run_id,
            name,
            state,
            records,
            refused,
            inputs_fetched,
            ..
        } => Some(match refused {
            Some(reason) => {
                format!("{run_id} {name}: completion refused, nothing stored: {reason}")
            }
            None if *inputs_fetched > 0 => format!(
                "{run_id} {name}: {} ({records} records stored; outputs of {inputs_fetched} needed node(s) fetched)",
                state_word(*state)
            ),
            None => format!(
                "{run_id} {name}: {} ({records} records stored)",
                state_word(*state)
            ),
        }),
        RunnerEvent::FleetConcurrency { from, to, reason } => {
            Some(format!("concurrency {from} -> {to}: {reason}"))
        }
        RunnerEvent::FleetRunEnded { run_id, status } => {
            Some(format!("run {run_id} ended: {}", status.as_str()))
        }
        RunnerEvent::NodeFinished {
            name,
            failure: Some(f),
            ..
        } => Some(format!("  {name}: {f}")),
        _ => None,
    }
}

fn state_word(s: NodeState) -> &'static str {
    match s {
        NodeState::Succeeded => "succeeded",
        NodeState::Cached => "cached",
        NodeState::Failed => "failed",
        NodeState::TimedOut => "timed out",
        NodeState::Cancelled => "cancelled",
        NodeState::Skipped => "skipped",
        NodeState::Pending => "pending",
    }
}

/// `worker`: what it did, at exit.
pub fn worker_report(r: &benchfleet::fleet::WorkerReport) -> String {
    format!(
        "worker {} done: {} nodes claimed, {} succeeded, {} failed, {} cancelled, {} completions refused",
        r.worker, r.claimed, r.succeeded, r.failed, r.cancelled, r.refused
    )
}

/// `fleet status` as text.
pub fn fleet_status(s: &benchfleet::store::FleetStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "workers: {}", s.workers.len());
    for w in &s.workers {
        let _ = writeln!(
            out,
            "  {}  {}  host {}  class {}  pools {}  running {}/{}  heartbeat {:.1}s ago",
            w.info.id,
            w.state,
            w.info.host,
            w.info.machine_class,
            w.info.pools.join(","),
            w.running,
            w.info.jobs,
            w.heartbeat_age_secs
        );
    }
    let silent: Vec<&str> = s
        .workers
        .iter()
        .filter(|w| w.state == "silent" || w.state == "lost")
        .map(|w| w.info.id.as_str())
        .collect();
    if !silent.is_empty() {
        let _ = writeln!(
            out,
            "  went silent (connection dropped or no heartbeat within the lease; what they were \
             running goes to other workers): {}",
            silent.join(", ")
        );
    }
    let _ = writeln!(out, "queue:");
    if s.pools.is_empty() {
        let _ = writeln!(out, "  (empty)");
    }
    for p in &s.pools {
        let oldest = p
            .oldest_ready_secs
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.1}s"));
        let _ = writeln!(
            out,
            "  pool {}: {} ready, {} running, {} waiting, oldest ready {oldest}, {} live workers",
            p.pool, p.ready, p.running, p.waiting, p.workers
        );
    }
    let _ = writeln!(out, "runs in progress: {}", s.runs.len());
    for r in &s.runs {
        let _ = writeln!(out, "  {} ({})", fleet_progress(r), r.suite);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(state: NodeState, failure: Option<&str>) -> RunnerEvent {
        RunnerEvent::NodeFinished {
            node: 0,
            name: "build".into(),
            state,
            runs: 3,
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn events_are_worded_and_failures_are_notices() {
        let cases: Vec<(RunnerEvent, Option<(&str, bool)>)> = vec![
            (
                finished(NodeState::Succeeded, None),
                Some(("build: ok, 3 runs", false)),
            ),
            (
                finished(NodeState::Cached, None),
                Some(("build: cached, 3 runs", false)),
            ),
            (
                finished(NodeState::Cancelled, None),
                Some(("build: interrupted, 3 runs", false)),
            ),
            (
                finished(NodeState::Failed, Some("exit code 1")),
                Some(("build: FAILED (exit code 1), 3 runs", true)),
            ),
            (
                RunnerEvent::NodeSkipped {
                    node: 1,
                    name: "test".into(),
                    because: "build".into(),
                },
                Some(("test: skipped (build failed)", true)),
            ),
            (
                RunnerEvent::NodeUnavailable {
                    name: "jj-log".into(),
                    reason: "requires `jj`, which is not on PATH".into(),
                },
                Some((
                    "jj-log: skipped (requires `jj`, which is not on PATH)",
                    true,
                )),
            ),
            (
                RunnerEvent::Cancelling,
                Some(("cancelling: running jobs get a grace period", true)),
            ),
            (
                RunnerEvent::Warning {
                    node: None,
                    warning: Warning::MemoryLimitByRlimit,
                },
                None,
            ),
        ];
        for (ev, want) in cases {
            let got = event_line(&ev);
            assert_eq!(
                got.as_ref().map(|l| (l.text.as_str(), l.notice)),
                want,
                "{ev:?}"
            );
        }
    }

    #[test]
    fn cached_nodes_are_named_up_to_ten() {
        assert_eq!(
            cached(&["a", "b"]),
            "cached (unchanged, not run again): a, b"
        );
        let many: Vec<String> = (0..1002).map(|i| format!("n{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            cached(&many),
            "cached (unchanged, not run again): n0, n1, n2, n3, n4, n5, n6, n7, n8, n9 … and 992 more (1002 nodes in all)"
        );
    }

    #[test]
    fn warnings_are_lines_of_their_own() {
        let w = RunnerEvent::Warning {
            node: None,
            warning: Warning::MoreJobsThanCores {
                jobs: 4,
                physical: 2,
            },
        };
        let line = event_warning(&w).unwrap();
        assert!(
            line.starts_with("warning: up to 4 jobs run at once") && line.ends_with("use -j 2"),
            "{line}"
        );
        assert_eq!(event_warning(&RunnerEvent::Cancelling), None);
    }

    #[test]
    fn bench_failures_and_ignored_failures() {
        let c = |failure: Option<&str>, failed_runs| CommandReport {
            name: "a".into(),
            runs: 10,
            failure: failure.map(str::to_owned),
            failed_runs,
        };
        assert_eq!(
            bench_commands(&[c(Some("exit code 2"), 1), c(None, 3), c(None, 0)]),
            vec![
                "FAILED  a: exit code 2".to_owned(),
                "note: a: 3 of 10 runs failed (ignored with -i; statistics use the successful runs)"
                    .to_owned(),
            ]
        );
    }
}
