//! Errors of the analysis functions.

/// Why a statistic could not be computed. Messages name the input and say what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Not enough finite samples for the requested statistic.
    #[error("{what} needs at least {need} finite samples, got {got}: measure more runs")]
    TooFewSamples {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// A configuration value outside its valid range.
    #[error("{name} = {value} is invalid: {expected}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

pub(crate) fn need(what: &'static str, need: usize, got: usize) -> Result<(), AnalysisError> {
    if got < need {
        Err(AnalysisError::TooFewSamples { what, need, got })
    } else {
        Ok(())
    }
}

pub(crate) fn invalid(
    name: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> AnalysisError {
    AnalysisError::InvalidParameter {
        name,
        value: value.to_string(),
        expected,
    }
}

/// Check that `p` is a probability strictly between 0 and 1.
pub(crate) fn check_open_unit(name: &'static str, p: f64) -> Result<(), AnalysisError> {
    if p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(invalid(
            name,
            p,
            "expected a number strictly between 0 and 1",
        ))
    }
}
