//! Throwaway servers for `cargo xtask test`: a PostgreSQL cluster and an S3-compatible server, both
//! on loopback, both stopped when the [`Guard`] is dropped.
//!
//! - **PostgreSQL**: `initdb` + `pg_ctl` in a temporary directory (binaries from `PATH` or
//!   `/usr/lib/postgresql/*/bin`, newest first), listening only on `127.0.0.1` on a free port,
//!   unix socket in the temporary directory, trust authentication. When running as root the
//!   cluster runs as the `postgres` system user (PostgreSQL refuses to run as root). Missing
//!   binaries are a note with install instructions, or an error when `CI=true`.
//! - **S3**: `benchfleet-s3-testserver` (s3s-fs, built from `plugins/benchfleet-s3` with feature
//!   `testserver`) serving a temporary directory, with random credentials.
//!
//! Developers can use their own servers instead: `BENCHFLEET_TEST_POSTGRES_URL`, and
//! `BENCHFLEET_TEST_S3_ENDPOINT` (+ `_BUCKET`, `_ACCESS_KEY`, `_SECRET_KEY`, `_REGION`).
//! [`Services::apply`] sets these same variables on the `cargo test` command, which is how the
//! tests find the servers (`BENCHFLEET_TEST_S3_SERVER_BIN` also names the server binary, so a
//! test can start its own instance, e.g. with `--fail-first N` for fault injection).
//! For a cluster it started, it also sets `BENCHFLEET_TEST_PG_CTL` and `BENCHFLEET_TEST_PG_DATA`,
//! so that a test can restart the server in the middle of a suite (the log stays in the data
//! directory's parent, `postgres.log`).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

pub const ENV_POSTGRES_URL: &str = "BENCHFLEET_TEST_POSTGRES_URL";
pub const ENV_S3_ENDPOINT: &str = "BENCHFLEET_TEST_S3_ENDPOINT";
pub const ENV_S3_BUCKET: &str = "BENCHFLEET_TEST_S3_BUCKET";
pub const ENV_S3_ACCESS_KEY: &str = "BENCHFLEET_TEST_S3_ACCESS_KEY";
pub const ENV_S3_SECRET_KEY: &str = "BENCHFLEET_TEST_S3_SECRET_KEY";
pub const ENV_S3_REGION: &str = "BENCHFLEET_TEST_S3_REGION";
pub const ENV_S3_SERVER_BIN: &str = "BENCHFLEET_TEST_S3_SERVER_BIN";
/// The throwaway cluster's `pg_ctl` and data directory, so that a test can restart the server
/// (`pg_ctl restart -m fast`, run as the data directory's owner). Only set for a cluster this run
/// started.
pub const ENV_PG_CTL: &str = "BENCHFLEET_TEST_PG_CTL";
pub const ENV_PG_DATA: &str = "BENCHFLEET_TEST_PG_DATA";

/// An S3-compatible endpoint the tests may use.
#[derive(Clone)]
pub struct S3Endpoint {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Where the test servers are. `None`: not available (tests skip, or fail under `CI=true`).
#[derive(Debug, Clone, Default)]
pub struct Services {
    pub postgres_url: Option<String>,
    pub s3: Option<S3Endpoint>,
    /// The S3 test server binary, when this run built it.
    pub s3_server_bin: Option<PathBuf>,
    /// `pg_ctl` and the data directory of the cluster this run started.
    pub pg_ctl: Option<(PathBuf, PathBuf)>,
}

impl Services {
    /// Set the `BENCHFLEET_TEST_*` variables on `cmd` (normally the `cargo test` command).
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(url) = &self.postgres_url {
            cmd.env(ENV_POSTGRES_URL, url);
        }
        if let Some(s3) = &self.s3 {
            cmd.env(ENV_S3_ENDPOINT, &s3.endpoint)
                .env(ENV_S3_BUCKET, &s3.bucket)
                .env(ENV_S3_ACCESS_KEY, &s3.access_key)
                .env(ENV_S3_SECRET_KEY, &s3.secret_key)
                .env(ENV_S3_REGION, &s3.region);
        }
        if let Some(bin) = &self.s3_server_bin {
            cmd.env(ENV_S3_SERVER_BIN, bin);
        }
        if let Some((pg_ctl, data)) = &self.pg_ctl {
            cmd.env(ENV_PG_CTL, pg_ctl).env(ENV_PG_DATA, data);
        }
    }
}

