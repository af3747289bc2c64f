//! The queue behaviours against the store's in-memory reference queue, the one the worker
//! loop's unit tests use.

use std::sync::{Arc, Mutex};

use benchfleet_store::mem::MemCatalog;
use benchfleet_store::{Catalog, MemQueue, Queue};

/// Every handle of one queue is the same object; the harness keeps it to sever workers.
#[derive(Default)]
struct Mem(Mutex<Option<Arc<MemQueue>>>);

impl benchfleet_testkit::QueueHarness for Mem {
    async fn make_queue(&self) -> (Arc<dyn Queue>, Arc<dyn Catalog>) {
        let catalog: Arc<dyn Catalog> = Arc::new(MemCatalog::new());
        let queue = Arc::new(MemQueue::new(catalog.clone()));
        *self.0.lock().expect("lock") = Some(queue.clone());
        (queue, catalog)
    }

    async fn connect(&self, queue: &Arc<dyn Queue>) -> Arc<dyn Queue> {
        queue.clone()
    }

    async fn sever(&self, _queue: &Arc<dyn Queue>, worker: &str) {
        let queue = self
            .0
            .lock()
            .expect("lock")
            .clone()
            .expect("a queue was made");
        queue.disconnect(worker);
    }
}

benchfleet_testkit::queue_conformance!(Mem::default());
