//! The live view: follow the catalog and turn what changed into server-sent events.
//!
//! A suite running in another process (a `benchfleet run` beside the server, a fleet worker)
//! reaches the server only through what it stores, so [`follow`] looks at the newest runs every
//! [`DEFAULT_POLL`]: a new run or a changed status is a `run` event, new record entries of a
//! running run are a `records` event, and when a run finishes its benchmarks' histories are
//! scanned for regressions (an `alert` event per new alert). Only running runs' entries are
//! read, so an idle catalog costs one short run listing per poll.
//!
//! Events are numbered; the newest [`LOG_LEN`] are kept so that a client reconnecting with
//! `Last-Event-ID` gets what it missed, then the live ones, with no gap and no repeat.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use benchfleet::model::{Digest, RunId, RunInfo, RunStatus, Timestamp};
use benchfleet::store::{RecordEntry, RecordQuery, RunFilter, Storage};

use crate::AppState;

/// How often the catalog is looked at.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);
/// Events kept for clients that reconnect.
pub const LOG_LEN: usize = 4096;
/// Runs looked at per poll (the newest).
const WATCHED_RUNS: usize = 20;

/// One event: `kind` is `run`, `records` or `alert`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub id: u64,
    pub kind: &'static str,
    pub run_id: Option<String>,
    pub data: serde_json::Value,
}

