//! Alerts: regressions found in a benchmark's history (change points, thresholds), kept in the
//! catalog with a triage state and a note, so that what people decided about them survives
//! restarts and is shared by everyone reading the same catalog.
//!
//! [`AlertCatalog`] is a supertrait of [`Catalog`](crate::Catalog): every catalog stores alerts,
//! and each backend implements them in a module of its own, beside its catalog.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use benchfleet_model::{Digest, RunId, Timestamp};

use crate::Result;

/// What people decided about an alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Triage {
    /// Nobody looked at it yet.
    #[default]
    Untriaged,
    /// Real, and someone is on it.
    Acknowledged,
    /// Noise or an expected change.
    Invalid,
    /// Real, and fixed since.
    Fixed,
}

impl Triage {
    pub const ALL: [Triage; 4] = [
        Triage::Untriaged,
        Triage::Acknowledged,
        Triage::Invalid,
        Triage::Fixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Triage::Untriaged => "untriaged",
            Triage::Acknowledged => "acknowledged",
            Triage::Invalid => "invalid",
            Triage::Fixed => "fixed",
        }
    }
}

impl fmt::Display for Triage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Triage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Triage::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown triage state `{s}`; expected one of {}",
                    Triage::ALL.map(Triage::as_str).join(", ")
                )
            })
    }
}

/// How an alert was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A statistically tested change point of the history (`history --changes`).
    ChangePoint,
    /// A run's value beyond a configured threshold.
    Threshold,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ChangePoint => "change_point",
            AlertKind::Threshold => "threshold",
        }
    }
}

/// One regression of one benchmark's metric, starting at one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id ([`Alert::id_for`]): finding the same regression again gives the same id, so
    /// storing it again keeps its triage.
    pub id: String,
    pub kind: AlertKind,
    pub suite: Option<String>,
    pub benchmark: String,
    /// A `history` metric name (`wall`, `rss`, …).
    pub metric: String,
    /// The first run after the change.
    pub run_id: RunId,
    /// The last run before it, when known.
    pub baseline_run_id: Option<RunId>,
    /// The commit of `run_id`, when it has one.
    pub commit: Option<String>,
    /// When the first run after the change started.
    pub at: Timestamp,
    /// When the alert was found.
    pub detected_at: Timestamp,
    /// Mean before and after the change (or the threshold and the value), in the metric's unit.
    pub before: f64,
    pub after: f64,
    /// `(after - before) / before * 100`.
    pub percent: f64,
    pub p_value: Option<f64>,
    pub state: Triage,
    #[serde(default)]
    pub note: String,
    /// When the triage state or note last changed.
    pub triaged_at: Option<Timestamp>,
}

impl Alert {
    /// The id of the alert of `kind` for `benchmark`'s `metric` (in `suite`) starting at `run`:
    /// `a` and 16 hex digits of a SHA-256 over these fields.
    pub fn id_for(
        kind: AlertKind,
        suite: Option<&str>,
        benchmark: &str,
        metric: &str,
        run: &RunId,
    ) -> String {
        let mut h = Digest::hasher();
        h.field(kind.as_str())
            .field(suite.unwrap_or(""))
            .field(benchmark)
            .field(metric)
            .field(run.as_str());
        format!("a{}", &h.finish().to_hex()[..16])
    }

    /// Apply a triage decision: the state, the note when given, and when.
    pub fn triage(&mut self, t: &TriageUpdate) {
        self.state = t.state;
        if let Some(n) = &t.note {
            self.note.clone_from(n);
        }
        self.triaged_at = Some(t.at);
    }
}

/// A triage decision for one or more alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct TriageUpdate {
    pub state: Triage,
    /// `None` keeps the note as it is.
    pub note: Option<String>,
    pub at: Timestamp,
}

/// Which alerts to list. Empty fields match everything; results are newest (`at`) first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFilter {
    pub state: Option<Triage>,
    pub benchmark: Option<String>,
    pub suite: Option<String>,
    pub limit: Option<usize>,
}

impl AlertFilter {
    pub fn matches(&self, a: &Alert) -> bool {
        self.state.is_none_or(|s| s == a.state)
            && self.benchmark.as_ref().is_none_or(|b| *b == a.benchmark)
            && self
                .suite
                .as_ref()
                .is_none_or(|s| a.suite.as_ref() == Some(s))
    }
}

/// The order of [`AlertCatalog::find_alerts`]: newest `at` first, then by id.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (b.at, &b.id).cmp(&(a.at, &a.id))
}

/// Alert storage, part of every [`Catalog`](crate::Catalog).
#[async_trait]
pub trait AlertCatalog: Send + Sync {
    /// Store the alerts whose id is absent; an alert already stored is left as it is (with its
    /// triage). Returns how many were new.
    async fn put_alerts(&self, alerts: &[Alert]) -> Result<usize>;

    async fn get_alert(&self, id: &str) -> Result<Option<Alert>>;

    /// Matching alerts, newest first ([`alert_order`]).
    async fn find_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>>;

    /// Apply `update` to every alert of `ids`, all in ONE transaction, and return them updated.
    /// An id that does not exist is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) (with
    /// that id as the key) and nothing is changed.
    async fn triage_alerts(&self, ids: &[String], update: &TriageUpdate) -> Result<Vec<Alert>>;
}
