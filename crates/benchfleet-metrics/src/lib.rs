//! Measures one process run: wall clock, CPU, per-run peak RSS and rusage from the child's own wait4.
