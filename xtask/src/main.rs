//! benchfleet's task runner: `cargo xtask <task>`.
//!
//! - `test`: every test in the workspace (unit, integration, end-to-end, conformance, doc).
//! - `ci`: formatting check, clippy with warnings denied, the dependency-rule check, the
//!   module-cycle check, then `test`.
//! - `deps`: the dependency-rule check alone (see `ARCHITECTURE.md`).
//! - `cycles`: the module-cycle check alone: no crate's top-level modules import each other in a
//!   cycle.
//! - `bench`: side-by-side benchmarks against the tools users would pick instead, and
//!   `bench verdicts`: issue 21's verdict rates measured on this machine.
//!
//! The tasks are plain functions over `std::process::Command`; the two checks are also ordinary
//! `#[test]`s, so `cargo test` enforces them too.

mod bench;
mod cycles;
mod deps;
mod services;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[1.min(args.len())..];
    let result = match task {
        "test" => test(rest),
        "ci" => ci(rest),
        "deps" => deps::check_workspace()
            .map(|n| println!("dependency rules hold ({n} workspace crates checked)")),
        "cycles" => check_cycles(),
        "bench" => bench::run(rest),
        "help" | "-h" | "--help" => {
            println!("usage: cargo xtask <test|ci|deps|cycles|bench> [extra args for cargo test]");
            Ok(())
        }
        other => Err(anyhow::anyhow!(
            "unknown task `{other}`; try `cargo xtask help`"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(mut cmd: Command) -> Result<()> {
    eprintln!("$ {}", display(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", display(&cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", display(&cmd));
    }
    Ok(())
}

fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run every test of the workspace.
fn test(extra: &[String]) -> Result<()> {
    // A throwaway PostgreSQL and a loopback S3 server for the backends' tests; stopped on drop.
    let (services, _guard) = services::start()?;
    let mut cmd = cargo();
    services.apply(&mut cmd);
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra);
    run(cmd)
}

/// Everything CI checks, in order of cost.
fn ci(extra: &[String]) -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt).context("formatting differs: run `cargo fmt --all`")?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    let n = deps::check_workspace()?;
    println!("dependency rules hold ({n} workspace crates checked)");
    check_cycles()?;
    test(extra)
}

/// The module-cycle check.
fn check_cycles() -> Result<()> {
    let outcome = cycles::check_workspace()?;
    println!(
        "no module cycles ({} crate targets checked)",
        outcome.checked
    );
    Ok(())
}
