//! The storage conformance suite: one set of behaviour tests that every backend plugin runs,
//! gated by the backend's [`Capability`](benchfleet_store::Capability).
//!
//! A plugin author writes one file, `tests/conformance.rs`: a [`Harness`] that makes a fresh,
//! empty store (and, if it can, flips a stored byte), then one macro call. Each behaviour
//! becomes its own `#[tokio::test]`, so a failure names the behaviour. When the suite passes, the
//! plugin is done.
//!
//! - [`blob_store_conformance!`] runs the [`blob`] behaviours: put/get/get-range (clamping and
//!   out-of-range errors), head, list-prefix (sorted, exact prefix), idempotent delete,
//!   idempotent put-if-absent, `put_many`, concurrent writers of one key and of many keys, a
//!   64 MiB blob written and read back whole and as a stream of range reads, a 64 MiB blob
//!   written as a stream of chunks ([`put_stream`](benchfleet_store::BlobStore::put_stream); a
//!   failing stream stores nothing), a corrupted byte
//!   detected by [`content::get`](benchfleet_store::content::get), hostile keys and prefixes.
//! - [`catalog_conformance!`] runs the [`catalog`] behaviours: batch insert and query by run,
//!   suite, name, tier and time range in the documented order, idempotent re-insert, `put_run`
//!   upsert, `find_runs` newest first with filters and limit, `move_records` (the commit point
//!   of tier migration) atomic and idempotent.
//!
//! - [`queue_conformance!`] runs the [`queue`] behaviours of the fleet's work queue: needs
//!   order with records stored once, retries then skipped dependents, a late completion of a
//!   worker presumed dead refused, machine-class pinning, claims within capacity in priority
//!   order across runs, cancellation, and `status`.
//!
//! - [`server`] is for plugins tested against a real server: where it is (`BENCHFLEET_TEST_*`, set
//!   by `cargo xtask test`; skip locally, fail in CI when unset) and names that keep tests apart.
//!
//! Behaviours a backend's capability rules out are reported as skipped on stderr.
//! The generated tests use `::tokio`, so the plugin needs `tokio` among its (dev-)dependencies.
//!
//! **Architecture invariant:** depends on `benchfleet-store` and `benchfleet-model` only inside
//! the workspace; it knows no backend (backends depend on it, as a dev-dependency).
//!
//! ```text
//! // plugins/benchfleet-fs/tests/conformance.rs
//! use benchfleet_testkit::Harness;
//! struct Fs(tempfile::TempDir);
//! impl Harness for Fs {
//!     type Store = benchfleet_fs::FsStore;
//!     async fn make(&self) -> Self::Store { benchfleet_fs::FsStore::open(self.0.path()).unwrap() }
//! }
//! benchfleet_testkit::blob_store_conformance!(Fs(tempfile::tempdir().unwrap()));
//! ```

use std::future::Future;

use std::sync::Arc;

use benchfleet_store::{BlobKey, BlobStore, Catalog, Queue};

pub mod blob;
pub mod catalog;
pub mod data;
pub mod queue;
pub mod server;

/// Makes fresh blob stores for the conformance suite.
pub trait Harness: Send + Sync {
    type Store: BlobStore;

    /// A new, empty store. Called once per behaviour test; the harness outlives the store.
    fn make(&self) -> impl Future<Output = Self::Store> + Send;

    /// Flip one byte of the blob stored under `key`, behind the store's back. Return `false` if
    /// this harness cannot (the corruption behaviour is then skipped).
    fn corrupt(&self, store: &Self::Store, key: &BlobKey) -> bool {
        let _ = (store, key);
        false
    }
}

/// Makes fresh catalogs for the conformance suite.
pub trait CatalogHarness: Send + Sync {
    type Catalog: Catalog;

    /// A new, empty catalog. Called once per behaviour test.
    fn make_catalog(&self) -> impl Future<Output = Self::Catalog> + Send;
}

/// Makes fresh queues (with the catalog their completions write to) for the queue suite.
pub trait QueueHarness: Send + Sync {
    /// A new, empty queue and its catalog. Called once per behaviour test.
    fn make_queue(&self) -> impl Future<Output = (Arc<dyn Queue>, Arc<dyn Catalog>)> + Send;

    /// Another handle on the same queue, as a second worker process holds one.
    fn connect(&self, queue: &Arc<dyn Queue>) -> impl Future<Output = Arc<dyn Queue>> + Send;

    /// Sever worker `worker`'s liveness behind its back, as SIGKILL or a lost host does (its
    /// handle `queue` stays usable, so it can try a late completion).
    fn sever(&self, queue: &Arc<dyn Queue>, worker: &str) -> impl Future<Output = ()> + Send;
}

/// Note on stderr that a behaviour was skipped, and why.
pub(crate) fn skip(behaviour: &str, backend: &str, why: &str) {
    eprintln!("conformance: `{behaviour}` skipped for {backend}: {why}");
}

/// One `#[tokio::test]` per [`blob`] behaviour, in a module named `blob_store_conformance`.
/// The argument is an expression evaluated afresh in each test, yielding a [`Harness`].
#[macro_export]
macro_rules! blob_store_conformance {
    ($harness:expr) => {
        $crate::__conformance_tests!(
            blob_store_conformance,
            blob,
            $harness,
            [
                put_get_roundtrip,
                missing_keys,
                get_range,
                list_prefix,
                delete_is_idempotent,
                delete_many_removes_exactly_its_keys,
                get_many_returns_each_key_in_order,
                put_if_absent_is_idempotent,
                put_many_outcomes,
                concurrent_writers_same_key,
                concurrent_writers_different_keys,
                large_blob_64_mib,
                stream_put_64_mib,
                corrupted_byte_detected,
                invalid_keys_refused,
            ]
        );
    };
}

/// One `#[tokio::test]` per [`catalog`] behaviour, in a module named `catalog_conformance`.
/// The argument is an expression evaluated afresh in each test, yielding a [`CatalogHarness`].
#[macro_export]
macro_rules! catalog_conformance {
    ($harness:expr) => {
        $crate::__conformance_tests!(
            catalog_conformance,
            catalog,
            $harness,
            [
                query_records_filters_and_order,
                query_samples_project_query_records,
                insert_records_is_idempotent,
                put_run_upserts,
                find_runs_newest_first_with_filters,
                move_records_is_atomic_and_idempotent,
                alerts_are_stored_once_and_keep_their_triage,
            ]
        );
    };
}

/// One `#[tokio::test]` per [`queue`] behaviour, in a module named `queue_conformance`.
/// The argument is an expression evaluated afresh in each test, yielding a [`QueueHarness`].
#[macro_export]
macro_rules! queue_conformance {
    ($harness:expr) => {
        $crate::__conformance_tests!(
            queue_conformance,
            queue,
            $harness,
            [
                needs_order_and_records_once,
                failures_retry_then_skip_dependents,
                late_completion_is_refused,
                grouped_completions_decide_each_claim,
                machine_class_pins_benchmarks,
                claims_fit_capacity_in_priority_order,
                cancel_stops_a_run,
                status_counts_pools_and_workers,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($module:ident, $suite:ident, $harness:expr, [$($test:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let harness = $harness;
                    $crate::$suite::$test(&harness).await;
                }
            )*
        }
    };
}
