//! A settable, clearable flag that tasks and threads wait for: the core of
//! `Event` and of a Thread's "finished" signal.
//!
//! `set` wakes every entry registered at that moment with a notification;
//! a woken waiter reports success from its notification, not from the flag,
//! so a `clear` right after `set` cannot take the wake-up back.

use std::task::Poll;

use super::driver::{WaitCx, WaitOp};
use super::list::{Key, Locked, WaitList};
use crate::shim::atomic::{AtomicUsize, Ordering::*};

const SET: usize = 1;
const WAITERS: usize = 2;

pub(crate) struct Flag {
    state: AtomicUsize,
    waiters: WaitList<()>,
}

impl Flag {
    pub(crate) fn new(set: bool) -> Flag {
        Flag {
            state: AtomicUsize::new(if set { SET } else { 0 }),
            waiters: WaitList::new(()),
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Acquire) & SET != 0
    }

    /// Sets the flag and wakes everyone waiting. Returns how many waiters
    /// were woken.
    pub(crate) fn set(&self) -> usize {
        let prev = self.state.fetch_or(SET, AcqRel);
        if prev & WAITERS != 0 {
            self.waiters.notify_all(0)
        } else {
            0
        }
    }

    /// How many callers are queued.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.len()
    }

    pub(crate) fn clear(&self) {
        self.state.fetch_and(!SET, AcqRel);
    }

    /// Clears `WAITERS` once nobody is registered (under the list lock).
    fn tidy(&self, l: &Locked<'_, ()>) {
        if l.waiting() == 0 && l.notified() == 0 {
            self.state.fetch_and(!WAITERS, AcqRel);
        }
    }

    /// The wait operation: `true` once the flag is (or was) set, `false`
    /// when the deadline passed first.
    pub(crate) fn wait(&self) -> FlagWait<'_> {
        FlagWait {
            flag: self,
            key: None,
        }
    }
}

/// Waits for a [`Flag`]. Dropping it just leaves the queue: a flag
/// notification is broadcast, there is nothing to pass on.
pub(crate) struct FlagWait<'a> {
    flag: &'a Flag,
    key: Option<Key>,
}

impl WaitOp for FlagWait<'_> {
    type Output = bool;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<bool> {
        let f = self.flag;
        if self.key.is_none() {
            if f.is_set() {
                return Poll::Ready(true);
            }
            if cx.timed_out() {
                return Poll::Ready(false);
            }
            if !cx.can_wait() {
                return Poll::Pending;
            }
            let mut l = f.waiters.lock();
            l.insert(&mut self.key, cx.waiter(), false);
            let prev = f.state.fetch_or(WAITERS, AcqRel);
            if prev & SET != 0 {
                l.remove(&mut self.key);
                f.tidy(&l);
                return Poll::Ready(true);
            }
            return Poll::Pending;
        }
        let mut l = f.waiters.lock();
        if l.poll(&self.key, cx.waiter()).is_none() && !cx.timed_out() {
            return Poll::Pending;
        }
        // Notified, or timed out (a notification that raced the deadline
        // still counts).
        let notified = l.cancel(&mut self.key, false).is_some();
        f.tidy(&l);
        Poll::Ready(notified)
    }
}

impl Drop for FlagWait<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            let mut l = self.flag.waiters.lock();
            l.cancel(&mut self.key, false);
            self.flag.tidy(&l);
        }
    }
}
