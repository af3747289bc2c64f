//! `benchfleet import`: hyperfine, criterion or Bencher Metric Format results into history.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchfleet::import::{ImportFormat, ImportOptions};

use crate::context::Context;
use crate::exit::{Result, Status};
use crate::flags::parse_tag;
use crate::words;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file, or a directory (one run per *.json file; a criterion directory is one run).
    pub path: PathBuf,
    /// Which tool wrote the files.
    #[arg(long, value_enum)]
    pub format: ImportFormatArg,
    /// Suite name of the imported runs (default: the file or directory name without extension).
    #[arg(long)]
    pub suite: Option<String>,
    /// Label stored with the imported runs, e.g. `--tag git.commit=abc123` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormatArg {
    Hyperfine,
    Criterion,
    Bmf,
}

impl From<ImportFormatArg> for ImportFormat {
    fn from(f: ImportFormatArg) -> Self {
        match f {
            ImportFormatArg::Hyperfine => ImportFormat::Hyperfine,
            ImportFormatArg::Criterion => ImportFormat::Criterion,
            ImportFormatArg::Bmf => ImportFormat::Bmf,
        }
    }
}

pub async fn import(ctx: &Context, args: ImportArgs) -> Result<Status> {
    let opts = ImportOptions {
        suite: args.suite.clone(),
        tags: args.tags.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    // Parse everything before opening (and possibly creating) storage.
    benchfleet::import::read(&args.path, args.format.into())?;
    let storage = ctx.storage().await?;
    let runs = benchfleet::import::import(storage, &args.path, args.format.into(), &opts).await?;
    for r in &runs {
        for note in words::import_notes(&r.notes) {
            eprintln!("{note}");
        }
        ctx.out.emit(&format!(
            "{}\t{}\t{} benchmarks, {} records\t{}\n",
            r.run.run_id, r.run.suite, r.benchmarks, r.records, r.run.source
        ))?;
    }
    eprintln!(
        "imported {} run{} from {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        args.path.display()
    );
    Ok(Status::Success)
}
