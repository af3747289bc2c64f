//! Team-scale backends end to end, against real servers: the quickstart suite on a PostgreSQL
//! catalog with PostgreSQL hot and warm tiers and an S3 cold tier gives results of the same shape
//! as the embedded default; a PostgreSQL server going down in the middle of a suite loses
//! nothing; an S3 server answering `503 SlowDown` for a while delays writes but loses nothing.
//!
//! The servers come from `BENCHFLEET_TEST_*` variables, set by `cargo xtask test` (which starts a
//! throwaway PostgreSQL cluster and the loopback S3 test server). Without them each test notes on
//! stderr that it was skipped, except under `CI=true`, where that is a failure. Every test keeps
//! to a schema and key prefix of its own, so they run in parallel.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::support::{Out, Workdir};

/// The value of `var`, or `None` after a note (skip) — a panic under `CI=true`. The same rule as
/// `benchfleet_testkit::server::server_env`.
pub(crate) fn server_env(var: &str, test: &str) -> Option<String> {
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
pub(crate) fn unique(prefix: &str) -> String {
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
struct S3 {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    region: String,
}

fn s3_from_env(test: &str) -> Option<S3> {
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
fn s3_tier(tier: &str, s3: &S3, prefix: &str) -> String {
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
fn pg_catalog(url: &str, schema: &str) -> String {
    format!("[storage.catalog]\nbackend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n")
}

/// Every record migrates as soon as `tier migrate --now` runs.
const MIGRATE_AT_ONCE: &str = "[storage.policy]\nhot_days = 0\nwarm_days = 0\n";

/// config/examples/quickstart.toml with a fixed number of runs (so that two runs store the same
/// number of records) and a smaller input (so that it is quick).
fn quickstart_fast() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples/quickstart.toml");
    let text = std::fs::read_to_string(&path).expect("read the quickstart suite");
    let replaced = text
        .replace(
            "warmup = 1\nmin_runs = 10\nmin_time = \"1s\"",
            "warmup = 0\nruns = 3",
        )
        .replace("seq 1 200000", "seq 1 5000");
    assert!(
        !replaced.contains("min_time") && !replaced.contains("200000"),
        "quickstart.toml changed shape; update quickstart_fast"
    );
    replaced
}

fn json(out: &Out) -> serde_json::Value {
    assert_eq!(out.code(), 0, "{out:?}");
    serde_json::from_slice(&out.0.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Records per tier (`tier status --json`).
fn per_tier(w: &Workdir) -> [u64; 3] {
    let j = json(&w.run(&["tier", "status", "--json"]));
    let n = |i: usize| j["tiers"][i]["records"].as_u64().expect("records count");
    [n(0), n(1), n(2)]
}

/// The shape of `show latest --format json`: per result (by name: results of concurrent nodes
/// come in start order), its name, its keys and how many measurements it holds.
fn show_shape(w: &Workdir) -> Vec<(String, Vec<String>, usize)> {
    let j = json(&w.run(&["show", "latest", "--format", "json"]));
    let mut shape: Vec<(String, Vec<String>, usize)> = j["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let keys = r.as_object().expect("object").keys().cloned().collect();
            let n = r["times"].as_array().map_or(0, Vec::len);
            (r["name"].as_str().unwrap_or("").to_owned(), keys, n)
        })
        .collect();
    shape.sort();
    shape
}

/// Keys of a JSON object, recursively for nested objects (`a.b`), arrays by their first element.
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.push(p.clone());
                // Tags and host details are free-form: their keys are data, not shape.
                if !matches!(k.as_str(), "tags" | "host") {
                    key_paths(v, &p, out);
                }
            }
        }
        serde_json::Value::Array(a) => {
            if let Some(first) = a.first() {
                key_paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    key_paths(v, "", &mut out);
    out.sort();
    out
}

/// The quickstart on catalog = postgres, hot = postgres, warm = postgres, cold = s3: run,
/// `tier migrate --now`, and `history`, `history --benchmark`, `show` answer with the shape of the
/// embedded default's answers (same benchmarks, same record counts, same JSON keys); `tier verify`
/// passes; `db refresh` refreshes the summary and `db summary` reports every benchmark.
/// The test cluster is shared: the test that stops it takes this for writing, every other test
/// using it for reading, so no test sees an outage it did not ask for.
static SHARED_POSTGRES: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn quickstart_on_postgres_and_s3_has_the_embedded_shape() {
    const TEST: &str = "quickstart_on_postgres_and_s3_has_the_embedded_shape";
    let _cluster = SHARED_POSTGRES.read().unwrap_or_else(|e| e.into_inner());
    let Some(url) = server_env("BENCHFLEET_TEST_POSTGRES_URL", TEST) else {
        return;
    };
    let Some(s3) = s3_from_env(TEST) else {
        return;
    };
    let suite = quickstart_fast();

    let embedded = Workdir::new();
    embedded.file("suite.toml", &suite);
    let out = embedded.run(&["run", "suite.toml"]);
    assert_eq!(out.code(), 0, "embedded run: {out:?}");

    let team = Workdir::new();
    team.file("suite.toml", &suite);
    let schema = unique("bfe2e");
    let config = format!(
        "{}[storage.hot]\nbackend = \"postgres\"\n[storage.warm]\nbackend = \"postgres\"\n{}{MIGRATE_AT_ONCE}",
        pg_catalog(&url, &schema),
        s3_tier("cold", &s3, &schema.replace('_', "-")),
    );
    team.file("benchfleet.toml", &config);
    let out = team.run(&["run", "suite.toml"]);
    assert_eq!(out.code(), 0, "run on postgres: {out:?}");
    let n = per_tier(&team)[0];
    // generate once, gzip at three levels, three sorts: 1 + 6 x 3 runs.
    assert_eq!(n, 1 + 6 * 3, "records stored hot");
    assert_eq!(per_tier(&embedded), [n, 0, 0]);

    let before = show_shape(&team);
    let out = team.run(&["tier", "migrate", "--now"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        per_tier(&team),
        [0, 0, n],
        "every record in the S3 cold tier"
    );

    let (got, want) = (show_shape(&team), show_shape(&embedded));
    assert_eq!(
        got, before,
        "results read back from S3 differ from the hot ones"
    );
    assert_eq!(got, want, "show: postgres+s3 vs embedded");
    assert_eq!(got.len(), 7);

    for args in [
        &["history", "--format", "json"][..],
        &[
            "history",
            "--benchmark",
            "gzip-6",
            "--metric",
            "wall",
            "--format",
            "json",
        ][..],
    ] {
        let (got, want) = (json(&team.run(args)), json(&embedded.run(args)));
        assert_eq!(shape_of(&got), shape_of(&want), "{args:?}: {got} vs {want}");
        let len = |v: &serde_json::Value| {
            v.as_array()
                .or_else(|| v["points"].as_array())
                .map(Vec::len)
        };
        assert_eq!(len(&got), Some(1), "{args:?}: {got}");
        assert_eq!(len(&got), len(&want), "{args:?}");
    }

    let verify = json(&team.run(&["tier", "verify", "--json"]));
    assert_eq!(verify["checked"].as_u64(), Some(n), "{verify}");
    let out = team.run(&["tier", "verify"]);
    assert_eq!(out.code(), 0, "{out:?}");

    let out = team.run(&["db", "refresh"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr().contains("refreshed"), "{out:?}");
    let summary = json(&team.run(&["db", "summary", "--metric", "wall", "--json"]));
    let mut names: Vec<&str> = summary
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = got.iter().map(|(name, _, _)| name.as_str()).collect();
    want.sort_unstable();
    assert_eq!(
        names, want,
        "one wall row per node (all ran today): {summary}"
    );
    let counts: u64 = summary
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counts, n, "the summary counts every successful run once");

    // On the embedded catalog there is nothing to refresh: a note, exit 0.
    let out = embedded.run(&["db", "refresh"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr().contains("nothing to refresh"), "{out:?}");
    let out = embedded.run(&["db", "summary"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

/// `pg_ctl` stop or start of the test cluster, as the owner of its data directory.
fn pg_ctl(pg_ctl: &Path, data: &Path, args: &[&str]) {
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
fn postmaster_options(data: &Path) -> String {
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
struct Stopped {
    pg_ctl: PathBuf,
    data: PathBuf,
    options: String,
    started: bool,
}

impl Stopped {
    fn stop(pg_ctl_bin: &Path, data: &Path) -> Stopped {
        let options = postmaster_options(data);
        pg_ctl(pg_ctl_bin, data, &["-m", "fast", "stop"]);
        Stopped {
            pg_ctl: pg_ctl_bin.to_owned(),
            data: data.to_owned(),
            options,
            started: false,
        }
    }

    fn start(&mut self) {
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

/// PostgreSQL goes down in the middle of a suite (catalog and hot tier on it) and comes back:
/// the runner's writes (records, blobs, the run row) are retried until it is back, the run
/// finishes successfully, and every record is stored exactly once.
#[test]
fn postgres_going_down_mid_suite_loses_nothing() {
    const TEST: &str = "postgres_going_down_mid_suite_loses_nothing";
    let _cluster = SHARED_POSTGRES.write().unwrap_or_else(|e| e.into_inner());
    let Some(url) = server_env("BENCHFLEET_TEST_POSTGRES_URL", TEST) else {
        return;
    };
    let Some(ctl) = server_env("BENCHFLEET_TEST_PG_CTL", TEST) else {
        return;
    };
    let Some(data) = server_env("BENCHFLEET_TEST_PG_DATA", TEST) else {
        return;
    };
    let w = Workdir::new();
    // `gate` waits for the test to stop the server; what follows it runs while the server is
    // down (its writes must wait and retry) or after it is back.
    w.file(
        "suite.toml",
        r#"
[suite]
name = "restart"

[defaults]
runs = 3
warmup = 0

[[benchmark]]
name = "before-{n}"
command = "true {n}"
matrix = { n = [1, 2] }

[[benchmark]]
name = "gate"
shell = "sh"
command = "while [ ! -f server-stopped ]; do sleep 0.05; done"
runs = 1
timeout = "120s"
needs = ["before-1", "before-2"]

[[benchmark]]
name = "after-{n}"
command = "true {n}"
matrix = { n = [1, 2, 3] }
needs = ["gate"]
"#,
    );
    let schema = unique("bfe2e");
    w.file(
        "benchfleet.toml",
        &format!(
            "{}retry_attempts = 30\n[storage.hot]\nbackend = \"postgres\"\n",
            pg_catalog(&url, &schema)
        ),
    );
    let mut child = w
        .cmd(&["run", "suite.toml", "--jobs", "1", "--progress", "lines"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start benchfleet run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    // Wait until the records before the gate are stored.
    let mut done = 0;
    while done < 2 {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with("before-") && line.contains(": ok") => done += 1,
            Ok(_) => {}
            Err(e) => panic!("the run did not get to the gate: {e}"),
        }
    }
    let mut stopped = Stopped::stop(Path::new(&ctl), Path::new(&data));
    std::fs::write(w.path().join("server-stopped"), "").expect("open the gate");
    // The gate's record (and the next benchmarks') are written while the server is down.
    std::thread::sleep(Duration::from_secs(2));
    stopped.start();
    let status = child.wait().expect("wait for benchfleet");
    let stderr = reader.join().expect("stderr reader");
    let stdout = {
        let mut s = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
        }
        s
    };
    assert_eq!(
        status.code(),
        Some(0),
        "run through a server restart:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("FAILED"), "{stderr}");

    // Exactly once: 2 + 3 benchmarks x 3 runs, and the gate once; every one read back.
    let want = 5 * 3 + 1;
    assert_eq!(per_tier(&w), [want, 0, 0], "records in the catalog");
    let shape = show_shape(&w);
    let runs: Vec<(String, usize)> = shape.iter().map(|(c, _, n)| (c.clone(), *n)).collect();
    assert_eq!(runs.len(), 6, "{runs:?}");
    assert_eq!(
        runs.iter().map(|(_, n)| *n as u64).sum::<u64>(),
        want,
        "{runs:?}"
    );
    let verify = json(&w.run(&["tier", "verify", "--json"]));
    assert_eq!(verify["checked"].as_u64(), Some(want), "{verify}");
    let history = json(&w.run(&["history", "--format", "json"]));
    assert_eq!(history[0]["status"], "succeeded", "{history}");
}

/// A loopback S3 server of this test's own (`BENCHFLEET_TEST_S3_SERVER_BIN`), controlled through
/// its standard input: `fail N` makes it answer the next N requests `503 SlowDown`.
struct FaultyS3 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    s3: S3,
    _dir: tempfile::TempDir,
}

impl FaultyS3 {
    fn start(bin: &str) -> FaultyS3 {
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

    fn command(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("send a command");
        self.stdin.flush().expect("flush");
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).expect("reply");
        reply.trim().to_owned()
    }

    fn injected(&mut self) -> u64 {
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

/// An S3 server that fails for a while, with the embedded catalog and the hot and cold tiers on
/// it: the run's record writes and the migration's segment writes are retried and succeed, every
/// fault is consumed, and everything reads back intact.
#[test]
fn s3_failing_for_a_while_delays_writes_but_loses_nothing() {
    const TEST: &str = "s3_failing_for_a_while_delays_writes_but_loses_nothing";
    let Some(bin) = server_env("BENCHFLEET_TEST_S3_SERVER_BIN", TEST) else {
        return;
    };
    let mut server = FaultyS3::start(&bin);
    let w = Workdir::new();
    w.file(
        "suite.toml",
        r#"
[suite]
name = "s3-faults"

[defaults]
runs = 3
warmup = 0

[[benchmark]]
name = "echo-{n}"
command = "echo {n}"
matrix = { n = [1, 2, 3, 4] }
"#,
    );
    w.file(
        "benchfleet.toml",
        &format!(
            "{}{}{MIGRATE_AT_ONCE}",
            s3_tier("hot", &server.s3, "hot"),
            s3_tier("cold", &server.s3, "cold")
        ),
    );
    let n = 4 * 3;

    assert_eq!(server.command("fail 5"), "ok");
    let out = w.run(&["run", "suite.toml"]);
    assert_eq!(out.code(), 0, "run through 503s: {out:?}");
    assert_eq!(
        server.injected(),
        5,
        "every injected fault was hit by a request"
    );
    assert_eq!(per_tier(&w), [n, 0, 0]);
    let before = show_shape(&w);

    assert_eq!(server.command("fail 6"), "ok");
    let out = w.run(&["tier", "migrate", "--now"]);
    assert_eq!(out.code(), 0, "migration through 503s: {out:?}");
    assert_eq!(server.injected(), 11);
    assert_eq!(per_tier(&w), [0, 0, n]);
    assert_eq!(
        show_shape(&w),
        before,
        "records read back from the cold tier"
    );
    let verify = json(&w.run(&["tier", "verify", "--json"]));
    assert_eq!(verify["checked"].as_u64(), Some(n), "{verify}");
    assert_eq!(verify["orphans"].as_u64(), Some(0), "{verify}");
}

/// Without any server: a PostgreSQL catalog nobody listens for is an error naming host and port
/// (exit 3), after the connect timeout rather than a hang, and the password in the URL shows
/// nowhere; `config show` redacts every credential it prints.
#[test]
fn unreachable_postgres_and_credentials_are_reported_safely() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let w = Workdir::new();
    w.file(
        "suite.toml",
        "[suite]\nname = \"x\"\n[[benchmark]]\nname = \"t\"\ncommand = \"true\"\nruns = 1\n",
    );
    w.file(
        "benchfleet.toml",
        &format!(
            "[storage.catalog]\nbackend = \"postgres\"\nurl = \"postgres://bench:hunter2@127.0.0.1:{port}/b\"\n\
             connect_timeout_secs = 1\n[storage.hot]\nbackend = \"postgres\"\n\
             [storage.cold]\nbackend = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKIAEXAMPLE\"\n\
             secret_access_key = \"s3-secret-value\"\n",
        ),
    );
    for args in [
        &["run", "suite.toml"][..],
        &["history"][..],
        &["db", "refresh"][..],
    ] {
        let out = w.run(args);
        assert_eq!(out.code(), 3, "{args:?}: {out:?}");
        let text = format!("{}{}", out.stdout(), out.stderr());
        assert!(
            text.contains(&format!("127.0.0.1:{port}")),
            "{args:?}: {text}"
        );
        assert!(text.contains("cannot reach PostgreSQL"), "{args:?}: {text}");
        for secret in ["hunter2", "AKIAEXAMPLE", "s3-secret-value"] {
            assert!(!text.contains(secret), "{args:?}: {secret} in {text}");
        }
    }
    let out = w.run(&["config", "show"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let text = out.stdout();
    for secret in ["hunter2", "AKIAEXAMPLE", "s3-secret-value"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("postgres://bench:***@127.0.0.1"), "{text}");
}
