//! End-to-end tests: run the real `benchfleet` binary on small suites in a temporary directory
//! and check what it stored, printed and exported.

mod support;

mod alone;
mod analyze;
mod backends;
mod bench;
mod bench_params;
mod browser;
mod core;
mod failures;
mod git;
mod hyperfine;
mod load;
mod metrics;
mod resume;
mod run;
mod scenarios;
mod sched;
mod serve;
mod share;
mod tier;
mod upgrade;
