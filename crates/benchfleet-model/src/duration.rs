use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written in a suite or config file: a number of seconds (`2.5`) or a string with a
/// unit (`"500ms"`, `"3s"`, `"2m"`, `"1h"`, `"250us"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    pub fn as_duration(self) -> Duration {
        self.0
    }
    pub fn from_secs_f64(s: f64) -> Self {
        DurationSpec(Duration::from_secs_f64(s))
    }
}

impl From<Duration> for DurationSpec {
    fn from(d: Duration) -> Self {
        DurationSpec(d)
    }
}

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a duration: write a number of seconds (2.5) or a number with a unit (500ms, 3s, 2m, 1h)"
)]
pub struct ParseDurationError {
    pub input: String,
}

impl FromStr for DurationSpec {
    type Err = ParseDurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDurationError {
            input: s.to_owned(),
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| err())?;
        let scale = match unit.trim() {
            "" | "s" | "sec" | "secs" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        let secs = value * scale;
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(err());
        }
        Ok(DurationSpec(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d < Duration::from_secs(1) && d.as_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

impl fmt::Debug for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration: seconds as a number, or a string such as \"500ms\" or \"3s\"",
                )
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DurationSpec, E> {
                if v.is_finite() && (0.0..=1e9).contains(&v) {
                    Ok(DurationSpec::from_secs_f64(v))
                } else {
                    Err(E::custom(format!("{v} is not a valid number of seconds")))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        let cases = [
            ("3s", 3_000_000_000u128),
            ("3", 3_000_000_000),
            ("500ms", 500_000_000),
            ("2m", 120_000_000_000),
            ("1h", 3_600_000_000_000),
            ("250us", 250_000),
            ("0.5s", 500_000_000),
        ];
        for (text, nanos) in cases {
            let d: DurationSpec = text.parse().unwrap();
            assert_eq!(d.0.as_nanos(), nanos, "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "3 parsecs", "-1s", "1e999"] {
            assert!(bad.parse::<DurationSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["3s", "500ms", "0.25s", "1.5s"] {
            let d: DurationSpec = text.parse().unwrap();
            assert_eq!(d.to_string().parse::<DurationSpec>().unwrap(), d);
        }
    }
}
