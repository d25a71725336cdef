//! `Condition`: Python's `threading.Condition` / `asyncio.Condition`, bound
//! to a `Lock` or an `RLock`.

use std::fmt;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use super::rlock::{RAcquire, Saved};
use super::{Lock, NotOwned, RLock, ReleaseError};
use crate::shim::Arc;
use crate::wait::permits::{Acquire, Permits};
use crate::wait::{Key, MapOp, WaitCx, WaitFuture, WaitList, WaitOp, block_on, std_deadline};

/// The workings of [`ConditionLock`]: public items of a private module, so
/// the condition reaches them and a user cannot name them.
mod sealed;

use sealed::{GuardOf, LockKind, Sealed};

/// The locks a [`Condition`] can be built on: [`Lock`] and [`RLock`]
/// (sealed).
pub trait ConditionLock: Sealed + Clone + Send + Sync + fmt::Debug + 'static {
    /// The scoped guard of this lock, which `Condition::wait` takes and
    /// gives back.
    type Guard<'a>: Send + Unpin + fmt::Debug + GuardOf<'a, Self>
    where
        Self: 'a;
}

impl ConditionLock for Lock {
    type Guard<'a> = super::LockGuard<'a>;
}

impl ConditionLock for RLock {
    type Guard<'a> = super::RLockGuard<'a>;
}

/// A guard for `lock`, which the caller has just acquired.
fn guard_of<L: ConditionLock>(lock: &L) -> L::Guard<'_> {
    <L::Guard<'_> as GuardOf<'_, L>>::make(lock)
}

impl<'a> LockKind<'a> {
    fn permits(self) -> &'a Permits {
        match self {
            LockKind::Plain(l) => &l.permits,
            LockKind::Reentrant(r) => &r.inner.permits,
        }
    }

    fn acquire(self) -> AnyAcquire<'a> {
        match self {
            LockKind::Plain(l) => AnyAcquire::Plain(l.permits.acquire()),
            LockKind::Reentrant(r) => AnyAcquire::Reentrant(r.op()),
        }
    }

    fn try_acquire(self) -> bool {
        match self {
            LockKind::Plain(l) => l.try_acquire(),
            LockKind::Reentrant(r) => r.try_acquire(),
        }
    }

    fn release(self) -> Result<(), ReleaseError> {
        match self {
            LockKind::Plain(l) => l.release(),
            LockKind::Reentrant(r) => r.release(),
        }
    }

    /// Python's `Condition._is_owned`: locked (by anyone) for a `Lock`,
    /// owned by the caller for an `RLock`.
    fn is_owned(self) -> bool {
        match self {
            LockKind::Plain(l) => l.locked(),
            LockKind::Reentrant(r) => r.is_owned(),
        }
    }

    fn same(self, other: LockKind<'_>) -> bool {
        match (self, other) {
            (LockKind::Plain(a), LockKind::Plain(b)) => a.same_as(b),
            (LockKind::Reentrant(a), LockKind::Reentrant(b)) => a.same_as(b),
            _ => false,
        }
    }

    /// Releases the lock completely (all levels of an RLock).
    fn save(self) -> Option<Saved> {
        match self {
            LockKind::Plain(l) => {
                let _ = l.release();
                None
            }
            LockKind::Reentrant(r) => Some(r.inner.save()),
        }
    }

    /// Called with the lock's permit held again.
    fn restore(self, saved: Option<Saved>) {
        if let (LockKind::Reentrant(r), Some(saved)) = (self, saved) {
            r.inner.restore(saved);
        }
    }
}

enum AnyAcquire<'a> {
    Plain(Acquire<'a>),
    Reentrant(RAcquire<'a>),
}

impl WaitOp for AnyAcquire<'_> {
    type Output = bool;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<bool> {
        match self {
            AnyAcquire::Plain(op) => op.poll_op(cx),
            AnyAcquire::Reentrant(op) => op.poll_op(cx),
        }
    }
}

