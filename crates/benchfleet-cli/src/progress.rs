//! Progress display: indicatif bars on a terminal, plain lines otherwise.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use benchfleet::runner::RunnerEvent;
use benchfleet::sched::NodeState;
use benchfleet_config::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    pub fn choose(setting: Progress, stderr_is_terminal: bool) -> Mode {
        match setting {
            Progress::Auto if stderr_is_terminal => Mode::Bars,
            Progress::Auto | Progress::Lines => Mode::Lines,
            Progress::Bars => Mode::Bars,
            Progress::None => Mode::Quiet,
        }
    }
}

#[derive(Default)]
struct Counts {
    done: usize,
    running: usize,
    failed: usize,
    skipped: usize,
    cached: usize,
}

impl Counts {
    fn line(&self, total: usize) -> String {
        let queued = total
            .saturating_sub(self.done + self.running + self.failed + self.skipped + self.cached);
        format!(
            "done {} · running {} · queued {} · failed {} · skipped {} · cached {}",
            self.done, self.running, queued, self.failed, self.skipped, self.cached
        )
    }
}

/// Consume runner events until the channel closes.
pub async fn render(mut rx: UnboundedReceiver<RunnerEvent>, mode: Mode, total: usize) {
    let bar = match mode {
        Mode::Bars => {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} nodes (eta {eta}) {msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            Some(b)
        }
        _ => None,
    };
    let mut counts = Counts::default();
    let mut last_line = Instant::now();
    while let Some(ev) = rx.recv().await {
        let mut line: Option<String> = None;
        match ev {
            RunnerEvent::Started { run_id, nodes } => {
                line = Some(format!("run {run_id}: {nodes} nodes"))
            }
            RunnerEvent::NodeStarted { name, kind, .. } => {
                counts.running += 1;
                if let Some(b) = &bar {
                    b.set_message(format!("{} {name}", kind.as_str()));
                }
            }
            RunnerEvent::Measured {
                iteration, planned, ..
            } => {
                if let Some(b) = &bar {
                    let msg = b.message();
                    let base = msg.split(" (run ").next().unwrap_or_default().to_owned();
                    b.set_message(format!("{base} (run {}/{planned})", iteration + 1));
                }
            }
            RunnerEvent::NodeFinished {
                name,
                state,
                runs,
                failure,
                ..
            } => {
                counts.running = counts.running.saturating_sub(1);
                match state {
                    NodeState::Succeeded => counts.done += 1,
                    NodeState::Cached => counts.cached += 1,
                    NodeState::Cancelled => {}
                    _ => counts.failed += 1,
                }
                let status = match (&state, &failure) {
                    (_, Some(f)) => format!("FAILED ({f})"),
                    (NodeState::Cancelled, None) => "interrupted".to_owned(),
                    _ => "ok".to_owned(),
                };
                line = Some(format!("{name}: {status}, {runs} runs stored"));
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            RunnerEvent::NodeSkipped { name, because, .. } => {
                counts.skipped += 1;
                line = Some(format!("{name}: skipped ({because} failed)"));
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            RunnerEvent::Cancelling => {
                line = Some("cancelling: running jobs get a grace period".into())
            }
        }
        match (mode, line) {
            (Mode::Bars, Some(l)) => {
                if let Some(b) = &bar {
                    b.println(l);
                }
            }
            (Mode::Lines, Some(l)) => {
                eprintln!("{l}");
                if last_line.elapsed() > Duration::from_secs(5) {
                    eprintln!("  {}", counts.line(total));
                    last_line = Instant::now();
                }
            }
            _ => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if mode != Mode::Quiet {
        eprintln!("{}", counts.line(total));
    }
}
