mod sim;

use benchfleet_analysis::{BootstrapConfig, CompareConfig, bootstrap_mean_median, compare};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn same_seed_same_intervals_whatever_the_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let xs = sim::sample(&mut rng, 40, 1.0, 0.05);
    let cfg = BootstrapConfig {
        resamples: 3_000,
        ..Default::default()
    };
    let many = bootstrap_mean_median(&xs, &cfg).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| bootstrap_mean_median(&xs, &cfg).unwrap());
    assert_eq!(many, one);
    let other = bootstrap_mean_median(&xs, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
    assert_ne!(many, other, "a different seed must resample differently");
}

#[test]
fn intervals_cover_the_true_mean_at_about_the_nominal_rate() {
    // 200 samples of 30 from N(1, 0.03): a 95% percentile-bootstrap interval should cover the
    // true mean in roughly 95% of them (percentile intervals run a little narrow for n = 30).
    let cfg = BootstrapConfig {
        resamples: 1_000,
        ..Default::default()
    };
    let mut covered = (0, 0);
    for k in 0..200u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        rng.set_stream(k);
        let xs = sim::sample(&mut rng, 30, 1.0, 0.03);
        let ci = bootstrap_mean_median(&xs, &cfg).unwrap();
        assert!(ci.mean.lower <= ci.mean.estimate && ci.mean.estimate <= ci.mean.upper);
        assert!(ci.median.lower <= ci.median.upper);
        covered.0 += usize::from(ci.mean.contains(1.0));
        covered.1 += usize::from(ci.median.contains(1.0));
    }
    assert!(
        (180..=198).contains(&covered.0),
        "mean coverage {}/200",
        covered.0
    );
    assert!(
        (175..=199).contains(&covered.1),
        "median coverage {}/200",
        covered.1
    );
}

#[test]
fn ratio_interval_brackets_an_injected_change() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = sim::sample(&mut rng, 30, 1.0, 0.02);
    let b = sim::sample(&mut rng, 30, 1.10, 0.02);
    let c = compare(&a, &b, &CompareConfig::default()).unwrap();
    let ci = c.ratio_ci.unwrap();
    assert!(ci.mean.contains(1.10) && !ci.mean.contains(1.0), "{ci:?}");
    assert!(ci.median.lower > 1.05 && ci.median.upper < 1.15, "{ci:?}");
    assert_eq!(ci.mean.estimate, c.mean_ratio);
}
