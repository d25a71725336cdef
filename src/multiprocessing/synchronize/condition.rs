//! The cross-process `Condition`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::block::Block;
use super::futex;
use super::rlock::{RLock, RLockGuard, me};
use super::sem::{Sem, deadline};
use crate::threading::NotOwned;

// Three semaphores in the block, as Python's multiprocessing.Condition:
// sleepers announced, sleepers woken, and the one they sleep on.
const SLEEPING: usize = 0;
const WOKEN: usize = 16;
const WAIT: usize = 32;

/// A condition variable shared by processes, over a cross-process
/// [`RLock`]. Python: `multiprocessing.Condition(lock=None)`.
///
/// The calls of [`threading::Condition`](crate::threading::Condition):
/// [`lock`](Condition::lock) gives a guard, [`wait`](Condition::wait)
/// takes it, releases every level of the lock while it sleeps, and gives
/// it back re-acquired; [`notify`](Condition::notify) and
/// [`notify_all`](Condition::notify_all) need the lock. The algorithm is
/// Python's (`multiprocessing.synchronize.Condition`): a notifier wakes
/// `n` announced sleepers and waits until they are awake, so no
/// notification reaches a waiter that came later.
///
/// # Cancel safety
/// A dropped `wait` has given its guard away: the caller cannot believe
/// it still holds the lock. The lock it re-takes on waking is released
/// for it, and a notification it was woken by is passed on to another
/// sleeper.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
///
/// let c = conex::multiprocessing::Condition::new()?;
/// let g = c.lock().await;
/// let (g, notified) = c.wait_timeout(g, Duration::from_millis(5)).await.unwrap();
/// assert!(!notified);
/// c.notify_all().unwrap();
/// drop(g);
/// assert!(c.notify(1).is_err()); // not holding the lock
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Condition {
    block: Arc<Block>,
    lock: RLock,
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&*self.block, &self.lock).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
        let (block, lock) = <(Block, RLock)>::deserialize(d)?;
        Ok(Condition {
            block: Arc::new(block),
            lock,
        })
    }
}

impl Condition {
    /// A condition over a new [`RLock`].
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<Condition> {
        Self::with_lock(RLock::new()?)
    }