/// A condition variable: tasks and threads wait on it, holding its lock,
/// until another notifies them.
///
/// Python: `threading.Condition` / `asyncio.Condition`. The default lock is
/// a new [`RLock`] (as in Python); [`Condition::with_lock`] builds one on a
/// given [`Lock`] or `RLock`, and several conditions may share one lock.
///
/// Waiting takes the lock's guard and gives it back: `wait` releases the
/// lock (every level of an `RLock`), waits for a notification, and
/// re-acquires it (restoring the level) before returning, also after a
/// timeout. Waiters are woken in FIFO order and only by a notification
/// (no spurious wake-ups).
///
/// # Cancellation: why `wait` consumes the guard
/// Python's `wait` re-acquires the lock even when it is cancelled. A dropped
/// Rust future cannot await anything, so that cannot carry over; instead the
/// guard moves into the wait future. If the future is dropped while the lock
/// is released, the guard goes with it, so no code can go on believing it
/// holds the lock. A notification the dropped waiter had received is passed
/// to the next waiter (Python 3.13's fix), so none is lost.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::Condition;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let cond = Condition::new();
/// let items = Arc::new(AtomicUsize::new(0));
///
/// let (c2, i2) = (cond.clone(), items.clone());
/// let consumer = tokio::spawn(async move {
///     let g = c2.lock().await;
///     let _g = c2.wait_for(g, || i2.load(Ordering::SeqCst) > 0).await.unwrap();
///     i2.fetch_sub(1, Ordering::SeqCst)
/// });
///
/// let g = cond.lock().await;
/// items.fetch_add(1, Ordering::SeqCst);
/// cond.notify(1).unwrap();
/// drop(g);
/// assert_eq!(consumer.await.unwrap(), 1);
/// # }
/// ```
pub struct Condition<L: ConditionLock = RLock> {
    inner: Arc<CondInner<L>>,
}

struct CondInner<L> {
    lock: L,
    waiters: WaitList<()>,
}

impl<L: ConditionLock> Clone for Condition<L> {
    fn clone(&self) -> Self {
        Condition {
            inner: self.inner.clone(),
        }
    }
}

impl<L: ConditionLock> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.inner.lock)
            .finish_non_exhaustive()
    }
}

impl Default for Condition<RLock> {
    fn default() -> Self {
        Condition::new()
    }
}

impl Condition<RLock> {
    /// A condition on a new [`RLock`].
    ///
    /// Python: `threading.Condition()`.
    pub fn new() -> Condition<RLock> {
        Condition::with_lock(RLock::new())
    }
}

impl<L: ConditionLock> Condition<L> {
    /// A condition on `lock` (a [`Lock`] or an [`RLock`], possibly shared
    /// with other conditions).
    ///
    /// Python: `threading.Condition(lock)`.
    pub fn with_lock(lock: L) -> Condition<L> {
        Condition {
            inner: Arc::new(CondInner {
                lock,
                waiters: WaitList::new(()),
            }),
        }
    }

    /// The lock this condition is bound to.
    ///
    /// Python: `Condition._lock`.
    pub fn underlying_lock(&self) -> &L {
        &self.inner.lock
    }

