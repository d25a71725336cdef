//! A data-guarding async mutex on the permit core: what a connection uses
//! to keep concurrent sends (and receives) whole.
//!
//! tokio's `Mutex` takes its wait-list lock on every release, contended or
//! not; this one is one CAS to lock and one to unlock while nobody waits
//! (the [`Permits`] fast paths), which is most of a small message's cost
//! that is not the system call. Waiters are queued FIFO; a caller that
//! finds it free takes it at once (barging, as [`Permits`] documents).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use super::permits::Permits;
use super::{MapOp, WaitFuture};

pub(crate) struct Mutex<T> {
    permits: Permits,
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
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock. Dropping the future holds nothing and passes on
    /// a wake-up it had received.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, T>
    where
        T: Send,
    {
        // Free: one CAS, no wait machinery.
        if self.permits.try_acquire() {
            return MutexGuard { mutex: self };
        }
        WaitFuture::new(MapOp::new(self.permits.acquire(), move |_| MutexGuard {
            mutex: self,
        }))
        .await
    }

    /// The lock if it is free right now.
    #[cfg(unix)]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // Lazily: a guard built and dropped on failure would release the
        // holder's permit.
        self.permits
            .try_acquire()
            .then(|| MutexGuard { mutex: self })
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
