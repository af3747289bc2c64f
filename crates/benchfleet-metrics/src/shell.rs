//! Shell mode: measure what `SHELL -c ''` costs so callers can subtract it, like hyperfine.

use benchfleet_model::{Measurement, Outcome};

use crate::run::run;
use crate::spec::ProcessSpec;

/// Why the shell's spawn cost could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ShellCostError {
    #[error("shell spawn cost needs at least one sample (got 0); use e.g. 50")]
    NoSamples,
    #[error(
        "cannot measure the spawn cost of shell `{shell}`: `{shell} -c ''` {outcome}; check the shell path (-S/--shell)"
    )]
    ShellFailed { shell: String, outcome: String },
}

/// Mean [`Measurement`] of `samples` runs of `shell -c ''` (every field averaged, rounded down).
/// Subtract it from shell-mode measurements with [`subtract_overhead`].
pub fn shell_spawn_cost(shell: &str, samples: u32) -> Result<Measurement, ShellCostError> {
    spawn_cost(shell, &ProcessSpec::shell(shell, ""), samples)
}

/// [`shell_spawn_cost`] of a shell given as a ready spec of `SHELL [ARGS…] -c ''` (a shell with
/// arguments, e.g. `bash --norc`); `shell` names it in errors.
pub fn spawn_cost(
    shell: &str,
    spec: &ProcessSpec,
    samples: u32,
) -> Result<Measurement, ShellCostError> {
    if samples == 0 {
        return Err(ShellCostError::NoSamples);
    }
    let spec = ProcessSpec {
        stderr_tail: 512,
        ..spec.clone()
    };
    let mut sum = [0u128; 10];
    for _ in 0..samples {
        let r = run(&spec);
        if r.outcome != Outcome::Success {
            let mut outcome = r.outcome.describe();
            if let Some(tail) = r.stderr_tail {
                outcome.push_str(&format!(" (stderr: {})", tail.trim()));
            }
            return Err(ShellCostError::ShellFailed {
                shell: shell.to_string(),
                outcome,
            });
        }
        for (s, v) in sum.iter_mut().zip(fields(&r.measurement)) {
            *s += u128::from(v);
        }
    }
    let mean = sum.map(|s| (s / u128::from(samples)) as u64);
    Ok(Measurement {
        wall_ns: mean[0],
        user_ns: mean[1],
        sys_ns: mean[2],
        max_rss_bytes: mean[3],
        minor_faults: mean[4],
        major_faults: mean[5],
        voluntary_context_switches: mean[6],
        involuntary_context_switches: mean[7],
        block_in: mean[8],
        block_out: mean[9],
    })
}

fn fields(m: &Measurement) -> [u64; 10] {
    [
        m.wall_ns,
        m.user_ns,
        m.sys_ns,
        m.max_rss_bytes,
        m.minor_faults,
        m.major_faults,
        m.voluntary_context_switches,
        m.involuntary_context_switches,
        m.block_in,
        m.block_out,
    ]
}

/// `measured` minus the shell's `overhead` for the times (wall, user, sys), saturating at 0 as
/// hyperfine does. Peak RSS, faults, context switches and block I/O are left as measured: they
/// are not additive.
pub fn subtract_overhead(measured: &Measurement, overhead: &Measurement) -> Measurement {
    Measurement {
        wall_ns: measured.wall_ns.saturating_sub(overhead.wall_ns),
        user_ns: measured.user_ns.saturating_sub(overhead.user_ns),
        sys_ns: measured.sys_ns.saturating_sub(overhead.sys_ns),
        ..*measured
    }
}