    fn kind(&self) -> LockKind<'_> {
        self.inner.lock.kind()
    }

    /// Acquires the underlying lock (Python-style, no guard).
    ///
    /// Python: `Condition.acquire()`.
    ///
    /// # Cancel safety
    /// As [`Lock::acquire`]: a dropped future holds nothing.
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.kind().acquire(), |_| ()))
    }

    /// Acquires the underlying lock if that needs no waiting.
    pub fn try_acquire(&self) -> bool {
        self.kind().try_acquire()
    }

    /// Acquires the underlying lock, waiting at most `timeout` (tokio's
    /// clock).
    ///
    /// # Cancel safety
    /// As [`Lock::acquire`].
    pub fn acquire_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::timeout(self.kind().acquire(), timeout)
    }

    /// Releases the underlying lock (Python-style).
    ///
    /// Python: `Condition.release()`.
    ///
    /// # Errors
    /// As the lock's own `release`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.kind().release()
    }

    /// Acquires the underlying lock and returns its guard, which
    /// [`wait`](Condition::wait) takes.
    ///
    /// Python: `with cond:`.
    ///
    /// # Cancel safety
    /// As [`Lock::acquire`].
    pub fn lock(&self) -> impl Future<Output = L::Guard<'_>> + Send + '_ {
        let lock = &self.inner.lock;
        WaitFuture::new(MapOp::new(lock.kind().acquire(), move |_| guard_of(lock)))
    }

    /// The guard, if the lock can be taken without waiting.
    pub fn try_lock(&self) -> Option<L::Guard<'_>> {
        self.try_acquire().then(|| guard_of(&self.inner.lock))
    }

    /// The guard, waiting at most `timeout` (tokio's clock).
    ///
    /// # Cancel safety
    /// As [`Lock::acquire`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Option<L::Guard<'_>>> + Send + '_ {
        let lock = &self.inner.lock;
        WaitFuture::timeout(
            MapOp::new(lock.kind().acquire(), move |ok: bool| {
                ok.then(|| guard_of(lock))
            }),
            timeout,
        )
    }

    fn wait_op<'g>(&self, guard: L::Guard<'g>) -> CondWait<'_, 'g, L> {
        let source = guard.source().kind();
        assert!(
            source.same(self.kind()),
            "Condition::wait: the guard is not of this condition's lock"
        );
        CondWait {
            cond: &self.inner,
            guard: Some(guard),
            stage: Stage::Start,
        }
    }

    /// Releases the lock, waits for a notification, re-acquires the lock and
    /// gives its guard back.
    ///
    /// Python: `Condition.wait()`.
    ///
    /// # Errors
    /// [`NotOwned`] if the caller does not hold the lock (Python's
    /// `RuntimeError: cannot wait on un-acquired lock`): an `RLock` owned by
    /// another task or thread, or a lock released Python-style while this
    /// guard was kept. The lock is left as it was and the stale guard is
    /// consumed without releasing anything.
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock.
    ///
    /// # Cancel safety
    /// The guard moves into the future. Dropped before the lock was released:
    /// the guard is dropped normally (the lock is released). Dropped later:
    /// the lock is already released and the guard is gone with the future,
    /// so the caller cannot believe it still holds the lock; a notification
    /// it had received is passed on to the next waiter.
    #[track_caller]
    pub fn wait<'g>(
        &self,
        guard: L::Guard<'g>,
    ) -> impl Future<Output = Result<L::Guard<'g>, NotOwned>> + Send {
        WaitFuture::new(MapOp::new(self.wait_op(guard), |r: Result<_, _>| {
            r.map(|(g, _)| g)
        }))
    }

    /// As [`wait`](Condition::wait), giving up waiting for a notification
    /// after `timeout` (tokio's clock). The lock is re-acquired either way
    /// (that part is not bounded by the timeout); the flag is `false` if no
    /// notification came.
    ///
    /// Python: `Condition.wait(timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as for [`wait`](Condition::wait).
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock.
    ///
    /// # Cancel safety
    /// As [`wait`](Condition::wait).
    #[track_caller]
    pub fn wait_timeout<'g>(
        &self,
        guard: L::Guard<'g>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(L::Guard<'g>, bool), NotOwned>> + Send {
        WaitFuture::timeout(self.wait_op(guard), timeout)
    }

    /// Waits until `predicate` returns true, evaluating it with the lock
    /// held: first at once, then after each notification.
    ///
    /// Python: `Condition.wait_for(predicate)`.
    ///
    /// # Errors
    /// [`NotOwned`] as for [`wait`](Condition::wait), once the predicate
    /// was false and a wait was needed (as in Python).
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock.
    ///
    /// # Cancel safety
    /// As [`wait`](Condition::wait). The predicate is never running when the
    /// future is dropped (it is synchronous).
    #[track_caller]
    pub fn wait_for<'g, P>(
        &self,
        guard: L::Guard<'g>,
        predicate: P,
    ) -> impl Future<Output = Result<L::Guard<'g>, NotOwned>> + Send
    where
        P: FnMut() -> bool + Send + Unpin,
    {
        WaitFuture::new(MapOp::new(
            self.wait_for_op(guard, predicate),
            |r: Result<_, _>| r.map(|(g, _)| g),
        ))
    }

    /// As [`wait_for`](Condition::wait_for), for at most `timeout` (tokio's
    /// clock). Returns the guard and the predicate's last value.
    ///
    /// Python: `Condition.wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as for [`wait_for`](Condition::wait_for).
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock.
    ///
    /// # Cancel safety
    /// As [`wait`](Condition::wait).
    #[track_caller]
    pub fn wait_for_timeout<'g, P>(
        &self,
        guard: L::Guard<'g>,
        timeout: Duration,
        predicate: P,
    ) -> impl Future<Output = Result<(L::Guard<'g>, bool), NotOwned>> + Send
    where
        P: FnMut() -> bool + Send + Unpin,
    {
        WaitFuture::timeout(self.wait_for_op(guard, predicate), timeout)
    }

    fn wait_for_op<'g, P: FnMut() -> bool>(
        &self,
        guard: L::Guard<'g>,
        predicate: P,
    ) -> CondWaitFor<'_, 'g, L, P> {
        CondWaitFor {
            wait: self.wait_op(guard),
            predicate,
            waiting: false,
        }
    }

    /// Wakes up to `n` waiters (oldest first). Waiters that arrive later are
    /// not affected: a notification with nobody waiting is not stored.
    ///
    /// Python: `Condition.notify(n=1)`.
    ///
    /// # Errors
    /// [`NotOwned`] if the caller does not hold the lock (for a [`Lock`],
    /// if it is not locked at all, as Python checks).
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        if !self.kind().is_owned() {
            return Err(NotOwned);
        }
        self.inner.waiters.lock().notify(n, 0);
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// Python: `Condition.notify_all()`.
    ///
    /// # Errors
    /// [`NotOwned`] as for [`notify`](Condition::notify).
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        if !self.kind().is_owned() {
            return Err(NotOwned);
        }
        self.inner.waiters.notify_all(0);
        Ok(())
    }

    /// How many tasks and threads wait for a notification right now: a
    /// snapshot, for monitoring and tests (Python keeps it private, as
    /// `Condition._waiters`; the name is `Barrier.n_waiting`'s).
    pub fn n_waiting(&self) -> usize {
        self.inner.waiters.len()
    }

    /// The blocking facade: the same condition, for OS threads.
    pub fn blocking(&self) -> BlockingCondition<'_, L> {
        BlockingCondition { cond: self }
    }
}

