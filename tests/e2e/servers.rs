//! The test servers of `cargo xtask test` (a throwaway PostgreSQL cluster, the loopback S3
//! server) as the end-to-end tests see them: their addresses from `BENCHFLEET_TEST_*` variables,
//! configuration snippets that point at them, stopping and starting the cluster, and an S3 server
//! of a test's own that fails on command.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The value of `var`, or `None` after a note (skip) — a panic under `CI=true`. The same rule as
/// `benchfleet_testkit::server::server_env`.
pub fn server_env(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{var} is not set and CI=true: `cargo xtask test` starts a server and sets it"
                );
            }
            eprintln!("{test}: skipped, {var} is not set (run `cargo xtask test`)");
            None
        }
    }
}

/// A name no other test (in this process or another) uses: lowercase, digits and `_`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{t}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An S3 endpoint and credentials.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

pub fn s3_from_env(test: &str) -> Option<S3> {
    let endpoint = server_env("BENCHFLEET_TEST_S3_ENDPOINT", test)?;
    let var = |k: &str, default: &str| {
        std::env::var(format!("BENCHFLEET_TEST_S3_{k}"))
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    Some(S3 {
        endpoint,
        bucket: var("BUCKET", "benchfleet-test"),
        access_key: var("ACCESS_KEY", ""),
        secret_key: var("SECRET_KEY", ""),
        region: var("REGION", "us-east-1"),
    })
}

/// A `[storage.TIER]` table on `s3` under `prefix`.
pub fn s3_tier(tier: &str, s3: &S3, prefix: &str) -> String {
    let mut t = format!(
        "[storage.{tier}]\nbackend = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
         allow_http = {}\nprefix = \"{prefix}\"\n",
        s3.bucket,
        s3.endpoint,
        s3.region,
        s3.endpoint.starts_with("http://"),
    );
    if !s3.access_key.is_empty() {
        t.push_str(&format!(
            "access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            s3.access_key, s3.secret_key
        ));
    }
    t
}

/// A PostgreSQL catalog in schema `schema`.
pub fn pg_catalog(url: &str, schema: &str) -> String {
    format!("[storage.catalog]\nbackend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n")
}

/// The test cluster is shared: the test that stops it takes this for writing, every other test
/// using it for reading, so no test sees an outage it did not ask for.
pub static SHARED_POSTGRES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The test cluster, held for reading (see [`SHARED_POSTGRES`]), and its URL; `None` (skipped)
/// without one, as [`server_env`] says.
pub fn shared_postgres(test: &str) -> Option<(std::sync::RwLockReadGuard<'static, ()>, String)> {
    let guard = SHARED_POSTGRES.read().unwrap_or_else(|e| e.into_inner());
    let url = server_env("BENCHFLEET_TEST_POSTGRES_URL", test)?;
    Some((guard, url))
}

/// `pg_ctl` stop or start of the test cluster, as the owner of its data directory.
pub fn pg_ctl(pg_ctl: &Path, data: &Path, args: &[&str]) {
    let parent = data.parent().expect("data directory has a parent");
    let mut cmd = Command::new(pg_ctl);
    cmd.current_dir(parent)
        .args(["-w", "-t", "60", "-D"])
        .arg(data)
        .args(args)
        .stdin(Stdio::null());
    let owner = std::fs::metadata(data).expect("data directory");
    let me = std::fs::metadata("/proc/self").expect("/proc/self");
    if owner.uid() != me.uid() {
        cmd.uid(owner.uid()).gid(owner.gid()).env("HOME", parent);
    }
    let out = cmd.output().expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The server's own command line (`postmaster.opts`) minus the binary and `-D DIR`, as `pg_ctl
/// start -o` options, so that it starts again exactly as before.
pub fn postmaster_options(data: &Path) -> String {
    let text = std::fs::read_to_string(data.join("postmaster.opts")).expect("postmaster.opts");
    let tokens: Vec<&str> = text
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, t)| t)
        .collect();
    let mut opts = Vec::new();
    let mut it = tokens.iter();
    while let Some(t) = it.next() {
        if *t == "-D" {
            it.next();
        } else {
            opts.push(format!("'{t}'"));
        }
    }
    opts.join(" ")
}

/// Stops the test cluster; starts it again when dropped, even if the test fails in between.
pub struct Stopped {
    pg_ctl: PathBuf,
    data: PathBuf,
    options: String,
    started: bool,
}

impl Stopped {
    pub fn stop(pg_ctl_bin: &Path, data: &Path) -> Stopped {
        let options = postmaster_options(data);
        pg_ctl(pg_ctl_bin, data, &["-m", "fast", "stop"]);
        Stopped {
            pg_ctl: pg_ctl_bin.to_owned(),
            data: data.to_owned(),
            options,
            started: false,
        }
    }

    pub fn start(&mut self) {
        let log = self
            .data
            .parent()
            .map(|p| p.join("postgres.log"))
            .unwrap_or_default();
        pg_ctl(
            &self.pg_ctl,
            &self.data,
            &[
                "-l",
                log.to_str().unwrap_or(""),
                "-o",
                &self.options,
                "start",
            ],
        );
        self.started = true;
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.started {
            self.start();
        }
    }
}

/// A loopback S3 server of this test's own (`BENCHFLEET_TEST_S3_SERVER_BIN`), controlled through
/// its standard input: `fail N` makes it answer the next N requests `503 SlowDown`.
pub struct FaultyS3 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub s3: S3,
    _dir: tempfile::TempDir,
}

impl FaultyS3 {
    pub fn start(bin: &str) -> FaultyS3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let s3 = S3 {
            endpoint: String::new(),
            bucket: "faulty".into(),
            access_key: "faultykey".into(),
            secret_key: unique("secret"),
            region: "us-east-1".into(),
        };
        let mut child = Command::new(bin)
            .arg("--root")
            .arg(dir.path())
            .args(["--bucket", &s3.bucket])
            .env("BENCHFLEET_S3_ACCESS_KEY", &s3.access_key)
            .env("BENCHFLEET_S3_SECRET_KEY", &s3.secret_key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the S3 test server");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("server address");
        let endpoint = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_owned();
        FaultyS3 {
            child,
            stdin,
            stdout,
            s3: S3 { endpoint, ..s3 },
            _dir: dir,
        }
    }

    pub fn command(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("send a command");
        self.stdin.flush().expect("flush");
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).expect("reply");
        reply.trim().to_owned()
    }

    pub fn injected(&mut self) -> u64 {
        let reply = self.command("injected");
        reply
            .strip_prefix("injected ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"))
    }
}

impl Drop for FaultyS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
