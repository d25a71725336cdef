//! The cross-process `RLock`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::block::Block;
use super::sem::{Sem, deadline};
use crate::threading::ReleaseError;

// Layout: the semaphore's words at 0..12, the owner's pid at 12, its task
// or thread id at 16, the recursion count at 24. Only the owner writes the
// last three, while it holds the semaphore.
const PID: usize = 12;
const ID: usize = 16;
const COUNT: usize = 24;

/// A reentrant lock shared by processes. Python: `multiprocessing.RLock()`.
///
/// The owner is a task (async calls inside a tokio task) or an OS thread
/// (the blocking facade, or outside tasks) *of one process*, as in
/// [`threading::RLock`](crate::threading::RLock); it may acquire again and
/// must release as many times. A release by anyone else is
/// [`ReleaseError::NotOwner`].
///
/// # Cancel safety
/// A dropped `acquire` holds nothing.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let r = conex::multiprocessing::RLock::new()?;
/// r.acquire().await;
/// r.acquire().await;
/// assert_eq!(r.recursion_level(), 2);
/// r.release().unwrap();
/// r.release().unwrap();
/// assert!(r.release().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RLock {
    block: Arc<Block>,
    sem: Sem,
}

super::serde_via_block!(RLock, |block| RLock {
    sem: Sem {
        block: block.clone(),
        base: 0
    },
    block,
});

/// Who the caller is: this process, and its task or thread.
pub(crate) fn me() -> (u32, u64) {
    (std::process::id(), crate::wait::owner::current())
}

impl RLock {
    /// A new, unowned reentrant lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<RLock> {
        let block = Arc::new(Block::new(32)?);
        let sem = Sem::init(block.clone(), 0, 1, 1);
        Ok(RLock { block, sem })
    }

    fn owned_by(&self, (pid, id): (u32, u64)) -> bool {
        self.block.u32(COUNT).load(SeqCst) > 0
            && self.block.u32(PID).load(SeqCst) == pid
            && self.block.u64(ID).load(SeqCst) == id
    }

    fn again(&self, me: (u32, u64)) -> bool {
        if self.owned_by(me) {
            self.block.u32(COUNT).fetch_add(1, SeqCst);
            true
        } else {
            false
        }
    }

    fn take(&self, (pid, id): (u32, u64)) {
        self.block.u32(PID).store(pid, SeqCst);
        self.block.u64(ID).store(id, SeqCst);
        self.block.u32(COUNT).store(1, SeqCst);
    }

    /// Releases every level `me` holds (a condition's wait); returns how
    /// many, 0 if `me` is not the owner.
    pub(crate) fn release_all(&self, me: (u32, u64)) -> u32 {
        if !self.owned_by(me) {
            return 0;
        }
        let n = self.block.u32(COUNT).swap(0, SeqCst);
        self.block.u64(ID).store(0, SeqCst);
        self.block.u32(PID).store(0, SeqCst);
        let _ = self.sem.release(1);
        n
    }

    /// Takes the lock for `me` at `levels` levels (blocking; a condition
    /// restoring what its wait released).
    pub(crate) fn restore_blocking(&self, me: (u32, u64), levels: u32) {
        self.sem.acquire_blocking(None, None);
        self.take(me);
        self.block.u32(COUNT).store(levels, SeqCst);
    }

    /// Whether `self` and `other` are handles to the same lock.
    pub(crate) fn same(&self, other: &RLock) -> bool {
        Arc::ptr_eq(&self.block, &other.block)
            || std::ptr::eq(self.block.u32(0), other.block.u32(0))
    }

    /// Acquires it (again, if the caller owns it). Python: `acquire()`.
    pub async fn acquire(&self) {
        let me = me();
        if !self.again(me) {
            self.sem.acquire_async(None).await;
            self.take(me);
        }
    }

    /// Acquires it if that needs no wait. Python: `acquire(False)`.
    pub fn try_acquire(&self) -> bool {
        let me = me();
        self.again(me)
            || (self.sem.try_acquire() && {
                self.take(me);
                true
            })
    }

    /// Waits at most `timeout`. Python: `acquire(timeout=t)`.
    pub async fn acquire_timeout(&self, timeout: Duration) -> bool {
        let me = me();
        if self.again(me) {
            return true;
        }
        let got = self.sem.acquire_async(deadline(timeout)).await;
        if got {
            self.take(me);
        }
        got
    }

    /// Releases one level; the last one frees it. Python: `release()`.
    ///
    /// # Errors
    /// [`ReleaseError::NotOwner`] unless the caller owns it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.release_as(me())
    }

    /// [`release`](RLock::release) on behalf of `me`.
    pub(crate) fn release_as(&self, me: (u32, u64)) -> Result<(), ReleaseError> {
        if !self.owned_by(me) {
            // As threading.RLock: releasing a free lock is `Unlocked`,
            // another owner's is `NotOwner`.
            return Err(if self.block.u32(COUNT).load(SeqCst) == 0 {
                ReleaseError::Unlocked
            } else {
                ReleaseError::NotOwner
            });
        }
        if self.block.u32(COUNT).fetch_sub(1, SeqCst) == 1 {
            self.block.u64(ID).store(0, SeqCst);
            self.block.u32(PID).store(0, SeqCst);
            let _ = self.sem.release(1);
        }
        Ok(())
    }

    /// How many times its owner holds it (0 when free; what Python's
    /// repr shows as `count`).
    pub fn recursion_level(&self) -> u32 {
        self.block.u32(COUNT).load(SeqCst)
    }

    /// Whether the caller owns it. Python: `RLock._is_owned()`.
    pub fn is_owned(&self) -> bool {
        self.owned_by(me())
    }

    /// Acquires and holds until the guard drops. Python: `with rlock:`.
    pub async fn lock(&self) -> RLockGuard<'_> {
        self.acquire().await;
        RLockGuard { lock: self }
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingRLock<'_> {
        BlockingRLock { lock: self }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::RLock")
            .field("owner_pid", &self.block.u32(PID).load(SeqCst))
            .field("count", &self.recursion_level())
            .finish()
    }
}

/// Holds one level of an [`RLock`]; releases it on drop.
#[must_use = "the lock is released when the guard drops"]
#[derive(Debug)]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
}

impl<'a> RLockGuard<'a> {
    /// The lock it holds.
    pub(crate) fn rlock(&self) -> &'a RLock {
        self.lock
    }

    /// A guard for `lock`, whose level the caller holds.
    pub(crate) fn held(lock: &'a RLock) -> RLockGuard<'a> {
        RLockGuard { lock }
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

/// The blocking facade of an [`RLock`].
#[derive(Debug)]
pub struct BlockingRLock<'a> {
    lock: &'a RLock,
}

impl<'a> BlockingRLock<'a> {
    /// [`RLock::acquire`], blocking.
    pub fn acquire(&self) {
        let me = me();
        if !self.lock.again(me) {
            self.lock.sem.acquire_blocking(None, None);
            self.lock.take(me);
        }
    }

    /// [`RLock::acquire_timeout`], blocking.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        let me = me();
        if self.lock.again(me) {
            return true;
        }
        let got = self.lock.sem.acquire_blocking(deadline(timeout), None);
        if got {
            self.lock.take(me);
        }
        got
    }

    /// [`RLock::lock`], blocking.
    pub fn lock(&self) -> RLockGuard<'a> {
        self.acquire();
        RLockGuard { lock: self.lock }
    }
}
