//! `RLock`: Python's reentrant `threading.RLock`, owned by a task or a
//! thread.

use std::fmt;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use super::ReleaseError;
use crate::shim::Arc;
use crate::shim::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use crate::wait::permits::{Acquire, Permits};
use crate::wait::{MapOp, WaitCx, WaitFuture, WaitOp, block_on, owner, std_deadline};

/// A reentrant lock: its owner may acquire it again, and must release it as
/// many times.
///
/// Python: `threading.RLock` (the default lock of `Condition`).
///
/// The owner is the *task* that acquired it when called from a tokio task
/// (tasks move between worker threads, so a thread would be the wrong
/// owner), and the OS thread otherwise (blocking facade, `Runtime::block_on`,
/// plain threads). Two branches of one task (`join!`/`select!`) are one
/// owner, as two calls on one Python thread are.
///
/// A guard from [`lock`](RLock::lock) releases its one level when dropped,
/// wherever it is dropped; the Python-style [`release`](RLock::release)
/// checks that the caller owns the lock.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use conex::threading::RLock;
///
/// let rlock = RLock::new();
/// let outer = rlock.lock().await;
/// let inner = rlock.lock().await; // same task: no deadlock
/// assert_eq!(rlock.recursion_count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!rlock.locked());
/// # }
/// ```
#[derive(Clone)]
pub struct RLock {
    pub(crate) inner: Arc<RLockInner>,
}

pub(crate) struct RLockInner {
    pub(crate) permits: Permits,
    owner: AtomicU64,
    count: AtomicUsize,
}

/// What `Condition::wait` saves while it has the lock released.
pub(crate) struct Saved {
    owner: u64,
    count: usize,
}

impl RLockInner {
    fn owned_by(&self, me: u64) -> bool {
        self.owner.load(Relaxed) == me
    }

    /// Called by the owner once the permit is held.
    fn take(&self, me: u64, count: usize) {
        self.owner.store(me, Relaxed);
        self.count.store(count, Relaxed);
    }

    /// Releases one level; the last level gives the permit back.
    fn release_level(&self) {
        if self.count.fetch_sub(1, Relaxed) == 1 {
            self.owner.store(0, Relaxed);
            let _ = self.permits.release(1, 1);
        }
    }

    pub(crate) fn save(&self) -> Saved {
        let saved = Saved {
            owner: self.owner.load(Relaxed),
            count: self.count.load(Relaxed),
        };
        self.count.store(0, Relaxed);
        self.owner.store(0, Relaxed);
        let _ = self.permits.release(1, 1);
        saved
    }

    /// Called once the permit is held again.
    pub(crate) fn restore(&self, saved: Saved) {
        self.take(saved.owner, saved.count);
    }
}

impl Default for RLock {
    fn default() -> RLock {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .field("count", &self.inner.count.load(Relaxed))
            .finish()
    }
}

/// Acquires one level for the caller (`me` is taken at the first poll).
pub(crate) struct RAcquire<'a> {
    rl: &'a RLockInner,
    me: u64,
    permit: Option<Acquire<'a>>,
}

impl WaitOp for RAcquire<'_> {
    type Output = bool;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<bool> {
        if self.me == 0 {
            self.me = owner::current();
            if self.rl.owned_by(self.me) {
                self.rl.count.fetch_add(1, Relaxed);
                return Poll::Ready(true);
            }
        }
        let permit = self.permit.get_or_insert_with(|| self.rl.permits.acquire());
        match permit.poll_op(cx) {
            Poll::Ready(true) => {
                self.rl.take(self.me, 1);
                Poll::Ready(true)
            }
            other => other,
        }
    }
}

impl RLock {
    /// A new, unowned reentrant lock.
    ///
    /// Python: `threading.RLock()`.
    pub fn new() -> RLock {
        RLock {
            inner: Arc::new(RLockInner {
                permits: Permits::new(1),
                owner: AtomicU64::new(0),
                count: AtomicUsize::new(0),
            }),
        }
    }

