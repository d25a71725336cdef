//! loom models of the wait core and of every primitive built on it (a
//! crate-level test module: the wait core itself imports nothing above it).
//!
//! Run with `RUSTFLAGS="--cfg conex_loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --lib --release loom_`. Each model explores the interleavings of the real
//! code (the shim swaps std's atomics, mutexes and thread parking for
//! loom's): async waiters through `loom::future::block_on`, blocking ones
//! through the parking driver, and futures dropped mid-wait.
// Test code: loom's UnsafeCell is reached through raw pointers.
#![allow(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::cell::UnsafeCell;
use loom::future::block_on;
use loom::thread;

use crate::shim::Arc;
use crate::shim::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::threading::{Barrier, Condition, Event, Lock, RLock, Semaphore};

/// Polls a future once with a no-op waker.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    f.poll(&mut Context::from_waker(&waker))
}

#[test]
fn loom_lock_mutual_exclusion_async_and_blocking() {
    loom::model(|| {
        let lock = Lock::new();
        let data = Arc::new(UnsafeCell::new(0usize));
        let (l2, d2) = (lock.clone(), data.clone());
        let t = thread::spawn(move || {
            let _g = l2.blocking().lock();
            d2.with_mut(|p| unsafe { *p += 1 });
        });
        block_on(async {
            let _g = lock.lock().await;
            data.with_mut(|p| unsafe { *p += 1 });
        });
        t.join().unwrap();
        assert_eq!(data.with(|p| unsafe { *p }), 2);
        assert!(!lock.locked());
    });
}

#[test]
fn loom_lock_release_from_another_thread() {
    loom::model(|| {
        let lock = Lock::new();
        lock.blocking().acquire();
        let l2 = lock.clone();
        let t = thread::spawn(move || l2.release().unwrap());
        lock.blocking().acquire();
        t.join().unwrap();
        assert!(lock.locked());
    });
}

/// A waiter dropped while (maybe) notified passes the wake-up on: the
/// third party still gets the lock, and loom would report a deadlock if it
/// could be stranded.
#[test]
fn loom_lock_cancelled_waiter_passes_on() {
    loom::model(|| {
        let lock = Lock::new();
        lock.blocking().acquire();
        let l2 = lock.clone();
        let waiter = thread::spawn(move || {
            let _g = l2.blocking().lock();
        });
        let l3 = lock.clone();
        let canceller = thread::spawn(move || {
            let mut fut = Box::pin(l3.lock());
            if let Poll::Ready(g) = poll_once(fut.as_mut()) {
                drop(g);
            }
            drop(fut);
        });
        lock.release().unwrap();
        waiter.join().unwrap();
        canceller.join().unwrap();
        assert!(!lock.locked());
    });
}

/// The connections' mutex: two lockers in any order both get it, and one
/// that goes behind a waiter (the fast path closed) is not stranded.
#[cfg(feature = "multiprocessing")]
#[test]
fn loom_mutex_in_turn() {
    use crate::wait::mutex::Mutex;
    loom::model(|| {
        let m = Arc::new(Mutex::new(0usize));
        let m2 = m.clone();
        let t = thread::spawn(move || block_on(async { *m2.lock().await += 1 }));
        block_on(async { *m.lock().await += 1 });
        t.join().unwrap();
        assert_eq!(*block_on(m.lock()), 2);
    });
}

/// A locker dropped while queued (maybe notified) passes its turn on.
#[cfg(feature = "multiprocessing")]
#[test]
fn loom_mutex_cancelled_waiter_passes_on() {
    use crate::wait::mutex::Mutex;
    loom::model(|| {
        let m = Arc::new(Mutex::new(()));
        let g = m.try_lock().expect("free");
        let m2 = m.clone();
        let waiter = thread::spawn(move || drop(block_on(m2.lock())));
        let m3 = m.clone();
        let canceller = thread::spawn(move || {
            let mut fut = Box::pin(m3.lock());
            if let Poll::Ready(g) = poll_once(fut.as_mut()) {
                drop(g);
            }
            drop(fut);
        });
        drop(g);
        waiter.join().unwrap();
        canceller.join().unwrap();
        assert!(m.try_lock().is_some());
    });
}

#[test]
fn loom_semaphore_release_many() {
    loom::model(|| {
        let sem = Semaphore::new(0);
        let done = Arc::new(AtomicUsize::new(0));
        let mut ts = Vec::new();
        for _ in 0..2 {
            let (s, d) = (sem.clone(), done.clone());
            ts.push(thread::spawn(move || {
                s.blocking().acquire();
                d.fetch_add(1, SeqCst);
            }));
        }
        sem.release(2).unwrap();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(done.load(SeqCst), 2);
        assert_eq!(sem.value(), 0);
    });
}

