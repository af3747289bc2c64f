//! Two-sample comparison: ratios with intervals, significance tests, a verdict.

use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapConfig, MeanMedianCi};
use crate::hypothesis::{EffectSize, MannWhitney, TTest};
use crate::summary::Summary;

/// The outcome of comparing a candidate with a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
    /// Moved by more than the noise band but not significantly: cannot be told apart.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// How to compare.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    /// Significance level: a change needs **both** Welch's t-test and the Mann–Whitney U test
    /// below it. Default 0.01.
    pub alpha: f64,
    /// Relative change of the mean that must also be exceeded (default 0.02 = 2%), so that
    /// significant but tiny changes do not alarm.
    pub noise_threshold: f64,
    /// `false` (default) for times and sizes, where larger is worse; `true` for throughput.
    pub higher_is_better: bool,
    /// Intervals of the ratios; `None` skips the bootstrap (verdicts do not depend on it).
    pub bootstrap: Option<BootstrapConfig>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            alpha: 0.01,
            noise_threshold: 0.02,
            higher_is_better: false,
            bootstrap: Some(BootstrapConfig::default()),
        }
    }
}

/// A candidate compared with a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: Summary,
    pub candidate: Summary,
    /// `mean(candidate) / mean(baseline)`.
    pub mean_ratio: f64,
    /// `median(candidate) / median(baseline)`.
    pub median_ratio: f64,
    /// Bootstrap intervals of both ratios (when configured).
    pub ratio_ci: Option<MeanMedianCi>,
    /// Welch's t-test, `t` of baseline minus candidate.
    pub welch: TTest,
    /// Mann–Whitney U, `u` of the baseline.
    pub mann_whitney: MannWhitney,
    /// Effect of the candidate relative to the baseline.
    pub effect: EffectSize,
    pub verdict: Verdict,
    /// What the verdict saw: mode, noise at each level, band, smallest detectable change.
    pub assessment: Assessment,
}

impl Comparison {
    /// Relative change of the mean, `mean_ratio - 1` (0.05 = 5% larger).
    pub fn change(&self) -> f64 {
        self.mean_ratio - 1.0
    }
}

/// How a comparison handled the variance between invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Both sides measured interleaved in one invocation: machine state hits both alike.
    HeadToHead,
    /// Two or more invocations per side: tested on per-invocation means.
    MultiInvocation,
    /// One invocation per side; the band comes from this benchmark's history.
    HistoryBand,
    /// One invocation per side and no history: the band is the calibrated default (or the floor
    /// when that is 0).
    SingleInvocation,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::HeadToHead => "head-to-head",
            Mode::MultiInvocation => "multi-invocation",
            Mode::HistoryBand => "history band",
            Mode::SingleInvocation => "single invocation",
        }
    }
}

/// Where the band a change must exceed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandSource {
    /// The fixed noise threshold ([`CompareConfig::noise_threshold`]).
    Floor,
    /// The benchmark's recent between-invocation spread ([`HistoryBand`]).
    History,
    /// [`LevelsConfig::assumed_between_cv`]: no measurement of the between-invocation spread.
    Assumed,
    /// The drift of the runs within each side's one invocation ([`drift_cv`]), larger than the
    /// assumed spread: a busy machine whose state changes during one invocation changes between
    /// two as well.
    Drift,
    /// The spread of the runs themselves (their pooled CV), larger than the assumed spread and
    /// the drift: with nothing measured between invocations, the run-to-run variation is the
    /// scale of the machine's state noise (on a machine busy compiling, invocation means of a
    /// 20 ms loop ranged over 17–170 ms while its runs varied by ±30–60%).
    RunSpread,
}

/// What a verdict saw: how it handled each level of noise, and what it could have detected.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub mode: Mode,
    /// Invocations of the baseline and of the candidate.
    pub invocations: [usize; 2],
    /// Coefficient of variation of the runs within an invocation (pooled over both sides).
    pub within_cv: f64,
    /// Coefficient of variation between invocations: estimated from the data (multi-invocation),
    /// from history (history band) or assumed (single invocation: the larger of the assumed
    /// spread and the drift); `None` head-to-head (it cancels) or when nothing is known.
    pub between_cv: Option<f64>,
    /// The drift of the runs within one invocation (see [`drift_cv`]), pooled over both sides,
    /// when there were enough runs to measure it.
    pub drift_cv: Option<f64>,
    /// Relative change a verdict must exceed (0.02 = 2%).
    pub band: f64,
    pub band_source: BandSource,
    /// Relative standard error of the change, every level counted.
    pub standard_error: f64,
    /// The smallest relative change this comparison detects with [`LevelsConfig::power`].
    pub min_detectable: f64,
    /// The p-value that decided (Welch's over runs, or over invocation means).
    pub p_value: f64,
}
