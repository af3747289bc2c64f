//! The JSON API (`docs/api.md`). Every handler answers JSON: the data, or `{"error": …}` with
//! the status that fits (400 malformed query, 404 unknown run, benchmark or alert, 403 a write
//! on a read-only server).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Json;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use benchfleet::analysis::LevelsConfig;
use benchfleet::history::{self, HistoryQuery, Metric};
use benchfleet::model::{RunStatus, Timestamp};
use benchfleet::report;
use benchfleet::store::{AlertFilter, RecordQuery, RunFilter, Triage, TriageUpdate};

use crate::live::{self, run_summary};
use crate::{AppState, error::ApiError};

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/history", get(cached_history))
        .route("/api/benchmarks", get(benchmarks))
        .route("/api/compare", get(cached_compare))
        .route("/api/alerts", get(alerts).post(triage_many))
        .route("/api/alerts/scan", post(scan))
        .route("/api/alerts/{id}", get(alert).post(triage_one))
        .route("/api/events", get(live::events))
        .route("/api/{*rest}", get(unknown).post(unknown))
}

async fn unknown(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no API endpoint {}; see docs/api.md", uri.path()))
}

/// A query string, or a 400 saying what is wrong with it.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("malformed query: {}", e.body_text())))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::bad_request(format!("malformed body: {}", e.body_text())))
}

/// `%XX` and `+` decoded (for the token in a query string).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers of the costly read-only endpoints (history, compare), kept until the catalog's runs
/// change ([`Live::generation`](crate::live::Live::generation)): a dashboard asks the same
/// history again and again while nothing new is stored.
#[derive(Debug, Default)]
pub(crate) struct ResponseCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (u64, Bytes, String)>>,
}

/// Entries kept, at most (the cache is emptied when full).
const CACHE_ENTRIES: usize = 64;

impl ResponseCache {
    fn get(&self, key: &str, generation: u64) -> Option<(Bytes, String)> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(g, _, _)| *g == generation)
            .map(|(_, b, t)| (b.clone(), t.clone()))
    }

    fn put(&self, key: String, generation: u64, body: Bytes, timing: String) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, (generation, body, timing));
    }
}

