//! End-to-end tests: run the real `benchfleet` binary on small suites in a temporary directory
//! and check what it stored, printed and exported.

mod support;

mod analyze;
mod backends;
mod bench;
mod core;
mod failures;
mod load;
mod metrics;
mod run;
mod sched;
mod tier;
