//! The shared behaviour suite, run against `FsStore`.

use std::sync::atomic::{AtomicU32, Ordering};

use benchfleet_fs::FsStore;
use benchfleet_store::BlobKey;
use benchfleet_testkit::Harness;

/// Each `make` opens a fresh store in its own subdirectory of a temporary directory.
struct Fs {
    dir: tempfile::TempDir,
    n: AtomicU32,
}

impl Fs {
    fn new() -> Self {
        Fs {
            dir: tempfile::tempdir().expect("temporary directory"),
            n: AtomicU32::new(0),
        }
    }
}

impl Harness for Fs {
    type Store = FsStore;

    async fn make(&self) -> FsStore {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        FsStore::open(self.dir.path().join(format!("store{n}"))).expect("open store")
    }

    fn corrupt(&self, store: &FsStore, key: &BlobKey) -> bool {
        let Ok(path) = store.path_of(key) else {
            return false;
        };
        let Ok(mut bytes) = std::fs::read(&path) else {
            return false;
        };
        let Some(b) = bytes.get_mut(0) else {
            return false;
        };
        *b ^= 0x01;
        std::fs::write(&path, &bytes).is_ok()
    }
}

benchfleet_testkit::blob_store_conformance!(Fs::new());
