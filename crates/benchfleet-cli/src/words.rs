//! The one place that words what the facade reports: runner events, warnings, node states,
//! load and bench outcomes, import notes. Commands and the progress display print these lines;
//! they never build them from facade data themselves. When the facade's warnings become a typed
//! enum, this module is what changes: it names flags (`--jobs`) for `bench`/`load` and `suite.key`
//! names (`load.max_concurrency`) for suite runs.

use benchfleet::bench::CommandReport;
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
        RunnerEvent::Cancelling => line("cancelling: running jobs get a grace period".into(), true),
        RunnerEvent::NodeStarted { .. }
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
    lines
}

/// The warnings of a suite's load node, in the terms of its `load` table
/// (`load.max_concurrency`, not `--max-concurrency`).
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
