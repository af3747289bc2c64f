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
mod fleet;
mod git;
mod hyperfine;
mod load;
mod machine;
mod metrics;
mod resume;
mod run;
mod scenarios;
mod sched;
mod serve;
mod servers;
mod share;
mod tier;
mod upgrade;
