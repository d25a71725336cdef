//! The cross-process `Lock`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::block::Block;
use super::robust::{self, RobustLock, Taken};
use super::sem::deadline;
use crate::threading::ReleaseError;

/// A lock shared by processes. Python: `multiprocessing.Lock()`.
///
/// The semantics of [`threading::Lock`](crate::threading::Lock): any
/// process, task or thread may release it (as in Python), releasing it
/// unlocked is [`ReleaseError::Unlocked`]. Pass it to a child as an
/// argument; both hold the same lock.
///
/// # A holder killed
/// Unlike CPython's, the lock remembers the process that took it. If that
/// process dies holding it (killed, or exited inside `with lock:`), a
/// waiter takes it over: a blocking waiter once it has waited a few
/// milliseconds, an async one within about 100 ms (a warning names the
/// dead pid). What the lock guarded may be half-changed, as after a panic
/// under a `std::sync::Mutex`. A lock taken by one process and released
/// by another (allowed, as in Python) is still released normally; if its
/// taker dies before the other process releases it, a waiter may take it
/// over first. The processes must share a PID namespace.
///
/// # Cancel safety
/// A dropped `acquire` holds nothing: a waiting task takes the lock in its
/// own poll (one CAS), so dropped it has taken nothing, and a wake-up it
/// was given goes to the next waiter. Waiting tasks take no thread each:
/// one thread per process sleeps on the lock for all of them.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let lock = conex::multiprocessing::Lock::new()?;
/// {
///     let _g = lock.lock().await; // with lock:
///     assert!(lock.locked());
///     assert!(!lock.try_acquire());
/// }
/// assert!(!lock.locked());
/// assert!(lock.blocking().acquire_timeout(std::time::Duration::from_millis(1)));
/// lock.release().unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lock {
    block: Arc<Block>,
}

super::serde_via_block!(Lock, |block| Lock { block });

impl Lock {
    /// A new, unlocked lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<Lock> {
        Ok(Lock {
            block: Arc::new(Block::new(16)?),
        })
    }

    fn word(&self) -> RobustLock<'_> {
        RobustLock::at(&self.block, 0)
    }

    /// What a wait's answer means: taken (true), timed out (false), or a
    /// takeover a release beat to the word (`None`: wait again).
    fn taken(&self, t: Option<Taken>) -> Option<bool> {
        match t {
            None => Some(false),
            Some(Taken::Free) => Some(true),
            Some(Taken::FromDead(_)) => self.word().adopt().then_some(true),
        }
    }

    async fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            let t = robust::lock_async(&self.block, 0, deadline).await;
            if let Some(got) = self.taken(t) {
                return got;
            }
        }
    }

    fn acquire_blocking_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if let Some(got) = self.taken(self.word().lock(deadline)) {
                return got;
            }
        }
    }

    /// Waits for the lock. Python: `acquire()`.
    pub async fn acquire(&self) {
        self.acquire_until(None).await;
    }

    /// Takes the lock if it is free. Python: `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.word().try_lock()
    }

    /// Waits at most `timeout`; returns whether it got the lock. Python:
    /// `acquire(timeout=t)`.
    pub async fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(deadline(timeout)).await
    }

    /// Releases it. Python: `release()`.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if it is not locked.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.word().unlock() {
            Ok(())
        } else {
            Err(ReleaseError::Unlocked)
        }
    }

    /// Whether it is held. Python: `Lock` has no `locked()` in
    /// multiprocessing before 3.14; this is threading's.
    pub fn locked(&self) -> bool {
        self.word().holder() != 0
    }

    /// Waits for the lock and holds it until the guard drops. Python:
    /// `with lock:`.
    pub async fn lock(&self) -> LockGuard<'_> {
        self.acquire().await;
        LockGuard { lock: self }
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingLock<'_> {
        BlockingLock { lock: self }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// Holds a [`Lock`]; releases it on drop.
#[must_use = "the lock is released when the guard drops"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

/// The blocking facade of a [`Lock`].
#[derive(Debug)]
pub struct BlockingLock<'a> {
    lock: &'a Lock,
}

impl<'a> BlockingLock<'a> {
    /// [`Lock::acquire`], blocking.
    pub fn acquire(&self) {
        self.lock.acquire_blocking_until(None);
    }

    /// [`Lock::acquire_timeout`], blocking.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.acquire_blocking_until(deadline(timeout))
    }

    /// [`Lock::lock`], blocking.
    pub fn lock(&self) -> LockGuard<'a> {
        self.acquire();
        LockGuard { lock: self.lock }
    }
}
