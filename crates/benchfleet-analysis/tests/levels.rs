//! The verdicts of issue 21 on synthetic two-level data with a known between-invocation
//! variance (seeded, so every rate is deterministic): intervals cover at their level, A/A
//! comparisons of separate invocations raise no more alarms than α, and the runs-only test that
//! ignores the invocation level is shown to be overconfident on the same data.

mod sim;

use benchfleet_analysis::{
    BandSource, BootstrapConfig, CompareConfig, HistoryBand, LevelsConfig, Mode, Verdict, compare,
    compare_levels, head_to_head_runs_to_detect, hierarchical_bootstrap_ratio,
    invocation_ratio_interval,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64, trial: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(trial as u64);
    r
}

fn no_bootstrap() -> LevelsConfig {
    LevelsConfig {
        compare: CompareConfig {
            bootstrap: None,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Fraction of `trials` two-level comparisons (k invocations of n runs a side, between-CV
/// `between`, within-CV 3%, candidate shifted by `shift`) whose verdict satisfies `hit`.
fn rate(
    seed: u64,
    trials: usize,
    (k, n, between, shift): (usize, usize, f64, f64),
    cfg: &LevelsConfig,
    hit: impl Fn(Verdict) -> bool,
) -> f64 {
    let hits = (0..trials)
        .filter(|&t| {
            let mut r = rng(seed, t);
            let a = sim::two_level(&mut r, k, n, 1.0, between, 0.03);
            let b = sim::two_level(&mut r, k, n, 1.0 + shift, between, 0.03);
            hit(compare_levels(&a, &b, cfg).unwrap().verdict)
        })
        .count();
    hits as f64 / trials as f64
}

fn alarm(v: Verdict) -> bool {
    matches!(v, Verdict::Regressed | Verdict::Improved)
}

#[test]
fn invocation_interval_covers_at_its_level() {
    // 95% intervals of the ratio, 5 invocations of 20 runs a side, between-CV 3%, within 3%.
    let trials = 1000;
    let covered = (0..trials)
        .filter(|&t| {
            let mut r = rng(11, t);
            let a = sim::two_level(&mut r, 5, 20, 1.0, 0.03, 0.03);
            let b = sim::two_level(&mut r, 5, 20, 1.1, 0.03, 0.03);
            invocation_ratio_interval(&a, &b, 0.95)
                .unwrap()
                .contains(1.1)
        })
        .count() as f64
        / trials as f64;
    assert!((0.93..=0.975).contains(&covered), "coverage {covered}");
}

#[test]
fn two_level_bootstrap_covers_where_the_runs_bootstrap_does_not() {
    let bc = BootstrapConfig {
        resamples: 400,
        ..Default::default()
    };
    let trials = 150;
    let (mut two, mut flat) = (0, 0);
    for t in 0..trials {
        let mut r = rng(12, t);
        let a = sim::two_level(&mut r, 10, 10, 1.0, 0.03, 0.03);
        let b = sim::two_level(&mut r, 10, 10, 1.0, 0.03, 0.03);
        two += usize::from(
            hierarchical_bootstrap_ratio(&a, &b, &bc)
                .unwrap()
                .mean
                .contains(1.0),
        );
        flat += usize::from(
            benchfleet_analysis::bootstrap_ratios(&a.concat(), &b.concat(), &bc)
                .unwrap()
                .mean
                .contains(1.0),
        );
    }
    let (two, flat) = (two as f64 / trials as f64, flat as f64 / trials as f64);
    // The two-level percentile interval is a little narrow with 10 invocations (√(9/10)), the
    // runs-only one far too narrow: it ignores a variance 10 times its own.
    assert!(two >= 0.85, "two-level coverage {two}");
    assert!(flat <= 0.65, "runs-only coverage {flat}");
}

#[test]
fn separate_invocations_aa_raise_no_more_alarms_than_alpha() {
    let cfg = no_bootstrap();
    // Between-invocation CV 3%: the runs-only test alarms on about half the pairs...
    let runs_only = (0..400)
        .filter(|&t| {
            let mut r = rng(13, t);
            let a = sim::two_level(&mut r, 1, 30, 1.0, 0.03, 0.03).concat();
            let b = sim::two_level(&mut r, 1, 30, 1.0, 0.03, 0.03).concat();
            alarm(compare(&a, &b, &cfg.compare).unwrap().verdict)
        })
        .count() as f64
        / 400.0;
    assert!(runs_only > 0.3, "runs-only alarms {runs_only}");
    // ...the multi-invocation test (5 invocations a side) at α = 1% does not.
    let multi = rate(13, 1000, (5, 10, 0.03, 0.0), &cfg, alarm);
    assert!(multi <= 0.015, "multi-invocation alarms {multi}");
    // One invocation a side, the band from a history that knows the 3%: about α.
    let history = LevelsConfig {
        history: Some(HistoryBand {
            cv: 0.03,
            invocations: 30,
        }),
        ..cfg
    };
    let banded = rate(13, 1000, (1, 30, 0.03, 0.0), &history, alarm);
    assert!(banded <= 0.015, "history-band alarms {banded}");
}

#[test]
fn separate_invocations_detect_real_changes() {
    let cfg = no_bootstrap();
    let multi = rate(14, 400, (5, 10, 0.02, 0.10), &cfg, |v| {
        v == Verdict::Regressed
    });
    assert!(multi >= 0.95, "multi-invocation +10%: {multi}");
    let faster = rate(14, 400, (5, 10, 0.02, -0.10), &cfg, |v| {
        v == Verdict::Improved
    });
    assert!(faster >= 0.95, "multi-invocation -10%: {faster}");
}

#[test]
fn head_to_head_cancels_the_shared_invocation_effect() {
    // Both sides of one invocation share its level: A/A never alarms, +10% always regresses.
    let cfg = LevelsConfig {
        head_to_head: true,
        ..no_bootstrap()
    };
    let run = |shift: f64, t: usize| {
        let mut r = rng(15, t);
        let level = sim::two_level(&mut r, 1, 1, 1.0, 0.05, 0.0)[0][0];
        let a = sim::sample(&mut r, 30, level, 0.03);
        let b = sim::sample(&mut r, 30, level * (1.0 + shift), 0.03);
        compare_levels(&[a], &[b], &cfg).unwrap()
    };
    let aa = (0..400).filter(|&t| alarm(run(0.0, t).verdict)).count();
    let ab = (0..400)
        .filter(|&t| run(0.10, t).verdict == Verdict::Regressed)
        .count();
    assert!(aa <= 4, "head-to-head A/A alarms {aa}/400");
    assert!(ab >= 396, "head-to-head +10% regressed {ab}/400");
    let c = run(0.10, 0);
    assert_eq!(c.assessment.mode, Mode::HeadToHead);
    assert_eq!(c.assessment.between_cv, None);
}

#[test]
fn every_verdict_states_its_mode_noise_and_detectable_change() {
    let mut r = rng(16, 0);
    let a = sim::two_level(&mut r, 4, 20, 1.0, 0.02, 0.03);
    let b = sim::two_level(&mut r, 4, 20, 1.0, 0.02, 0.03);
    let cfg = no_bootstrap();
    let multi = compare_levels(&a, &b, &cfg).unwrap().assessment;
    assert_eq!(multi.mode, Mode::MultiInvocation);
    assert_eq!(multi.invocations, [4, 4]);
    assert!((0.02..0.04).contains(&multi.within_cv), "{multi:?}");
    assert!(multi.between_cv.is_some_and(|b| b > 0.0), "{multi:?}");
    assert!(multi.min_detectable > multi.band, "{multi:?}");
    let single = compare_levels(&a[..1], &b[..1], &cfg).unwrap().assessment;
    assert_eq!(single.mode, Mode::SingleInvocation);
    // Nothing measured between the invocations: the runs' 3% spread, larger than the assumed
    // 2%, stands in for it; the band at α = 1% is 2.576 · √2 · that.
    assert_eq!(single.band_source, BandSource::RunSpread);
    assert_eq!(single.between_cv, Some(single.within_cv));
    assert!(
        (single.band - 2.576 * 2f64.sqrt() * single.within_cv).abs() < 0.001,
        "{single:?}"
    );
    // Quieter runs: the assumed 2% is the larger, 2.576 · √2 · 2% ≈ 7.3%.
    let quiet_runs = |side: &[Vec<f64>]| -> Vec<f64> {
        let m = side[0].iter().sum::<f64>() / side[0].len() as f64;
        side[0].iter().map(|x| m + (x - m) * 0.1).collect()
    };
    let q = compare_levels(&[quiet_runs(&a)], &[quiet_runs(&b)], &cfg)
        .unwrap()
        .assessment;
    assert_eq!(q.band_source, BandSource::Assumed, "{q:?}");
    assert!((q.band - 0.0729).abs() < 0.001, "{q:?}");
    let history = LevelsConfig {
        history: Some(HistoryBand::from_means(&[1.0, 1.001, 0.999, 1.0, 1.0005]).unwrap()),
        ..cfg
    };
    let quiet = compare_levels(&a[..1], &b[..1], &history)
        .unwrap()
        .assessment;
    assert_eq!(quiet.mode, Mode::HistoryBand);
    // A quiet history gives a band under the floor: the 2% floor stays.
    assert_eq!((quiet.band, quiet.band_source), (0.02, BandSource::Floor));
}

#[test]
fn the_stated_detectable_change_is_detected() {
    // Shift the candidate by the min_detectable the comparison states (for its noise), and it
    // is detected in about `power` of the trials.
    let cfg = no_bootstrap();
    let mut r = rng(17, 0);
    let probe = compare_levels(
        &sim::two_level(&mut r, 5, 10, 1.0, 0.02, 0.03),
        &sim::two_level(&mut r, 5, 10, 1.0, 0.02, 0.03),
        &cfg,
    )
    .unwrap();
    let mdc = probe.assessment.min_detectable;
    assert!((0.03..0.15).contains(&mdc), "{mdc}");
    let detected = rate(18, 400, (5, 10, 0.02, mdc), &cfg, |v| {
        v == Verdict::Regressed
    });
    assert!((0.8..=1.0).contains(&detected), "{detected} at {mdc}");
}

#[test]
fn a_change_beyond_the_band_that_is_not_significant_is_inconclusive() {
    // Two invocations a side, one of them 20% off: the means moved by ~10% but Welch on two
    // means cannot tell.
    let a = vec![vec![1.0, 1.01, 0.99], vec![1.0, 1.01, 0.99]];
    let b = vec![vec![1.0, 1.01, 0.99], vec![1.2, 1.21, 1.19]];
    let c = compare_levels(&a, &b, &no_bootstrap()).unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.change() > 0.05);
}

#[test]
fn history_band_learns_the_spread() {
    let mut r = rng(19, 0);
    let means: Vec<f64> = (0..400).map(|_| 1.0 + 0.04 * sim::normal(&mut r)).collect();
    let h = HistoryBand::from_means(&means).unwrap();
    assert!((0.035..0.045).contains(&h.cv), "{h:?}");
    assert!(HistoryBand::from_means(&[1.0, 1.1, f64::NAN, 0.9]).is_err());
}

#[test]
fn bad_configuration_is_refused_naming_the_value() {
    let a = vec![vec![1.0, 1.1], vec![1.0, 1.1]];
    let cfg = LevelsConfig {
        power: 1.0,
        ..no_bootstrap()
    };
    let e = compare_levels(&a, &a, &cfg).unwrap_err().to_string();
    assert!(e.contains("power"), "{e}");
}

#[test]
fn one_invocation_a_side_on_a_drifting_machine_widens_its_band() {
    // Separate invocations on a machine whose load comes and goes: within each invocation the
    // level wanders by ±8% over time (blocks of consecutive runs); the two invocations'
    // levels differ by 6%. The runs-only test calls that a change; with the drift taken as the
    // between-invocation noise, it is not.
    let wander = |phase: f64, level: f64| -> Vec<f64> {
        (0..60)
            .map(|i| {
                let t = i as f64 / 60.0;
                level
                    * (1.0 + 0.08 * (std::f64::consts::TAU * (t + phase)).sin())
                    * (1.0 + 0.01 * (((i * 7) % 11) as f64 - 5.0) / 5.0)
            })
            .collect()
    };
    let (a, b) = (wander(0.0, 1.0), wander(0.3, 1.06));
    let cfg = no_bootstrap();
    let c = compare_levels(std::slice::from_ref(&a), std::slice::from_ref(&b), &cfg).unwrap();
    assert!(
        matches!(
            c.assessment.band_source,
            BandSource::Drift | BandSource::RunSpread
        ),
        "{c:?}"
    );
    assert!(c.assessment.band > 0.12, "{c:?}");
    assert!(c.assessment.drift_cv.unwrap() > 0.03, "{c:?}");
    assert!(!alarm(c.verdict), "{c:?}");
    let runs_only = compare(&a, &b, &cfg.compare).unwrap();
    assert_eq!(runs_only.assessment.band_source, BandSource::Floor);
    assert_eq!(runs_only.verdict, Verdict::Regressed, "{runs_only:?}");
    // A steady machine measures no drift: the assumed spread stays.
    let steady: Vec<f64> = (0..60)
        .map(|i| 1.0 + 0.01 * (((i * 7) % 11) as f64 - 5.0) / 5.0)
        .collect();
    let s = compare_levels(
        std::slice::from_ref(&steady),
        std::slice::from_ref(&steady),
        &cfg,
    )
    .unwrap();
    assert_eq!(s.assessment.band_source, BandSource::Assumed, "{s:?}");
    assert_eq!(s.verdict, Verdict::Unchanged);
}

#[test]
fn runs_sized_from_a_pilot_detect_the_change_and_keep_aa_quiet() {
    // A noisy machine: runs vary by ±30% within the invocation, the sides measured head to
    // head. A pilot of 20 runs a side says how many runs +10% needs; measured that many, +10%
    // is `regressed` in at least about `power` (95%) of trials (98% here), and A/A raises no
    // more alarms than α.
    let cfg = LevelsConfig {
        head_to_head: true,
        ..no_bootstrap()
    };
    let (trials, cv) = (200, 0.30);
    let (mut detected, mut alarms, mut sizes) = (0, 0, Vec::new());
    for t in 0..trials {
        let mut r = rng(41, t);
        // As `bench --detect` measures: a pilot, then more runs whenever the runs so far say
        // they are too few (at least a fifth more each time).
        let (mut a, mut slow, mut same) = (Vec::new(), Vec::new(), Vec::new());
        let mut n = 20;
        loop {
            let more = n - a.len();
            a.extend(sim::sample(&mut r, more, 1.0, cv));
            slow.extend(sim::sample(&mut r, more, 1.10, cv));
            same.extend(sim::sample(&mut r, more, 1.0, cv));
            let need = [&slow, &same]
                .iter()
                .map(|c| head_to_head_runs_to_detect(&a, c, 0.10, &cfg).expect("sized"))
                .max()
                .unwrap();
            if need <= a.len() {
                break;
            }
            n = need.max(a.len() + a.len() / 5);
        }
        sizes.push(a.len());
        detected += usize::from(
            compare_levels(&[a.clone()], &[slow], &cfg).unwrap().verdict == Verdict::Regressed,
        );
        alarms += usize::from(alarm(compare_levels(&[a], &[same], &cfg).unwrap().verdict));
    }
    sizes.sort();
    let median = sizes[sizes.len() / 2];
    // π/3 · (z₀.₉₉₅ + z₀.₉₅)² · (0.3² + 0.33²) / 0.1² ≈ 370, and the runs overshoot it by
    // up to a fifth.
    assert!((340..480).contains(&median), "median runs {median}");
    let (detected, alarms) = (
        detected as f64 / trials as f64,
        alarms as f64 / trials as f64,
    );
    assert!(detected >= 0.93, "+10% detected in {detected} of trials");
    assert!(alarms <= 0.02, "A/A alarms in {alarms} of trials");
    // No run count makes a change within the noise floor a verdict.
    let pilot = sim::sample(&mut rng(42, 0), 20, 1.0, cv);
    assert_eq!(
        head_to_head_runs_to_detect(&pilot, &pilot, 0.02, &cfg),
        None
    );
    assert_eq!(
        head_to_head_runs_to_detect(&pilot[..1], &pilot, 0.10, &cfg),
        None
    );
}
