//! `benchfleet config show`: every effective setting and where it came from.

use clap::Subcommand;

use crate::context::Context;
use crate::exit::{Result, Status};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting and where it came from.
    Show,
}

pub fn config(ctx: &Context, cmd: ConfigCommand) -> Result<Status> {
    match cmd {
        ConfigCommand::Show => {
            let loaded = ctx.loaded();
            if let Some(p) = &loaded.project_file {
                ctx.out
                    .emit(&format!("# project file: {}\n", p.display()))?;
            }
            ctx.out.emit(&benchfleet_config::show(loaded))?;
        }
    }
    Ok(Status::Success)
}
