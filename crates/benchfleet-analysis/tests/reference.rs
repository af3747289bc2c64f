//! Statistics checked against values computed independently with numpy/scipy: the script that
//! produced every number below is `tests/data/reference.py` (its output is pasted as-is).

use benchfleet_analysis::*;

const A: [f64; 10] = [1.02, 0.98, 1.10, 1.01, 0.97, 1.05, 1.00, 0.99, 1.30, 1.03];
const B: [f64; 8] = [1.08, 1.12, 1.05, 1.11, 1.09, 1.15, 1.07, 1.10];
const C: [f64; 7] = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 2.0];
const D: [f64; 6] = [2.0, 6.0, 4.0, 4.0, 7.0, 5.0];

#[track_caller]
fn check(what: &str, got: f64, want: f64, rel: f64) {
    let ok = (got - want).abs() <= rel * want.abs().max(1e-300);
    assert!(ok, "{what}: got {got:e}, scipy {want:e} (rel tol {rel:e})");
}

struct Case {
    name: &'static str,
    x: &'static [f64],
    y: &'static [f64],
    // welch t, df, p; mwu U, p; cohen d, hedges g, cliff
    want: [f64; 8],
}

const CASES: [Case; 3] = [
    Case {
        name: "A_B",
        x: &A,
        y: &B,
        want: [
            -1.569543799503151,
            11.21942963282938,
            0.1442769268103796,
            13.0,
            0.018422231260785786,
            0.6764626687465466,
            0.6442501607109967,
            0.675,
        ],
    },
    Case {
        name: "C_D (ties)",
        x: &C,
        y: &D,
        want: [
            -2.206087277741332,
            9.497719614120879,
            0.053276338651422624,
            8.0,
            0.06819962823319524,
            1.2517061733283958,
            1.1643778356543217,
            0.6190476190476191,
        ],
    },
    Case {
        name: "B_A",
        x: &B,
        y: &A,
        want: [
            1.569543799503151,
            11.21942963282938,
            0.1442769268103796,
            67.0,
            0.018422231260785786,
            -0.6764626687465466,
            -0.6442501607109967,
            -0.675,
        ],
    },
];

#[test]
fn two_sample_tests_match_scipy() {
    for c in &CASES {
        let t = welch_t_test(c.x, c.y).unwrap();
        let u = mann_whitney_u(c.x, c.y).unwrap();
        let e = effect_size(c.x, c.y).unwrap();
        let got = [
            t.t,
            t.df,
            t.p_value,
            u.u,
            u.p_value,
            e.cohens_d,
            e.hedges_g,
            e.cliffs_delta,
        ];
        let names = [
            "welch t", "welch df", "welch p", "U", "MWU p", "cohen d", "hedges g", "cliff",
        ];
        for i in 0..8 {
            check(&format!("{} {}", c.name, names[i]), got[i], c.want[i], 1e-9);
        }
    }
}

#[test]
fn threshold_limits_match_scipy() {
    let h = [10.0, 10.2, 9.9, 10.1, 10.0, 10.4, 9.8];
    let cases = [
        (
            ThresholdKind::ZScore,
            0.99,
            9.594651035965493,
            10.519634678320225,
        ),
        (
            ThresholdKind::TTest,
            0.95,
            9.67082703703706,
            10.443458677248657,
        ),
        (
            ThresholdKind::Iqr,
            1.5,
            9.700000000000001,
            10.299999999999999,
        ),
        (
            ThresholdKind::Percentage,
            0.05,
            9.554285714285715,
            10.560000000000002,
        ),
    ];
    for (kind, b, lo, hi) in cases {
        let t = Threshold {
            kind,
            lower: Some(b),
            upper: Some(b),
            window: None,
            min_sample_size: 2,
        };
        let r = threshold_test(&h, 10.0, &t).unwrap();
        check(&format!("{kind:?} lower"), r.lower_limit.unwrap(), lo, 1e-7);
        check(&format!("{kind:?} upper"), r.upper_limit.unwrap(), hi, 1e-7);
        assert_eq!(r.alert, None);
        assert_eq!(
            threshold_test(&h, hi + 0.01, &t).unwrap().alert,
            Some(Side::Upper),
            "{kind:?}"
        );
        assert_eq!(
            threshold_test(&h, lo - 0.01, &t).unwrap().alert,
            Some(Side::Lower),
            "{kind:?}"
        );
    }
}

