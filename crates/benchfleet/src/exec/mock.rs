//! A scripted [`Executor`]: every "process" is logged by its command line and answered by a
//! script, so the loops of the drivers are tested without starting processes.

use std::sync::Mutex;

use benchfleet_metrics::{Kill, ProcessResult, ProcessSpec, ShellCostError};
use benchfleet_model::{Measurement, Outcome};

use super::Executor;

/// What a scripted run returns.
#[derive(Clone, Debug)]
pub(crate) struct Scripted {
    pub wall_ns: u64,
    /// `None`: success; `Some(code)`: exited with that code.
    pub exit: Option<i32>,
    pub stderr: Option<String>,
}

impl Scripted {
    pub(crate) fn ok(wall_ns: u64) -> Scripted {
        Scripted {
            wall_ns,
            exit: None,
            stderr: None,
        }
    }
    pub(crate) fn fails(code: i32, stderr: &str) -> Scripted {
        Scripted {
            wall_ns: 1_000,
            exit: Some(code),
            stderr: Some(stderr.to_owned()),
        }
    }
}

type Script = dyn Fn(&str, usize) -> Scripted + Send + Sync;

/// Answers each run with `script(command line, how many runs of it came before)` and logs the
/// command lines in order. `calibrate` answers `shell_cost_ns`.
pub(crate) struct Mock {
    pub log: Mutex<Vec<String>>,
    pub script: Box<Script>,
    pub shell_cost_ns: u64,
    /// Fire this kill when a run of this command line starts (a Ctrl-C during it).
    pub kill_on: Option<(String, Kill)>,
    /// Cancel this token when a run of this command line starts, and end that run only once the
    /// cancellation has reached the run's kill flag (a Ctrl-C during it, through the driver).
    pub cancel_on: Option<(String, benchfleet_sched::CancelToken)>,
}

impl Mock {
    pub(crate) fn new(script: impl Fn(&str, usize) -> Scripted + Send + Sync + 'static) -> Mock {
        Mock {
            log: Mutex::new(Vec::new()),
            script: Box::new(script),
            shell_cost_ns: 0,
            kill_on: None,
            cancel_on: None,
        }
    }

    /// Every run succeeds in `wall_ns`.
    pub(crate) fn ok(wall_ns: u64) -> Mock {
        Mock::new(move |_, _| Scripted::ok(wall_ns))
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The command line of `spec`: `sh -c X` is `X`.
pub(crate) fn line(spec: &ProcessSpec) -> String {
    match spec.args.as_slice() {
        [c, cmd] if c == "-c" => cmd.clone(),
        [] => spec.program.clone(),
        args => format!("{} {}", spec.program, args.join(" ")),
    }
}

impl Executor for Mock {
    fn run(&self, spec: &ProcessSpec, kill: &Kill) -> ProcessResult {
        let cmd = line(spec);
        let before = {
            let mut log = self.log.lock().unwrap();
            let n = log.iter().filter(|l| **l == cmd).count();
            log.push(cmd.clone());
            n
        };
        if let Some((on, k)) = &self.kill_on
            && *on == cmd
        {
            k.kill(std::time::Duration::ZERO);
        }
        if let Some((on, c)) = &self.cancel_on
            && *on == cmd
        {
            c.cancel();
            // Bounded: a driver that never converts the cancellation fails its test instead.
            for _ in 0..10_000 {
                if kill.is_killed() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let s = (self.script)(&cmd, before);
        let mut r = ProcessResult::spawn_failed("");
        r.measurement = Measurement {
            wall_ns: s.wall_ns,
            user_ns: s.wall_ns / 2,
            sys_ns: s.wall_ns / 4,
            ..Default::default()
        };
        r.outcome = match s.exit {
            None if !kill.is_killed() => Outcome::Success,
            None => Outcome::Failed {
                exit_code: None,
                signal: Some(15),
            },
            Some(code) => Outcome::Failed {
                exit_code: Some(code),
                signal: None,
            },
        };
        r.stderr_tail = s.stderr;
        r.cancelled = kill.is_killed();
        r
    }

    fn calibrate(&self, _shell: &str) -> Result<Measurement, ShellCostError> {
        Ok(Measurement {
            wall_ns: self.shell_cost_ns,
            ..Default::default()
        })
    }
}
