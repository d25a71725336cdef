//! The cross-process `RLock`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::block::Block;
use super::robust::{self, RobustLock, Taken};
use super::sem::deadline;
use crate::threading::ReleaseError;

// Layout: the robust lock word (the owner's pid) at 0 and its sleeper
// count at 4, the recursion count at 8, the owner's task or thread id at
// 16. Only the owner writes the count and the id, while it holds the word.
const COUNT: usize = 8;
const ID: usize = 16;

/// A reentrant lock shared by processes. Python: `multiprocessing.RLock()`.
///
/// The owner is a task (async calls inside a tokio task) or an OS thread
/// (the blocking facade, or outside tasks) *of one process*, as in
/// [`threading::RLock`](crate::threading::RLock); it may acquire again and
/// must release as many times. A release by anyone else is
/// [`ReleaseError::NotOwner`].
///
/// # An owner killed
/// Unlike CPython's, an `RLock` whose owning process dies holding it
/// (killed, or exited while it held it) does not stay held: a waiter takes
/// it over, at its first level, a blocking waiter after a few
/// milliseconds, an async one within about 100 ms (a warning names the
/// dead pid). What it guarded may be half-changed (a [`Value`] or
/// [`Array`] a killed writer was copying into). The processes must share
/// a PID namespace.
///
/// [`Value`]: crate::multiprocessing::Value
/// [`Array`]: crate::multiprocessing::Array
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
}

super::serde_via_block!(RLock, |block| RLock { block });

/// Who the caller is: this process, and its task or thread.
pub(crate) fn me() -> (u32, u64) {
    (crate::sys::pid(), crate::wait::owner::current())
}

impl RLock {
    /// A new, unowned reentrant lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<RLock> {
        Ok(RLock {
            block: Arc::new(Block::new(32)?),
        })
    }

    fn word(&self) -> RobustLock<'_> {
        RobustLock::at(&self.block, 0)
    }

    fn owned_by(&self, (pid, id): (u32, u64)) -> bool {
        // The word first: while a takeover has it marked, the dead owner's
        // count and id are stale, and the word matches no live owner.
        self.block.u32(0).load(SeqCst) == pid
            && self.block.u64(ID).load(SeqCst) == id
            && self.block.u32(COUNT).load(SeqCst) > 0
    }

    fn again(&self, me: (u32, u64)) -> bool {
        if self.owned_by(me) {
            self.block.u32(COUNT).fetch_add(1, SeqCst);
            true
        } else {
            false
        }
    }

    /// Makes `me` the owner at `levels` of a word just taken (`None`: the
    /// wait timed out); returns whether it is held.
    fn take(&self, (_, id): (u32, u64), taken: Option<Taken>, levels: u32) -> bool {
        let Some(taken) = taken else {
            return false;
        };
        self.block.u64(ID).store(id, SeqCst);
        self.block.u32(COUNT).store(levels, SeqCst);
        if let Taken::FromDead(_) = taken {
            // Only the owner frees an RLock: the mark is still ours.
            self.word().adopt();
        }
        true
    }

    /// Gives the word up (the owner's last level).
    fn free(&self) {
        self.block.u32(COUNT).store(0, SeqCst);
        self.block.u64(ID).store(0, SeqCst);
        self.word().unlock();
    }

    fn acquire_blocking_until(&self, me: (u32, u64), deadline: Option<Instant>) -> bool {
        self.again(me) || self.take(me, self.word().lock(deadline), 1)
    }

    async fn acquire_until(&self, me: (u32, u64), deadline: Option<Instant>) -> bool {
        self.again(me) || self.take(me, robust::lock_async(&self.block, 0, deadline).await, 1)
    }

    /// Releases every level `me` holds (a condition's wait); returns how
    /// many, 0 if `me` is not the owner.
    pub(crate) fn release_all(&self, me: (u32, u64)) -> u32 {
        if !self.owned_by(me) {
            return 0;
        }
        let n = self.block.u32(COUNT).load(SeqCst);
        self.free();
        n
    }

    /// Takes the lock for `me` at `levels` levels (blocking; a condition
    /// restoring what its wait released).
    pub(crate) fn restore_blocking(&self, me: (u32, u64), levels: u32) {
        self.take(me, self.word().lock(None), levels);
    }

    /// [`restore_blocking`](RLock::restore_blocking) as a task: the lock is
    /// taken in the task's poll, so a dropped restore holds nothing.
    pub(crate) async fn restore_async(&self, me: (u32, u64), levels: u32) {
        self.take(me, robust::lock_async(&self.block, 0, None).await, levels);
    }

    /// Whether `self` and `other` are handles to the same lock.
    pub(crate) fn same(&self, other: &RLock) -> bool {
        Arc::ptr_eq(&self.block, &other.block)
            || std::ptr::eq(self.block.u32(0), other.block.u32(0))
    }

    /// Acquires it (again, if the caller owns it). Python: `acquire()`.
    pub async fn acquire(&self) {
        self.acquire_until(me(), None).await;
    }

    /// Acquires it if that needs no wait. Python: `acquire(False)`.
    pub fn try_acquire(&self) -> bool {
        let me = me();
        self.again(me) || (self.word().try_lock() && self.take(me, Some(Taken::Free), 1))
    }

    /// Waits at most `timeout`. Python: `acquire(timeout=t)`.
    pub async fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(me(), deadline(timeout)).await
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
            self.free();
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
            .field("owner_pid", &self.word().holder())
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
        self.lock.acquire_blocking_until(me(), None);
    }

    /// [`RLock::acquire_timeout`], blocking.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.acquire_blocking_until(me(), deadline(timeout))
    }

    /// [`RLock::lock`], blocking.
    pub fn lock(&self) -> RLockGuard<'a> {
        self.acquire();
        RLockGuard { lock: self.lock }
    }
}