enum Stage<'c> {
    /// Holding the lock, not registered yet.
    Start,
    /// Registered; the lock is released.
    Waiting {
        key: Option<Key>,
        saved: Option<Saved>,
    },
    /// Notified (or timed out): taking the lock back.
    Reacquire {
        op: Acquire<'c>,
        saved: Option<Saved>,
        notified: bool,
    },
    Done,
}

/// One `Condition::wait`: register, release, wait, re-acquire.
struct CondWait<'c, 'g, L: ConditionLock> {
    cond: &'c CondInner<L>,
    guard: Option<L::Guard<'g>>,
    stage: Stage<'c>,
}

impl<'c, 'g, L: ConditionLock> WaitOp for CondWait<'c, 'g, L> {
    type Output = Result<(L::Guard<'g>, bool), NotOwned>;
    const SPIN: bool = false;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Self::Output> {
        let kind = self.cond.lock.kind();
        loop {
            match &mut self.stage {
                Stage::Start => {
                    // Python's `_is_owned` check comes first: a caller
                    // that released the lock Python-style while keeping
                    // its guard gets an error, and the lock (taken by
                    // nobody, or by someone else now) is left alone. The
                    // guard is stale: forgotten, so it releases nothing.
                    if !kind.is_owned() {
                        self.stage = Stage::Done;
                        std::mem::forget(self.guard.take());
                        return Poll::Ready(Err(NotOwned));
                    }
                    if !cx.can_wait() {
                        return Poll::Pending;
                    }
                    // Register before releasing: a notifier needs the lock,
                    // so it cannot miss this waiter.
                    let mut key = None;
                    self.cond
                        .waiters
                        .lock()
                        .insert(&mut key, cx.waiter(), false);
                    let saved = kind.save();
                    self.stage = Stage::Waiting { key, saved };
                }
                Stage::Waiting { key, saved } => {
                    let mut l = self.cond.waiters.lock();
                    let notified = match l.poll(key, cx.waiter()) {
                        Some(_) => true,
                        None if cx.timed_out() => false,
                        None => return Poll::Pending,
                    };
                    l.remove(key);
                    drop(l);
                    let saved = saved.take();
                    self.stage = Stage::Reacquire {
                        op: kind.permits().acquire(),
                        saved,
                        notified,
                    };
                }
                Stage::Reacquire {
                    op,
                    saved,
                    notified,
                } => {
                    // Taking the lock back is not bounded by the timeout.
                    let mut inner = WaitCx::new(*cx.waiter(), false);
                    if op.poll_op(&mut inner).is_pending() {
                        return Poll::Pending;
                    }
                    kind.restore(saved.take());
                    let notified = *notified;
                    self.stage = Stage::Done;
                    let guard = self.guard.take().expect("CondWait: guard taken twice");
                    return Poll::Ready(Ok((guard, notified)));
                }
                Stage::Done => panic!("CondWait polled after completion"),
            }
        }
    }
}

impl<L: ConditionLock> Drop for CondWait<'_, '_, L> {
    fn drop(&mut self) {
        let pass_on = match &mut self.stage {
            // Still holding the lock: the guard releases it normally.
            Stage::Start | Stage::Done => return,
            Stage::Waiting { key, .. } => {
                let mut l = self.cond.waiters.lock();
                l.cancel(key, true);
                false
            }
            Stage::Reacquire { notified, .. } => *notified,
        };
        // The lock is released: the guard must not release it again.
        std::mem::forget(self.guard.take());
        if pass_on {
            // The notification was consumed but never acted on.
            self.cond.waiters.lock().notify(1, 0);
        }
    }
}

/// `Condition::wait_for`: check, wait, check again.
struct CondWaitFor<'c, 'g, L: ConditionLock, P> {
    wait: CondWait<'c, 'g, L>,
    predicate: P,
    waiting: bool,
}

impl<'c, 'g, L: ConditionLock, P: FnMut() -> bool> WaitOp for CondWaitFor<'c, 'g, L, P> {
    type Output = Result<(L::Guard<'g>, bool), NotOwned>;
    const SPIN: bool = false;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Self::Output> {
        loop {
            if self.waiting {
                match self.wait.poll_op(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok((guard, _))) => {
                        self.wait.guard = Some(guard);
                        self.wait.stage = Stage::Start;
                        self.waiting = false;
                    }
                }
            }
            let value = (self.predicate)();
            if value || cx.timed_out() {
                self.wait.stage = Stage::Done;
                let guard = self.wait.guard.take().expect("CondWaitFor: no guard");
                return Poll::Ready(Ok((guard, value)));
            }
            if !cx.can_wait() {
                return Poll::Pending;
            }
            self.waiting = true;
        }
    }
}

/// The blocking facade of a [`Condition`]; see
/// [`BlockingLock`](super::BlockingLock) for where it may block.
///
/// # Examples
///
/// ```
/// use conex::threading::Condition;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let cond = Condition::new();
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c2, r2) = (cond.clone(), ready.clone());
/// let t = std::thread::spawn(move || {
///     let g = c2.blocking().lock();
///     let _g = c2.blocking().wait_for(g, || r2.load(Ordering::SeqCst)).unwrap();
/// });
/// {
///     let _g = cond.blocking().lock();
///     ready.store(true, Ordering::SeqCst);
///     cond.notify_all().unwrap();
/// }
/// t.join().unwrap();
/// ```
pub struct BlockingCondition<'a, L: ConditionLock = RLock> {
    cond: &'a Condition<L>,
}

