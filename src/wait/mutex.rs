//! A data-guarding async mutex on the permit core: what a connection uses
//! to keep concurrent sends (and receives) whole.
//!
//! tokio's `Mutex` takes its wait-list lock on every release, contended or
//! not; this one is one CAS to lock and one to unlock while nobody waits
//! (the [`Permits`] fast paths), which is most of a small message's cost
//! that is not the system call. It is fair as tokio's is: once anyone
//! waits, newcomers queue behind them (no barging, unlike `Lock`), so a
//! task that sends in a loop cannot keep another sender on the same
//! connection out.
// The one UnsafeCell of the wait core: a guard is the only way to the
// value, and one permit means one guard (std's Mutex contract).
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use super::permits::Permits;
use super::{MapOp, WaitFuture};
use crate::shim::atomic::{AtomicUsize, Ordering};

pub(crate) struct Mutex<T> {
    permits: Permits,
    /// Callers in [`lock`](Mutex::lock)'s slow path (queued, or notified
    /// and on their way): while any are, the fast path is closed.
    queued: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and one permit means
// at most one guard at a time: the same contract as std's Mutex.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex {
            permits: Permits::new(1),
            queued: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock, in turn. Dropping the future holds nothing and
    /// passes on a wake-up it had received.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, T>
    where
        T: Send,
    {
        // Free and nobody waiting: one CAS, no wait machinery.
        if self.queued.load(Ordering::Acquire) == 0 && self.permits.try_acquire() {
            return MutexGuard { mutex: self };
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _leave = Leave(&self.queued);
        WaitFuture::new(MapOp::new(
            self.permits.acquire_in_turn(),
            move |got: bool| {
                // No deadline: this wait ends only with the permit.
                debug_assert!(got);
                MutexGuard { mutex: self }
            },
        ))
        .await
    }

    /// The lock if it is free right now (even if others wait for it).
    #[cfg(unix)]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // Lazily: a guard built and dropped on failure would release the
        // holder's permit.
        self.permits
            .try_acquire()
            .then(|| MutexGuard { mutex: self })
    }
}

/// Leaves the slow-path count when a `lock` ends, with the lock or dropped.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

pub(crate) struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

// SAFETY: a guard hands out `&T` only; sharing it is sharing `&T`.
unsafe impl<T: Sync> Sync for MutexGuard<'_, T> {}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the only permit.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the only permit.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Cannot fail: the guard holds the one permit.
        let _ = self.mutex.permits.release(1, 1);
    }
}

#[cfg(all(test, not(conex_loom)))]
mod tests {
    use super::Mutex;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guards_exclude_each_other() {
        let m = Arc::new(Mutex::new(0u64));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..10_000 {
                        let mut g = m.lock().await;
                        // A non-atomic read-modify-write with a yield inside:
                        // lost updates if two guards ever overlapped.
                        let v = *g;
                        tokio::task::yield_now().await;
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*m.lock().await, 40_000);
    }

    // tokio's Mutex is fair; so is this one: a caller that comes back for
    // the lock as it is released goes behind the one already waiting.
    #[tokio::test]
    async fn newcomers_queue_behind_a_waiter() {
        let m = Arc::new(Mutex::new(Vec::new()));
        let g = m.lock().await;
        let waiter = tokio::spawn({
            let m = m.clone();
            async move { m.lock().await.push("waiter") }
        });
        // Let the waiter queue up (one thread: it runs while we yield).
        while m.queued.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        drop(g);
        m.lock().await.push("newcomer");
        waiter.await.unwrap();
        assert_eq!(*m.lock().await, ["waiter", "newcomer"]);
    }

    #[tokio::test]
    async fn try_lock_and_dropped_waiter() {
        let m = Mutex::new(());
        let g = m.try_lock().expect("free");
        assert!(m.try_lock().is_none());
        // A waiter dropped while queued leaves the lock usable.
        let mut waiting = Box::pin(m.lock());
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(waiting);
        drop(g);
        assert!(m.try_lock().is_some());
    }
}
