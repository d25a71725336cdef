//! `timeout` / `timeout_at` and the reschedulable `TimeoutScope`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::time::Instant;

/// The deadline passed before the future completed (the future was
/// cancelled).
///
/// Python: `TimeoutError` from `asyncio.timeout` / `asyncio.wait_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the deadline passed")
    }
}

impl std::error::Error for Timeout {}

struct Shared {
    deadline: Mutex<Option<Instant>>,
    expired: AtomicBool,
    waker: AtomicWaker,
}

/// A deadline that the code it bounds can move while it runs.
///
/// Python: the `asyncio.Timeout` object of `async with asyncio.timeout(d)
/// as cm:` (`cm.when()`, `cm.reschedule(when)`, `cm.expired()`). A cheap
/// handle: give a clone to the code inside [`run`](TimeoutScope::run).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use conex::tasks::TimeoutScope;
/// use std::time::Duration;
///
/// let scope = TimeoutScope::after(Duration::from_secs(1));
/// let inner = scope.clone();
/// let r = scope
///     .run(async move {
///         // Needs more time than planned: push the deadline out.
///         inner.reschedule(Some(tokio::time::Instant::now() + Duration::from_secs(10)));
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         "done"
///     })
///     .await;
/// assert_eq!(r, Ok("done"));
/// assert!(!scope.expired());
/// # }
/// ```
#[derive(Clone)]
pub struct TimeoutScope {
    shared: Arc<Shared>,
}

impl fmt::Debug for TimeoutScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutScope")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}

impl TimeoutScope {
    /// A scope whose deadline is `deadline` (`None`: no deadline yet).
    ///
    /// Python: `asyncio.timeout_at(when)`.
    pub fn at(deadline: Option<Instant>) -> TimeoutScope {
        TimeoutScope {
            shared: Arc::new(Shared {
                deadline: Mutex::new(deadline),
                expired: AtomicBool::new(false),
                waker: AtomicWaker::new(),
            }),
        }
    }

    /// A scope whose deadline is `delay` from now (tokio's clock).
    ///
    /// Python: `asyncio.timeout(delay)`.
    pub fn after(delay: Duration) -> TimeoutScope {
        TimeoutScope::at(Instant::now().checked_add(delay))
    }

    /// The current deadline.
    ///
    /// Python: `Timeout.when()`.
    pub fn when(&self) -> Option<Instant> {
        *self
            .shared
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the deadline (`None`: no deadline); takes effect at once for a
    /// scope that is running.
    ///
    /// Python: `Timeout.reschedule(when)`.
    pub fn reschedule(&self, deadline: Option<Instant>) {
        *self
            .shared
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = deadline;
        self.shared.waker.wake();
    }

    /// Whether the deadline passed and cancelled the bounded future.
    ///
    /// Python: `Timeout.expired()`.
    pub fn expired(&self) -> bool {
        self.shared.expired.load(Acquire)
    }

    /// Runs `fut` until it completes or the deadline passes (then `fut` is
    /// dropped: cancelled).
    ///
    /// # Errors
    /// [`Timeout`] if the deadline passed first.
    ///
    /// # Cancel safety
    /// Dropping the future drops `fut`.
    pub fn run<F: Future>(
        &self,
        fut: F,
    ) -> impl Future<Output = Result<F::Output, Timeout>> + use<F> {
        Bounded {
            scope: self.clone(),
            fut: Box::pin(fut),
            sleep: None,
        }
    }
}

struct Bounded<F> {
    scope: TimeoutScope,
    fut: Pin<Box<F>>,
    sleep: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
}

impl<F: Future> Future for Bounded<F> {
    type Output = Result<F::Output, Timeout>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(v) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        this.scope.shared.waker.register(cx.waker());
        let Some(deadline) = this.scope.when() else {
            this.sleep = None;
            return Poll::Pending;
        };
        match &mut this.sleep {
            Some((at, sleep)) if *at == deadline => {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            slot => {
                let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
                let ready = sleep.as_mut().poll(cx).is_ready();
                *slot = Some((deadline, sleep));
                if !ready {
                    return Poll::Pending;
                }
            }
        }
        this.scope.shared.expired.store(true, Release);
        Poll::Ready(Err(Timeout))
    }
}

/// Runs `fut` for at most `delay` (tokio's clock).
///
/// Python: `asyncio.wait_for(aw, timeout)` / `async with asyncio.timeout(delay)`.
///
/// # Errors
/// [`Timeout`] if the delay passed first (`fut` was dropped).
///
/// # Cancel safety
/// Dropping the future drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use conex::tasks::{timeout, Timeout};
/// use std::time::Duration;
///
/// let slow = timeout(Duration::from_secs(1), tokio::time::sleep(Duration::from_secs(5)));
/// assert_eq!(slow.await, Err(Timeout));
/// # }
/// ```
pub fn timeout<F: Future>(
    delay: Duration,
    fut: F,
) -> impl Future<Output = Result<F::Output, Timeout>> {
    TimeoutScope::after(delay).run(fut)
}

/// Runs `fut` until `deadline` (tokio's clock) at most.
///
/// Python: `async with asyncio.timeout_at(when)`.
///
/// # Errors
/// [`Timeout`] if the deadline passed first.
///
/// # Cancel safety
/// Dropping the future drops `fut`.
pub fn timeout_at<F: Future>(
    deadline: Instant,
    fut: F,
) -> impl Future<Output = Result<F::Output, Timeout>> {
    TimeoutScope::at(Some(deadline)).run(fut)
}
