//! End-to-end tests: run the real `benchfleet` binary on small suites in a temporary directory
//! and check what it stored, printed and exported.

mod support;

mod alone;
mod analyze;
mod backends;
mod bench;
mod browser;
mod bench_params;
mod core;
mod failures;
mod git;
mod hyperfine;
mod load;
mod metrics;
mod resume;
mod run;
mod scenarios;
mod serve;
mod sched;
mod share;
mod tier;
mod upgrade;
