//! The attempts currently running, polled where [`Placement`] says.
//!
//! - [`Placement::Local`]: every attempt is polled by the scheduler's own task (a
//!   `FuturesUnordered`). A completion wakes nothing but the scheduler, on the thread it already
//!   runs on: no cross-thread hand-off per task, which is what dominates when attempts are short
//!   and the concurrency bound is small.
//! - [`Placement::Spawned`]: every attempt is `tokio::spawn`ed and reports back over one channel
//!   (cheaper than a `JoinSet`: no per-task entry in a locked list, batched receives), so attempts
//!   run in parallel on a multi-threaded runtime.
//!
//! Either way dropping the set drops (aborts) what still runs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Where an attempt that is not ready at its first poll goes on running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Polled by the scheduler's own task, like `FuturesUnordered`/`buffer_unordered`: the
    /// cheapest hand-off (a completion wakes only the scheduler, on its own thread). Attempts
    /// share one task, so an attempt must not block or compute for long in `poll`: put blocking
    /// or CPU-heavy work behind `spawn_blocking` (as a process runner does anyway).
    #[default]
    Local,
    /// Each attempt is `tokio::spawn`ed: attempts that compute in `poll` run in parallel on a
    /// multi-threaded runtime, at the price of a cross-thread wake-up per completion.
    Spawned,
}

type LocalFuture<R> = Pin<Box<dyn Future<Output = R> + Send>>;

pub(crate) struct InFlight<R> {
    placement: Placement,
    local: FuturesUnordered<LocalFuture<R>>,
    tx: mpsc::UnboundedSender<(u32, R)>,
    rx: mpsc::UnboundedReceiver<(u32, R)>,
    /// Abort handle per spawned slot; a slot is reused once its attempt reported.
    slots: Vec<Option<AbortHandle>>,
    free: Vec<u32>,
    spawned: usize,
}

impl<R: Send + 'static> InFlight<R> {
    pub(crate) fn new(placement: Placement) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        InFlight {
            placement,
            local: FuturesUnordered::new(),
            tx,
            rx,
            slots: Vec::new(),
            free: Vec::new(),
            spawned: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.local.len() + self.spawned
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds an attempt (already polled once, `Pending`).
    pub(crate) fn push(&mut self, fut: LocalFuture<R>) {
        match self.placement {
            Placement::Local => self.local.push(fut),
            Placement::Spawned => self.spawn(fut),
        }
    }

    fn spawn(&mut self, fut: LocalFuture<R>) {
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
        self.spawned += 1;
    }

    fn settle(&mut self, (slot, r): (u32, R)) -> R {
        self.slots[slot as usize] = None;
        self.free.push(slot);
        self.spawned -= 1;
        r
    }

    /// The next completion. Must only be awaited while `!is_empty()` (else it never completes).
    pub(crate) async fn next(&mut self) -> R {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<R> {
        if !self.local.is_empty()
            && let Poll::Ready(Some(r)) = self.local.poll_next_unpin(cx)
        {
            return Poll::Ready(r);
        }
        if self.spawned > 0
            && let Poll::Ready(Some(done)) = self.rx.poll_recv(cx)
        {
            return Poll::Ready(self.settle(done));
        }
        Poll::Pending
    }

    /// A spawned attempt's completion already reported, if any. (Local attempts are only polled
    /// by [`next`](Self::next), with the scheduler's waker.)
    pub(crate) fn try_next(&mut self) -> Option<R> {
        if self.spawned == 0 {
            return None;
        }
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
