//! `benchfleet show RUN`: one stored run's results, read back from storage.

use clap::Args;

use benchfleet::report;

use crate::context::Context;
use crate::exit::{Result, Status};
use crate::flags::Format;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id, a unique prefix of one, or `latest`.
    pub run: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn show(ctx: &Context, args: ShowArgs) -> Result<Status> {
    let storage = ctx.storage().await?;
    let run = benchfleet::find_run(storage, &args.run).await?;
    let records = benchfleet::load_records(storage, &run.run_id).await?;
    let results = report::group_records(&records);
    match args.format {
        Format::Table => {
            eprintln!(
                "run {} of suite `{}` ({}), {} records",
                run.run_id,
                run.suite,
                run.status.as_str(),
                records.len()
            );
            ctx.out
                .emit(&format!("{}\n", report::terminal_table(&results)))?;
        }
        Format::Markdown => ctx.out.emit(&report::markdown(&results))?,
        Format::Json => ctx.out.emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report::hyperfine_json(&results))?
        ))?,
    }
    Ok(Status::Success)
}