/// Serve `uri` from the cache, or compute it with `f` (a JSON body) and keep a successful
/// answer.
async fn cached<F, Fut>(s: &AppState, uri: &Uri, f: F) -> axum::response::Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(axum::http::HeaderMap, Bytes), ApiError>>,
{
    use axum::response::IntoResponse;
    let key = uri.to_string();
    let generation = s.live.generation();
    let json_type = (
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if let Some((body, timing)) = s.cache.get(&key, generation) {
        let mut h = axum::http::HeaderMap::new();
        h.insert(json_type.0, json_type.1);
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("cache;desc=hit, {timing}")) {
            h.insert("server-timing", v);
        }
        return (h, body).into_response();
    }
    match f().await {
        Ok((mut h, body)) => {
            let timing = h
                .get("server-timing")
                .and_then(|t| t.to_str().ok())
                .unwrap_or("")
                .to_owned();
            s.cache.put(key, generation, body.clone(), timing);
            h.insert(json_type.0, json_type.1);
            (h, body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `v` as a response body.
fn to_body(v: &impl Serialize) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("cannot encode the answer as JSON: {e}")))
}

async fn cached_history(
    State(s): State<AppState>,
    uri: Uri,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> axum::response::Response {
    let s2 = s.clone();
    cached(&s, &uri, || history(State(s2), q)).await
}

async fn cached_compare(
    State(s): State<AppState>,
    uri: Uri,
    q: Result<Query<CompareParams>, QueryRejection>,
) -> axum::response::Response {
    let s2 = s.clone();
    cached(&s, &uri, || async move {
        let Json(v) = compare(State(s2), q).await?;
        Ok((axum::http::HeaderMap::new(), to_body(&v)?))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    suite: Option<String>,
    /// `KEY=VALUE`: runs with this tag.
    tag: Option<String>,
    /// A commit or its prefix (`git.commit`).
    commit: Option<String>,
    status: Option<String>,
    /// The machine class (`machine.class` tag).
    machine: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/runs`: runs newest first, filtered.
async fn runs(State(s): State<AppState>, q: Result<Query<RunsQuery>, QueryRejection>) -> ApiResult {
    let q = query(q)?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(st) => Some(
            [
                RunStatus::Running,
                RunStatus::Succeeded,
                RunStatus::Failed,
                RunStatus::Interrupted,
            ]
            .into_iter()
            .find(|x| x.as_str() == st)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status `{st}`; expected running, succeeded, failed or interrupted"
                ))
            })?,
        ),
    };
    let tag = match q.tag.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            t.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ApiError::bad_request(format!("tag `{t}`: expected KEY=VALUE")))?,
        ),
    };
    let limit = q.limit.unwrap_or(200);
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let suite = nonempty(&q.suite);
    let (commit, machine) = (nonempty(&q.commit), nonempty(&q.machine));
    let unfiltered = tag.is_none() && commit.is_none() && machine.is_none() && status.is_none();
    let all = s
        .storage
        .catalog
        .find_runs(&RunFilter {
            suite,
            limit: unfiltered.then_some(limit),
            ..Default::default()
        })
        .await?;
    let out: Vec<Value> = all
        .iter()
        .filter(|r| status.is_none_or(|st| r.status == st))
        .filter(|r| {
            tag.as_ref()
                .is_none_or(|(k, v)| r.tags.get(k).is_some_and(|x| x == v))
        })
        .filter(|r| {
            commit.as_ref().is_none_or(|c| {
                r.tags
                    .get(benchfleet::commits::TAG_COMMIT)
                    .is_some_and(|x| x.starts_with(c.as_str()))
            })
        })
        .filter(|r| {
            machine.as_ref().is_none_or(|m| {
                r.tags
                    .get(benchfleet::machine::TAG_CLASS)
                    .is_some_and(|x| x == m)
            })
        })
        .take(limit)
        .map(run_summary)
        .collect();
    Ok(Json(json!({ "runs": out })))
}

/// `GET /api/runs/{id}`: one run (id, unique prefix or `latest`) with its results.
async fn run(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let info = benchfleet::find_run(&s.storage, &id).await?;
    let records = benchfleet::load_records(&s.storage, &info.run_id).await?;
    let results = report::group_records(&records);
    let mut warnings: Vec<String> = Vec::new();
    for r in &results {
        for f in &r.failures {
            warnings.push(format!("{}: {f}", r.name));
        }
    }
    let series = benchfleet::session::load_series(&s.storage, &info)
        .await
        .ok()
        .flatten();
    let system = series.as_ref().map(|series| {
        warnings.extend(benchfleet::session::describe_series(series));
        json!({
            "interval_ms": series.interval_ms,
            "t_ms": series.samples.iter().map(|x| x.t_ms).collect::<Vec<_>>(),
            "busy_pct": series.samples.iter().map(|x| {
                let n = x.cores.len().max(1) as f64;
                x.cores.iter().map(|c| f64::from(c.busy)).sum::<f64>() / n * 100.0
            }).collect::<Vec<_>>(),
            "own_busy_cores": series.samples.iter().map(|x| x.own_busy_cores).collect::<Vec<_>>(),
            "mem_used_bytes": series.samples.iter().map(|x| x.mem_used_bytes).collect::<Vec<_>>(),
            "load1": series.samples.iter().map(|x| x.load1).collect::<Vec<_>>(),
        })
    });
    if info
        .tags
        .get(benchfleet::model::RunInfo::TAG_SYSTEM_NOISY)
        .is_some_and(|v| v == "true")
    {
        warnings.push("the machine was noisy during this run".into());
    }
    let mut v = json!({
        "run": run_summary(&info),
        "host": info.host,
        "records": records.len(),
        "results": report::hyperfine_json(&results)["results"].clone(),
        "warnings": warnings,
        "system": system,
    });
    // Started times of each record, for distribution plots in start order.
    let starts: BTreeMap<&str, Vec<i64>> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.name.as_str())
            .or_insert_with(Vec::new)
            .push(r.started_at.unix_nanos());
        m
    });
    v["started_ns"] = json!(starts);
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    benchmark: Option<String>,
    metric: Option<String>,
    suite: Option<String>,
    /// `time` (default) or `commit`.
    by: Option<String>,
    limit: Option<usize>,
    /// Also every successful run's value (`raw`: `[time_ns, value, run_id]`).
    raw: Option<bool>,
    /// `columns`: `points` as one array per field instead of one object per point (several
    /// times smaller; what the History page asks for).
    format: Option<String>,
}

/// The columns of a history's points (`format=columns`), serialised straight from the points.
#[derive(Serialize)]
struct PointColumns<'a> {
    run_id: Vec<&'a str>,
    time_ns: Vec<i64>,
    value: Vec<f64>,
    runs: Vec<usize>,
    stddev: Vec<Option<f64>>,
    commit: Vec<Option<&'a str>>,
    git_commit: Vec<Option<&'a str>>,
}

/// A `format=columns` answer: `history --changes --format json`'s fields with `points` as
/// columns.
#[derive(Serialize)]
struct ColumnsAnswer<'a> {
    schema_version: u32,
    benchmark: &'a str,
    suite: Option<&'a str>,
    metric: &'static str,
    unit: &'static str,
    format: &'static str,
    points: PointColumns<'a>,
    changes: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<Value>,
}

/// `GET /api/history`: one benchmark's series with its change points, as
/// `history --changes --format json`, plus per-point standard deviations.
async fn history(
    State(s): State<AppState>,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<(axum::http::HeaderMap, Bytes), ApiError> {
    let q = query(q)?;
    let mut timing = Timing::new();
    let Some(name) = q.benchmark.filter(|b| !b.is_empty()) else {
        return Err(ApiError::bad_request(
            "missing `benchmark`: /api/history?benchmark=NAME&metric=wall",
        ));
    };
    let metric: Metric = q
        .metric
        .as_deref()
        .unwrap_or("wall")
        .parse()
        .map_err(ApiError::bad_request)?;
    let columns = match q.format.as_deref() {
        None | Some("points") => false,
        Some("columns") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format `{other}`: expected points or columns"
            )));
        }
    };
    let by_commit = match q.by.as_deref().unwrap_or("time") {
        "time" => false,
        "commit" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "by `{other}`: expected time or commit"
            )));
        }
    };
    let hq = HistoryQuery {
        suite: q.suite.clone().filter(|s| !s.is_empty()),
        limit: q.limit,
        ..HistoryQuery::new(name.clone(), metric)
    };
    // Every run's row (its machine class, commit and position), read once per generation.
    let rows = run_rows(&s).await?;
    timing.mark("runs");
    let points = if by_commit {
        history::benchmark_history_by_commit_among(&s.storage, &hq, None, &rows.runs)
            .await?
            .0
    } else {
        history::benchmark_history_among(&s.storage, &hq, &rows.runs).await?
    };
    timing.mark("points");
    if points.is_empty() {
        return Err(ApiError::not_found(format!(
            "no stored run has a successful run of benchmark `{name}`{}",
            hq.suite
                .as_deref()
                .map(|s| format!(" in suite `{s}`"))
                .unwrap_or_default()
        )));
    }
    let changes = history::detect_changes(&points, None).map_err(benchfleet::Error::from)?;
    timing.mark("changes");
    let raw = if q.raw == Some(true) {
        let samples = s
            .storage
            .catalog
            .query_samples(&RecordQuery {
                name: Some(name.clone()),
                suite: hq.suite.clone(),
                ..Default::default()
            })
            .await?;
        let raw: Vec<Value> = samples
            .iter()
            .filter(|e| e.success)
            .map(|e| {
                json!([
                    e.started_at.unix_nanos(),
                    metric.value(&e.measurement),
                    e.run_id.as_str()
                ])
            })
            .collect();
        timing.mark("raw");
        Some(Value::from(raw))
    } else {
        None
    };
    // Each point's run commit (`git.commit`), also in a history ordered by time.
    let git_commit =
        |p: &history::HistoryPoint| rows.commits.get(p.run_id.as_str()).map(String::as_str);
    let body = if columns {
        to_body(&ColumnsAnswer {
            schema_version: report::JSON_SCHEMA_VERSION,
            benchmark: &hq.name,
            suite: hq.suite.as_deref(),
            metric: metric.as_str(),
            unit: metric.unit(),
            format: "columns",
            points: PointColumns {
                run_id: points.iter().map(|p| p.run_id.as_str()).collect(),
                time_ns: points.iter().map(|p| p.time.unix_nanos()).collect(),
                value: points.iter().map(|p| p.value).collect(),
                runs: points.iter().map(|p| p.runs).collect(),
                stddev: points.iter().map(|p| p.stddev).collect(),
                commit: points.iter().map(|p| p.commit.as_deref()).collect(),
                git_commit: points.iter().map(git_commit).collect(),
            },
            changes: history::changes_json(&points, &changes),
            raw,
        })?
    } else {
        let mut v = history::history_json(&hq, &points, Some(&changes));
        if let Some(arr) = v["points"].as_array_mut() {
            for (p, j) in points.iter().zip(arr.iter_mut()) {
                j["stddev"] = json!(p.stddev);
                j["git_commit"] = json!(git_commit(p));
            }
        }
        if let Some(raw) = raw {
            v["raw"] = raw;
        }
        to_body(&v)?
    };
    timing.mark("json");
    Ok((timing.header(), body))
}

/// Every run's row, and its `git.commit` by run id.
#[derive(Debug)]
pub(crate) struct RunRows {
    pub runs: Vec<benchfleet::model::RunInfo>,
    pub commits: std::collections::HashMap<String, String>,
}

/// Every run's row: listed once per [`Live::generation`](crate::live::Live) (a history of
/// 10,000 runs would otherwise decode 10,000 run rows on every request).
async fn run_rows(s: &AppState) -> Result<std::sync::Arc<RunRows>, ApiError> {
    let generation = s.live.generation();
    if let Some((g, rows)) = s.runs.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && *g == generation
    {
        return Ok(rows.clone());
    }
    let runs = s.storage.catalog.find_runs(&RunFilter::default()).await?;
    let commits = runs
        .iter()
        .filter_map(|r| {
            let c = r.tags.get(benchfleet::commits::TAG_COMMIT)?.clone();
            Some((r.run_id.to_string(), c))
        })
        .collect();
    let rows = std::sync::Arc::new(RunRows { runs, commits });
    *s.runs.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, rows.clone()));
    Ok(rows)
}

/// Where a request's time went, as a `Server-Timing` header (browsers' developer tools show it).
struct Timing {
    last: std::time::Instant,
    parts: Vec<(&'static str, f64)>,
}

impl Timing {
    fn new() -> Self {
        Timing {
            last: std::time::Instant::now(),
            parts: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) {
        let now = std::time::Instant::now();
        self.parts
            .push((what, (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
    }

    fn header(&self) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        let v = self
            .parts
            .iter()
            .map(|(k, ms)| format!("{k};dur={ms:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            h.insert("server-timing", v);
        }
        h
    }
}

/// `?run=ID`: the run a request is about (default: the newest run).
#[derive(Debug, Deserialize)]
struct RunParam {
    run: Option<String>,
}

/// `GET /api/benchmarks`: the benchmark names of a run (for the history page's picker).
async fn benchmarks(
    State(s): State<AppState>,
    q: Result<Query<RunParam>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let info = benchfleet::find_run(&s.storage, q.run.as_deref().unwrap_or("latest")).await?;
    let names: std::collections::BTreeSet<String> = s
        .storage
        .catalog
        .query_records(&RecordQuery::run(&info.run_id))
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    Ok(Json(
        json!({ "run_id": info.run_id.as_str(), "suite": info.suite, "benchmarks": names }),
    ))
}

#[derive(Debug, Deserialize)]
struct CompareParams {
    a: Option<String>,
    b: Option<String>,
    noise: Option<f64>,
    alpha: Option<f64>,
    /// `compare --allow-cross-machine`.
    #[serde(default)]
    allow_cross_machine: bool,
}

/// `GET /api/compare?a=&b=`: `compare A B --format json` between two stored runs or tags.
async fn compare(
    State(s): State<AppState>,
    q: Result<Query<CompareParams>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (Some(a), Some(b)) = (q.a.filter(|x| !x.is_empty()), q.b.filter(|x| !x.is_empty())) else {
        return Err(ApiError::bad_request(
            "missing `a` or `b`: /api/compare?a=RUN_OR_TAG&b=RUN_OR_TAG",
        ));
    };
    for spec in [&a, &b] {
        if spec
            .split(',')
            .any(|p| benchfleet::compare::is_file(p.trim()))
        {
            return Err(ApiError::bad_request(format!(
                "`{spec}` names a file; the server compares stored runs and tags only"
            )));
        }
    }
    let mut cfg = LevelsConfig::default();
    if let Some(n) = q.noise {
        if !(n.is_finite() && n >= 0.0) {
            return Err(ApiError::bad_request("noise: expected a fraction ≥ 0"));
        }
        cfg.compare.noise_threshold = n;
    }
    if let Some(al) = q.alpha {
        if !(al > 0.0 && al < 1.0) {
            return Err(ApiError::bad_request("alpha: expected a level in (0, 1)"));
        }
        cfg.compare.alpha = al;
    }
    let out =
        benchfleet::compare::compare(Some(&s.storage), &a, &b, &cfg, q.allow_cross_machine).await?;
    let mut v = report::comparison_json(&out.set);
    v["cross_machine"] = match &out.cross_machine {
        Some((b, c)) => serde_json::json!({ "baseline": b, "candidate": c }),
        None => serde_json::Value::Null,
    };
    v["baseline"] = benchfleet::compare::sides_json(&out.baseline);
    v["candidate"] = benchfleet::compare::sides_json(&out.candidate);
    v["history_runs"] = out.history_runs.into();
    v["markdown"] = report::comparison_markdown(&out.set).into();
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
struct AlertsParams {
    state: Option<String>,
    benchmark: Option<String>,
    suite: Option<String>,
    limit: Option<usize>,
}

fn triage_state(s: &str) -> Result<Triage, ApiError> {
    s.parse().map_err(ApiError::bad_request)
}

/// `GET /api/alerts`: alerts newest first.
async fn alerts(
    State(s): State<AppState>,
    q: Result<Query<AlertsParams>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let filter = AlertFilter {
        state: q
            .state
            .as_deref()
            .filter(|x| !x.is_empty())
            .map(triage_state)
            .transpose()?,
        benchmark: q.benchmark.filter(|x| !x.is_empty()),
        suite: q.suite.filter(|x| !x.is_empty()),
        limit: Some(q.limit.unwrap_or(500)),
    };
    let found = s.storage.catalog.find_alerts(&filter).await?;
    Ok(Json(json!({ "alerts": found })))
}

async fn alert(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    match s.storage.catalog.get_alert(&id).await? {
        Some(a) => Ok(Json(json!(a))),
        None => Err(ApiError::not_found(format!("no alert `{id}`"))),
    }
}

#[derive(Debug, Deserialize)]
struct TriageBody {
    state: String,
    note: Option<String>,
    /// For the list endpoint: the alerts to triage.
    #[serde(default)]
    ids: Vec<String>,
}

fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
    )
}

async fn apply_triage(s: &AppState, ids: Vec<String>, b: TriageBody) -> ApiResult {
    if !s.writes {
        return Err(ApiError::forbidden(
            "this server is read-only (serving off loopback without --allow-writes)",
        ));
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request("no alert ids given (`ids`)"));
    }
    if b.note.as_ref().is_some_and(|n| n.len() > 10_000) {
        return Err(ApiError::bad_request("note: at most 10000 bytes"));
    }
    let update = TriageUpdate {
        state: triage_state(&b.state)?,
        note: b.note,
        at: now(),
    };
    let done = s.storage.catalog.triage_alerts(&ids, &update).await?;
    for a in &done {
        s.live.publish(
            "alert",
            Some(&a.run_id),
            serde_json::to_value(a).unwrap_or_default(),
        );
    }
    Ok(Json(json!({ "alerts": done })))
}

/// `POST /api/alerts/{id}`: `{"state": "acknowledged", "note": "…"}`.
async fn triage_one(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<TriageBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    apply_triage(&s, vec![id], b).await
}

/// `POST /api/alerts`: `{"ids": […], "state": …, "note": …}`, all or none.
async fn triage_many(
    State(s): State<AppState>,
    b: Result<Json<TriageBody>, JsonRejection>,
) -> ApiResult {
    let mut b = body(b)?;
    let ids = std::mem::take(&mut b.ids);
    apply_triage(&s, ids, b).await
}

/// `POST /api/alerts/scan?run=ID`: scan a run's benchmarks (default: the newest run) for
/// regressions now; answers the new alerts.
async fn scan(
    State(s): State<AppState>,
    q: Result<Query<RunParam>, QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let q = query(q)?;
    if !s.writes {
        return Err(ApiError::forbidden("this server is read-only"));
    }
    let info = benchfleet::find_run(&s.storage, q.run.as_deref().unwrap_or("latest")).await?;
    let new = benchfleet::alerts::scan_run(&s.storage, &info.run_id, now()).await?;
    for a in &new {
        s.live.publish(
            "alert",
            Some(&a.run_id),
            serde_json::to_value(a).unwrap_or_default(),
        );
    }
    Ok((StatusCode::OK, Json(json!({ "alerts": new }))))
}
