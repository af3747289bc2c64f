//! Statistics over measured runs: summaries, intervals, comparisons, change points. No I/O.