/// The event log and its subscribers.
#[derive(Debug)]
pub struct Live {
    tx: broadcast::Sender<Event>,
    log: Mutex<(u64, VecDeque<Event>)>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        Live {
            tx: broadcast::channel(1024).0,
            log: Mutex::new((0, VecDeque::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, VecDeque<Event>)> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number, keep and send an event.
    pub fn publish(&self, kind: &'static str, run_id: Option<&RunId>, data: serde_json::Value) {
        let mut log = self.lock();
        log.0 += 1;
        let ev = Event {
            id: log.0,
            kind,
            run_id: run_id.map(|r| r.to_string()),
            data,
        };
        if log.1.len() == LOG_LEN {
            log.1.pop_front();
        }
        log.1.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// The id of the newest event (0 before the first): it changes whenever the catalog's
    /// runs do, so it versions what is computed from them ([`crate::api`]'s response cache).
    pub fn generation(&self) -> u64 {
        self.lock().0
    }

    /// The kept events after `last` and a receiver of every later one (taken under the same
    /// lock as [`publish`](Live::publish): nothing is missed or repeated).
    pub fn subscribe_since(&self, last: Option<u64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let log = self.lock();
        let rx = self.tx.subscribe();
        let replay = match last {
            Some(l) => log.1.iter().filter(|e| e.id > l).cloned().collect(),
            None => Vec::new(),
        };
        (replay, rx)
    }
}

/// A run as lists show it.
pub fn run_summary(r: &RunInfo) -> serde_json::Value {
    serde_json::json!({
        "run_id": r.run_id.as_str(),
        "suite": r.suite,
        "status": r.status.as_str(),
        "started_at": benchfleet::report::format_timestamp(r.started_at),
        "started_ns": r.started_at.unix_nanos(),
        "finished_at": r.finished_at.map(benchfleet::report::format_timestamp),
        "commit": r.tags.get(benchfleet::commits::TAG_COMMIT),
        "machine_class": r.tags.get(benchfleet::machine::TAG_CLASS),
        "host": r.host.hostname,
        "source": r.source,
        "tags": r.tags,
    })
}

/// A record entry as the live view shows it.
pub fn entry_summary(e: &RecordEntry) -> serde_json::Value {
    serde_json::json!({
        "name": e.name,
        "iteration": e.iteration,
        "kind": e.kind.as_str(),
        "started_ns": e.started_at.unix_nanos(),
        "wall": e.measurement.wall_secs(),
        "ok": e.outcome.is_success(),
        "outcome": e.outcome.describe(),
    })
}

#[derive(Debug)]
struct Seen {
    status: RunStatus,
    /// Digests of the entries already announced, while the run is running.
    entries: HashSet<Digest>,
}

/// Follow the catalog forever, publishing to `live` (see the module docs).
pub async fn follow(storage: Storage, live: std::sync::Arc<Live>, every: Duration) {
    let mut seen: HashMap<RunId, Seen> = HashMap::new();
    let mut first = true;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = poll_once(&storage, &live, &mut seen, first).await {
            tracing::warn!("live view: cannot read the catalog: {e}");
            continue;
        }
        first = false;
    }
}

async fn poll_once(
    storage: &Storage,
    live: &std::sync::Arc<Live>,
    seen: &mut HashMap<RunId, Seen>,
    first: bool,
) -> Result<(), benchfleet::store::StoreError> {
    let runs = storage
        .catalog
        .find_runs(&RunFilter {
            limit: Some(WATCHED_RUNS),
            ..Default::default()
        })
        .await?;
    // Oldest first, so that events come in the order the runs started.
    for run in runs.iter().rev() {
        let before = seen.get(&run.run_id).map(|s| s.status);
        let changed = before != Some(run.status);
        let running = run.status == RunStatus::Running;
        // The first look announces only the runs still running (their records so far are not
        // announced: they are what a page reads when it opens).
        if changed && (!first || running) {
            live.publish("run", Some(&run.run_id), run_summary(run));
        }
        if running || (changed && before == Some(RunStatus::Running)) {
            let entries = storage
                .catalog
                .query_records(&RecordQuery::run(&run.run_id))
                .await?;
            let slot = seen.entry(run.run_id.clone()).or_insert_with(|| Seen {
                status: run.status,
                entries: HashSet::new(),
            });
            let new: Vec<&RecordEntry> = entries
                .iter()
                .filter(|e| !slot.entries.contains(&e.digest))
                .collect();
            let quiet = first && running;
            if !new.is_empty() && !quiet {
                live.publish(
                    "records",
                    Some(&run.run_id),
                    serde_json::json!({
                        "status": run.status.as_str(),
                        "total": entries.len(),
                        "new": new.iter().map(|e| entry_summary(e)).collect::<Vec<_>>(),
                    }),
                );
            }
            slot.entries.extend(new.iter().map(|e| e.digest));
        }
        let slot = seen.entry(run.run_id.clone()).or_insert_with(|| Seen {
            status: run.status,
            entries: HashSet::new(),
        });
        slot.status = run.status;
        if !running {
            slot.entries = HashSet::new();
        }
        if changed && before == Some(RunStatus::Running) {
            scan_alerts(storage.clone(), live.clone(), run.run_id.clone());
        }
    }
    Ok(())
}

/// Scan a finished run's histories for regressions in the background; announce new alerts.
pub(crate) fn scan_alerts(storage: Storage, live: std::sync::Arc<Live>, run: RunId) {
    tokio::spawn(async move {
        let now = Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
        );
        match benchfleet::alerts::scan_run(&storage, &run, now).await {
            Ok(new) => {
                for a in new {
                    live.publish(
                        "alert",
                        Some(&a.run_id),
                        serde_json::to_value(&a).unwrap_or_default(),
                    );
                }
            }
            Err(e) => tracing::warn!("alerts: scanning run {run} failed: {e}"),
        }
    });
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    /// Only this run's events (full id).
    run: Option<String>,
    /// Resume after this event (for clients that cannot send `Last-Event-ID`).
    last_event_id: Option<u64>,
}

/// `GET /api/events`: server-sent events, resumable with `Last-Event-ID`.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.last_event_id);
    let (replay, rx) = state.live.subscribe_since(last);
    let after = replay.last().map(|e| e.id).or(last).unwrap_or(0);
    let run = q.run.map(|r| r.to_ascii_uppercase());
    let wanted = move |e: &Event| run.is_none() || e.run_id.as_deref() == run.as_deref();
    let wanted2 = wanted.clone();
    let live = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(ev) => Some((Some(ev), rx)),
            // Too slow a client: tell it to reload instead of leaving a silent gap.
            Err(broadcast::error::RecvError::Lagged(_)) => Some((None, rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .filter_map(move |ev| {
        let out = match ev {
            Some(ev) if ev.id > after && wanted2(&ev) => Some(to_sse(&ev)),
            Some(_) => None,
            None => Some(SseEvent::default().event("reset").data("{}")),
        };
        futures::future::ready(out.map(Ok))
    });
    let replayed = futures::stream::iter(
        replay
            .into_iter()
            .filter(wanted)
            .map(|e| Ok(to_sse(&e)))
            .collect::<Vec<_>>(),
    );
    let hello = futures::stream::once(futures::future::ready(Ok(SseEvent::default()
        .event("hello")
        .data("{}")
        .retry(Duration::from_millis(500)))));
    Sse::new(hello.chain(replayed).chain(live)).keep_alive(KeepAlive::default())
}

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.kind)
        .data(serde_json::to_string(e).unwrap_or_default())
}
