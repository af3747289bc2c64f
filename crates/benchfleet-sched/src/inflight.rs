//! The attempts currently spawned on the runtime: each reports back over one channel.
//!
//! Cheaper than a `JoinSet` for this use (no per-task entry in a locked list, one channel for all
//! completions, batched receives) while keeping its guarantee: dropping it aborts what still runs.

use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub(crate) struct InFlight<R> {
    tx: mpsc::UnboundedSender<(u32, R)>,
    rx: mpsc::UnboundedReceiver<(u32, R)>,
    /// Abort handle per slot; a slot is reused once its attempt reported.
    slots: Vec<Option<AbortHandle>>,
    free: Vec<u32>,
    len: usize,
}

impl<R: Send + 'static> InFlight<R> {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        InFlight {
            tx,
            rx,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn spawn<F>(&mut self, fut: F)
    where
        F: Future<Output = R> + Send + 'static,
    {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        let tx = self.tx.clone();
        let handle = tokio::spawn(async move {
            let r = fut.await;
            // The receiver is gone only if the run was dropped: nobody wants the result.
            let _ = tx.send((slot, r));
        });
        self.slots[slot as usize] = Some(handle.abort_handle());
        self.len += 1;
    }

    fn settle(&mut self, (slot, r): (u32, R)) -> R {
        self.slots[slot as usize] = None;
        self.free.push(slot);
        self.len -= 1;
        r
    }

    /// The next completion. Must only be awaited while `!is_empty()` (else it never completes).
    pub(crate) async fn next(&mut self) -> R {
        let done = self.rx.recv().await.expect("the sender lives in self");
        self.settle(done)
    }

    /// A completion already reported, if any.
    pub(crate) fn try_next(&mut self) -> Option<R> {
        let done = self.rx.try_recv().ok()?;
        Some(self.settle(done))
    }
}

impl<R> Drop for InFlight<R> {
    fn drop(&mut self) {
        for h in self.slots.iter().flatten() {
            h.abort();
        }
    }
}
