//! Ctrl-C: say what happens to what was measured, then stop the work.

/// On the first Ctrl-C, print `message` on stderr and call `stop` (cancel the runner, kill the
/// measured processes).
pub fn on_ctrl_c(message: &'static str, stop: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{message}");
            stop();
        }
    });
}
