//! SVG plots drawn with plotters (SVG backend, no fonts loaded, no external resources).

use benchfleet_analysis::{ChangePoint, ScalingPoint, Verdict, percentile, sorted_finite};
use plotters::prelude::*;

use crate::units::time_unit;
use crate::{BenchmarkResult, NamedComparison, ReportError};

const W: u32 = 860;

/// Percent change, its interval, verdict.
type Bar = (f64, Option<(f64, f64)>, Verdict);
const BLUE_: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RED_: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const GREEN_: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const GREY_: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// Pad a value range so that points are not drawn on the frame.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1e-9) };
    (lo - span * 0.08)..(hi + span * 0.08)
}

fn short(name: &str) -> String {
    if name.chars().count() > 18 {
        format!("{}…", name.chars().take(17).collect::<String>())
    } else {
        name.to_string()
    }
}

/// Box plot (quartiles, median, whiskers at the 1.5·IQR fences) with every successful run's wall
/// time drawn as a point, one box per benchmark, in one time unit.
pub fn distribution_svg(results: &[BenchmarkResult]) -> Result<String, ReportError> {
    let data: Vec<(String, Vec<f64>)> = results
        .iter()
        .map(|r| (r.name.clone(), sorted_finite(&r.successful_times())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let all: Vec<f64> = data.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let Some((lo, hi)) = all
        .iter()
        .copied()
        .fold(None, |acc: Option<(f64, f64)>, x| {
            Some(acc.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
        })
    else {
        return Ok(String::new());
    };
    let (unit, scale) = time_unit(percentile(&sorted_finite(&all), 50.0));
    let names: Vec<String> = data.iter().map(|(n, _)| short(n)).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Wall time per run", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                -0.5..(data.len() as f64 - 0.5),
                padded(lo * scale, hi * scale),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(data.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(unit)
            .draw()
            .map_err(err)?;
        for (i, (_, v)) in data.iter().enumerate() {
            let x = i as f64;
            let q = |p| percentile(v, p) * scale;
            let (q1, med, q3) = (q(25.0), q(50.0), q(75.0));
            let iqr = q3 - q1;
            let lo_w = v
                .iter()
                .map(|t| t * scale)
                .find(|t| *t >= q1 - 1.5 * iqr)
                .unwrap_or(q1);
            let hi_w = v
                .iter()
                .rev()
                .map(|t| t * scale)
                .find(|t| *t <= q3 + 1.5 * iqr)
                .unwrap_or(q3);
            chart
                .draw_series([Rectangle::new(
                    [(x - 0.25, q1), (x + 0.25, q3)],
                    BLUE_.mix(0.25).filled(),
                )])
                .map_err(err)?;
            chart
                .draw_series([Rectangle::new(
                    [(x - 0.25, q1), (x + 0.25, q3)],
                    BLUE_.stroke_width(1),
                )])
                .map_err(err)?;
            for seg in [
                vec![(x - 0.25, med), (x + 0.25, med)],
                vec![(x, q3), (x, hi_w)],
                vec![(x, q1), (x, lo_w)],
                vec![(x - 0.1, hi_w), (x + 0.1, hi_w)],
                vec![(x - 0.1, lo_w), (x + 0.1, lo_w)],
            ] {
                chart
                    .draw_series([PathElement::new(seg, BLACK.stroke_width(2))])
                    .map_err(err)?;
            }
            // Raw points, spread deterministically (golden-ratio jitter) to the right of the box.
            chart
                .draw_series(v.iter().enumerate().map(|(k, t)| {
                    let jitter = ((k as f64 * 0.618_033_988_75).fract() - 0.5) * 0.3;
                    Circle::new((x + jitter, t * scale), 2, RED_.mix(0.6).filled())
                }))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A metric's history as a line, change points as vertical red lines with their percent.
pub fn history_svg(
    title: &str,
    unit: &str,
    values: &[f64],
    changes: &[ChangePoint],
) -> Result<String, ReportError> {
    let finite: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as f64, *v))
        .collect();
    if finite.is_empty() {
        return Ok(String::new());
    }
    let lo = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y = padded(lo, hi);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..(values.len() as f64 - 0.5).max(0.5), y.clone())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("run (oldest first)")
            .y_desc(unit)
            .x_labels(values.len().clamp(2, 12))
            // Runs are whole numbers: no label at -0.5, 0.5, …
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    format!("{i:.0}")
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                finite.iter().copied(),
                BLUE_.stroke_width(1),
            ))
            .map_err(err)?;
        if finite.len() <= 500 {
            chart
                .draw_series(finite.iter().map(|p| Circle::new(*p, 2, BLUE_.filled())))
                .map_err(err)?;
        }
        for c in changes {
            let x = c.index as f64 - 0.5;
            chart
                .draw_series([PathElement::new(
                    vec![(x, y.start), (x, y.end)],
                    RED_.stroke_width(2),
                )])
                .map_err(err)?;
            chart
                .draw_series([Text::new(
                    format!("{:+.1}%", c.percent),
                    (x, y.end),
                    ("sans-serif", 13).into_font().color(&RED_),
                )])
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Change of the mean (percent) per benchmark as bars, with the bootstrap interval as whiskers;
/// red for regressed, green for improved, grey for unchanged.
pub fn comparison_svg(comparisons: &[NamedComparison]) -> Result<String, ReportError> {
    if comparisons.is_empty() {
        return Ok(String::new());
    }
    let pct = |r: f64| (r - 1.0) * 100.0;
    let bars: Vec<Bar> = comparisons
        .iter()
        .map(|c| {
            (
                pct(c.comparison.mean_ratio),
                c.comparison
                    .ratio_ci
                    .map(|ci| (pct(ci.mean.lower), pct(ci.mean.upper))),
                c.comparison.verdict,
            )
        })
        .collect();
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for (v, ci, _) in &bars {
        lo = lo.min(*v).min(ci.map_or(*v, |c| c.0));
        hi = hi.max(*v).max(ci.map_or(*v, |c| c.1));
    }
    let names: Vec<String> = comparisons.iter().map(|c| short(&c.name)).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Change of the mean vs baseline (95% interval)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(bars.len() as f64 - 0.5), padded(lo, hi))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("%")
            .draw()
            .map_err(err)?;
        chart
            .draw_series([PathElement::new(
                vec![(-0.5, 0.0), (bars.len() as f64 - 0.5, 0.0)],
                BLACK.stroke_width(1),
            )])
            .map_err(err)?;
        for (i, (v, ci, verdict)) in bars.iter().enumerate() {
            let x = i as f64;
            let color = match verdict {
                Verdict::Regressed => RED_,
                Verdict::Improved => GREEN_,
                Verdict::Unchanged | Verdict::Inconclusive => GREY_,
            };
            chart
                .draw_series([Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, *v)],
                    color.mix(0.7).filled(),
                )])
                .map_err(err)?;
            if let Some((l, u)) = ci {
                for seg in [
                    vec![(x, *l), (x, *u)],
                    vec![(x - 0.08, *l), (x + 0.08, *l)],
                    vec![(x - 0.08, *u), (x + 0.08, *u)],
                ] {
                    chart
                        .draw_series([PathElement::new(seg, BLACK.stroke_width(2))])
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Speedup per concurrency level, with the ideal (linear) speedup for reference.
pub fn scaling_svg(points: &[ScalingPoint]) -> Result<String, ReportError> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(String::new());
    };
    let base = f64::from(first.jobs);
    let ideal_max = f64::from(last.jobs) / base;
    let max_y = points.iter().map(|p| p.speedup).fold(ideal_max, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Scaling: speedup per concurrency level", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(padded(base, f64::from(last.jobs)), 0.0..max_y * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("jobs")
            .y_desc("speedup")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .map(|p| (f64::from(p.jobs), f64::from(p.jobs) / base)),
                GREY_.stroke_width(1),
            ))
            .map_err(err)?
            .label("ideal")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREY_));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (f64::from(p.jobs), p.speedup)),
                BLUE_.stroke_width(2),
            ))
            .map_err(err)?
            .label("measured")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE_));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((f64::from(p.jobs), p.speedup), 3, BLUE_.filled())),
            )
            .map_err(err)?;
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The machine during a run, as plain series (the report crate knows no sampler type).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Utilisation {
    /// Seconds since sampling started, one per sample.
    pub t_s: Vec<f64>,
    /// Mean busy share of all cores, percent.
    pub cpu_busy_pct: Vec<f64>,
    /// Busy share of all cores spent by benchfleet and its children, percent.
    pub own_busy_pct: Vec<f64>,
    /// Memory in use, percent of the total.
    pub mem_used_pct: Vec<f64>,
    /// A warning when the machine was judged noisy.
    pub note: Option<String>,
}

/// CPU (all, and benchfleet's own share) and memory utilisation over the run.
pub fn utilisation_svg(u: &Utilisation) -> Result<String, ReportError> {
    let Some(&last) = u.t_s.last() else {
        return Ok(String::new());
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("System utilisation during the run", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..last.max(1e-3), 0.0..100.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("%")
            .draw()
            .map_err(err)?;
        let series: [(&str, &Vec<f64>, RGBColor); 3] = [
            ("CPU, all", &u.cpu_busy_pct, BLUE_),
            ("CPU, benchfleet", &u.own_busy_pct, GREEN_),
            ("memory", &u.mem_used_pct, GREY_),
        ];
        for (label, values, color) in series {
            chart
                .draw_series(LineSeries::new(
                    u.t_s.iter().copied().zip(values.iter().copied()),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
