//! `Lock`: Python's `threading.Lock` / `asyncio.Lock`, one object for tasks
//! and threads.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::ReleaseError;
use crate::shim::Arc;
use crate::wait::permits::Permits;
use crate::wait::{MapOp, WaitFuture, block_on, std_deadline};

/// A mutual-exclusion lock with no owner: any task or thread may release it.
///
/// Python: `threading.Lock` (and `asyncio.Lock`, `_thread.allocate_lock()`).
///
/// `Lock` is a cheap handle: clones are the same lock. It guards no data
/// (as in Python); use it around state kept elsewhere, or reach for the
/// scoped [`lock`](Lock::lock) guard, which is Python's `with lock:`.
///
/// Waiters are queued in FIFO order; a task that finds the lock free takes
/// it at once even if others are queued (this keeps a contended lock fast,
/// as `threading.Lock` does); a woken waiter that loses such a race keeps
/// its place at the head of the queue.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use conex::threading::Lock;
///
/// let lock = Lock::new();
/// {
///     let _guard = lock.lock().await; // with lock:
///     assert!(lock.locked());
/// }
/// assert!(!lock.locked());
///
/// // Python's unowned acquire()/release(), release from anywhere:
/// lock.acquire().await;
/// let other = lock.clone();
/// tokio::spawn(async move { other.release().unwrap() }).await.unwrap();
/// assert!(!lock.locked());
/// # }
/// ```
#[derive(Clone)]
pub struct Lock {
    pub(crate) permits: Arc<Permits>,
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

impl Lock {
    /// A new, unlocked lock.
    ///
    /// Python: `threading.Lock()`.
    pub fn new() -> Lock {
        Lock {
            permits: Arc::new(Permits::new(1)),
        }
    }

    /// Acquires the lock, waiting as long as it takes; it stays locked until
    /// [`release`](Lock::release) is called (by anyone).
    ///
    /// Python: `Lock.acquire()`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes leaves the lock untouched and
    /// gives up the caller's place in line; a wake-up it had received is
    /// passed on to the next waiter. Once it completes, the lock is held.
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.permits.acquire(), |_| ()))
    }

    /// Acquires the lock only if it is free right now.
    ///
    /// Python: `Lock.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.permits.try_acquire()
    }

    /// Acquires the lock, waiting at most `timeout` (tokio's clock: needs a
    /// tokio runtime with time enabled). Returns whether it was acquired.
    ///
    /// Python: `Lock.acquire(timeout=...)`.
    ///
    /// # Cancel safety
    /// As [`acquire`](Lock::acquire): a dropped future holds nothing.
    pub fn acquire_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::timeout(self.permits.acquire(), timeout)
    }

    /// Releases the lock; any task or thread may do so.
    ///
    /// Python: `Lock.release()`.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if the lock is not locked.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.permits
            .release(1, 1)
            .map_err(|_| ReleaseError::Unlocked)
    }

    /// Whether the lock is held right now.
    ///
    /// Python: `Lock.locked()`.
    pub fn locked(&self) -> bool {
        self.permits.available() == 0
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    ///
    /// Python: `with lock:`.
    ///
    /// # Cancel safety
    /// As [`acquire`](Lock::acquire): a dropped future holds nothing.
    pub fn lock(&self) -> impl Future<Output = LockGuard<'_>> + Send + '_ {
        WaitFuture::new(MapOp::new(self.permits.acquire(), move |_| LockGuard {
            lock: self,
        }))
    }

    /// A guard if the lock is free right now.
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.try_acquire().then(|| LockGuard { lock: self })
    }

    /// A guard, waiting at most `timeout` (tokio's clock).
    ///
    /// # Cancel safety
    /// As [`acquire`](Lock::acquire): a dropped future holds nothing.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Option<LockGuard<'_>>> + Send + '_ {
        WaitFuture::timeout(
            MapOp::new(self.permits.acquire(), move |ok: bool| {
                ok.then(|| LockGuard { lock: self })
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

    /// The blocking facade: the same lock, for OS threads.
    pub fn blocking(&self) -> BlockingLock<'_> {
        BlockingLock { lock: self }
    }

    pub(crate) fn same_as(&self, other: &Lock) -> bool {
        Arc::ptr_eq(&self.permits, &other.permits)
    }
}

/// The scoped hold of a [`Lock`]: released on drop.
///
/// Python: the body of `with lock:`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(crate) lock: &'a Lock,
}

impl LockGuard<'_> {
    /// The lock this guard holds.
    pub fn source(&self) -> &Lock {
        self.lock
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // Only fails if someone released the lock behind the guard's back
        // (Python allows that); there is nothing left to release then.
        let _ = self.lock.release();
    }
}

/// The blocking facade of a [`Lock`]: the same methods, waiting by parking
/// the OS thread.
///
/// Works without any tokio runtime. On a multi-thread runtime's worker it
/// waits through `tokio::task::block_in_place`; on the thread driving a
/// current-thread runtime it panics rather than deadlock (use `.await`).
///
/// # Examples
///
/// ```
/// use conex::threading::Lock;
///
/// let lock = Lock::new();
/// let l2 = lock.clone();
/// let t = std::thread::spawn(move || {
///     let _g = l2.blocking().lock();
///     // ... critical section ...
/// });
/// t.join().unwrap();
/// assert!(lock.blocking().acquire_timeout(std::time::Duration::from_millis(10)));
/// lock.release().unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct BlockingLock<'a> {
    lock: &'a Lock,
}

impl fmt::Debug for BlockingLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingLock").field(self.lock).finish()
    }
}

impl<'a> BlockingLock<'a> {
    /// Acquires the lock, blocking the thread as long as it takes.
    ///
    /// Python: `Lock.acquire()`.
    #[track_caller]
    pub fn acquire(&self) {
        if !self.lock.permits.try_acquire() {
            block_on(self.lock.permits.acquire(), None);
        }
    }

    /// Acquires the lock only if it is free right now.
    pub fn try_acquire(&self) -> bool {
        self.lock.try_acquire()
    }

    /// Acquires the lock, blocking at most `timeout`. Returns whether it was
    /// acquired.
    ///
    /// Python: `Lock.acquire(timeout=...)`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.permits.try_acquire()
            || block_on(self.lock.permits.acquire(), std_deadline(timeout))
    }

    /// Releases the lock (from any thread).
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if the lock is not locked.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.lock.release()
    }

    /// Whether the lock is held right now.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    pub fn lock(&self) -> LockGuard<'a> {
        self.acquire();
        LockGuard { lock: self.lock }
    }

    /// A guard if the lock is free right now.
    pub fn try_lock(&self) -> Option<LockGuard<'a>> {
        self.lock.try_lock()
    }

    /// A guard, blocking at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'a>> {
        self.acquire_timeout(timeout)
            .then(|| LockGuard { lock: self.lock })
    }
}
