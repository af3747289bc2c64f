//! Calendar months of UTC timestamps (for choosing partitions), without a date library.

/// `year * 12 + (month - 1)` of the UTC instant `nanos` after the Unix epoch.
pub fn month_of_unix_nanos(nanos: i64) -> i64 {
    let days = nanos.div_euclid(86_400 * 1_000_000_000);
    let (y, m, _) = civil_from_days(days);
    y * 12 + (m - 1)
}

/// Microseconds since the epoch of the first instant of `month` (as from [`month_of_unix_nanos`]).
pub fn month_start_micros(month: i64) -> i64 {
    let (y, m) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    days_from_civil(y, m, 1) * 86_400 * 1_000_000
}

/// `YYYY-MM-DD` of the UTC day `days` after 1970-01-01.
pub fn date_of_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Nanoseconds to microseconds, rounding down (as PostgreSQL's timestamptz keeps them).
pub fn micros_of_nanos(nanos: i64) -> i64 {
    nanos.div_euclid(1_000)
}

// Howard Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000_000;

    #[test]
    fn months_of_known_instants() {
        // (unix seconds, year, month) checked with `date -u -d @S`.
        let cases = [
            (0i64, 1970, 1),
            (-1, 1969, 12),
            (951_782_400, 2000, 2), // 2000-02-29
            (951_868_799, 2000, 2), // 2000-02-29 23:59:59
            (951_868_800, 2000, 3), // 2000-03-01
            (1_700_000_000, 2023, 11),
            (1_704_067_199, 2023, 12),
            (1_704_067_200, 2024, 1),
            (-9_000_000_000, 1684, 10),
        ];
        for (secs, y, m) in cases {
            let got = month_of_unix_nanos(secs * 1_000_000_000);
            assert_eq!(
                (got.div_euclid(12), got.rem_euclid(12) + 1),
                (y, m),
                "{secs}"
            );
        }
    }

    #[test]
    fn month_starts_round_trip() {
        for month in [
            1970 * 12,
            1969 * 12 + 11,
            2000 * 12 + 1,
            2024 * 12,
            1700 * 12 + 5,
        ] {
            let start_ns = month_start_micros(month) * 1_000;
            assert_eq!(month_of_unix_nanos(start_ns), month);
            assert_eq!(month_of_unix_nanos(start_ns - 1), month - 1);
            assert_eq!(month_of_unix_nanos(start_ns + 27 * DAY), month);
        }
    }

    #[test]
    fn dates_of_days() {
        for (days, want) in [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (20_255, "2025-06-16"),
        ] {
            assert_eq!(date_of_day(days), want, "{days}");
        }
    }

    #[test]
    fn micros_round_down() {
        for (ns, us) in [
            (0, 0),
            (999, 0),
            (1_000, 1),
            (-1, -1),
            (-1_000, -1),
            (-1_001, -2),
        ] {
            assert_eq!(micros_of_nanos(ns), us, "{ns}");
        }
    }
}