    /// A condition over `lock` (shared with whoever else holds it).
    /// Python: `Condition(lock)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn with_lock(lock: RLock) -> std::io::Result<Condition> {
        let block = Arc::new(Block::new(48)?);
        for base in [SLEEPING, WOKEN, WAIT] {
            Sem::init(block.clone(), base, 0, Sem::MAX);
        }
        Ok(Condition { block, lock })
    }

    fn sem(&self, base: usize) -> Sem {
        Sem {
            block: self.block.clone(),
            base,
        }
    }

    /// Its lock.
    pub fn rlock(&self) -> &RLock {
        &self.lock
    }

    /// Acquires the lock. Python: `with cond:`.
    pub async fn lock(&self) -> RLockGuard<'_> {
        self.lock.lock().await
    }

    fn check<'g>(&self, guard: &RLockGuard<'g>) {
        assert!(
            self.lock.same(guard.rlock()),
            "Condition::wait was given the guard of another lock"
        );
    }

    /// The first half of a wait: announce a sleeper, release every level.
    /// Not held by the caller (a Python-style release while the guard was
    /// kept, or another owner): [`NotOwned`], the lock untouched and the
    /// stale guard forgotten, so it releases nothing.
    fn begin(&self, guard: RLockGuard<'_>) -> Result<((u32, u64), u32), NotOwned> {
        self.check(&guard);
        if !self.lock.is_owned() {
            std::mem::forget(guard);
            return Err(NotOwned);
        }
        let me = me();
        let _ = self.sem(SLEEPING).release(1);
        std::mem::forget(guard);
        let levels = self.lock.release_all(me);
        Ok((me, levels))
    }

    /// The sleep and the second half, blocking: returns whether a notify
    /// came (false at the deadline or on `cancel`).
    fn sleep(
        &self,
        me: (u32, u64),
        levels: u32,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> bool {
        let notified = self.sem(WAIT).acquire_blocking(deadline, cancel);
        let _ = self.sem(WOKEN).release(1);
        self.lock.restore_blocking(me, levels.max(1));
        notified
    }

    async fn wait_until<'g>(
        &self,
        guard: RLockGuard<'g>,
        deadline: Option<Instant>,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        let lock = guard.rlock();
        let (me, levels) = self.begin(guard)?;
        let (this, waker, undo) = (self.clone(), self.clone(), self.clone());
        let notified = futex::off_thread(
            move |cancel| this.sleep(me, levels, deadline, Some(cancel)),
            move || waker.sem(WAIT).wake_all(),
            move |notified| {
                // Dropped after waking: pass a notification on, then give
                // the re-taken lock back.
                if notified {
                    undo.notify_held(1);
                }
                for _ in 0..levels.max(1) {
                    let _ = undo.lock.release_as(me);
                }
            },
        )
        .await
        .unwrap_or(false);
        Ok((RLockGuard::held(lock), notified))
    }

    /// Releases the lock, sleeps until notified, re-acquires it. Python:
    /// `wait()`.
    ///
    /// # Errors
    /// [`NotOwned`] if the caller does not hold the lock (Python's
    /// `RuntimeError: cannot wait on un-acquired lock`); the lock is left
    /// as it was.
    ///
    /// # Panics
    /// If `guard` is another lock's.
    pub async fn wait<'g>(&self, guard: RLockGuard<'g>) -> Result<RLockGuard<'g>, NotOwned> {
        Ok(self.wait_until(guard, None).await?.0)
    }

    /// [`wait`](Condition::wait) for at most `timeout`; the flag says
    /// whether a notify came. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait`](Condition::wait).
    pub async fn wait_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_until(guard, deadline(timeout)).await
    }

    /// Waits until `predicate` holds (checked under the lock). Python:
    /// `wait_for(predicate)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait`](Condition::wait), once a wait is needed.
    pub async fn wait_for<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<RLockGuard<'g>, NotOwned> {
        while !predicate() {
            guard = self.wait(guard).await?;
        }
        Ok(guard)
    }

    /// [`wait_for`](Condition::wait_for) for at most `timeout`; the flag is
    /// the predicate's last value. Python: `wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait_for`](Condition::wait_for).
    pub async fn wait_for_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_for_until(guard, deadline(timeout), predicate)
            .await
    }

    pub(crate) async fn wait_for_until<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        end: Option<Instant>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok((guard, false));
            }
            guard = self.wait_until(guard, end).await?.0;
        }
    }

    /// Wakes up to `n` waiters (of any process). Python: `notify(n)`.
    ///
    /// # Errors
    /// [`NotOwned`] unless the caller holds the lock.
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        if !self.lock.is_owned() {
            return Err(NotOwned);
        }
        self.notify_held(n);
        Ok(())
    }

    /// Wakes every waiter. Python: `notify_all()`.
    ///
    /// # Errors
    /// [`NotOwned`] unless the caller holds the lock.
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        self.notify(usize::MAX)
    }

    /// Python's notify, by someone holding the lock.
    fn notify_held(&self, n: usize) {
        let (sleeping, woken, wait) = (self.sem(SLEEPING), self.sem(WOKEN), self.sem(WAIT));
        // Sleepers that timed out since the last notify are not sleeping.
        while woken.try_acquire() {
            let _ = sleeping.try_acquire();
        }
        let mut sleepers = 0;
        while sleepers < n && sleeping.try_acquire() {
            let _ = wait.release(1);
            sleepers += 1;
        }
        if sleepers > 0 {
            for _ in 0..sleepers {
                woken.acquire_blocking(None, None);
            }
            // Notifications a timed-out sleeper did not take: void.
            while wait.try_acquire() {}
        }
    }

    /// How many waiters, of every process, wait for a notification and were
    /// not notified yet: a snapshot, for monitoring and tests (as
    /// [`threading::Condition::n_waiting`](crate::threading::Condition::n_waiting)).
    pub fn n_waiting(&self) -> usize {
        self.sem(SLEEPING)
            .get_value()
            .saturating_sub(self.sem(WOKEN).get_value()) as usize
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingCondition<'_> {
        BlockingCondition { c: self }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Condition")
            .field("lock", &self.lock)
            .finish()
    }
}

/// The blocking facade of a [`Condition`].
#[derive(Debug)]
pub struct BlockingCondition<'a> {
    c: &'a Condition,
}

impl<'a> BlockingCondition<'a> {
    /// [`Condition::lock`], blocking.
    pub fn lock(&self) -> RLockGuard<'a> {
        self.c.lock.blocking().lock()
    }

    fn wait_until<'g>(
        &self,
        guard: RLockGuard<'g>,
        deadline: Option<Instant>,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        let lock = guard.rlock();
        let (me, levels) = self.c.begin(guard)?;
        let notified = self.c.sleep(me, levels, deadline, None);
        Ok((RLockGuard::held(lock), notified))
    }

    /// [`Condition::wait`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    pub fn wait<'g>(&self, guard: RLockGuard<'g>) -> Result<RLockGuard<'g>, NotOwned> {
        Ok(self.wait_until(guard, None)?.0)
    }

    /// [`Condition::wait_timeout`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    pub fn wait_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_until(guard, deadline(timeout))
    }

    /// [`Condition::wait_for`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    pub fn wait_for<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<RLockGuard<'g>, NotOwned> {
        while !predicate() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`Condition::wait_for_timeout`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    pub fn wait_for_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_for_until(guard, deadline(timeout), predicate)
    }

    pub(crate) fn wait_for_until<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        end: Option<Instant>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok((guard, false));
            }
            guard = self.wait_until(guard, end)?.0;
        }
    }
}
