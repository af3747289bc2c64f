//! Progress display of a suite run: indicatif bars on a terminal, plain lines otherwise. It
//! only consumes runner events; their wording is in [`crate::words`].

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use benchfleet::runner::RunnerEvent;
use benchfleet::sched::NodeState;
use benchfleet_config::Progress;

use crate::words;

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
    let started = Instant::now();
    // Plain mode prints a status line periodically even when nothing finishes.
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            _ = tick.tick() => {
                if mode == Mode::Lines {
                    eprintln!("  [{}] {}", format_elapsed(started.elapsed()), counts.line(total));
                }
                continue;
            }
        };
        // Warnings are not progress: they are printed in every mode, above the bar.
        if let Some(w) = words::event_warning(&ev) {
            match &bar {
                Some(b) => b.println(&w),
                None => eprintln!("{w}"),
            }
            continue;
        }
        match &ev {
            RunnerEvent::NodeStarted { .. } => counts.running += 1,
            RunnerEvent::NodeFinished { state, .. } => {
                counts.running = counts.running.saturating_sub(1);
                match state {
                    NodeState::Succeeded => counts.done += 1,
                    NodeState::Cached => counts.cached += 1,
                    NodeState::Cancelled => {}
                    _ => counts.failed += 1,
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            RunnerEvent::NodeSkipped { .. } | RunnerEvent::NodeUnavailable { .. } => {
                counts.skipped += 1;
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
            _ => {}
        }
        if let Some(b) = &bar {
            b.set_message(counts.line(total));
        }
        match (mode, words::event_line(&ev)) {
            // On a terminal only failures and notices scroll; the bar carries the counts.
            (Mode::Bars, Some(l)) if l.notice => {
                if let Some(b) = &bar {
                    b.println(l.text);
                }
            }
            (Mode::Lines, Some(l)) => eprintln!("{}", l.text),
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

/// `bench` and `load` show no progress while they measure (they print their results at the
/// end): consume their events until the channel closes.
pub async fn none(mut rx: UnboundedReceiver<RunnerEvent>) {
    while rx.recv().await.is_some() {}
}

fn format_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
