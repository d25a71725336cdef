//! `Semaphore` and `BoundedSemaphore`: Python's counting semaphores.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use super::ReleaseError;
use crate::shim::Arc;
use crate::wait::permits::{MAX_PERMITS, Permits};
use crate::wait::{MapOp, WaitFuture, block_on, std_deadline};

/// A counter of permits: `acquire` takes one (waiting while there are
/// none), `release(n)` gives `n` back and wakes up to `n` waiters.
///
/// Python: `threading.Semaphore` / `asyncio.Semaphore`. The count may go
/// above its initial value (see [`BoundedSemaphore`] for the checked kind).
///
/// Waiters are served in FIFO order among themselves; a caller that finds a
/// permit free takes it at once.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use conex::threading::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.permit().await; // with sem:
/// let b = sem.permit().await;
/// assert!(sem.try_permit().is_none());
/// drop(a);
/// assert_eq!(sem.value(), 1);
/// # drop(b);
/// # }
/// ```
#[derive(Clone)]
pub struct Semaphore {
    permits: Arc<Permits>,
    bound: usize,
}

impl Default for Semaphore {
    /// A semaphore with one permit (Python's default `value=1`).
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl Semaphore {
    /// The largest count a semaphore can hold.
    pub const MAX_VALUE: usize = MAX_PERMITS;

    /// A semaphore holding `value` permits.
    ///
    /// Python: `threading.Semaphore(value)`.
    ///
    /// # Panics
    /// If `value` is above [`Semaphore::MAX_VALUE`].
    #[track_caller]
    pub fn new(value: usize) -> Semaphore {
        Semaphore {
            permits: Arc::new(Permits::new(value)),
            bound: MAX_PERMITS,
        }
    }

    /// Takes a permit, waiting as long as it takes. The permit is not
    /// returned automatically: call [`release`](Semaphore::release).
    ///
    /// Python: `Semaphore.acquire()`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no permit and gives up
    /// the caller's place in line; a wake-up it had received is passed on.
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.permits.acquire(), |_| ()))
    }

    /// Takes a permit if one is free right now.
    ///
    /// Python: `Semaphore.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.permits.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout` (tokio's clock). Returns
    /// whether it got one.
    ///
    /// Python: `Semaphore.acquire(timeout=...)`.
    ///
    /// # Cancel safety
    /// As [`acquire`](Semaphore::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::timeout(self.permits.acquire(), timeout)
    }

    /// Gives `n` permits back, waking up to `n` waiters.
    ///
    /// Python: `Semaphore.release(n=1)`.
    ///
    /// # Errors
    /// [`ReleaseError::ZeroCount`] for `n == 0`;
    /// [`ReleaseError::TooManyReleases`] if a [`BoundedSemaphore`] would go
    /// above its initial value; [`ReleaseError::Overflow`] above
    /// [`Semaphore::MAX_VALUE`]. Nothing is released on error.
    pub fn release(&self, n: usize) -> Result<(), ReleaseError> {
        if n == 0 {
            return Err(ReleaseError::ZeroCount);
        }
        self.permits.release(n, self.bound).map_err(|_| {
            if self.bound == MAX_PERMITS {
                ReleaseError::Overflow
            } else {
                ReleaseError::TooManyReleases
            }
        })
    }

    /// The number of free permits right now.
    ///
    /// Python: `Semaphore._value`.
    pub fn value(&self) -> usize {
        self.permits.available()
    }

    /// Whether an acquire would have to wait right now.
    ///
    /// Python: `asyncio.Semaphore.locked()`.
    pub fn locked(&self) -> bool {
        self.value() == 0
    }

    /// Takes a permit and returns a guard that gives it back on drop.
    ///
    /// Python: `with sem:`.
    ///
    /// # Cancel safety
    /// As [`acquire`](Semaphore::acquire).
    pub fn permit(&self) -> impl Future<Output = SemaphorePermit<'_>> + Send + '_ {
        WaitFuture::new(MapOp::new(self.permits.acquire(), move |_| {
            SemaphorePermit { sem: self }
        }))
    }

    /// A permit guard if a permit is free right now.
    pub fn try_permit(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire().then(|| SemaphorePermit { sem: self })
    }

    /// A permit guard, waiting at most `timeout` (tokio's clock).
    ///
    /// # Cancel safety
    /// As [`acquire`](Semaphore::acquire).
    pub fn permit_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Option<SemaphorePermit<'_>>> + Send + '_ {
        WaitFuture::timeout(
            MapOp::new(self.permits.acquire(), move |ok: bool| {
                ok.then(|| SemaphorePermit { sem: self })
            }),
            timeout,
        )
    }

    /// How many tasks and threads wait to acquire right now: a snapshot,
    /// for monitoring and tests (Python has no public equivalent; the name
    /// is `Barrier.n_waiting`'s).
    pub fn n_waiting(&self) -> usize {
        self.permits.waiters()
    }

    /// The blocking facade: the same semaphore, for OS threads.
    pub fn blocking(&self) -> BlockingSemaphore<'_> {
        BlockingSemaphore { sem: self }
    }
}

