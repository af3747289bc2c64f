//! Team-scale backends end to end, against real servers: the quickstart suite on a PostgreSQL
//! catalog with PostgreSQL hot and warm tiers and an S3 cold tier gives results of the same shape
//! as the embedded default; a PostgreSQL server going down in the middle of a suite loses
//! nothing; an S3 server answering `503 SlowDown` for a while delays writes but loses nothing.
//!
//! The servers come from `BENCHFLEET_TEST_*` variables, set by `cargo xtask test` (which starts a
//! throwaway PostgreSQL cluster and the loopback S3 test server). Without them each test notes on
//! stderr that it was skipped, except under `CI=true`, where that is a failure. Every test keeps
//! to a schema and key prefix of its own, so they run in parallel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::servers::{
    FaultyS3, SHARED_POSTGRES, Stopped, pg_catalog, s3_from_env, s3_tier, server_env, unique,
};
use crate::support::{Out, Workdir};

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
