//! `benchfleet serve`: the live dashboard over the configured storage (`benchfleet-serve`).

use std::net::SocketAddr;

use clap::Args;

use crate::context::Context;
use crate::exit::{CliError, Result, Status};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Any address but loopback needs --token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8417")]
    pub listen: String,
    /// Open the dashboard in the default browser (xdg-open).
    #[arg(long)]
    pub open: bool,
    /// A bearer secret every API request must carry (`Authorization: Bearer T`); pages take
    /// it as `#token=T`.
    #[arg(
        long,
        value_name = "T",
        env = "BENCHFLEET_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Accept triage off loopback (read-only otherwise).
    #[arg(long)]
    pub allow_writes: bool,
}

pub async fn serve(ctx: &Context, args: ServeArgs) -> Result<Status> {
    let listen: SocketAddr = args.listen.parse().map_err(|e| {
        CliError::Usage(format!(
            "--listen {}: {e}; expected IP:PORT, e.g. 127.0.0.1:8417 (port 0 picks a free port)",
            args.listen
        ))
    })?;
    let opts = benchfleet_serve::ServeOptions {
        token: args.token.clone(),
        allow_writes: args.allow_writes,
        ..benchfleet_serve::ServeOptions::new(listen)
    };
    // Checked before storage is opened, so a refused address says so at once.
    benchfleet_serve::check(&opts).map_err(|e| CliError::Usage(e.to_string()))?;
    let storage = ctx.storage().await?.clone();
    let server = benchfleet_serve::bind(storage, opts)
        .await
        .map_err(|e| match e {
            benchfleet_serve::ServeError::Usage(m) => CliError::Usage(m),
            e @ benchfleet_serve::ServeError::Bind { .. } => CliError::Usage(e.to_string()),
            e => CliError::Internal(e.into()),
        })?;
    let url = format!("http://{}", server.local_addr());
    eprintln!("serving on {url}");
    if args.open {
        let page = match &args.token {
            Some(t) => format!("{url}/#token={t}"),
            None => format!("{url}/"),
        };
        if let Err(e) = std::process::Command::new("xdg-open")
            .arg(&page)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            eprintln!("cannot open a browser ({e}); open {url} yourself");
        }
    }
    server
        .run(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        })
        .await
        .map_err(|e| CliError::Internal(anyhow::Error::new(e).context("serving failed")))?;
    eprintln!("stopped");
    Ok(Status::Success)
}
