//! `benchfleet-s3-testserver`: the loopback S3 server of `cargo xtask test` (feature `testserver`).
//!
//! ```text
//! benchfleet-s3-testserver --root DIR [--bucket NAME] [--port N] [--fail-first N]
//!     (credentials from env BENCHFLEET_S3_ACCESS_KEY / BENCHFLEET_S3_SECRET_KEY, never argv)
//! ```
//! Prints `listening http://127.0.0.1:PORT` on stdout once it accepts connections, and exits
//! when its standard input is closed (so it never outlives the process that started it).
//! Standard input also takes commands, one per line, each answered by one line on stdout:
//! `fail N` (answer the next N requests `503 SlowDown`; reply `ok`) and `injected` (reply
//! `injected K`, the number of faults served so far), so a test can make the server fail in the
//! middle of a run.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use benchfleet_s3::testserver::{ServerOptions, start};

const USAGE: &str =
    "usage: benchfleet-s3-testserver --root DIR [--bucket NAME] [--port N] [--fail-first N]";

fn parse() -> Result<ServerOptions, String> {
    let mut root = None;
    let mut bucket = "benchfleet".to_string();
    let mut port = 0u16;
    let mut fail_first = std::env::var("BENCHFLEET_S3_FAIL_FIRST")
        .ok()
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|e| format!("BENCHFLEET_S3_FAIL_FIRST: {e}"))?
        .unwrap_or(0);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(value()?)),
            "--bucket" => bucket = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--fail-first" => {
                fail_first = value()?.parse().map_err(|e| format!("--fail-first: {e}"))?
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let access_key = std::env::var("BENCHFLEET_S3_ACCESS_KEY").ok();
    let secret_key = std::env::var("BENCHFLEET_S3_SECRET_KEY").ok();
    if access_key.is_some() != secret_key.is_some() {
        return Err(
            "set both BENCHFLEET_S3_ACCESS_KEY and BENCHFLEET_S3_SECRET_KEY, or neither".into(),
        );
    }
    Ok(ServerOptions {
        root: root.ok_or(format!("--root is required\n{USAGE}"))?,
        bucket,
        access_key,
        secret_key,
        fail_first,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("benchfleet-s3-testserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("benchfleet-s3-testserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening {}", server.endpoint);
    // Commands on stdin, one per line; exit when the parent closes it (or dies).
    let server = std::sync::Arc::new(server);
    let control = server.clone();
    let _ = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let reply = command(&control, line.trim());
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{reply}").and_then(|()| out.flush());
        }
    })
    .await;
    ExitCode::SUCCESS
}

/// `fail N`: answer the next N requests with 503 SlowDown (reply `ok`); `injected`: how many
/// requests were answered with an injected fault so far (reply `injected K`).
fn command(server: &benchfleet_s3::testserver::RunningServer, line: &str) -> String {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("fail"), Some(n)) => match n.parse() {
            Ok(n) => {
                server.fail_next(n);
                "ok".into()
            }
            Err(e) => format!("error: fail {n}: {e}"),
        },
        (Some("injected"), None) => format!("injected {}", server.injected_faults()),
        _ => format!("error: unknown command `{line}` (fail N | injected)"),
    }
}