/// Stops the servers this run started (and removes their files) when dropped.
#[derive(Debug, Default)]
pub struct Guard {
    postgres: Option<PgCluster>,
    s3: Option<S3Server>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pg) = self.postgres.take() {
            pg.stop();
        }
        if let Some(s3) = self.s3.take() {
            s3.stop();
        }
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Start (or find, from the environment) the test servers.
pub fn start() -> Result<(Services, Guard)> {
    let mut services = Services::default();
    let mut guard = Guard::default();

    match std::env::var(ENV_POSTGRES_URL) {
        Ok(url) if !url.is_empty() => {
            eprintln!("services: PostgreSQL from {ENV_POSTGRES_URL}");
            services.postgres_url = Some(url);
        }
        _ => match find_pg_bin() {
            Some(bin) => {
                let pg = PgCluster::start(&bin).context("starting a throwaway PostgreSQL")?;
                eprintln!("services: PostgreSQL {} ({})", pg.url, bin.display());
                services.postgres_url = Some(pg.url.clone());
                services.pg_ctl = Some((pg.bin.join("pg_ctl"), pg.dir.path().join("data")));
                guard.postgres = Some(pg);
            }
            None if ci() => bail!(
                "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin, \
                 and CI=true: install them (`apt-get install postgresql`) or set {ENV_POSTGRES_URL}"
            ),
            None => eprintln!(
                "services: PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in \
                 /usr/lib/postgresql/*/bin; PostgreSQL tests will be skipped.\n  \
                 Install them with `sudo apt-get install postgresql` (Debian/Ubuntu), or point \
                 the tests at a server with {ENV_POSTGRES_URL}=postgres://user@host:port/db"
            ),
        },
    }

    match std::env::var(ENV_S3_ENDPOINT) {
        Ok(endpoint) if !endpoint.is_empty() => {
            let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.into());
            eprintln!("services: S3 from {ENV_S3_ENDPOINT} ({endpoint})");
            services.s3 = Some(S3Endpoint {
                endpoint,
                bucket: var(ENV_S3_BUCKET, "benchfleet-test"),
                access_key: var(ENV_S3_ACCESS_KEY, ""),
                secret_key: var(ENV_S3_SECRET_KEY, ""),
                region: var(ENV_S3_REGION, "us-east-1"),
            });
        }
        _ => {
            let bin = build_s3_server().context("building the S3 test server")?;
            let server = S3Server::start(&bin).context("starting the S3 test server")?;
            eprintln!("services: S3 {}", server.endpoint.endpoint);
            services.s3 = Some(server.endpoint.clone());
            services.s3_server_bin = Some(bin);
            guard.s3 = Some(server);
        }
    }
    Ok((services, guard))
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Hex of the clock and pid: unique enough for throwaway credentials and names.
fn nonce() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", t, std::process::id())
}

fn find_pg_bin() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                // Prefer the real directory (a symlink in /usr/local/bin points at it).
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| has_tools(d));
                return Some(real.unwrap_or(dir));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Who runs the cluster: ourselves, or the `postgres` user when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs(Option<(u32, u32)>);

impl RunAs {
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd);
        if let Some((uid, gid)) = self.0 {
            cmd.uid(uid).gid(gid).env("HOME", cwd);
        }
        cmd
    }
}

/// uid and gid of a system user, from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

#[derive(Debug)]
struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: RunAs,
    url: String,
}

