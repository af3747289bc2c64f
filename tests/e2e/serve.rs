//! `benchfleet serve` end to end: the real binary serving a real store, asked over HTTP with a
//! minimal client of this file (no HTTP library in the tests). The JSON API on the embedded
//! default and on PostgreSQL (the `history` and `compare` answers equal the CLI's JSON), bad
//! input answered with JSON errors and the right status, the token and read-only rules, alert
//! triage surviving a restart, and a suite started by another process reaching the event stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Workdir;

/// A suite whose one benchmark sleeps as long as the file `delay` says.
const STEP: &str = r#"
[suite]
name = "reg"

[defaults]
warmup = 0
runs = 3

[[benchmark]]
name = "step"
shell = "sh"
command = "sleep $(cat delay)"

[[benchmark]]
name = "flat"
command = "true"
"#;

/// Twelve runs of [`STEP`]: six at 10 ms, six at 50 ms (a change point at index 6), each
/// tagged with a commit of its own; the commits, oldest first.
pub(crate) fn step_history_with_commits(w: &Workdir) -> Vec<String> {
    w.file("reg.toml", STEP);
    let mut commits = Vec::new();
    for i in 0..12 {
        w.file("delay", if i < 6 { "0.01" } else { "0.1" });
        let commit = format!("c0ffee{i:02}deadbeef");
        let tag = format!("git.commit={commit}");
        let out = w.run(&["run", "--no-cache", "--tag", &tag, "reg.toml"]);
        assert_eq!(out.code(), 0, "{out:?}");
        commits.push(commit);
    }
    commits
}

