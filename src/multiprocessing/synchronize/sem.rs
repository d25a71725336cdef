//! A counting semaphore in shared memory (`[value, sleepers, max]`, three
//! `u32`s), futex-backed: Semaphore, BoundedSemaphore and the permits a
//! Condition's notifier hands its sleepers. (Lock and RLock, which have an
//! owner, are robust words instead: [`super::robust`].) Every blocking
//! wait here goes through the one wait loop, [`futex::wait_for`].
//!
//! The blocking facade sleeps on the futex. The async face tries once,
//! then queues on this process's watch of the count ([`super::watch`]):
//! one thread sleeps on the futex for every waiting task, and a woken task
//! takes its permit in its own poll, so a dropped wait has taken nothing
//! and passes its wake-up on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::block::Block;
use super::{futex, watch};

/// Where a semaphore lives: a block and the offset of its three words.
#[derive(Clone)]
pub(crate) struct Sem {
    pub(crate) block: Arc<Block>,
    pub(crate) base: usize,
}

/// Released above the maximum (Python: `ValueError: semaphore or lock
/// released too many times`).
#[derive(Debug)]
pub(crate) struct TooMany;

impl Sem {
    /// The largest count.
    pub(crate) const MAX: u32 = i32::MAX as u32;

    /// Initialises a fresh (zeroed) block's semaphore.
    pub(crate) fn init(block: Arc<Block>, base: usize, value: u32, max: u32) -> Sem {
        let s = Sem { block, base };
        s.max_word().store(max, SeqCst);
        s.value().store(value, SeqCst);
        s
    }

    fn value(&self) -> &std::sync::atomic::AtomicU32 {
        self.block.u32(self.base)
    }

    fn sleepers(&self) -> &std::sync::atomic::AtomicU32 {
        self.block.u32(self.base + 4)
    }

    fn max_word(&self) -> &std::sync::atomic::AtomicU32 {
        self.block.u32(self.base + 8)
    }

    pub(crate) fn get_value(&self) -> u32 {
        self.value().load(SeqCst)
    }

    pub(crate) fn try_acquire(&self) -> bool {
        Sem::try_acquire_in(&self.block, self.base)
    }

    /// [`try_acquire`](Sem::try_acquire) on the semaphore at `base` of
    /// `block` (for code that has the block, not a handle).
    pub(crate) fn try_acquire_in(block: &Block, base: usize) -> bool {
        let v = block.u32(base);
        let mut cur = v.load(SeqCst);
        while cur > 0 {
            match v.compare_exchange_weak(cur, cur - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }

    /// Blocks until a permit is taken (true), `deadline` passes or
    /// `cancel` is set (false).
    pub(crate) fn acquire_blocking(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> bool {
        self.acquire_blocking_stop(deadline, cancel, None)
    }

    /// [`acquire_blocking`](Sem::acquire_blocking) that also gives up
    /// (false) once the shared word at byte `stop` of the block is
    /// non-zero (a queue's shutdown; its setter wakes every sleeper).
    pub(crate) fn acquire_blocking_stop(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
        stop: Option<usize>,
    ) -> bool {
        for _ in 0..64 {
            if self.try_acquire() {
                return true;
            }
            std::hint::spin_loop();
        }
        let stopped = || stop.is_some_and(|o| self.block.u32(o).load(SeqCst) != 0);
        futex::wait_for(
            futex::On::new(self.value(), self.sleepers()),
            deadline,
            cancel,
            |v| {
                if v > 0 {
                    // Take a permit from exactly the count that was judged;
                    // a lost race looks again rather than sleep on a positive
                    // count a missed release could restore.
                    match self.value().compare_exchange(v, v - 1, SeqCst, SeqCst) {
                        Ok(_) => futex::Step::Done(true),
                        Err(_) => futex::Step::Again,
                    }
                } else if stopped() {
                    futex::Step::Done(false)
                } else {
                    futex::Step::Blocked
                }
            },
        )
        .unwrap_or(false)
    }

    /// The async face of [`acquire_blocking`](Sem::acquire_blocking): the
    /// task queues on this process's watch of the count (one thread sleeps
    /// on the futex for every waiting task) and takes its permit by CAS in
    /// its own poll, so a dropped wait has taken nothing.
    pub(crate) async fn acquire_async(&self, deadline: Option<Instant>) -> bool {
        if self.try_acquire() {
            return true;
        }
        let spec = watch::Spec {
            word: self.base,
            sleepers: self.base + 4,
            bits: futex::ALL,
            policy: watch::by_count,
        };
        let value = self.value();
        watch::wait(&self.block, spec, deadline, |v| {
            if v == 0 {
                futex::Step::Blocked
            } else if value.compare_exchange(v, v - 1, SeqCst, SeqCst).is_ok() {
                futex::Step::Done(())
            } else {
                futex::Step::Again
            }
        })
        .await
        .is_some()
    }

    /// Adds `n` permits and wakes that many sleepers.
    pub(crate) fn release(&self, n: u32) -> Result<(), TooMany> {
        Sem::release_in(&self.block, self.base, n)
    }

    /// [`release`](Sem::release) on the semaphore at `base` of `block`.
    pub(crate) fn release_in(block: &Block, base: usize, n: u32) -> Result<(), TooMany> {
        let max = block.u32(base + 8).load(SeqCst);
        let v = block.u32(base);
        let mut cur = v.load(SeqCst);
        loop {
            let next = cur.checked_add(n).filter(|&x| x <= max).ok_or(TooMany)?;
            match v.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if block.u32(base + 4).load(SeqCst) > 0 {
            futex::wake(v, n);
        }
        Ok(())
    }
}

/// `Some(now + d)`, saturating.
pub(crate) fn deadline(d: Duration) -> Option<Instant> {
    Some(
        Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)),
    )
}
