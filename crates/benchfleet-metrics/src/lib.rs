//! Measures one process run: wall clock, CPU, per-run peak RSS and rusage from the child's own
//! `wait4`, with timeouts, cancellation, isolation and optional hardware counters.
//!
//! What this crate is: the measuring layer under benchfleet's runner. [`run`] spawns one child in
//! its own process group, times it with the monotonic clock from just before the spawn to the
//! reap, and takes every other figure from `wait4(pid, …, &rusage)` of *that* child — never
//! `RUSAGE_CHILDREN`, which is a high-water mark over all children ever waited for. Child
//! problems are never errors: they are an [`Outcome`](benchfleet_model::Outcome).
//!
//! Cheap by design: every run but those with hardware counters is one
//! `clone(CLONE_VM | CLONE_VFORK)` + `execve` with everything prepared before the clock starts,
//! CPU pinning and memory limits applied by the child itself (see `spawn.rs`), so no run copies
//! the caller's address space; then one blocking `wait4`, no thread; a pidfd is polled only when a timeout or a [`Kill`] is in play; stderr goes to an
//! anonymous memory file read after the exit.
//!
//! Also here: [`shell_spawn_cost`] (shell mode, like hyperfine) and [`Sampler`] (system load
//! from `/proc` while a suite runs, with a noise verdict). This crate measures processes and
//! samples the system; it summarises nothing: statistics (summaries, outliers, running
//! statistics, load windows) live in `benchfleet-analysis`.
//!
//! Must not depend on: any benchfleet crate but `benchfleet-model`, async runtimes, the store.
//! Linux only.
//!
//! ```
//! use benchfleet_metrics::{run, ProcessSpec};
//! use std::time::Duration;
//!
//! let mut spec = ProcessSpec::new("sh", ["-c", "exit 3"]);
//! spec.timeout = Some(Duration::from_secs(10));
//! let result = run(&spec);
//! assert_eq!(result.outcome.exit_code(), Some(3));
//! assert!(result.measurement.wall_ns > 0);
//! ```

mod counters;
mod isolation;
mod kill;
mod run;
mod sampler;
mod shell;
mod spawn;
mod spec;
mod sys;

pub use counters::Counters;
pub use isolation::{
    IdleOthers, MemoryLimitVia, PinnedMeasuring, allowed_cpus, cpus_by_device_interrupts,
    idle_other_threads, memory_limit_method, pin_measuring_thread,
};
pub use kill::Kill;
pub use run::{CapturedOutput, ProcessResult, run, run_cancellable};
pub use sampler::{
    CoreUsage, CpuMeter, NoiseThresholds, NoiseVerdict, Sample, Sampler, SamplerError, SystemSeries,
};
pub use shell::{ShellCostError, shell_spawn_cost, spawn_cost, subtract_overhead};
pub use spec::{DEFAULT_STDERR_TAIL, ENV_PADDING_VAR, EnvRandomizer, OutputMode, ProcessSpec};
