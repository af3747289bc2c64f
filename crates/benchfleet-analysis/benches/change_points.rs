//! Change-point detection on a 10,000-point series with shifts (issue 7: target ≤ 15 ms).
//! `cargo bench -p benchfleet-analysis --bench change_points`

#[path = "../tests/sim/mod.rs"]
mod sim;

use benchfleet_analysis::{ChangePointConfig, change_points};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let (series, _) = sim::shifted_series(1);
    let cfg = ChangePointConfig::default();
    c.bench_function("change_points_10k", |b| {
        b.iter(|| change_points(std::hint::black_box(&series), &cfg).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