    pub(crate) fn op(&self) -> RAcquire<'_> {
        RAcquire {
            rl: &self.inner,
            me: 0,
            permit: None,
        }
    }

    /// Acquires one level: at once if the caller owns the lock, otherwise
    /// once it is free.
    ///
    /// Python: `RLock.acquire()`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no level and gives up
    /// the caller's place in line (a wake-up it had received is passed on).
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.op(), |_| ()))
    }

    /// Acquires one level only if that needs no waiting.
    ///
    /// Python: `RLock.acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        let me = owner::current();
        if self.inner.owned_by(me) {
            self.inner.count.fetch_add(1, Relaxed);
            return true;
        }
        if self.inner.permits.try_acquire() {
            self.inner.take(me, 1);
            return true;
        }
        false
    }

    /// Acquires one level, waiting at most `timeout` (tokio's clock).
    ///
    /// Python: `RLock.acquire(timeout=...)`.
    ///
    /// # Cancel safety
    /// As [`acquire`](RLock::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::timeout(self.op(), timeout)
    }

    /// Releases one level; the last one unlocks.
    ///
    /// Python: `RLock.release()`.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if nobody holds it,
    /// [`ReleaseError::NotOwner`] if another task or thread does.
    pub fn release(&self) -> Result<(), ReleaseError> {
        let me = owner::current();
        match self.inner.owner.load(Relaxed) {
            0 => Err(ReleaseError::Unlocked),
            o if o != me => Err(ReleaseError::NotOwner),
            _ => {
                self.inner.release_level();
                Ok(())
            }
        }
    }

    /// Whether anyone holds the lock.
    ///
    /// Python: `RLock.locked()` (3.14).
    pub fn locked(&self) -> bool {
        self.inner.permits.available() == 0
    }

    /// Whether the caller (this task, or this thread outside tasks) holds it.
    ///
    /// Python: `RLock._is_owned()`.
    pub fn is_owned(&self) -> bool {
        self.inner.owned_by(owner::current())
    }

    /// How many levels the caller holds (0 if it does not own the lock).
    ///
    /// Python: `RLock._recursion_count()`.
    pub fn recursion_count(&self) -> usize {
        if self.is_owned() {
            self.inner.count.load(Relaxed)
        } else {
            0
        }
    }

    /// Acquires one level and returns a guard that releases it on drop.
    ///
    /// Python: `with rlock:`.
    ///
    /// # Cancel safety
    /// As [`acquire`](RLock::acquire).
    pub fn lock(&self) -> impl Future<Output = RLockGuard<'_>> + Send + '_ {
        WaitFuture::new(MapOp::new(self.op(), move |_| RLockGuard { rlock: self }))
    }

    /// A guard if no waiting is needed.
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.try_acquire().then(|| RLockGuard { rlock: self })
    }

    /// A guard, waiting at most `timeout` (tokio's clock).
    ///
    /// # Cancel safety
    /// As [`acquire`](RLock::acquire).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Option<RLockGuard<'_>>> + Send + '_ {
        WaitFuture::timeout(
            MapOp::new(self.op(), move |ok: bool| {
                ok.then(|| RLockGuard { rlock: self })
            }),
            timeout,
        )
    }

    /// How many tasks and threads wait to acquire right now: a snapshot,
    /// for monitoring and tests (Python has no public equivalent; the name
    /// is `Barrier.n_waiting`'s).
    pub fn n_waiting(&self) -> usize {
        self.inner.permits.waiters()
    }

    /// The blocking facade: the same lock, owned by the calling OS thread.
    pub fn blocking(&self) -> BlockingRLock<'_> {
        BlockingRLock { rlock: self }
    }

    pub(crate) fn same_as(&self, other: &RLock) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// One level of an [`RLock`], released on drop.
///
/// Python: the body of `with rlock:`.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    pub(crate) rlock: &'a RLock,
}

impl RLockGuard<'_> {
    /// The lock this guard holds a level of.
    pub fn source(&self) -> &RLock {
        self.rlock
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.rlock.inner.release_level();
    }
}

/// The blocking facade of an [`RLock`]; see [`BlockingLock`](super::BlockingLock)
/// for where it may block.
#[derive(Clone, Copy)]
pub struct BlockingRLock<'a> {
    rlock: &'a RLock,
}

impl fmt::Debug for BlockingRLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingRLock").field(self.rlock).finish()
    }
}

impl<'a> BlockingRLock<'a> {
    /// Acquires one level, blocking as long as it takes.
    ///
    /// Python: `RLock.acquire()`.
    #[track_caller]
    pub fn acquire(&self) {
        block_on(self.rlock.op(), None);
    }

    /// Acquires one level only if that needs no waiting.
    pub fn try_acquire(&self) -> bool {
        self.rlock.try_acquire()
    }

    /// Acquires one level, blocking at most `timeout`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        block_on(self.rlock.op(), std_deadline(timeout))
    }

    /// Releases one level.
    ///
    /// # Errors
    /// As [`RLock::release`].
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.rlock.release()
    }

    /// Whether anyone holds the lock.
    pub fn locked(&self) -> bool {
        self.rlock.locked()
    }

    /// Whether the calling thread holds it.
    pub fn is_owned(&self) -> bool {
        self.rlock.is_owned()
    }

    /// Acquires one level and returns its guard.
    pub fn lock(&self) -> RLockGuard<'a> {
        self.acquire();
        RLockGuard { rlock: self.rlock }
    }

    /// A guard if no waiting is needed.
    pub fn try_lock(&self) -> Option<RLockGuard<'a>> {
        self.rlock.try_lock()
    }

    /// A guard, blocking at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'a>> {
        self.acquire_timeout(timeout)
            .then(|| RLockGuard { rlock: self.rlock })
    }
}
