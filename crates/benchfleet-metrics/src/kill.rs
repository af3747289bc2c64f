//! [`Kill`]: a cheap, shareable cancellation handle for [`crate::run_cancellable`].

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Cancels the runs it is passed to: [`Kill::kill`] sends SIGTERM to each run's process group and
/// SIGKILL after the grace period. Clones share the same state, so one handle can stop a whole
/// suite; a run started after `kill` is stopped at once.
///
/// Waiting runs are woken through an eventfd (no polling); if the kernel refuses one, runs poll
/// the flag every 10 ms instead.
#[derive(Clone, Debug, Default)]
pub struct Kill {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    grace_ns: AtomicU64,
    /// Level-triggered wake-up: written once by `kill`, never read, so it stays readable for every
    /// poller.
    event: Option<OwnedFd>,
}

impl Default for Inner {
    fn default() -> Self {
        // SAFETY: eventfd has no memory-safety preconditions; a negative return means failure.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        // SAFETY: a non-negative fd returned by eventfd is open and owned by nobody else.
        let event = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        Inner {
            requested: AtomicBool::new(false),
            grace_ns: AtomicU64::new(0),
            event,
        }
    }
}

impl Kill {
    pub fn new() -> Self {
        Kill::default()
    }

    /// Request cancellation: SIGTERM now, SIGKILL after `grace` (at once when `grace` is zero).
    /// Calling it again only updates the grace period for runs not yet signalled.
    pub fn kill(&self, grace: Duration) {
        let grace_ns = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        self.inner.grace_ns.store(grace_ns, Ordering::Relaxed);
        self.inner.requested.store(true, Ordering::Release);
        if let Some(fd) = &self.inner.event {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an fd we own. A failure (counter full)
            // still leaves the eventfd readable, which is all pollers need.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Whether [`Kill::kill`] has been called.
    pub fn is_killed(&self) -> bool {
        self.inner.requested.load(Ordering::Acquire)
    }

    pub(crate) fn grace(&self) -> Duration {
        Duration::from_nanos(self.inner.grace_ns.load(Ordering::Relaxed))
    }

    pub(crate) fn event_fd(&self) -> Option<RawFd> {
        self.inner.event.as_ref().map(AsRawFd::as_raw_fd)
    }
}