/// A newcomer taking the permit a woken waiter was about to take: the
/// woken one keeps its turn and nobody is stranded.
#[test]
fn loom_semaphore_barging() {
    loom::model(|| {
        let sem = Semaphore::new(0);
        let s2 = sem.clone();
        let waiter = thread::spawn(move || {
            block_on(s2.acquire());
            s2.release(1).unwrap();
        });
        let s3 = sem.clone();
        let barger = thread::spawn(move || {
            if s3.try_acquire() {
                s3.release(1).unwrap();
            }
        });
        sem.release(1).unwrap();
        waiter.join().unwrap();
        barger.join().unwrap();
        assert_eq!(sem.value(), 1);
    });
}

/// A waiter woken by `set` returns even if `clear` follows at once.
#[test]
fn loom_event_set_clear_wakes_registered_waiter() {
    loom::model(|| {
        let ev = Event::new();
        let e2 = ev.clone();
        let t = thread::spawn(move || e2.blocking().wait());
        while ev.n_waiting() == 0 {
            thread::yield_now();
        }
        ev.set();
        ev.clear();
        t.join().unwrap();
    });
}

/// `set` racing the registration of async and blocking waiters wakes both.
#[test]
fn loom_event_set_races_waiters() {
    loom::model(|| {
        let ev = Event::new();
        let e2 = ev.clone();
        let t = thread::spawn(move || e2.blocking().wait());
        let e3 = ev.clone();
        let a = thread::spawn(move || block_on(e3.wait()));
        ev.set();
        t.join().unwrap();
        a.join().unwrap();
        assert_eq!(ev.n_waiting(), 0);
    });
}

#[test]
fn loom_condition_notify_not_lost() {
    loom::model(|| {
        let cond = Condition::with_lock(Lock::new());
        let ready = Arc::new(AtomicUsize::new(0));
        let (c2, r2) = (cond.clone(), ready.clone());
        let waiter = thread::spawn(move || {
            let g = c2.blocking().lock();
            let _g = c2.blocking().wait_for(g, || r2.load(SeqCst) == 1);
        });
        {
            let _g = cond.blocking().lock();
            ready.store(1, SeqCst);
            cond.notify(1).unwrap();
        }
        waiter.join().unwrap();
    });
}

/// An async waiter dropped after being notified passes the notification to
/// the other waiter. (If its single poll already completed the wait, the
/// notification was legitimately its own and the test notifies again.)
#[test]
fn loom_condition_cancelled_waiter_passes_on() {
    loom::model(|| {
        let cond = Condition::with_lock(Lock::new());
        let notified = Arc::new(AtomicUsize::new(0));
        let (c2, n2) = (cond.clone(), notified.clone());
        let blocking = thread::spawn(move || {
            let g = c2.blocking().lock();
            let _g = c2.blocking().wait_for(g, || n2.load(SeqCst) == 1);
        });
        let c3 = cond.clone();
        let dropper = thread::spawn(move || {
            let g = c3.blocking().lock();
            let mut fut = Box::pin(c3.wait(g));
            let completed = poll_once(fut.as_mut()).is_ready();
            drop(fut);
            completed
        });
        {
            let _g = cond.blocking().lock();
            notified.store(1, SeqCst);
            cond.notify(1).unwrap();
        }
        if dropper.join().unwrap() {
            let _g = cond.blocking().lock();
            cond.notify(1).unwrap();
        }
        blocking.join().unwrap();
        assert!(!cond.underlying_lock().locked());
    });
}

#[test]
fn loom_rlock_reentrant_between_threads() {
    loom::model(|| {
        let rl = RLock::new();
        let data = Arc::new(UnsafeCell::new(0usize));
        let (r2, d2) = (rl.clone(), data.clone());
        let t = thread::spawn(move || {
            let _a = r2.blocking().lock();
            let _b = r2.blocking().lock();
            d2.with_mut(|p| unsafe { *p += 1 });
        });
        {
            let _a = rl.blocking().lock();
            let _b = rl.blocking().lock();
            data.with_mut(|p| unsafe { *p += 1 });
        }
        t.join().unwrap();
        assert_eq!(data.with(|p| unsafe { *p }), 2);
        assert!(!rl.locked());
    });
}

#[test]
fn loom_barrier_two_parties() {
    loom::model(|| {
        let b = Barrier::new(2);
        let b2 = b.clone();
        let t = thread::spawn(move || b2.blocking().wait().unwrap());
        let mine = block_on(b.wait()).unwrap();
        let theirs = t.join().unwrap();
        assert_eq!(mine + theirs, 1);
        assert_eq!(b.n_waiting(), 0);
    });
}

#[test]
fn loom_barrier_abort_releases_waiter() {
    loom::model(|| {
        let b = Barrier::new(3);
        let b2 = b.clone();
        let t = thread::spawn(move || b2.blocking().wait());
        b.abort();
        assert!(t.join().unwrap().is_err());
        assert!(b.broken());
    });
}

