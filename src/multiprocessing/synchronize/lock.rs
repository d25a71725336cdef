//! The cross-process `Lock`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::block::Block;
use super::sem::{Sem, deadline};
use crate::threading::ReleaseError;

/// A lock shared by processes. Python: `multiprocessing.Lock()`.
///
/// The semantics of [`threading::Lock`](crate::threading::Lock): any
/// process, task or thread may release it (as in Python), releasing it
/// unlocked is [`ReleaseError::Unlocked`]. Pass it to a child as an
/// argument; both hold the same lock.
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
    sem: Sem,
}

super::serde_via_block!(Lock, |block| Lock {
    sem: Sem {
        block: block.clone(),
        base: 0
    },
    block,
});

impl Lock {
    /// A new, unlocked lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<Lock> {
        let block = Arc::new(Block::new(16)?);
        let sem = Sem::init(block.clone(), 0, 1, 1);
        Ok(Lock { block, sem })
    }

    /// Waits for the lock. Python: `acquire()`.
    pub async fn acquire(&self) {
        self.sem.acquire_async(None).await;
    }

    /// Takes the lock if it is free. Python: `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// Waits at most `timeout`; returns whether it got the lock. Python:
    /// `acquire(timeout=t)`.
    pub async fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.acquire_async(deadline(timeout)).await
    }

    /// Releases it. Python: `release()`.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if it is not locked.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.sem.release(1).map_err(|_| ReleaseError::Unlocked)
    }

    /// Whether it is held. Python: `Lock` has no `locked()` in
    /// multiprocessing before 3.14; this is threading's.
    pub fn locked(&self) -> bool {
        self.sem.get_value() == 0
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
        self.lock.sem.acquire_blocking(None, None);
    }

    /// [`Lock::acquire_timeout`], blocking.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.sem.acquire_blocking(deadline(timeout), None)
    }

    /// [`Lock::lock`], blocking.
    pub fn lock(&self) -> LockGuard<'a> {
        self.acquire();
        LockGuard { lock: self.lock }
    }
}
