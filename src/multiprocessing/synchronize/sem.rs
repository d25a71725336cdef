//! The one wait core of the cross-process primitives: a counting
//! semaphore in shared memory (`[value, sleepers, max]`, three `u32`s),
//! futex-backed. Lock, RLock, Semaphore and BoundedSemaphore are faces of
//! it; Event and Condition wait through [`sleep_until`].
//!
//! The blocking facade sleeps on the futex. The async face tries once,
//! then hands the sleep to a thread of the runtime's blocking pool and
//! awaits its answer; dropping that future (cancellation, a timeout
//! around it) wakes the sleeper, and a permit it won after the drop is
//! given straight back, so no permit is ever lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::block::Block;
use super::futex;

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

/// How long one futex sleep lasts at most while a cancel flag is watched.
const SLICE: Duration = Duration::from_millis(50);

impl Sem {
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
        let v = self.value();
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
        let stopped = || stop.is_some_and(|o| self.block.u32(o).load(SeqCst) != 0);
        for _ in 0..64 {
            if self.try_acquire() {
                return true;
            }
            std::hint::spin_loop();
        }
        loop {
            if self.try_acquire() {
                return true;
            }
            if cancel.is_some_and(|c| c.load(SeqCst)) || stopped() {
                return false;
            }
            let mut slice = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
                None => None,
            };
            if cancel.is_some() {
                slice = Some(slice.map_or(SLICE, |s| s.min(SLICE)));
            }
            self.sleepers().fetch_add(1, SeqCst);
            if self.value().load(SeqCst) == 0 && !stopped() {
                futex::wait(self.value(), 0, slice);
            }
            self.sleepers().fetch_sub(1, SeqCst);
        }
    }

    /// The async face of [`acquire_blocking`](Sem::acquire_blocking).
    pub(crate) async fn acquire_async(&self, deadline: Option<Instant>) -> bool {
        self.acquire_async_stop(deadline, None).await
    }

    /// The async face of [`acquire_blocking_stop`](Sem::acquire_blocking_stop).
    pub(crate) async fn acquire_async_stop(
        &self,
        deadline: Option<Instant>,
        stop: Option<usize>,
    ) -> bool {
        if self.try_acquire() {
            return true;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (me, c2) = (self.clone(), cancel.clone());
        crate::threading::runtime_handle().spawn_blocking(move || {
            if me.acquire_blocking_stop(deadline, Some(&c2), stop) && tx.send(()).is_err() {
                // The waiter is gone: the permit goes back.
                let _ = me.release(1);
            }
        });
        let mut waiting = Waiting {
            rx,
            cancel,
            sem: self.clone(),
            done: false,
        };
        let got = (&mut waiting.rx).await.is_ok();
        waiting.done = true;
        got
    }

    /// Sets the count (a drained queue's items: under the queue's lock).
    pub(crate) fn set_value(&self, v: u32) {
        self.value().store(v, SeqCst);
    }

    /// Adds `n` permits and wakes that many sleepers.
    pub(crate) fn release(&self, n: u32) -> Result<(), TooMany> {
        let max = self.max_word().load(SeqCst);
        let v = self.value();
        let mut cur = v.load(SeqCst);
        loop {
            let next = cur.checked_add(n).filter(|&x| x <= max).ok_or(TooMany)?;
            match v.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if self.sleepers().load(SeqCst) > 0 {
            futex::wake(v, n);
        }
        Ok(())
    }

    /// Wakes every sleeper (a cancelled waiter's, among them).
    pub(crate) fn wake_all(&self) {
        futex::wake(self.value(), u32::MAX);
    }
}

/// An async acquire in flight. Dropped before its answer: wakes the
/// sleeper (so it stops), and gives back a permit it won meanwhile,
/// whether the answer is still on its way (the sender then fails and the
/// sleeper releases) or already in the channel (released here).
struct Waiting {
    rx: tokio::sync::oneshot::Receiver<()>,
    cancel: Arc<AtomicBool>,
    sem: Sem,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.cancel.store(true, SeqCst);
        self.sem.wake_all();
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            let _ = self.sem.release(1);
        }
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