impl<L: ConditionLock> Clone for BlockingCondition<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L: ConditionLock> Copy for BlockingCondition<'_, L> {}

impl<L: ConditionLock> fmt::Debug for BlockingCondition<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingCondition").field(self.cond).finish()
    }
}

impl<'a, L: ConditionLock> BlockingCondition<'a, L> {
    /// Acquires the underlying lock, blocking.
    #[track_caller]
    pub fn acquire(&self) {
        block_on(self.cond.kind().acquire(), None);
    }

    /// Acquires the underlying lock if that needs no waiting.
    pub fn try_acquire(&self) -> bool {
        self.cond.try_acquire()
    }

    /// Acquires the underlying lock, blocking at most `timeout`.
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        block_on(self.cond.kind().acquire(), std_deadline(timeout))
    }

    /// Releases the underlying lock.
    ///
    /// # Errors
    /// As the lock's own `release`.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.cond.release()
    }

    /// Acquires the underlying lock and returns its guard.
    pub fn lock(&self) -> L::Guard<'a> {
        self.acquire();
        guard_of(&self.cond.inner.lock)
    }

    /// The guard, if the lock can be taken without waiting.
    pub fn try_lock(&self) -> Option<L::Guard<'a>> {
        self.cond.try_lock()
    }

    /// The guard, blocking at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<L::Guard<'a>> {
        self.acquire_timeout(timeout)
            .then(|| guard_of(&self.cond.inner.lock))
    }

    /// Releases the lock, blocks until notified, re-acquires it.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    ///
    /// # Panics
    /// If `guard` is not a guard of this condition's lock.
    #[track_caller]
    pub fn wait<'g>(&self, guard: L::Guard<'g>) -> Result<L::Guard<'g>, NotOwned> {
        block_on(self.cond.wait_op(guard), None).map(|(g, _)| g)
    }

    /// As [`wait`](Self::wait), waiting for a notification at most `timeout`;
    /// the flag is `false` if none came.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    #[track_caller]
    pub fn wait_timeout<'g>(
        &self,
        guard: L::Guard<'g>,
        timeout: Duration,
    ) -> Result<(L::Guard<'g>, bool), NotOwned> {
        block_on(self.cond.wait_op(guard), std_deadline(timeout))
    }

    /// Blocks until `predicate` returns true (evaluated with the lock held).
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    #[track_caller]
    pub fn wait_for<'g>(
        &self,
        guard: L::Guard<'g>,
        predicate: impl FnMut() -> bool,
    ) -> Result<L::Guard<'g>, NotOwned> {
        block_on(self.cond.wait_for_op(guard, predicate), None).map(|(g, _)| g)
    }

    /// As [`wait_for`](Self::wait_for), for at most `timeout`; returns the
    /// predicate's last value.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    #[track_caller]
    pub fn wait_for_timeout<'g>(
        &self,
        guard: L::Guard<'g>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<(L::Guard<'g>, bool), NotOwned> {
        block_on(
            self.cond.wait_for_op(guard, predicate),
            std_deadline(timeout),
        )
    }

    /// Wakes up to `n` waiters.
    ///
    /// # Errors
    /// As [`Condition::notify`].
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        self.cond.notify(n)
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    /// As [`Condition::notify`].
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        self.cond.notify_all()
    }
}