/// A running `benchfleet serve`, killed on drop.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Serve {
    pub(crate) fn start(w: &Workdir, args: &[&str]) -> Serve {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = w
            .cmd(&all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start benchfleet serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines
                .next()
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!("serve exited before listening: {:?}", child.wait()));
            if let Some(a) = line.strip_prefix("serving on http://") {
                break a.to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Serve { child, addr }
    }

    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        request(&self.addr, "GET", path, &[], None)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        request(&self.addr, "POST", path, &[], Some(body))
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`); the status and the body parsed as JSON.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect to serve");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let payload = if chunked {
        dechunk(rest.as_bytes())
    } else {
        rest.to_owned()
    };
    let v = serde_json::from_str(&payload)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {head}\n{payload}"));
    (status, v)
}

fn dechunk(mut b: &[u8]) -> String {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
    String::from_utf8(out).unwrap()
}

/// An open event stream: events as `(id, kind, data)`.
struct Events {
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl Events {
    fn open(addr: &str, path: &str, last_event_id: Option<u64>) -> Events {
        let mut s = TcpStream::connect(addr).expect("connect to serve");
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("response head");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        Events {
            reader,
            pending: Vec::new(),
        }
    }

    /// The next event, or `None` when none came before `deadline`. Chunked framing removed.
    fn next(&mut self, deadline: Instant) -> Option<(Option<u64>, String, Value)> {
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(end) = text.find("\n\n") {
                let block = text[..end].to_owned();
                self.pending.drain(..end + 2);
                let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if kind.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((id, kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
            if Instant::now() > deadline {
                return None;
            }
            // One chunk: its size line, its bytes, CRLF.
            let mut size = String::new();
            match self.reader.read_line(&mut size) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => continue, // read timeout: look at the deadline again
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                continue;
            };
            let mut chunk = vec![0; n + 2];
            self.reader.read_exact(&mut chunk).expect("chunk");
            chunk.truncate(n);
            self.pending.extend_from_slice(&chunk);
        }
    }
}

fn cli_json(w: &Workdir, args: &[&str]) -> Value {
    w.json(args)
}

/// The API on a store with twelve runs: lists and filters, one run, history with its change
/// point exactly as `history --changes --format json`, compare as `compare --format json`,
/// alerts found and triaged (kept across a restart), and errors for bad input.
fn api_behaves(w: &Workdir) {
    step_history_with_commits(w);
    let serve = Serve::start(w, &[]);

    // Runs, filtered.
    let (st, runs) = serve.get("/api/runs");
    assert_eq!(st, 200, "{runs}");
    let runs = runs["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 12);
    assert!(
        runs.iter()
            .all(|r| r["suite"] == "reg" && r["status"] == "succeeded")
    );
    assert_eq!(serve.get("/api/runs?suite=nope").1["runs"], json!([]));
    assert_eq!(serve.get("/api/runs?status=running").1["runs"], json!([]));
    assert_eq!(
        serve.get("/api/runs?status=succeeded&limit=3").1["runs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let class = runs[0]["machine_class"].as_str().expect("a machine class");
    let by_class = serve.get(&format!("/api/runs?machine={class}")).1;
    assert_eq!(by_class["runs"].as_array().unwrap().len(), 12);
    assert_eq!(
        serve.get("/api/runs?machine=elsewhere").1["runs"],
        json!([])
    );
    assert_eq!(serve.get("/api/runs?tag=nokey").0, 400);

    // One run, by full id and by prefix.
    let newest = runs[0]["run_id"].as_str().unwrap().to_owned();
    let oldest = runs[11]["run_id"].as_str().unwrap().to_owned();
    let (st, run) = serve.get(&format!("/api/runs/{newest}"));
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["run"]["run_id"], newest.as_str());
    assert_eq!(run["run"]["status"], "succeeded");
    let step = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "step")
        .expect("step's results");
    assert_eq!(step["times"].as_array().unwrap().len(), 3);
    let show = cli_json(w, &["show", &newest, "--format", "json"]);
    let show_step = show["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "step")
        .unwrap();
    assert_eq!(
        step["mean"], show_step["mean"],
        "the API's results are `show`'s"
    );
    assert_eq!(serve.get(&format!("/api/runs/{}", &newest[..12])).0, 200);

    // History: exactly `history --changes --format json`, plus stddevs.
    let (st, h) = serve.get("/api/history?benchmark=step&metric=wall");
    assert_eq!(st, 200, "{h}");
    let cli = cli_json(
        w,
        &[
            "history",
            "--benchmark",
            "step",
            "--changes",
            "--format",
            "json",
        ],
    );
    assert_eq!(h["changes"], cli["changes"]);
    assert_eq!(h["changes"][0]["index"], 6);
    let strip = |v: &Value| {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p.as_object_mut().unwrap().remove("stddev");
                p.as_object_mut().unwrap().remove("git_commit");
                p
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&h), strip(&cli));
    assert!(h["points"][0]["stddev"].as_f64().is_some());
    assert_eq!(h["points"][0]["git_commit"], "c0ffee00deadbeef");
    // The same series in columns.
    let (st, cols) = serve.get("/api/history?benchmark=step&format=columns");
    assert_eq!(st, 200, "{cols}");
    assert_eq!(cols["changes"], cli["changes"]);
    let values: Vec<&Value> = cli["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["value"])
        .collect();
    assert_eq!(
        cols["points"]["value"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        values
    );
    assert_eq!(cols["points"]["git_commit"][11], "c0ffee11deadbeef");
    assert_eq!(serve.get("/api/history?benchmark=step&format=xml").0, 400);
    let raw = serve.get("/api/history?benchmark=step&raw=true").1;
    assert_eq!(raw["raw"].as_array().unwrap().len(), 36);

    // Compare: `compare --format json`'s comparisons.
    let (st, c) = serve.get(&format!("/api/compare?a={oldest}&b={newest}"));
    assert_eq!(st, 200, "{c}");
    let cli = cli_json(w, &["compare", &oldest, &newest, "--format", "json"]);
    assert_eq!(c["comparisons"], cli["comparisons"]);
    assert_eq!(c["baseline"]["run_id"], oldest.as_str());
    assert!(c["markdown"].as_str().unwrap().contains("step"));

    // Bad input: JSON errors with the right status.
    for (path, status) in [
        ("/api/runs/NOPE", 404),
        ("/api/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ", 404),
        ("/api/history?benchmark=nope", 404),
        ("/api/history", 400),
        ("/api/history?benchmark=step&metric=bogus", 400),
        ("/api/history?benchmark=step&by=sideways", 400),
        ("/api/history?benchmark=step&limit=-1", 400),
        ("/api/runs?limit=abc", 400),
        ("/api/runs?status=bogus", 400),
        ("/api/compare?a=nope", 400),
        ("/api/compare?a=nope&b=nada", 404),
        ("/api/compare?a=reg.toml&b=nada", 400),
        ("/api/alerts?state=bogus", 400),
        ("/api/alerts/a0000000000000000", 404),
        ("/api/nothing-here", 404),
    ] {
        let (st, v) = serve.get(path);
        assert_eq!(st, status, "{path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {v}"
        );
    }

    // Alerts: the regression at index 6, found by a scan of the newest run.
    let (st, found) = serve.post("/api/alerts/scan", &json!({}));
    assert_eq!(st, 200, "{found}");
    let (_, list) = serve.get("/api/alerts");
    let alerts = list["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{list}");
    let a = &alerts[0];
    assert_eq!(a["benchmark"], "step");
    assert_eq!(a["state"], "untriaged");
    assert_eq!(a["run_id"], h["points"][6]["run_id"]);
    let id = a["id"].as_str().unwrap().to_owned();
    // Scanning again finds nothing new.
    assert_eq!(
        serve.post("/api/alerts/scan", &json!({})).1["alerts"],
        json!([])
    );
    for (body, status) in [
        (json!({"state": "bogus"}), 400),
        (json!({"note": "no state"}), 400),
    ] {
        let (st, v) = serve.post(&format!("/api/alerts/{id}"), &body);
        assert_eq!(st, status, "{v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (st, v) = serve.post("/api/alerts/a0000000000000000", &json!({"state": "fixed"}));
    assert_eq!(st, 404, "{v}");
    let (st, v) = serve.post(
        &format!("/api/alerts/{id}"),
        &json!({"state": "acknowledged", "note": "sleep got longer"}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["alerts"][0]["state"], "acknowledged");
    // Bulk, all or none: one unknown id changes nothing.
    let (st, _) = serve.post(
        "/api/alerts",
        &json!({"ids": [id, "a0000000000000000"], "state": "fixed"}),
    );
    assert_eq!(st, 404);
    serve.stop();

    // The triage survives a restart.
    let serve = Serve::start(w, &[]);
    let (_, a) = serve.get(&format!("/api/alerts/{id}"));
    assert_eq!(a["state"], "acknowledged");
    assert_eq!(a["note"], "sleep got longer");
    let (_, list) = serve.get("/api/alerts?state=acknowledged");
    assert_eq!(list["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        serve.get("/api/alerts?state=untriaged").1["alerts"],
        json!([])
    );
}

#[test]
fn serve_api_on_the_embedded_default() {
    api_behaves(&Workdir::new());
}

#[test]
fn serve_api_on_postgres() {
    let Some(url) =
        crate::servers::server_env("BENCHFLEET_TEST_POSTGRES_URL", "serve_api_on_postgres")
    else {
        return;
    };
    let w = Workdir::new();
    let schema = crate::servers::unique("bfserve");
    w.file(
        "benchfleet.toml",
        &format!(
            "[storage.catalog]\nbackend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n"
        ),
    );
    api_behaves(&w);
}

/// Off loopback a token is required; with one, requests without it or with a wrong one get
/// 401, and the server is read-only unless --allow-writes.
#[test]
fn serve_token_and_read_only() {
    let w = Workdir::new();
    let out = w.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr().contains("--token"), "{out:?}");
    let out = w.run(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.code(), 2, "{out:?}");

    let mut child = w
        .cmd(&["serve", "--listen", "0.0.0.0:0", "--token", "s3cret"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().and_then(Result::ok).expect("serving line");
        if let Some(a) = line.strip_prefix("serving on http://") {
            break a.rsplit(':').next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let serve = Serve {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    let (st, v) = serve.get("/api/runs");
    assert_eq!(st, 401, "{v}");
    assert!(v["error"].is_string());
    let (st, _) = request(
        &serve.addr,
        "GET",
        "/api/runs",
        &[("Authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(st, 401);
    let auth = [("Authorization", "Bearer s3cret")];
    let (st, v) = request(&serve.addr, "GET", "/api/runs", &auth, None);
    assert_eq!(st, 200, "{v}");
    let (st, _) = request(&serve.addr, "GET", "/api/runs?token=s3cret", &[], None);
    assert_eq!(st, 200);
    let (st, v) = request(
        &serve.addr,
        "POST",
        "/api/alerts/a0000000000000000",
        &auth,
        Some(&json!({"state": "fixed"})),
    );
    assert_eq!(st, 403, "{v}");
}

/// A suite run by another process reaches the event stream: its `run` event and the
/// `records` events of its benchmarks; a client reconnecting with `Last-Event-ID` gets what
/// came after that id and nothing before it.
#[test]
fn serve_follows_a_suite_of_another_process() {
    let w = Workdir::new();
    w.file(
        "two.toml",
        r#"
[suite]
name = "two"

[defaults]
warmup = 0
runs = 2

[[benchmark]]
name = "first"
command = ["sleep", "0.2"]

[[benchmark]]
name = "second"
command = ["sleep", "0.2"]
needs = ["first"]
"#,
    );
    let serve = Serve::start(&w, &[]);
    let mut events = Events::open(&serve.addr, "/api/events", None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_, kind, _) = events.next(deadline).expect("hello");
    assert_eq!(kind, "hello");
    let out = w.run(&["run", "two.toml"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let mut seen: Vec<(u64, String, Value)> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 2
        || !seen
            .iter()
            .any(|(_, k, d)| k == "run" && d["data"]["status"] == "succeeded")
    {
        let Some((id, kind, data)) = events.next(deadline) else {
            panic!("events stopped before both benchmarks were seen: {seen:?}");
        };
        if kind == "records" {
            for n in data["data"]["new"].as_array().unwrap() {
                names.insert(n["name"].as_str().unwrap().to_owned());
            }
        }
        seen.push((id.expect("events have ids"), kind, data));
    }
    assert_eq!(seen[0].1, "run", "{seen:?}");
    assert_eq!(seen[0].2["data"]["suite"], "two");
    let ids: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Resume after the first event: the rest again, in order, nothing before it.
    let mut again = Events::open(&serve.addr, "/api/events", Some(ids[0]));
    let (_, kind, _) = again.next(deadline).expect("hello");
    assert_eq!(kind, "hello");
    for want in &ids[1..] {
        let (id, _, _) = again.next(deadline).expect("a replayed event");
        assert_eq!(id, Some(*want));
    }
}
