//! A cloneable cancellation flag with an async wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Cancellation shared by clones: [`CancelToken::cancel`] on any clone is seen by all.
/// `Default` makes a fresh, uncancelled token. Once cancelled, it stays cancelled.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A fresh, uncancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: the scheduler stops admitting nodes, tasks watching the token wind down.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// True once any clone was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            // A `Notified` sees `notify_waiters` calls made after its creation, so creating it
            // before checking the flag cannot miss a cancel.
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_cancellation() {
        let a = CancelToken::new();
        let b = a.clone();
        let other = CancelToken::default();
        assert!(!b.is_cancelled());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.cancelled().await }
        });
        tokio::task::yield_now().await;
        a.cancel();
        waiter.await.unwrap();
        assert!(b.is_cancelled());
        b.cancelled().await; // already cancelled: returns at once
        assert!(!other.is_cancelled());
    }
}
