//! The shared blob-store behaviour suite on OpenDAL's `memory` and `fs` services.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use benchfleet_opendal::OpendalStore;
use benchfleet_store::BlobKey;
use benchfleet_testkit::Harness;

/// Rewrite the blob with its first byte flipped, through the operator (unconditional write).
fn flip_first_byte(store: &OpendalStore, key: &BlobKey) -> bool {
    let op = store.operator().clone();
    let key = key.as_str().to_owned();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async move {
            let Ok(buf) = op.read(&key).await else {
                return false;
            };
            let mut v = buf.to_vec();
            let Some(b) = v.first_mut() else { return false };
            *b ^= 1;
            op.write(&key, v).await.is_ok()
        })
    })
}

struct Memory;

impl Harness for Memory {
    type Store = OpendalStore;

    async fn make(&self) -> OpendalStore {
        OpendalStore::from_scheme("memory", HashMap::new()).expect("memory service")
    }

    fn corrupt(&self, store: &OpendalStore, key: &BlobKey) -> bool {
        flip_first_byte(store, key)
    }
}

/// Each `make` uses a fresh subdirectory of a temporary directory as the root.
struct Fs {
    dir: tempfile::TempDir,
    n: AtomicU32,
}

impl Harness for Fs {
    type Store = OpendalStore;

    async fn make(&self) -> OpendalStore {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        let root = self.dir.path().join(format!("store{n}"));
        let options = HashMap::from([("root".to_string(), root.display().to_string())]);
        OpendalStore::from_scheme("fs", options).expect("fs service")
    }

    fn corrupt(&self, store: &OpendalStore, key: &BlobKey) -> bool {
        flip_first_byte(store, key)
    }
}

mod memory {
    use super::*;
    benchfleet_testkit::blob_store_conformance!(Memory);
}

mod fs {
    use super::*;
    benchfleet_testkit::blob_store_conformance!(Fs {
        dir: tempfile::tempdir().expect("temporary directory"),
        n: AtomicU32::new(0),
    });
}
