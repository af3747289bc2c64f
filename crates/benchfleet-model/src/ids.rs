use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one invocation of a suite (`benchfleet run`, `benchfleet bench`, an import).
///
/// A ULID: 26 Crockford base-32 characters whose lexical order is their creation order, so that
/// "newest first" is a plain sort. Generation lives outside this crate (it needs a clock and
/// randomness); this type only validates.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

/// A run id that is not 26 Crockford base-32 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a run id: expected 26 characters of 0-9 and A-Z (as printed by `benchfleet history`)"
)]
pub struct ParseRunIdError {
    pub input: String,
}

impl RunId {
    pub const LEN: usize = 26;

    /// Whether `s` could be (a prefix of) a run id; used to accept abbreviated ids.
    pub fn is_valid_prefix(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RunId {
    type Err = ParseRunIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.to_ascii_uppercase();
        if up.len() == Self::LEN && Self::is_valid_prefix(&up) {
            Ok(RunId(up))
        } else {
            Err(ParseRunIdError {
                input: s.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = ParseRunIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}

/// Wall-clock time as nanoseconds since the Unix epoch (UTC). Serialized as an integer so that
/// records stay exact and cheap to compare; formatting for people happens at the edges.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub fn from_unix_seconds(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }
    pub fn unix_nanos(self) -> i64 {
        self.0
    }
    pub fn unix_seconds_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_accepts_ulids_and_uppercases() {
        let id: RunId = "01hzy3k4mz8q6x2v1b0c9d7e5f".parse().unwrap();
        assert_eq!(id.as_str(), "01HZY3K4MZ8Q6X2V1B0C9D7E5F");
        assert!("01HZY3K4".parse::<RunId>().is_err());
        assert!("01HZY3K4MZ8Q6X2V1B0C9D7E5-".parse::<RunId>().is_err());
        assert!(RunId::is_valid_prefix("01HZ"));
        assert!(!RunId::is_valid_prefix("01hz"));
    }

    #[test]
    fn run_id_serde_validates() {
        assert!(serde_json::from_str::<RunId>("\"nope\"").is_err());
        let id: RunId = serde_json::from_str("\"01HZY3K4MZ8Q6X2V1B0C9D7E5F\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"01HZY3K4MZ8Q6X2V1B0C9D7E5F\""
        );
    }
}