/// Two releases racing two registrations: the flag handshake in the permit
/// core never strands a permit next to a sleeping waiter.
#[test]
fn loom_semaphore_concurrent_releases() {
    loom::model(|| {
        let sem = Semaphore::new(0);
        let (s1, s2) = (sem.clone(), sem.clone());
        let w1 = thread::spawn(move || s1.blocking().acquire());
        let w2 = thread::spawn(move || block_on(s2.acquire()));
        let s3 = sem.clone();
        let r = thread::spawn(move || s3.release(1).unwrap());
        sem.release(1).unwrap();
        r.join().unwrap();
        w1.join().unwrap();
        w2.join().unwrap();
        assert_eq!(sem.value(), 0);
    });
}

/// Condition over an RLock held at two levels: both are released while
/// waiting and restored after.
#[test]
fn loom_condition_rlock_levels() {
    loom::model(|| {
        let cond = Condition::new();
        let flag = Arc::new(AtomicUsize::new(0));
        let (c2, f2) = (cond.clone(), flag.clone());
        let waiter = thread::spawn(move || {
            let rl = c2.underlying_lock();
            let outer = rl.blocking().lock();
            let _inner = rl.blocking().lock();
            let _outer = c2.blocking().wait_for(outer, || f2.load(SeqCst) == 1);
            assert_eq!(rl.recursion_count(), 2);
        });
        {
            let _g = cond.blocking().lock();
            flag.store(1, SeqCst);
            cond.notify_all().unwrap();
        }
        waiter.join().unwrap();
        assert!(!cond.underlying_lock().locked());
    });
}

/// A barrier reset while a party waits: the waiter is released with an
/// error and the barrier is usable again at once.
#[test]
fn loom_barrier_reset() {
    loom::model(|| {
        let b = Barrier::new(2);
        let b2 = b.clone();
        let t = thread::spawn(move || {
            let first = b2.blocking().wait();
            (first, b2.blocking().wait())
        });
        while b.n_waiting() == 0 {
            thread::yield_now();
        }
        b.reset();
        let mine = b.blocking().wait();
        let (first, second) = t.join().unwrap();
        assert!(first.is_err());
        assert!(mine.is_ok() && second.is_ok());
        assert!(!b.broken());
    });
}

// ---------------------------------------------------------------- queue

#[cfg(feature = "queue")]
mod queue_models {
    use super::*;
    use crate::queue::{PutError, Queue};

    /// A bounded SPSC queue: async producer, blocking consumer; every item
    /// arrives, in order.
    #[test]
    fn loom_queue_spsc_bounded() {
        loom::model(|| {
            let q = Queue::new(1);
            let q2 = q.clone();
            let consumer = thread::spawn(move || {
                let a = q2.blocking().get().unwrap();
                let b = q2.blocking().get().unwrap();
                (a, b)
            });
            block_on(async {
                q.put(1).await.unwrap();
                q.put(2).await.unwrap();
            });
            assert_eq!(consumer.join().unwrap(), (1, 2));
            assert!(q.empty());
        });
    }

    /// A shutdown racing a blocked get releases it.
    #[test]
    fn loom_queue_shutdown_releases_getter() {
        loom::model(|| {
            let q = Queue::<u8>::unbounded();
            let q2 = q.clone();
            let getter = thread::spawn(move || q2.blocking().get());
            q.shutdown(false);
            assert!(getter.join().unwrap().is_err());
            assert!(matches!(q.put_nowait(1), Err(PutError::ShutDown(1))));
        });
    }

    /// A getter dropped after (maybe) being woken for an item: the item stays
    /// and the other getter gets it.
    #[test]
    fn loom_queue_cancelled_getter_passes_item_on() {
        loom::model(|| {
            let q = Queue::<u8>::unbounded();
            let q2 = q.clone();
            let other = thread::spawn(move || q2.blocking().get().unwrap());
            let q3 = q.clone();
            let dropper = thread::spawn(move || {
                let mut fut = Box::pin(q3.get());
                match poll_once(fut.as_mut()) {
                    Poll::Ready(got) => {
                        // It got the item: put it back for the other getter.
                        drop(fut);
                        q3.put_nowait(got.unwrap()).unwrap();
                    }
                    Poll::Pending => drop(fut),
                }
            });
            q.put_nowait(9).unwrap();
            dropper.join().unwrap();
            assert_eq!(other.join().unwrap(), 9);
        });
    }

    /// task_done racing join.
    #[test]
    fn loom_queue_join_task_done() {
        loom::model(|| {
            let q = Queue::<u8>::unbounded();
            q.put_nowait(1).unwrap();
            let q2 = q.clone();
            let worker = thread::spawn(move || {
                q2.blocking().get().unwrap();
                q2.task_done().unwrap();
            });
            q.blocking().join();
            assert_eq!(q.unfinished_tasks(), 0);
            worker.join().unwrap();
        });
    }
}