/// A semaphore whose count may never go above its initial value.
///
/// Python: `threading.BoundedSemaphore` / `asyncio.BoundedSemaphore`.
/// Every [`Semaphore`] method is available (through `Deref`); `release`
/// refuses with [`ReleaseError::TooManyReleases`] instead of going above
/// the initial value, the usual sign of a release without an acquire.
///
/// # Examples
///
/// ```
/// use conex::threading::{BoundedSemaphore, ReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// assert!(sem.try_acquire());
/// sem.release(1).unwrap();
/// assert_eq!(sem.release(1), Err(ReleaseError::TooManyReleases));
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl Default for BoundedSemaphore {
    /// A bounded semaphore of one permit (Python's default).
    fn default() -> BoundedSemaphore {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("initial_value", &self.sem.bound)
            .finish()
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore holding (and never above) `value` permits.
    ///
    /// Python: `threading.BoundedSemaphore(value)`.
    ///
    /// # Panics
    /// If `value` is above [`Semaphore::MAX_VALUE`].
    #[track_caller]
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore {
                permits: Arc::new(Permits::new(value)),
                bound: value,
            },
        }
    }

    /// The initial (and maximum) count.
    pub fn initial_value(&self) -> usize {
        self.sem.bound
    }
}

impl Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}

/// One permit of a [`Semaphore`], given back on drop.
///
/// Python: the body of `with sem:`.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: it is not given back on drop (call
    /// [`Semaphore::release`] later, as Python code does).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // Fails only if a bounded semaphore was over-released behind the
        // guard's back; the permit is then already accounted for.
        let _ = self.sem.release(1);
    }
}

/// The blocking facade of a [`Semaphore`] (or, through `Deref`, of a
/// [`BoundedSemaphore`]); see [`BlockingLock`](super::BlockingLock) for where
/// it may block.
///
/// # Examples
///
/// ```
/// use conex::threading::Semaphore;
///
/// let sem = Semaphore::new(0);
/// let s2 = sem.clone();
/// let t = std::thread::spawn(move || s2.blocking().acquire());
/// sem.release(1).unwrap();
/// t.join().unwrap();
/// assert_eq!(sem.value(), 0);
/// ```
#[derive(Clone, Copy)]
pub struct BlockingSemaphore<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for BlockingSemaphore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingSemaphore").field(self.sem).finish()
    }
}

impl<'a> BlockingSemaphore<'a> {
    /// Takes a permit, blocking as long as it takes.
    ///
    /// Python: `Semaphore.acquire()`.
    #[track_caller]
    pub fn acquire(&self) {
        if !self.sem.permits.try_acquire() {
            block_on(self.sem.permits.acquire(), None);
        }
    }

    /// Takes a permit if one is free right now.
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// Takes a permit, blocking at most `timeout`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.permits.try_acquire()
            || block_on(self.sem.permits.acquire(), std_deadline(timeout))
    }

    /// Gives `n` permits back.
    ///
    /// # Errors
    /// As [`Semaphore::release`].
    pub fn release(&self, n: usize) -> Result<(), ReleaseError> {
        self.sem.release(n)
    }

    /// The number of free permits right now.
    pub fn value(&self) -> usize {
        self.sem.value()
    }

    /// Takes a permit and returns its guard.
    pub fn permit(&self) -> SemaphorePermit<'a> {
        self.acquire();
        SemaphorePermit { sem: self.sem }
    }

    /// A permit guard if a permit is free right now.
    pub fn try_permit(&self) -> Option<SemaphorePermit<'a>> {
        self.sem.try_permit()
    }

    /// A permit guard, blocking at most `timeout`.
    pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'a>> {
        self.acquire_timeout(timeout)
            .then(|| SemaphorePermit { sem: self.sem })
    }
}