impl PgCluster {
    fn start(bin: &Path) -> Result<PgCluster> {
        let dir = tempfile::Builder::new()
            .prefix("benchfleet-pg-")
            .tempdir()
            .context("creating a temporary directory")?;
        let root = dir.path().to_path_buf();
        let run_as = if std::fs::metadata(&root)?.uid() == 0 {
            let Some((uid, gid)) = system_user("postgres") else {
                bail!(
                    "running as root, and PostgreSQL refuses to run as root: create a `postgres` \
                     user (the postgresql package does), or run as an ordinary user"
                );
            };
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to postgres", root.display()))?;
            RunAs(Some((uid, gid)))
        } else {
            RunAs(None)
        };
        let data = root.join("data");
        let log = root.join("postgres.log");
        let mut initdb = run_as.command(&bin.join("initdb"), &root);
        initdb.args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        initdb.args(["--locale=C", "-D"]).arg(&data);
        run_quiet(initdb)?;

        // A port can be taken between our check and the server's bind: try a few.
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=300 \
                 -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                root.display()
            );
            let mut start = run_as.command(&bin.join("pg_ctl"), &root);
            start.args(["-w", "-t", "60", "-D"]).arg(&data);
            start.arg("-l").arg(&log).args(["-o", &opts, "start"]);
            match run_quiet(start) {
                Ok(()) => {
                    return Ok(PgCluster {
                        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                        dir,
                        bin: bin.to_path_buf(),
                        run_as,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        Err(last_err.expect("at least one attempt"))
            .with_context(|| format!("server log {}:\n{tail}", log.display()))
    }

    fn stop(self) {
        let mut stop = self
            .run_as
            .command(&self.bin.join("pg_ctl"), self.dir.path());
        stop.args(["-w", "-t", "30", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop");
        if let Err(e) = run_quiet(stop) {
            eprintln!("services: stopping PostgreSQL: {e:#}");
        }
    }
}

/// Run `cmd`; on failure the error carries its output.
fn run_quiet(mut cmd: Command) -> Result<()> {
    let shown = format!("{:?}", cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `cargo build` the S3 test server; returns the binary's path.
fn build_s3_server() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "benchfleet-s3",
        "--features",
        "testserver",
        "--bin",
        "benchfleet-s3-testserver",
        "--message-format=json-render-diagnostics",
    ])
    .stdout(Stdio::piped());
    eprintln!("services: building benchfleet-s3-testserver");
    let mut child = cmd.spawn().context("could not start cargo build")?;
    let stdout = child.stdout.take().context("cargo stdout")?;
    let mut exe = None;
    for msg in cargo_metadata::Message::parse_stream(BufReader::new(stdout)) {
        if let Ok(cargo_metadata::Message::CompilerArtifact(a)) = msg
            && let Some(path) = a.executable
        {
            exe = Some(path.into_std_path_buf());
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build of benchfleet-s3-testserver failed with {status}");
    }
    exe.context("cargo build reported no benchfleet-s3-testserver executable")
}

#[derive(Debug)]
struct S3Server {
    child: Child,
    /// Kept open: the server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    endpoint: S3Endpoint,
    _dir: tempfile::TempDir,
}

impl S3Server {
    fn start(bin: &Path) -> Result<S3Server> {
        let dir = tempfile::Builder::new()
            .prefix("benchfleet-s3-")
            .tempdir()
            .context("creating a temporary directory")?;
        let n = nonce();
        let endpoint = S3Endpoint {
            endpoint: String::new(),
            bucket: "benchfleet-test".into(),
            access_key: format!("bf{}", &n[..8.min(n.len())]),
            secret_key: format!("secret{n}"),
            region: "us-east-1".into(),
        };
        let mut child = Command::new(bin)
            .arg("--root")
            .arg(dir.path())
            .args(["--bucket", &endpoint.bucket])
            .env("BENCHFLEET_S3_ACCESS_KEY", &endpoint.access_key)
            .env("BENCHFLEET_S3_SECRET_KEY", &endpoint.secret_key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {}", bin.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                bail!("{} did not report its address within 30 s", bin.display());
            }
        };
        let Some(url) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not start: {line:?}", bin.display());
        };
        Ok(S3Server {
            endpoint: S3Endpoint {
                endpoint: url.to_string(),
                ..endpoint
            },
            child,
            stdin,
            _dir: dir,
        })
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
