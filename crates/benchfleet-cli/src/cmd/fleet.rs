//! `benchfleet fleet status|cancel`: the fleet's workers, queue and runs; stop a submitted run.

use clap::{Args, Subcommand, ValueEnum};

use benchfleet::store::LeaseTimes;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};
use crate::words;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Workers (id, host, machine class, pools, running nodes, last heartbeat), the queue per
    /// pool (ready, running, waiting, oldest ready) and the runs in progress.
    Status(StatusArgs),
    /// Stop a submitted run: nothing new starts, running nodes are cancelled at their worker's
    /// next heartbeat (their processes get the grace period), the run ends cancelled.
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: StatusFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run id (as `submit` printed it).
    pub run: String,
}

pub async fn fleet(ctx: &Context, command: FleetCommand) -> Result<Status> {
    let queue = ctx.queue().await?;
    match command {
        FleetCommand::Status(args) => {
            let status = queue.status(LeaseTimes::default()).await?;
            let text = match args.format {
                StatusFormat::Json => {
                    let mut t = serde_json::to_string_pretty(&status)
                        .map_err(|e| CliError::internal(format!("fleet status as JSON: {e}")))?;
                    t.push('\n');
                    t
                }
                StatusFormat::Table => words::fleet_status(&status),
            };
            ctx.out.emit(&text)?;
            Ok(Status::Success)
        }
        FleetCommand::Cancel(args) => {
            let id: benchfleet::model::RunId = args.run.parse().map_err(|_| {
                CliError::usage(format!(
                    "`{}` is not a run id; `benchfleet fleet status` lists the runs in progress",
                    args.run
                ))
            })?;
            if queue.cancel(&id).await? {
                eprintln!(
                    "cancelled run {id}: nothing new starts; running nodes stop at their worker's next heartbeat"
                );
                Ok(Status::Success)
            } else {
                match queue.progress(&id).await? {
                    Some(p) => Err(CliError::usage(format!(
                        "run {id} already ended ({}); nothing to cancel",
                        p.state
                    ))),
                    None => Err(CliError::usage(format!(
                        "run {id} was never submitted to this fleet; `benchfleet fleet status` lists the runs in progress"
                    ))),
                }
            }
        }
    }
}
