//! Writing for the user: results on standard output, files the user asked for, and what the
//! terminal is. Results go to stdout ([`Output::emit`]); notes, warnings and progress to stderr.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::exit::{CliError, Result, Status};

/// The terminal the program writes to, detected once.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// Standard error is a terminal (progress bars, `\r` progress lines).
    pub stderr_is_terminal: bool,
}

impl Output {
    /// The real terminal.
    pub fn detect() -> Output {
        Output {
            stderr_is_terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Write results to stdout. A closed pipe (`benchfleet show … | head`) is
    /// [`CliError::BrokenPipe`], which ends the program quietly.
    pub fn emit(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }

    /// Write the results table to stdout as it is rendered (followed by a newline): a suite of
    /// 100,000 nodes never holds its table, nor its results, as a whole. `results` is called
    /// once per pass over the rows.
    pub fn emit_table<I>(&self, results: impl Fn() -> I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<benchfleet::report::BenchmarkResult>,
    {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        benchfleet::report::write_terminal_table(&mut out, results)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }

    /// Write `text` to the file `path`, or to stdout without one.
    pub fn emit_to(&self, path: Option<&Path>, text: &str) -> Result<()> {
        match path {
            Some(p) => write_file(p, text),
            None => self.emit(text),
        }
    }

    /// The closing line of `run`, `bench` and `load` (on stderr), and the run's status.
    pub fn run_footer(
        &self,
        run: &benchfleet::model::RunInfo,
        records: usize,
        root: &Path,
    ) -> Status {
        eprintln!(
            "run {} ({}): {records} records stored in {}",
            run.run_id,
            run.status.as_str(),
            root.display()
        );
        Status::of_run(run.status)
    }
}

/// A failed write to stdout: a closed pipe ends the program quietly.
fn stdout_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::internal(format!("cannot write to standard output: {e}"))
    }
}

/// Write an export or report file.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| {
        CliError::Internal(anyhow::Error::new(e))
            .context(format!("cannot write `{}`", path.display()))
    })
}

/// The result exports `run` and `bench` share: hyperfine-compatible JSON, CSV and Markdown, each
/// written when its path is given.
pub fn write_exports(
    results: &[benchfleet::report::BenchmarkResult],
    json: Option<&Path>,
    csv: Option<&Path>,
    markdown: Option<&Path>,
) -> Result<()> {
    use benchfleet::report;
    if let Some(path) = json {
        write_file(
            path,
            &serde_json::to_string_pretty(&report::hyperfine_json(results))?,
        )?;
    }
    if let Some(path) = csv {
        write_file(path, &report::csv(results))?;
    }
    if let Some(path) = markdown {
        write_file(path, &report::markdown(results))?;
    }
    Ok(())
}
