//! The runner's metrics exposition that `--metrics-file` / `--metrics-listen`
//! ([`MetricsFlags`]) ask for, shared by `run`, `bench` and `load`.

use std::sync::Arc;

use benchfleet::prom::{self, Exposition, PromOptions, RunnerMetrics};
use benchfleet::runner::RunnerEvent;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::exit::Result;
use crate::flags::MetricsFlags;

/// Start the exposition the flags ask for (`None` when neither flag is given).
pub async fn start(flags: &MetricsFlags) -> Result<Option<Exposition>> {
    if !flags.wanted() {
        return Ok(None);
    }
    let mut expo = prom::start(
        Arc::new(RunnerMetrics::new()),
        &PromOptions {
            file: flags.metrics_file.clone(),
            interval: flags.metrics_interval.0,
        },
    )
    .await?;
    if let Some(addr) = flags.metrics_listen {
        // Served by axum (`benchfleet-serve`), stopped with the exposition by `finish`.
        let (bound, task) = benchfleet_serve::metrics::listen(addr, expo.metrics().clone()).await?;
        expo.attach_server(bound, task);
        eprintln!("serving metrics on http://{bound}/metrics");
    }
    Ok(Some(expo))
}

/// Write the final exposition (the metrics file's last rewrite) and stop serving.
pub async fn finish(expo: Option<Exposition>) -> Result<()> {
    if let Some(e) = expo {
        e.finish().await?;
    }
    Ok(())
}

/// Put the metrics between the runner and the progress display: returns the sender the runner
/// gets and the receiver the display reads (unchanged when there is no exposition).
pub fn tee_events(
    expo: Option<&Exposition>,
    tx: UnboundedSender<RunnerEvent>,
    rx: UnboundedReceiver<RunnerEvent>,
) -> (UnboundedSender<RunnerEvent>, UnboundedReceiver<RunnerEvent>) {
    match expo {
        Some(e) => {
            let (runner_tx, runner_rx) = tokio::sync::mpsc::unbounded_channel();
            prom::tee(runner_rx, e.metrics().clone(), tx);
            (runner_tx, rx)
        }
        None => (tx, rx),
    }
}
