//! The dashboard's pages in a real headless Chromium, driven over the DevTools protocol (a
//! WebSocket; the small client is in this file): every page loads with no console error, no
//! uncaught exception and no request to anything but this machine's server; the history plot
//! holds the series' points and hovering one shows its commit; a suite started by another
//! process appears on its run page while it runs; triage made on the Alerts page survives a
//! restart of `serve`.
//!
//! Chromium comes from `/usr/bin/chromium` or `PATH` (`.ci/run` installs it). Without it each
//! test notes that it was skipped, except under `CI=true`, where that is a failure.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Serve, step_history_with_commits};
use crate::support::Workdir;

fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("chromium"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: chromium is not installed and CI=true (.ci/run installs it)");
        }
        eprintln!("{test}: skipped, chromium is not installed");
    }
    found
}

/// A headless Chromium with a fresh profile, and one page attached over the DevTools protocol.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
    session: String,
    /// Every event received so far (`{"method", "params"}`).
    events: Vec<Value>,
}

impl Browser {
    fn start(bin: &PathBuf) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--window-size=1300,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .and_then(Result::ok)
                .expect("chromium exited before its DevTools endpoint was up");
            if let Some(u) = line.strip_prefix("DevTools listening on ") {
                break u.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let stream = TcpStream::connect(&hostport).expect("connect to DevTools");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools handshake");
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap().to_owned();
        let attached = b.call_browser(
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
            "Page.enable",
        ] {
            b.call(domain, json!({}));
        }
        b
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = self.session.clone().into();
        }
        self.ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("send to DevTools");
        loop {
            let m = self.ws.read().expect("read from DevTools");
            let Ok(text) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// Evaluate `expr` in the page (awaiting a promise) and return its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating `{expr}`: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Wait until `expr` is truthy in the page; its value.
    fn wait_for(&mut self, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(expr);
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{expr}` never held; problems so far: {:?}",
                self.problems()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", url);
    }

    /// Console errors, uncaught exceptions, failed loads and requests that leave the machine.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" if p["type"] == "error" => {
                    out.push(format!("console error: {}", p["args"]));
                }
                "Runtime.exceptionThrown" => {
                    out.push(format!("exception: {}", p["exceptionDetails"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    out.push(format!("log error: {}", p["entry"]["text"]));
                }
                "Network.loadingFailed" if p["canceled"] != json!(true) => {
                    out.push(format!("load failed: {}", p["errorText"]));
                }
                "Network.requestWillBeSent" => {
                    let url = p["request"]["url"].as_str().unwrap_or("");
                    let local = url.starts_with("http://127.0.0.1:")
                        || url.starts_with("data:")
                        || url.starts_with("blob:")
                        || url.starts_with("about:");
                    if !local {
                        out.push(format!("request off the machine: {url}"));
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn assert_clean(&mut self, page: &str) {
        // Let late requests and errors arrive.
        self.eval("new Promise(r => setTimeout(r, 300))");
        let problems = self.problems();
        assert!(problems.is_empty(), "{page}: {problems:#?}");
        let requests = self
            .events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .count();
        assert!(
            requests > 0,
            "{page}: no request seen (is Network enabled?)"
        );
    }

    fn mouse_move(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_page_loads_clean_and_the_history_plot_answers_hover() {
    let Some(bin) = chromium("every_page_loads_clean_and_the_history_plot_answers_hover") else {
        return;
    };
    let w = Workdir::new();
    let commits = step_history_with_commits(&w);
    let serve = Serve::start(&w, &[]);
    let base = format!("http://{}", serve.addr);
    let (_, runs) = serve.get("/api/runs");
    let ids: Vec<String> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect();
    serve.post("/api/alerts/scan", &json!({}));
    let mut b = Browser::start(&bin);

    let pages = [
        ("/", "document.querySelector('#runs').dataset.rows"),
        (
            &*format!("/run.html?id={}", ids[0]),
            "document.querySelector('#dist').dataset.points",
        ),
        (
            "/history.html?benchmark=step",
            "document.querySelector('#plot').dataset.points",
        ),
        (
            &*format!("/compare.html?a={}&b={}", ids[11], ids[0]),
            "document.querySelector('#cmp').dataset.rows",
        ),
        (
            "/alerts.html",
            "document.querySelector('#alerts').dataset.rows",
        ),
    ];
    for (path, ready) in pages {
        b.navigate(&format!("{base}{path}"));
        let shown = b.wait_for(ready, path);
        b.assert_clean(path);
        if path == "/" || path.starts_with("/compare") {
            assert_eq!(shown, json!(if path == "/" { "12" } else { "2" }), "{path}");
        }
    }

    // History: one point per run in the plot's data, drawn on the canvas; hover shows commits.
    b.navigate(&format!("{base}/history.html?benchmark=step"));
    b.wait_for("document.querySelector('#plot').dataset.points", "history");
    assert_eq!(b.eval("window.bfHistory.plot.data[1].length"), json!(12));
    assert_eq!(
        b.eval("window.bfHistory.plot.data[1].filter(v => v != null).length"),
        json!(12)
    );
    let painted = b.eval(
        "(() => { const c = document.querySelector('#plot canvas'); \
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()",
    );
    assert!(painted.as_u64().unwrap() > 100, "nothing drawn: {painted}");
    assert_eq!(
        b.eval("document.querySelectorAll('#changes tbody tr td').length > 1"),
        json!(true)
    );
    for i in [2usize, 9] {
        let pos = b.eval(&format!("window.bfHistory.pointPos({i})"));
        b.mouse_move(pos["x"].as_f64().unwrap(), pos["y"].as_f64().unwrap());
        let want = &commits[i];
        let tip = b.wait_for(
            &format!(
                "(() => {{ const t = document.querySelector('#tip'); \
                 return t.style.display === 'block' && t.textContent.includes('{want}') && t.textContent; }})()"
            ),
            "hover shows the commit",
        );
        assert!(tip.as_str().unwrap().contains("run "), "{tip}");
    }
    // Log and relative y draw the same points.
    b.navigate(&format!("{base}/history.html?benchmark=step&y=pct"));
    b.wait_for(
        "document.querySelector('#plot').dataset.points",
        "history %",
    );
    assert_eq!(b.eval("window.bfHistory.plot.data[1][0]"), json!(0));
    b.assert_clean("history %");
    b.navigate(&format!(
        "{base}/history.html?benchmark=step&y=log&mode=raw"
    ));
    b.wait_for(
        "document.querySelector('#plot').dataset.points",
        "history raw",
    );
    assert_eq!(b.eval("window.bfHistory.plot.data[1].length"), json!(36));
    b.assert_clean("history raw log");
}

#[test]
fn the_run_page_follows_a_suite_of_another_process() {
    let Some(bin) = chromium("the_run_page_follows_a_suite_of_another_process") else {
        return;
    };
    let w = Workdir::new();
    let mut suite =
        String::from("[suite]\nname = \"slowish\"\n\n[defaults]\nwarmup = 0\nruns = 2\n");
    for i in 0..8 {
        suite.push_str(&format!(
            "\n[[benchmark]]\nname = \"n{i}\"\ncommand = [\"sleep\", \"0.25\"]\n{}",
            if i > 0 {
                format!("needs = [\"n{}\"]\n", i - 1)
            } else {
                String::new()
            }
        ));
    }
    w.file("slowish.toml", &suite);
    let serve = Serve::start(&w, &[]);
    let mut b = Browser::start(&bin);
    let mut run = w
        .cmd(&["run", "slowish.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the suite in another process");
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let (_, v) = serve.get("/api/runs?status=running");
        if let Some(r) = v["runs"].as_array().and_then(|a| a.first()) {
            break r["run_id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the run never showed as running");
        std::thread::sleep(Duration::from_millis(50));
    };
    b.navigate(&format!("http://{}/run.html?id={id}", serve.addr));
    b.wait_for(
        "document.querySelector('#title').textContent.includes('running')",
        "run page",
    );
    let before = b.eval("Number(document.querySelector('#live').dataset.count || 0)");
    // Records arrive while the suite still runs (another process), and each one is shown.
    let got = b.wait_for(
        &format!(
            "Number(document.querySelector('#live').dataset.count || 0) > {before} && \
             document.querySelector('#live').textContent"
        ),
        "a record of the other process on the run page",
    );
    assert!(got.as_str().unwrap().contains(" n"), "{got}");
    let (_, now) = serve.get(&format!("/api/runs/{id}"));
    let still_running = now["run"]["status"] == "running";
    let status = run.wait().unwrap();
    assert!(status.success());
    assert!(
        still_running,
        "the suite finished before its first record reached the page"
    );
    // And the page ends showing the finished run.
    b.wait_for(
        "document.querySelector('#title').textContent.includes('succeeded')",
        "the run page shows the end of the run",
    );
    b.assert_clean("run page, live");
}

#[test]
fn triage_on_the_alerts_page_survives_a_restart() {
    let Some(bin) = chromium("triage_on_the_alerts_page_survives_a_restart") else {
        return;
    };
    let w = Workdir::new();
    step_history_with_commits(&w);
    let serve = Serve::start(&w, &[]);
    let (st, _) = serve.post("/api/alerts/scan", &json!({}));
    assert_eq!(st, 200);
    let mut b = Browser::start(&bin);
    b.navigate(&format!("http://{}/alerts.html", serve.addr));
    b.wait_for("document.querySelector('#alerts').dataset.rows", "alerts");
    b.eval(
        "(() => { const tr = document.querySelector('#alerts tr[data-id]'); \
         tr.querySelector('.note').value = 'known: slower sleep'; \
         const s = tr.querySelector('.state'); s.value = 'acknowledged'; \
         s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
    );
    b.wait_for(
        "document.querySelector('#alerts tr[data-id] .state').classList.contains('acknowledged')",
        "the page shows the new state",
    );
    b.assert_clean("alerts");
    // Leave the page first: a server killed under an open event stream is an error in the
    // browser's log, and not this test's subject.
    b.navigate("about:blank");
    serve.stop();

    let serve = Serve::start(&w, &[]);
    b.navigate(&format!("http://{}/alerts.html", serve.addr));
    b.wait_for(
        "document.querySelector('#alerts').dataset.rows",
        "alerts after restart",
    );
    assert_eq!(
        b.eval("document.querySelector('#alerts tr[data-id] .state').value"),
        json!("acknowledged")
    );
    assert_eq!(
        b.eval("document.querySelector('#alerts tr[data-id] .note').value"),
        json!("known: slower sleep")
    );
    b.assert_clean("alerts after restart");
}
