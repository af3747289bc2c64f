//! Human units for durations and sizes.

/// Digits after the point so that about four significant digits show.
fn decimals(v: f64) -> usize {
    let a = v.abs();
    if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else {
        3
    }
}

/// A time unit chosen by the user (hyperfine's `-u/--time-unit`) instead of one per value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Second,
    MilliSecond,
    MicroSecond,
}

impl TimeUnit {
    /// (`s` | `ms` | `µs`, scale), as [`time_unit`] returns them.
    pub fn unit(self) -> (&'static str, f64) {
        match self {
            TimeUnit::Second => ("s", 1.0),
            TimeUnit::MilliSecond => ("ms", 1e3),
            TimeUnit::MicroSecond => ("µs", 1e6),
        }
    }
}

/// The unit to show `secs` in: `fixed`'s, or the best for the value ([`time_unit`]).
pub fn unit_for(secs: f64, fixed: Option<TimeUnit>) -> (&'static str, f64) {
    fixed.map_or_else(|| time_unit(secs), TimeUnit::unit)
}

/// The unit a duration of `secs` seconds is best shown in: (`µs` | `ms` | `s`, scale).
pub fn time_unit(secs: f64) -> (&'static str, f64) {
    let a = secs.abs();
    if a < 1e-3 {
        ("µs", 1e6)
    } else if a < 1.0 {
        ("ms", 1e3)
    } else {
        ("s", 1.0)
    }
}

/// `0.0123` → `12.30 ms`; NaN/∞ → `-`.
pub fn format_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let (unit, scale) = time_unit(secs);
    format_in(secs, unit, scale)
}

/// Format `secs` in a given unit (from [`time_unit`]).
pub fn format_in(secs: f64, unit: &str, scale: f64) -> String {
    let v = secs * scale;
    format!("{v:.prec$} {unit}", prec = decimals(v))
}

/// `5_242_880` → `5.000 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.prec$} {}", UNITS[u], prec = decimals(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            (0.0000123, "12.30 µs"),
            (0.000999, "999.0 µs"),
            (0.0123, "12.30 ms"),
            (0.5, "500.0 ms"),
            (1.5, "1.500 s"),
            (123.456, "123.5 s"),
            (f64::NAN, "-"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn bytes() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.500 KiB"),
            (5 << 20, "5.000 MiB"),
            (3 << 30, "3.000 GiB"),
        ];
        for (b, want) in cases {
            assert_eq!(format_bytes(b), want, "{b}");
        }
    }
}
