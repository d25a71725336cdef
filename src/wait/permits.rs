//! The one counting core under `Lock`, `RLock`, `Semaphore` and
//! `BoundedSemaphore` (tokio's "one internal semaphore under many
//! primitives", on our wait list).
//!
//! The state word is `permits << 1 | NEED_WAKE`. Acquire is one CAS while a
//! permit is free; release is one CAS while `NEED_WAKE` is clear. The flag is
//! set (under the list lock) exactly when some entry waits and none holds an
//! unconsumed notification: then a release must notify. While a notified
//! waiter is on its way, releases stay on the fast path and the waiter, once
//! it has its permit, notifies the next one if permits remain (a chained
//! wake-up). Newcomers may take a free permit before a woken waiter does
//! (barging keeps the throughput of a contended lock); the woken waiter then
//! goes back to the head of the queue, so waiters are served in FIFO order
//! among themselves.

use std::task::Poll;

use super::driver::{WaitCx, WaitOp};
use super::list::{Key, Locked, WaitList};
use crate::shim::atomic::{AtomicUsize, Ordering::*};

const NEED_WAKE: usize = 1;
const ONE: usize = 2;

/// The largest permit count a core can hold.
pub(crate) const MAX_PERMITS: usize = usize::MAX >> 2;

/// A release would have pushed the count above its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AboveBound;

pub(crate) struct Permits {
    state: AtomicUsize,
    /// The list state is the value `NEED_WAKE` was last set to, so the flag
    /// is only written when it changes.
    waiters: WaitList<bool>,
}

impl Permits {
    pub(crate) fn new(permits: usize) -> Permits {
        assert!(permits <= MAX_PERMITS, "permit count above MAX_PERMITS");
        Permits {
            state: AtomicUsize::new(permits * ONE),
            waiters: WaitList::new(false),
        }
    }

    /// Permits free right now.
    pub(crate) fn available(&self) -> usize {
        self.state.load(Acquire) >> 1
    }

    /// How many callers are queued.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.len()
    }

    /// Takes one permit if one is free.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        // The common uncontended case of a lock: exactly one permit, no flag.
        match self.state.compare_exchange(ONE, 0, Acquire, Relaxed) {
            Ok(_) => true,
            Err(s) => self.take_one(s),
        }
    }

    /// [`try_acquire`](Self::try_acquire) for callers that are likely to
    /// fail (waiters polling, spinners): it reads before it writes, so a
    /// spinning waiter does not steal the cache line from the holder.
    fn try_acquire_contended(&self) -> bool {
        self.take_one(self.state.load(Relaxed))
    }

    /// Takes a permit starting from the observed state `s`.
    fn take_one(&self, mut s: usize) -> bool {
        loop {
            if s < ONE {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s - ONE, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// Gives `n` permits back, refusing if the count would exceed `bound`.
    #[inline]
    pub(crate) fn release(&self, n: usize, bound: usize) -> Result<(), AboveBound> {
        let mut s = self.state.load(Relaxed);
        loop {
            if n > bound.saturating_sub(s >> 1) {
                return Err(AboveBound);
            }
            if s & NEED_WAKE != 0 {
                return self.release_slow(n, bound);
            }
            match self
                .state
                .compare_exchange_weak(s, s + n * ONE, Release, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => s = actual,
            }
        }
    }

    #[cold]
    fn release_slow(&self, n: usize, bound: usize) -> Result<(), AboveBound> {
        let mut l = self.waiters.lock();
        let mut s = self.state.load(Relaxed);
        loop {
            if n > bound.saturating_sub(s >> 1) {
                return Err(AboveBound);
            }
            match self
                .state
                .compare_exchange_weak(s, s + n * ONE, AcqRel, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        self.settle(&mut l);
        Ok(())
    }

    /// Restores the invariants after any change, under the list lock:
    /// as many entries notified as there are free permits (bounded by the
    /// number of entries), and `NEED_WAKE` set iff entries wait with none
    /// notified. Setting the flag returns the count it raced with, so a
    /// release that slipped in on the fast path is never missed.
    fn settle(&self, l: &mut Locked<'_, bool>) {
        loop {
            let avail = self.state.load(Acquire) >> 1;
            if avail > l.notified() && l.waiting() > 0 {
                l.notify(avail - l.notified(), 0);
            }
            let need = l.waiting() > 0 && l.notified() == 0;
            if need == *l.state() {
                return;
            }
            *l.state() = need;
            if need {
                let prev = self.state.fetch_or(NEED_WAKE, AcqRel);
                if prev >> 1 == 0 {
                    return;
                }
                // A permit came back before the flag was up: notify for it.
            } else {
                self.state.fetch_and(!NEED_WAKE, AcqRel);
                return;
            }
        }
    }

    /// The wait operation for one permit (output: acquired, or false after
    /// the deadline).
    pub(crate) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            permits: self,
            key: None,
            in_turn: false,
        }
    }

    /// [`acquire`](Self::acquire) that does not barge: it joins the end of
    /// the line at once, even if a permit is free, and takes one when its
    /// turn is notified (at once, through the same poll's wake-up, if a
    /// permit is free and nobody is ahead). For a caller that already
    /// found others waiting: it goes behind them.
    #[cfg(feature = "multiprocessing")]
    pub(crate) fn acquire_in_turn(&self) -> Acquire<'_> {
        Acquire {
            permits: self,
            key: None,
            in_turn: true,
        }
    }
}

/// Waits for one permit. Dropping it gives up its place in line and passes
/// on any notification it held, so no permit is stranded.
pub(crate) struct Acquire<'a> {
    permits: &'a Permits,
    key: Option<Key>,
    /// Queue first, never take a permit ahead of the line.
    in_turn: bool,
}

impl WaitOp for Acquire<'_> {
    type Output = bool;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<bool> {
        let p = self.permits;
        if self.key.is_none() {
            // An async caller's first poll is the fast path (one speculative
            // CAS); the blocking driver's spin polls read first.
            let got = if self.in_turn {
                false
            } else if cx.can_wait() {
                p.try_acquire()
            } else {
                p.try_acquire_contended()
            };
            if got {
                return Poll::Ready(true);
            }
            if cx.timed_out() {
                return Poll::Ready(false);
            }
            if !cx.can_wait() {
                return Poll::Pending;
            }
            let mut l = p.waiters.lock();
            l.insert(&mut self.key, cx.waiter(), false);
            p.settle(&mut l);
            return Poll::Pending;
        }
        let mut l = p.waiters.lock();
        match l.poll(&self.key, cx.waiter()) {
            Some(_) => {
                if p.try_acquire_contended() {
                    l.remove(&mut self.key);
                    p.settle(&mut l);
                    return Poll::Ready(true);
                }
                if cx.timed_out() {
                    l.cancel(&mut self.key, false);
                    p.settle(&mut l);
                    return Poll::Ready(false);
                }
                // A newcomer took the permit first: keep our turn.
                l.rearm(&self.key, cx.waiter());
                p.settle(&mut l);
                Poll::Pending
            }
            None if cx.timed_out() => {
                l.cancel(&mut self.key, false);
                p.settle(&mut l);
                Poll::Ready(false)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            let mut l = self.permits.waiters.lock();
            l.cancel(&mut self.key, false);
            self.permits.settle(&mut l);
        }
    }
}
