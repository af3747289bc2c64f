//! The shared behaviour suites (blob store and catalog), run against `RedbStore`.

use benchfleet_redb::RedbStore;
use benchfleet_store::BlobKey;
use benchfleet_testkit::{CatalogHarness, Harness};

/// Each `make` opens a fresh database file in a temporary directory.
struct Redb(tempfile::TempDir);

impl Redb {
    fn new() -> Self {
        Redb(tempfile::tempdir().expect("temporary directory"))
    }
    fn open(&self) -> RedbStore {
        RedbStore::open(self.0.path().join("db/store.redb")).expect("open database")
    }
}

impl Harness for Redb {
    type Store = RedbStore;

    async fn make(&self) -> RedbStore {
        self.open()
    }

    fn corrupt(&self, store: &RedbStore, key: &BlobKey) -> bool {
        store.inject_corruption(key).expect("inject corruption")
    }
}

impl CatalogHarness for Redb {
    type Catalog = RedbStore;

    async fn make_catalog(&self) -> RedbStore {
        self.open()
    }
}

benchfleet_testkit::blob_store_conformance!(Redb::new());
benchfleet_testkit::catalog_conformance!(Redb::new());