#[test]
fn threshold_window_uses_most_recent_values() {
    let t = Threshold {
        kind: ThresholdKind::Percentage,
        lower: None,
        upper: Some(0.1),
        window: Some(2),
        min_sample_size: 2,
    };
    let r = threshold_test(&[100.0, 100.0, 1.0, 1.0], 1.05, &t).unwrap();
    assert_eq!((r.sample_size, r.alert), (2, None));
    check("windowed upper", r.upper_limit.unwrap(), 1.1, 1e-12);
    let few = threshold_test(&[1.0], 1.0, &t).unwrap_err();
    assert!(
        matches!(
            few,
            AnalysisError::TooFewSamples {
                need: 2,
                got: 1,
                ..
            }
        ),
        "{few}"
    );
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    let none = Threshold {
        kind: ThresholdKind::ZScore,
        lower: None,
        upper: None,
        window: None,
        min_sample_size: 2,
    };
    assert!(threshold_test(&A, 1.0, &none).is_err());
    let z = Threshold {
        upper: Some(0.3),
        ..none
    };
    assert!(
        threshold_test(&A, 1.0, &z)
            .unwrap_err()
            .to_string()
            .contains("between 0.5 and 1")
    );
    assert!(welch_t_test(&[1.0], &A).is_err());
    assert!(mann_whitney_u(&[], &A).is_err());
    let cfg = CompareConfig {
        alpha: 1.5,
        ..Default::default()
    };
    assert!(compare(&A, &B, &cfg).is_err());
    let boot = BootstrapConfig {
        confidence: 1.0,
        ..Default::default()
    };
    assert!(bootstrap_mean_median(&A, &boot).is_err());
    assert!(scaling(&[(1, 1.0), (1, 2.0)]).is_err());
    assert!(scaling(&[(0, 1.0)]).is_err());
    assert!(scaling(&[]).is_err());
    assert!(change_points(&[1.0, f64::NAN], &ChangePointConfig::default()).is_err());
}

#[test]
fn degenerate_samples() {
    let same = [2.0; 5];
    let t = welch_t_test(&same, &same).unwrap();
    assert_eq!((t.t, t.p_value), (0.0, 1.0));
    let t = welch_t_test(&same, &[3.0; 4]).unwrap();
    assert_eq!(t.p_value, 0.0);
    assert_eq!(mann_whitney_u(&same, &same).unwrap().p_value, 1.0);
}

#[test]
fn outlier_classes_follow_tukey_fences() {
    use OutlierClass::*;
    // Quartiles with linear interpolation (numpy.percentile(x, [25, 75])):
    //   1..=8        -> Q1 2.75, Q3 6.25, IQR 3.5 -> fences -7.75, -2.5, 11.5, 16.75
    //   1..=8, 14    -> Q1 3,    Q3 7,    IQR 4   -> fences -9, -3, 13, 19
    //   1..=8, ±100  -> Q1 2.25, Q3 6.75, IQR 4.5 -> fences -11.25, -4.5, 13.5, 20.25
    let base: Vec<f64> = (1..=8).map(f64::from).collect();
    let plain = classify_outliers(&base).unwrap();
    assert_eq!(plain.fences, [-7.75, -2.5, 11.5, 16.75]);
    assert_eq!(plain.total(), 0);
    let cases: [(&[f64], &[OutlierClass], [usize; 4]); 3] = [
        (&[14.0], &[HighMild], [0, 0, 1, 0]),
        (&[100.0, -100.0], &[HighSevere, LowSevere], [1, 0, 0, 1]),
        (&[f64::NAN], &[NotOutlier], [0, 0, 0, 0]),
    ];
    for (extra, classes, [ls, lm, hm, hs]) in cases {
        let mut xs = base.clone();
        xs.extend_from_slice(extra);
        let o = classify_outliers(&xs).unwrap();
        assert_eq!(&o.classes[8..], classes, "{extra:?}");
        assert!(o.classes[..8].iter().all(|c| *c == NotOutlier), "{extra:?}");
        assert_eq!(
            (o.low_severe, o.low_mild, o.high_mild, o.high_severe),
            (ls, lm, hm, hs),
            "{extra:?}"
        );
    }
    let f = classify_outliers(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 14.0])
        .unwrap()
        .fences;
    assert_eq!(f, [-9.0, -3.0, 13.0, 19.0]);
    assert!(classify_outliers(&[f64::NAN]).is_none());
}
